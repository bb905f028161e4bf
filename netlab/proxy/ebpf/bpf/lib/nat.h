/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* SNAT of NodePort traffic sent on to a backend on another node, and its reverse, in
 * cilium_snat_v4_external (Cilium's snat_v4_nat / snat_v4_rev_nat, bpf/lib/nat.h, v1.18).
 *
 * Both directions are stored, as Cilium stores them: the TUPLE_F_OUT entry, keyed by the
 * DNATed packet (client -> backend), says which node address and port replace the client's;
 * the TUPLE_F_IN entry, keyed by the reply (backend -> node:port), says whom it is for. */
#pragma once

#include "common.h"
#include "maps.h"
#include "pkt.h"

static __always_inline __u16 snat_port_pick(__u32 random)
{
	return NODEPORT_PORT_MIN_NAT + (random % (NODEPORT_PORT_MAX_NAT - NODEPORT_PORT_MIN_NAT + 1));
}

/* Rewrite the source of ``p`` (client -> backend) to the node's address and a port of its
 * own, making the mapping on the connection's first packet. */
static __always_inline int snat_v4_nat(struct __sk_buff *ctx, struct pkt4 *p)
{
	struct ipv4_ct_tuple otuple = {}, rtuple = {};
	struct ipv4_nat_entry ostate = {}, rstate = {};
	struct ipv4_nat_entry *found;
	__u32 now = bpf_mono_now();
	__u16 port;
	int i, ret;

	pkt4_tuple(p, &otuple, TUPLE_F_OUT);
	found = bpf_map_lookup_elem(&cilium_snat_v4_external, &otuple);
	if (found) {
		ostate.to_saddr = found->to_saddr;
		ostate.to_sport = found->to_sport;
	} else {
		ostate.common.created = now;
		ostate.to_saddr = CONFIG_NODE_IPV4;
		rstate.common.created = now;
		rstate.to_daddr = p->saddr;
		rstate.to_dport = p->sport;
		rtuple.daddr = CONFIG_NODE_IPV4;
		rtuple.saddr = p->daddr;
		rtuple.sport = p->dport;
		rtuple.nexthdr = p->proto;
		rtuple.flags = TUPLE_F_IN;
		port = snat_port_pick(bpf_get_prandom_u32());
		for (i = 0; i < SNAT_COLLISION_RETRIES; i++) {
			rtuple.dport = bpf_htons(port);
			if (!bpf_map_update_elem(&cilium_snat_v4_external, &rtuple, &rstate,
						 BPF_NOEXIST))
				break;
			port = snat_port_pick(bpf_get_prandom_u32());
		}
		if (i == SNAT_COLLISION_RETRIES)
			return DROP_NAT_NO_MAPPING;
		ostate.to_sport = rtuple.dport;
		if (bpf_map_update_elem(&cilium_snat_v4_external, &otuple, &ostate, BPF_ANY) < 0) {
			bpf_map_delete_elem(&cilium_snat_v4_external, &rtuple);
			return DROP_NAT_NO_MAPPING;
		}
	}
	ret = pkt4_set_saddr(ctx, p, ostate.to_saddr);
	if (!ret)
		ret = pkt4_set_sport(ctx, p, ostate.to_sport);
	return ret;
}

/* Reverse SNAT of a reply (backend -> node:port): 0 and ``p`` rewritten to the client, or
 * DROP_NAT_NO_MAPPING when the packet is no reply of ours. */
static __always_inline int snat_v4_rev_nat(struct __sk_buff *ctx, struct pkt4 *p)
{
	struct ipv4_ct_tuple rtuple = {};
	struct ipv4_nat_entry *state;
	__be32 to_daddr;
	__be16 to_dport;
	int ret;

	if (p->daddr != CONFIG_NODE_IPV4 || !p->has_l4)
		return DROP_NAT_NO_MAPPING;
	pkt4_tuple(p, &rtuple, TUPLE_F_IN);
	state = bpf_map_lookup_elem(&cilium_snat_v4_external, &rtuple);
	if (!state)
		return DROP_NAT_NO_MAPPING;
	to_daddr = state->to_daddr;
	to_dport = state->to_dport;
	ret = pkt4_set_daddr(ctx, p, to_daddr);
	if (!ret)
		ret = pkt4_set_dport(ctx, p, to_dport);
	return ret;
}
