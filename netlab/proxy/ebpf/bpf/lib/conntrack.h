/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Connection tracking in cilium_ct4_global / cilium_ct_any4_global.
 *
 * As Cilium's (bpf/lib/conntrack.h), a load-balanced connection has two entries: a
 * TUPLE_F_SERVICE one keyed by what the client sent to the frontend, holding the chosen
 * backend (so every packet of the connection goes to the same one), and a TUPLE_F_OUT one
 * keyed by the translated packet, holding the reverse-NAT index, the loopback and NodePort
 * marks and the packet and byte counters. A packet whose reversed tuple matches a
 * TUPLE_F_OUT entry is a reply. Entries expire by their lifetime (seconds of bpf_mono_now);
 * the LRU maps evict the oldest when full, so no user-space garbage collector is needed.
 */
#pragma once

#include "common.h"
#include "maps.h"
#include "pkt.h"

static __always_inline __u32 ct_lifetime(const struct pkt4 *p, const struct ct_entry *e)
{
	if (p->proto != IPPROTO_TCP)
		return CT_CONNECTION_LIFETIME_NONTCP;
	if (e->rx_closing || e->tx_closing)
		return CT_CLOSE_TIMEOUT;
	if (!e->seen_non_syn)
		return CT_SYN_TIMEOUT;
	return CT_CONNECTION_LIFETIME_TCP;
}

static __always_inline void ct_state_fill(struct ct_state *st, const struct ct_entry *e)
{
	st->rev_nat_index = e->rev_nat_index;
	st->loopback = e->lb_loopback;
	st->node_port = e->node_port;
	st->closing = e->rx_closing || e->tx_closing;
	st->backend_id = (__u32)e->backend_id;
}

/* Account one packet to an entry: counters, TCP flags seen, closing state, lifetime. */
static __always_inline void ct_account(struct ct_entry *e, const struct pkt4 *p, int reply)
{
	__sync_fetch_and_add(&e->packets, 1);
	__sync_fetch_and_add(&e->bytes, p->len);
	if (p->proto == IPPROTO_TCP) {
		if (reply)
			e->rx_flags_seen |= p->tcp_flags;
		else
			e->tx_flags_seen |= p->tcp_flags;
		if (p->tcp_flags & (TCP_FLAG_FIN | TCP_FLAG_RST)) {
			if (reply)
				e->rx_closing = 1;
			else
				e->tx_closing = 1;
		}
		if (!(p->tcp_flags & TCP_FLAG_SYN) || (p->tcp_flags & TCP_FLAG_ACK))
			e->seen_non_syn = 1;
	}
	e->lifetime = bpf_mono_now() + ct_lifetime(p, e);
}

static __always_inline int ct_entry_alive(const struct ct_entry *e)
{
	return e->lifetime > bpf_mono_now();
}

/* A new TCP connection (a bare SYN) on a closed or expired entry starts afresh. */
static __always_inline int ct_reopens(const struct ct_entry *e, const struct pkt4 *p)
{
	if (!ct_entry_alive(e))
		return 1;
	return p->proto == IPPROTO_TCP && (e->rx_closing || e->tx_closing) &&
	       (p->tcp_flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
}

/* The TUPLE_F_SERVICE entry of a client's packet to a frontend: CT_ESTABLISHED (st filled)
 * or CT_NEW. */
static __always_inline int ct_lookup_svc4(void *map, const struct pkt4 *p, struct ct_state *st)
{
	struct ipv4_ct_tuple t = {};
	struct ct_entry *e;

	pkt4_tuple(p, &t, TUPLE_F_SERVICE);
	e = bpf_map_lookup_elem(map, &t);
	if (!e || ct_reopens(e, p))
		return CT_NEW;
	ct_state_fill(st, e);
	e->lifetime = bpf_mono_now() + (p->proto == IPPROTO_TCP ?
					CT_CONNECTION_LIFETIME_TCP : CT_CONNECTION_LIFETIME_NONTCP);
	return CT_ESTABLISHED;
}

static __always_inline int ct_create_svc4(void *map, const struct pkt4 *p, __u32 backend_id,
					  __u16 rev_nat_index)
{
	struct ipv4_ct_tuple t = {};
	struct ct_entry e = {};

	pkt4_tuple(p, &t, TUPLE_F_SERVICE);
	e.backend_id = backend_id;
	e.rev_nat_index = rev_nat_index;
	e.lifetime = bpf_mono_now() + (p->proto == IPPROTO_TCP ?
				       CT_SYN_TIMEOUT : CT_CONNECTION_LIFETIME_NONTCP);
	return bpf_map_update_elem(map, &t, &e, BPF_ANY);
}

/* Record (or refresh) the TUPLE_F_OUT entry of a translated packet ``p``. */
static __always_inline int ct_upsert_out4(void *map, const struct pkt4 *p,
					  const struct ct_state *st)
{
	struct ipv4_ct_tuple t = {};
	struct ct_entry *e, fresh = {};

	pkt4_tuple(p, &t, TUPLE_F_OUT);
	e = bpf_map_lookup_elem(map, &t);
	if (e && !ct_reopens(e, p) && e->rev_nat_index == st->rev_nat_index) {
		ct_account(e, p, 0);
		return 0;
	}
	fresh.backend_id = st->backend_id;
	fresh.rev_nat_index = st->rev_nat_index;
	fresh.lb_loopback = st->loopback;
	fresh.node_port = st->node_port;
	ct_account(&fresh, p, 0);
	return bpf_map_update_elem(map, &t, &fresh, BPF_ANY);
}

/* Is ``p`` a reply of a tracked (translated) connection? CT_REPLY with st filled, or CT_NEW.
 * ``account``: count the packet (only where the reply is handled, so once per packet). */
static __always_inline int ct_lookup_reply4(void *map, const struct pkt4 *p, struct ct_state *st,
					    int account)
{
	struct ipv4_ct_tuple t = {};
	struct ct_entry *e;

	pkt4_reply_tuple(p, &t, TUPLE_F_OUT);
	e = bpf_map_lookup_elem(map, &t);
	if (!e || !ct_entry_alive(e))
		return CT_NEW;
	ct_state_fill(st, e);
	if (account)
		ct_account(e, p, 1);
	return CT_REPLY;
}
