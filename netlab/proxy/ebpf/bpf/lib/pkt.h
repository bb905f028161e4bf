/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Reading an IPv4 packet's headers and rewriting its addresses and ports with correct
 * checksums (the work of Cilium's lb4_xlate, __lb4_rev_nat and l4_modify_port, done with
 * the kernel's incremental checksum helpers so offloaded checksums stay right). */
#pragma once

#include "common.h"

#define IP_CSUM_OFF	(ETH_HLEN + __builtin_offsetof(struct iphdr, check))
#define IP_SADDR_OFF	(ETH_HLEN + __builtin_offsetof(struct iphdr, saddr))
#define IP_DADDR_OFF	(ETH_HLEN + __builtin_offsetof(struct iphdr, daddr))
#define IP_TTL_OFF	(ETH_HLEN + __builtin_offsetof(struct iphdr, ttl))
#define TCP_CSUM_OFF	16
#define UDP_CSUM_OFF	6
#define TCP_SPORT_OFF	0
#define TCP_DPORT_OFF	2

/* The headers of one packet, as a program needs them. */
struct pkt4 {
	__be32 saddr;
	__be32 daddr;
	__be16 sport;
	__be16 dport;
	__u8 proto;
	__u8 tcp_flags;
	__u8 has_l4;		/* TCP or UDP, and not a non-first fragment */
	__u8 tos;
	__u32 l4_off;
	__u32 len;		/* IP total length */
};

#define TCP_FLAG_FIN	0x01
#define TCP_FLAG_SYN	0x02
#define TCP_FLAG_RST	0x04
#define TCP_FLAG_ACK	0x10

/* 0: not IPv4 (let it be); 1: parsed; <0: malformed. */
static __always_inline int pkt4_parse(struct __sk_buff *ctx, struct pkt4 *p)
{
	struct iphdr ip;
	__be16 proto;

	if (bpf_skb_load_bytes(ctx, 12, &proto, sizeof(proto)) < 0)
		return 0;
	if (proto != ETH_P_IP_BE)
		return 0;
	if (bpf_skb_load_bytes(ctx, ETH_HLEN, &ip, sizeof(ip)) < 0)
		return DROP_INVALID;
	if (ip.version != 4 || ip.ihl < 5)
		return DROP_INVALID;
	p->saddr = ip.saddr;
	p->daddr = ip.daddr;
	p->proto = ip.protocol;
	p->tos = ip.tos;
	p->len = bpf_ntohs(ip.tot_len);
	p->l4_off = ETH_HLEN + ip.ihl * 4;
	p->sport = 0;
	p->dport = 0;
	p->tcp_flags = 0;
	p->has_l4 = 0;
	if (ip.frag_off & bpf_htons(0x1fff))
		return 1; /* a later fragment: no ports to read */
	if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) {
		__be16 ports[2];

		if (bpf_skb_load_bytes(ctx, p->l4_off, ports, sizeof(ports)) < 0)
			return DROP_INVALID;
		p->sport = ports[0];
		p->dport = ports[1];
		p->has_l4 = 1;
		if (p->proto == IPPROTO_TCP &&
		    bpf_skb_load_bytes(ctx, p->l4_off + 13, &p->tcp_flags, 1) < 0)
			return DROP_INVALID;
	}
	return 1;
}

static __always_inline __u32 l4_csum_off(const struct pkt4 *p)
{
	return p->l4_off + (p->proto == IPPROTO_TCP ? TCP_CSUM_OFF : UDP_CSUM_OFF);
}

static __always_inline __u64 l4_csum_flags(const struct pkt4 *p)
{
	/* A UDP checksum of 0 means "none" and must stay so. */
	return p->proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;
}

/* Rewrite one address (source or destination), fixing the IP and the L4 pseudo-header sums. */
static __always_inline int pkt4_set_addr(struct __sk_buff *ctx, const struct pkt4 *p,
					 __u32 off, __be32 old, __be32 new)
{
	if (old == new)
		return 0;
	if (p->has_l4 &&
	    bpf_l4_csum_replace(ctx, l4_csum_off(p), old, new,
				BPF_F_PSEUDO_HDR | sizeof(new) | l4_csum_flags(p)) < 0)
		return DROP_CSUM_L4;
	if (bpf_l3_csum_replace(ctx, IP_CSUM_OFF, old, new, sizeof(new)) < 0)
		return DROP_CSUM_L3;
	if (bpf_skb_store_bytes(ctx, off, &new, sizeof(new), 0) < 0)
		return DROP_WRITE_ERROR;
	return 0;
}

/* Rewrite one port (TCP_SPORT_OFF or TCP_DPORT_OFF; UDP's are at the same offsets). */
static __always_inline int pkt4_set_port(struct __sk_buff *ctx, const struct pkt4 *p,
					 __u32 which, __be16 old, __be16 new)
{
	if (old == new || !p->has_l4)
		return 0;
	if (bpf_l4_csum_replace(ctx, l4_csum_off(p), old, new,
				sizeof(new) | l4_csum_flags(p)) < 0)
		return DROP_CSUM_L4;
	if (bpf_skb_store_bytes(ctx, p->l4_off + which, &new, sizeof(new), 0) < 0)
		return DROP_WRITE_ERROR;
	return 0;
}

static __always_inline int pkt4_set_daddr(struct __sk_buff *ctx, struct pkt4 *p, __be32 addr)
{
	int ret = pkt4_set_addr(ctx, p, IP_DADDR_OFF, p->daddr, addr);

	if (!ret)
		p->daddr = addr;
	return ret;
}

static __always_inline int pkt4_set_saddr(struct __sk_buff *ctx, struct pkt4 *p, __be32 addr)
{
	int ret = pkt4_set_addr(ctx, p, IP_SADDR_OFF, p->saddr, addr);

	if (!ret)
		p->saddr = addr;
	return ret;
}

static __always_inline int pkt4_set_dport(struct __sk_buff *ctx, struct pkt4 *p, __be16 port)
{
	int ret = pkt4_set_port(ctx, p, TCP_DPORT_OFF, p->dport, port);

	if (!ret)
		p->dport = port;
	return ret;
}

static __always_inline int pkt4_set_sport(struct __sk_buff *ctx, struct pkt4 *p, __be16 port)
{
	int ret = pkt4_set_port(ctx, p, TCP_SPORT_OFF, p->sport, port);

	if (!ret)
		p->sport = port;
	return ret;
}

static __always_inline void pkt4_tuple(const struct pkt4 *p, struct ipv4_ct_tuple *t, __u8 flags)
{
	t->daddr = p->daddr;
	t->saddr = p->saddr;
	t->dport = p->dport;
	t->sport = p->sport;
	t->nexthdr = p->proto;
	t->flags = flags;
}

/* The tuple of the connection this packet would be the reply of. */
static __always_inline void pkt4_reply_tuple(const struct pkt4 *p, struct ipv4_ct_tuple *t,
					     __u8 flags)
{
	t->daddr = p->saddr;
	t->saddr = p->daddr;
	t->dport = p->sport;
	t->sport = p->dport;
	t->nexthdr = p->proto;
	t->flags = flags;
}
