/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Forward a translated packet ourselves (Cilium's fib_redirect_v4, bpf/lib/fib.h, v1.18).
 *
 * Needed wherever the rewritten packet's source is one of the node's own addresses (a SNATed
 * request, a reverse-DNATed NodePort reply): the stack would drop it as a martian source.
 * The route comes from the node's FIB; the next hop's MAC from its neighbour table, or is
 * resolved by the kernel (bpf_redirect_neigh) when not known yet. */
#pragma once

#include "common.h"
#include "pkt.h"

#ifndef AF_INET
#define AF_INET 2
#endif

static __always_inline int ipv4_dec_ttl(struct __sk_buff *ctx)
{
	__be16 word, new_word;
	__u8 ttl;

	if (bpf_skb_load_bytes(ctx, IP_TTL_OFF, &word, sizeof(word)) < 0)
		return DROP_INVALID;
	ttl = *(__u8 *)&word;
	if (ttl <= 1)
		return DROP_INVALID;
	new_word = word;
	*(__u8 *)&new_word = ttl - 1;
	if (bpf_l3_csum_replace(ctx, IP_CSUM_OFF, word, new_word, sizeof(word)) < 0)
		return DROP_CSUM_L3;
	if (bpf_skb_store_bytes(ctx, IP_TTL_OFF, &new_word, sizeof(new_word), 0) < 0)
		return DROP_WRITE_ERROR;
	return 0;
}

static __always_inline int fib_redirect_v4(struct __sk_buff *ctx, const struct pkt4 *p)
{
	struct bpf_fib_lookup fib = {};
	struct bpf_redir_neigh nh = {};
	int ret, err;

	fib.family = AF_INET;
	fib.tos = p->tos;
	fib.l4_protocol = p->proto;
	fib.sport = p->sport;
	fib.dport = p->dport;
	fib.tot_len = p->len;
	fib.ifindex = ctx->ingress_ifindex ? ctx->ingress_ifindex : ctx->ifindex;
	fib.ipv4_src = p->saddr;
	fib.ipv4_dst = p->daddr;

	ret = bpf_fib_lookup(ctx, &fib, sizeof(fib), 0);
	if (ret != BPF_FIB_LKUP_RET_SUCCESS && ret != BPF_FIB_LKUP_RET_NO_NEIGH)
		return DROP_NO_FIB;
	err = ipv4_dec_ttl(ctx);
	if (err < 0)
		return err;
	if (ret == BPF_FIB_LKUP_RET_SUCCESS) {
		if (bpf_skb_store_bytes(ctx, 0, fib.dmac, ETH_ALEN, 0) < 0 ||
		    bpf_skb_store_bytes(ctx, ETH_ALEN, fib.smac, ETH_ALEN, 0) < 0)
			return DROP_WRITE_ERROR;
		return bpf_redirect(fib.ifindex, 0);
	}
	nh.nh_family = AF_INET;
	nh.ipv4_nh = fib.ipv4_dst;
	return bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0);
}
