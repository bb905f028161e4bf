// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Socket load-balancing for the node's own processes (Cilium's bpf_sock.c, v1.18):
 * cgroup connect4/sendmsg4 rewrite the address a socket dials from a Service frontend to a
 * backend before any packet exists, so nothing on the wire carries the ClusterIP and no NAT
 * is needed; recvmsg4/getpeername4 show the frontend again to the application.
 *
 * The programs are attached to a cgroup the lab owns for the node, and act only on sockets
 * of that node's network namespace (CONFIG_NETNS_COOKIE): a process that moves elsewhere, or
 * opens a socket in another namespace, is left alone.
 */
#include <linux/errno.h>

#ifndef ENOTSUP
#define ENOTSUP EOPNOTSUPP
#endif

#include "lib/common.h"
#include "lib/maps.h"
#include "lib/lb.h"

#define SYS_REJECT	0
#define SYS_PROCEED	1

static __always_inline int in_node_netns(void *ctx)
{
	return CONFIG_NETNS_COOKIE && bpf_get_netns_cookie(ctx) == CONFIG_NETNS_COOKIE;
}

static __always_inline __be16 ctx_dst_port(const struct bpf_sock_addr *ctx)
{
	volatile __u32 dport = ctx->user_port;

	return (__be16)dport;
}

static __always_inline void ctx_set_port(struct bpf_sock_addr *ctx, __be16 dport)
{
	ctx->user_port = (__u32)dport;
}

static __always_inline int is_v4_loopback(__be32 daddr)
{
	return (daddr & bpf_htonl(0xff000000)) == bpf_htonl(0x7f000000);
}

/* A NodePort dialled on one of the node's own addresses (127.0.0.0/8 or its node address):
 * the wildcard frontend 0.0.0.0:<nodePort>. */
static __always_inline struct lb4_service *sock4_wildcard_lookup(struct lb4_key *key)
{
	struct lb4_service *svc;
	__u16 port = bpf_ntohs(key->dport);

	if (port < NODEPORT_PORT_MIN || port > NODEPORT_PORT_MAX)
		return 0;
	if (!is_v4_loopback(key->address) && key->address != CONFIG_NODE_IPV4)
		return 0;
	key->address = 0;
	svc = lb4_lookup_service(key, 1);
	if (svc && !lb4_svc_is_nodeport(svc))
		return 0;
	return svc;
}

static __always_inline int sock4_update_revnat(struct bpf_sock_addr *ctx,
					       const struct lb4_backend *backend,
					       const struct lb4_key *orig_key, __u16 rev_nat_id)
{
	struct ipv4_revnat_entry val = {}, *tmp;
	struct ipv4_revnat_tuple key = {};

	key.cookie = bpf_get_socket_cookie(ctx);
	key.address = backend->address;
	key.port = backend->port;
	val.address = orig_key->address;
	val.port = orig_key->dport;
	val.rev_nat_index = rev_nat_id;
	tmp = bpf_map_lookup_elem(&cilium_lb4_reverse_sk, &key);
	if (tmp && tmp->address == val.address && tmp->port == val.port &&
	    tmp->rev_nat_index == val.rev_nat_index)
		return 0;
	return bpf_map_update_elem(&cilium_lb4_reverse_sk, &key, &val, BPF_ANY);
}

static __always_inline int __sock4_xlate_fwd(struct bpf_sock_addr *ctx)
{
	struct lb4_key key = {}, orig_key;
	struct lb4_backend *backend = 0;
	struct lb4_service *svc;
	__u64 netns = bpf_get_netns_cookie(ctx);
	__u32 proto = ctx->protocol;
	__u32 backend_id = 0;
	int from_affinity = 0;

	if (proto != IPPROTO_TCP && proto != IPPROTO_UDP)
		return -ENOTSUP;
	key.address = ctx->user_ip4;
	key.dport = ctx_dst_port(ctx);
	key.proto = proto;
	orig_key = key;

	svc = lb4_lookup_service(&key, 1);
	if (!svc)
		svc = sock4_wildcard_lookup(&key);
	if (!svc)
		return -ENXIO;
	/* An external IP is translated only when it is the node's own (no MITM of public IPs). */
	if ((svc->flags & SVC_FLAG_EXTERNAL_IP) && orig_key.address != CONFIG_NODE_IPV4)
		return -EPERM;
	if (!svc->count)
		return -EHOSTUNREACH;

	if (lb4_svc_is_affinity(svc)) {
		backend_id = lb4_affinity_backend_id(svc, netns, 1);
		if (backend_id)
			backend = lb4_lookup_backend(backend_id);
		from_affinity = backend != 0;
	}
	if (!backend) {
		/* TCP: a random slot per connection; UDP: per socket, so a socket keeps talking
		 * to one backend (Cilium's sock_select_slot). */
		__u32 random = proto == IPPROTO_TCP ? bpf_get_prandom_u32() :
						      (__u32)bpf_get_socket_cookie(ctx);

		backend_id = lb4_select_backend_id(&key, svc, random);
		backend = lb4_lookup_backend(backend_id);
		if (!backend)
			return -EHOSTUNREACH;
	}
	if (lb4_svc_is_affinity(svc) && !from_affinity)
		lb4_update_affinity(svc, netns, 1, backend_id);
	if (sock4_update_revnat(ctx, backend, &orig_key, svc->rev_nat_index) < 0)
		return -ENOMEM;

	ctx->user_ip4 = backend->address;
	ctx_set_port(ctx, backend->port);
	return 0;
}

/* Show the frontend again: the address a translated socket talks to is a backend's. */
static __always_inline int __sock4_xlate_rev(struct bpf_sock_addr *ctx)
{
	struct ipv4_revnat_entry *val;
	struct ipv4_revnat_tuple key = {};
	struct lb4_service *svc;
	struct lb4_key svc_key = {};

	key.cookie = bpf_get_socket_cookie(ctx);
	key.address = ctx->user_ip4;
	key.port = ctx_dst_port(ctx);
	val = bpf_map_lookup_elem(&cilium_lb4_reverse_sk, &key);
	if (!val)
		return -ENXIO;
	svc_key.address = val->address;
	svc_key.dport = val->port;
	svc_key.proto = ctx->protocol;
	svc = lb4_lookup_service(&svc_key, 1);
	if (!svc)
		svc = sock4_wildcard_lookup(&svc_key);
	if (!svc || svc->rev_nat_index != val->rev_nat_index) {
		bpf_map_delete_elem(&cilium_lb4_reverse_sk, &key);
		return -ENOENT;
	}
	ctx->user_ip4 = val->address;
	ctx_set_port(ctx, val->port);
	return 0;
}

SEC("cgroup/connect4")
int cil_sock4_connect(struct bpf_sock_addr *ctx)
{
	int err;

	if (!in_node_netns(ctx))
		return SYS_PROCEED;
	err = __sock4_xlate_fwd(ctx);
	if (err == -EHOSTUNREACH || err == -ENOMEM) {
		bpf_set_retval(err);
		return SYS_REJECT;
	}
	return SYS_PROCEED;
}

SEC("cgroup/sendmsg4")
int cil_sock4_sendmsg(struct bpf_sock_addr *ctx)
{
	int err;

	if (!in_node_netns(ctx))
		return SYS_PROCEED;
	err = __sock4_xlate_fwd(ctx);
	if (err == -EHOSTUNREACH || err == -ENOMEM) {
		bpf_set_retval(err);
		return SYS_REJECT;
	}
	return SYS_PROCEED;
}

SEC("cgroup/recvmsg4")
int cil_sock4_recvmsg(struct bpf_sock_addr *ctx)
{
	if (in_node_netns(ctx))
		__sock4_xlate_rev(ctx);
	return SYS_PROCEED;
}

SEC("cgroup/getpeername4")
int cil_sock4_getpeername(struct bpf_sock_addr *ctx)
{
	if (in_node_netns(ctx))
		__sock4_xlate_rev(ctx);
	return SYS_PROCEED;
}

char _license[] SEC("license") = "Dual BSD/GPL";
