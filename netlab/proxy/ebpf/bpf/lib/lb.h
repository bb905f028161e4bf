/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Service lookup, backend choice, DNAT and reverse NAT: the steps of Cilium's lb4_local,
 * lb4_lookup_service, lb4_select_backend_id (random), __lb4_affinity_backend_id,
 * lb4_src_range_ok and lb4_rev_nat (cilium/cilium v1.18, bpf/lib/lb.h). */
#pragma once

#include "common.h"
#include "maps.h"
#include "pkt.h"
#include "conntrack.h"

static __always_inline int lb4_svc_is_routable(const struct lb4_service *svc)
{
	return svc->flags & SVC_FLAG_ROUTABLE;
}

static __always_inline int lb4_svc_is_affinity(const struct lb4_service *svc)
{
	return svc->flags & SVC_FLAG_AFFINITY;
}

static __always_inline int lb4_svc_is_two_scopes(const struct lb4_service *svc)
{
	return svc->flags2 & SVC_FLAG_TWO_SCOPES;
}

static __always_inline int lb4_svc_is_nodeport(const struct lb4_service *svc)
{
	return svc->flags & SVC_FLAG_NODEPORT;
}

/* The frontend (slot 0) for ``key``. External traffic sees the EXT scope; traffic from
 * inside the cluster (``scope_switch``) the INT scope when the Service has two (an
 * externalTrafficPolicy that differs from the internal one). A frontend without backends is
 * returned too: its caller answers "no service". */
static __always_inline struct lb4_service *lb4_lookup_service(struct lb4_key *key,
							      int scope_switch)
{
	struct lb4_service *svc;

	key->scope = LB_LOOKUP_SCOPE_EXT;
	key->backend_slot = 0;
	svc = bpf_map_lookup_elem(&cilium_lb4_services_v2, key);
	if (!svc || !scope_switch || !lb4_svc_is_two_scopes(svc))
		return svc;
	key->scope = LB_LOOKUP_SCOPE_INT;
	return bpf_map_lookup_elem(&cilium_lb4_services_v2, key);
}

static __always_inline struct lb4_backend *lb4_lookup_backend(__u32 backend_id)
{
	return bpf_map_lookup_elem(&cilium_lb4_backends_v3, &backend_id);
}

/* Random selection: slot 1..count (slot 0 is the frontend). */
static __always_inline __u32 lb4_select_backend_id(struct lb4_key *key,
						   const struct lb4_service *svc, __u32 random)
{
	struct lb4_service *slot;

	if (!svc->count)
		return 0;
	key->backend_slot = (random % svc->count) + 1;
	slot = bpf_map_lookup_elem(&cilium_lb4_services_v2, key);
	key->backend_slot = 0;
	return slot ? slot->backend_id : 0;
}

static __always_inline __u32 lb4_affinity_backend_id(const struct lb4_service *svc,
						     __u64 client, int netns_cookie)
{
	struct lb4_affinity_key key = {};
	struct lb_affinity_match match = {};
	struct lb_affinity_val *val;
	__u32 now = bpf_mono_now();

	key.client_id.client_cookie = client;
	key.rev_nat_id = svc->rev_nat_index;
	key.netns_cookie = netns_cookie;
	val = bpf_map_lookup_elem(&cilium_lb4_affinity, &key);
	if (!val)
		return 0;
	/* Sticky for [last_used, last_used + timeout). */
	if (val->last_used + (svc->affinity_timeout & AFFINITY_TIMEOUT_MASK) <= now) {
		bpf_map_delete_elem(&cilium_lb4_affinity, &key);
		return 0;
	}
	match.backend_id = val->backend_id;
	match.rev_nat_id = svc->rev_nat_index;
	if (!bpf_map_lookup_elem(&cilium_lb_affinity_match, &match)) {
		bpf_map_delete_elem(&cilium_lb4_affinity, &key);
		return 0;
	}
	val->last_used = now;
	return val->backend_id;
}

static __always_inline void lb4_update_affinity(const struct lb4_service *svc, __u64 client,
						int netns_cookie, __u32 backend_id)
{
	struct lb4_affinity_key key = {};
	struct lb_affinity_val val = {};

	key.client_id.client_cookie = client;
	key.rev_nat_id = svc->rev_nat_index;
	key.netns_cookie = netns_cookie;
	val.backend_id = backend_id;
	val.last_used = bpf_mono_now();
	bpf_map_update_elem(&cilium_lb4_affinity, &key, &val, BPF_ANY);
}

/* loadBalancerSourceRanges: is ``saddr`` allowed to reach this frontend? */
static __always_inline int lb4_src_range_ok(const struct lb4_service *svc, __be32 saddr)
{
	struct lb4_src_range_key key = {};

	if (!(svc->flags & SVC_FLAG_SOURCE_RANGE))
		return 1;
	key.lpm_key.prefixlen = SRC_RANGE_STATIC_PREFIX(key);
	key.rev_nat_id = svc->rev_nat_index;
	key.addr = saddr;
	return bpf_map_lookup_elem(&cilium_lb4_source_range, &key) != 0;
}

static __always_inline void lb4_fill_key(struct lb4_key *key, const struct pkt4 *p)
{
	key->address = p->daddr;
	key->dport = p->dport;
	key->proto = p->proto;
	key->backend_slot = 0;
	key->scope = LB_LOOKUP_SCOPE_EXT;
}

/* Load-balance one packet to ``svc``: keep the connection's backend (its TUPLE_F_SERVICE
 * entry), else ClientIP affinity, else a random slot; DNAT to it (and SNAT to
 * IPV4_LOOPBACK when the client is the backend itself); record the translated connection.
 * ``st`` comes back filled for the caller's own CT entry. DROP_NO_SERVICE: no backend. */
static __always_inline int lb4_local(struct __sk_buff *ctx, struct pkt4 *p, struct lb4_key *key,
				     const struct lb4_service *svc, struct ct_state *st)
{
	void *map = get_ct_map4(p->proto);
	struct ct_state svc_st = {};
	struct lb4_backend *backend = 0;
	__u32 backend_id = 0;
	__be32 client = p->saddr;
	int ret;

	ret = ct_lookup_svc4(map, p, &svc_st);
	if (ret == CT_ESTABLISHED && svc_st.rev_nat_index == svc->rev_nat_index) {
		backend_id = svc_st.backend_id;
		backend = lb4_lookup_backend(backend_id);
	}
	if (!backend) {
		/* New connection, or its backend is gone: choose (again). */
		if (!svc->count)
			return DROP_NO_SERVICE;
		if (lb4_svc_is_affinity(svc)) {
			backend_id = lb4_affinity_backend_id(svc, client, 0);
			if (backend_id)
				backend = lb4_lookup_backend(backend_id);
		}
		if (!backend) {
			backend_id = lb4_select_backend_id(key, svc, bpf_get_prandom_u32());
			backend = lb4_lookup_backend(backend_id);
			if (!backend)
				return DROP_NO_SERVICE;
		}
		if (ct_create_svc4(map, p, backend_id, svc->rev_nat_index) < 0)
			return DROP_NO_SERVICE;
	}
	if (lb4_svc_is_affinity(svc))
		lb4_update_affinity(svc, client, 0, backend_id);

	st->backend_id = backend_id;
	st->rev_nat_index = svc->rev_nat_index;
	st->loopback = client == backend->address;

	ret = pkt4_set_daddr(ctx, p, backend->address);
	if (!ret && backend->port)
		ret = pkt4_set_dport(ctx, p, backend->port);
	if (!ret && st->loopback)
		ret = pkt4_set_saddr(ctx, p, IPV4_LOOPBACK);
	return ret;
}

/* Undo the translation on a reply: the source becomes the frontend again. For a looped
 * back connection the reply's source (the pod itself) is also where it must go. */
static __always_inline int lb4_rev_nat(struct __sk_buff *ctx, struct pkt4 *p,
				       const struct ct_state *st)
{
	struct lb4_reverse_nat *nat;
	__u16 index = st->rev_nat_index;
	__be32 self = p->saddr;
	int ret = 0;

	nat = bpf_map_lookup_elem(&cilium_lb4_reverse_nat, &index);
	if (!nat)
		return 0;
	if (st->loopback)
		ret = pkt4_set_daddr(ctx, p, self);
	if (!ret && nat->address)
		ret = pkt4_set_saddr(ctx, p, nat->address);
	if (!ret && nat->port)
		ret = pkt4_set_sport(ctx, p, nat->port);
	return ret;
}
