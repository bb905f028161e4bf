// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The pod's end of the node: tc programs on the node-side veth of every pod.
 *
 * cil_from_container (tc ingress: packets the pod sends) load-balances per packet, as
 * Cilium's bpf_lxc.c does when socket LB serves only the host namespace: a packet to a
 * Service frontend is DNATed to a backend (lb4_local); a Service without backends is
 * answered with an ICMP port unreachable; replies of NodePort connections to a local backend
 * are reverse-DNATed and sent out of the node directly, and replies of a pod that reached
 * itself (hairpin, source 169.254.42.1) are turned back into the pod.
 *
 * cil_to_container (tc egress: packets going into the pod) reverse-NATs replies of the
 * pod's own Service connections, so the pod sees the answer come from the frontend it dialled
 * (Cilium does this in ipv4_policy on the way into the endpoint).
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/pkt.h"
#include "lib/conntrack.h"
#include "lib/lb.h"
#include "lib/icmp.h"
#include "lib/fib.h"

static __always_inline int handle_reply_from_lxc(struct __sk_buff *ctx, struct pkt4 *p)
{
	void *map = get_ct_map4(p->proto);
	struct ct_state st = {};
	int ret;

	if (ct_lookup_reply4(map, p, &st, 0) != CT_REPLY)
		return CTX_ACT_OK;
	if (st.node_port && st.rev_nat_index) {
		/* A local backend answering a NodePort/LoadBalancer client: the reply leaves
		 * from the frontend's address, straight out of the node. */
		ct_lookup_reply4(map, p, &st, 1);
		ret = lb4_rev_nat(ctx, p, &st);
		if (ret < 0)
			return ret;
		return fib_redirect_v4(ctx, p);
	}
	if (st.loopback && st.rev_nat_index) {
		struct ethhdr eth;

		/* Hairpin: the pod answered 169.254.42.1; it is really answering itself. */
		ct_lookup_reply4(map, p, &st, 1);
		ret = lb4_rev_nat(ctx, p, &st);
		if (ret < 0)
			return ret;
		if (bpf_skb_load_bytes(ctx, 0, &eth, sizeof(eth)) < 0)
			return DROP_INVALID;
		/* Back to where it came from: the Ethernet addresses swap. */
		if (bpf_skb_store_bytes(ctx, 0, eth.h_source, ETH_ALEN, 0) < 0 ||
		    bpf_skb_store_bytes(ctx, ETH_ALEN, eth.h_dest, ETH_ALEN, 0) < 0)
			return DROP_WRITE_ERROR;
		return bpf_redirect(ctx->ifindex, 0);
	}
	return CTX_ACT_OK;
}

static __always_inline int handle_ipv4_from_lxc(struct __sk_buff *ctx)
{
	struct lb4_service *svc;
	struct ct_state st = {};
	struct lb4_key key = {};
	struct pkt4 p = {};
	int ret;

	ret = pkt4_parse(ctx, &p);
	if (ret <= 0)
		return ret;
	if (!p.has_l4)
		return CTX_ACT_OK;

	lb4_fill_key(&key, &p);
	svc = lb4_lookup_service(&key, 1);
	if (!svc)
		return handle_reply_from_lxc(ctx, &p);
	ret = lb4_local(ctx, &p, &key, svc, &st);
	if (ret == DROP_NO_SERVICE)
		return tail_no_service_ipv4(ctx, &p);
	if (ret < 0)
		return ret;
	if (ct_upsert_out4(get_ct_map4(p.proto), &p, &st) < 0)
		return DROP_NO_SERVICE;
	return CTX_ACT_OK;
}

SEC("tc")
int cil_from_container(struct __sk_buff *ctx)
{
	int ret = handle_ipv4_from_lxc(ctx);

	return ret < 0 ? CTX_ACT_DROP : ret;
}

SEC("tc")
int cil_to_container(struct __sk_buff *ctx)
{
	struct ct_state st = {};
	struct pkt4 p = {};
	void *map;
	int ret;

	ret = pkt4_parse(ctx, &p);
	if (ret <= 0)
		return ret < 0 ? CTX_ACT_DROP : CTX_ACT_OK;
	if (!p.has_l4)
		return CTX_ACT_OK;
	map = get_ct_map4(p.proto);
	if (ct_lookup_reply4(map, &p, &st, 0) != CT_REPLY || !st.rev_nat_index ||
	    st.node_port || st.loopback)
		return CTX_ACT_OK;
	ct_lookup_reply4(map, &p, &st, 1);
	ret = lb4_rev_nat(ctx, &p, &st);
	return ret < 0 ? CTX_ACT_DROP : CTX_ACT_OK;
}

char _license[] SEC("license") = "Dual BSD/GPL";
