/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* "No backend": answer with an ICMP port unreachable built here, as Cilium's
 * tail_no_service_ipv4 does with the default --service-no-backend-response=reject
 * (cilium/cilium v1.18, bpf/lib/lb.h). The client sees "connection refused" at once.
 *
 * The reply quotes the start of the original datagram, up to 64 bytes as Cilium's
 * ICMP_PACKET_MAX_SAMPLE_SIZE (a multiple of 4 for the checksum), comes from the address
 * the client dialled, and leaves through the device the request came in on, with the
 * Ethernet addresses swapped. Quoting 64 bytes, not RFC 792's minimum of 28, matters: a
 * pod's TCP segment is handed over with its checksum left to the device (CHECKSUM_PARTIAL),
 * and a sample that cut the packet before that checksum would be dropped on transmit. A
 * request with IP options (pods send none) is dropped instead. */
#pragma once

#include "common.h"
#include "pkt.h"

#define ICMP_PACKET_MAX_SAMPLE_SIZE	64

static __always_inline __u16 csum_fold32(__u32 csum)
{
	csum = (csum & 0xffff) + (csum >> 16);
	csum = (csum & 0xffff) + (csum >> 16);
	return (__u16)~csum;
}

/* Build the reply quoting ``sample_len`` bytes (a constant at each call, for the verifier). */
static __always_inline int __icmp4_port_unreach(struct __sk_buff *ctx, const struct pkt4 *p,
						const __u32 sample_len)
{
	__u8 sample[ICMP_PACKET_MAX_SAMPLE_SIZE] = {};
	struct ethhdr eth, reth;
	struct iphdr ip = {};
	struct icmphdr4 icmp = {};
	__s64 csum;

	if (bpf_skb_load_bytes(ctx, 0, &eth, sizeof(eth)) < 0)
		return DROP_INVALID;
	if (bpf_skb_load_bytes(ctx, ETH_HLEN, sample, sample_len) < 0)
		return DROP_INVALID;

	/* Keep only the sample, then make room for the new IP and ICMP headers before it. */
	if (bpf_skb_change_tail(ctx, ETH_HLEN + sample_len, 0) < 0)
		return DROP_INVALID;
	if (bpf_skb_adjust_room(ctx, sizeof(ip) + sizeof(icmp), BPF_ADJ_ROOM_MAC, 0) < 0)
		return DROP_INVALID;

	__builtin_memcpy(reth.h_dest, eth.h_source, ETH_ALEN);
	__builtin_memcpy(reth.h_source, eth.h_dest, ETH_ALEN);
	reth.h_proto = ETH_P_IP_BE;

	ip.version = 4;
	ip.ihl = 5;
	ip.tos = p->tos;
	ip.tot_len = bpf_htons(sizeof(ip) + sizeof(icmp) + sample_len);
	ip.ttl = IPDEFTTL;
	ip.protocol = IPPROTO_ICMP;
	ip.saddr = p->daddr;
	ip.daddr = p->saddr;
	csum = bpf_csum_diff(0, 0, (__be32 *)&ip, sizeof(ip), 0);
	if (csum < 0)
		return DROP_CSUM_L3;
	ip.check = csum_fold32((__u32)csum);

	icmp.type = ICMP_DEST_UNREACH;
	icmp.code = ICMP_PORT_UNREACH;
	csum = bpf_csum_diff(0, 0, (__be32 *)sample, sample_len, 0);
	if (csum < 0)
		return DROP_CSUM_L4;
	csum = bpf_csum_diff(0, 0, (__be32 *)&icmp, sizeof(icmp), (__u32)csum);
	if (csum < 0)
		return DROP_CSUM_L4;
	icmp.checksum = csum_fold32((__u32)csum);

	if (bpf_skb_store_bytes(ctx, 0, &reth, sizeof(reth), 0) < 0 ||
	    bpf_skb_store_bytes(ctx, ETH_HLEN, &ip, sizeof(ip), 0) < 0 ||
	    bpf_skb_store_bytes(ctx, ETH_HLEN + sizeof(ip), &icmp, sizeof(icmp), 0) < 0)
		return DROP_WRITE_ERROR;
	return bpf_redirect(ctx->ifindex, 0);
}

/* The sample is the longest of 64, 40 or 28 bytes the datagram holds: 40 covers a TCP
 * header's checksum, 28 a UDP one's (and RFC 792's IP header and 8 bytes). */
static __always_inline int tail_no_service_ipv4(struct __sk_buff *ctx, const struct pkt4 *p)
{
	if (p->l4_off != ETH_HLEN + sizeof(struct iphdr))
		return DROP_INVALID;
	if (p->len >= ICMP_PACKET_MAX_SAMPLE_SIZE)
		return __icmp4_port_unreach(ctx, p, ICMP_PACKET_MAX_SAMPLE_SIZE);
	if (p->len >= 40)
		return __icmp4_port_unreach(ctx, p, 40);
	if (p->len >= 28)
		return __icmp4_port_unreach(ctx, p, 28);
	return DROP_INVALID;
}
