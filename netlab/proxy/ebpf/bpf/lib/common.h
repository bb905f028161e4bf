/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* netlab's eBPF Service load-balancer: the shapes every program shares.
 *
 * Struct layouts, flags and constants follow Cilium's kube-proxy replacement
 * (cilium/cilium v1.18, bpf/lib/common.h and bpf/lib/nat.h) so that the pinned
 * maps hold exactly what a Cilium node's maps hold. Python never restates these
 * layouts: it reads them from the BTF of the compiled objects
 * (netlab/proxy/ebpf/btf.py). The code around them is netlab's own.
 */
#pragma once

#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* linux/icmp.h pulls libc headers on Debian: the few ICMP constants needed. */
#define ICMP_DEST_UNREACH	3
#define ICMP_PORT_UNREACH	3
#define IPDEFTTL		64
#define ETH_P_IP_BE		bpf_htons(ETH_P_IP)

struct icmphdr4 {
	__u8 type;
	__u8 code;
	__sum16 checksum;
	__be32 unused;
};

/* tc verdicts under Cilium's names. */
#define CTX_ACT_OK		TC_ACT_OK
#define CTX_ACT_DROP		TC_ACT_SHOT
#define CTX_ACT_REDIRECT	TC_ACT_REDIRECT

/* Drop reasons (Cilium's bpf/lib/drop_reasons.h numbering). */
#define DROP_INVALID		-134
#define DROP_NO_SERVICE		-158
#define DROP_WRITE_ERROR	-141
#define DROP_CSUM_L3		-148
#define DROP_CSUM_L4		-149
#define DROP_UNKNOWN_L4		-131
#define DROP_NOT_IN_SRC_RANGE	-177
#define DROP_IS_CLUSTER_IP	-179
#define DROP_NAT_NO_MAPPING	-167
#define DROP_NO_FIB		-169

#define IS_ERR(x) ((x) < 0)

/* Map sizes. The load-balancing maps take Cilium's CILIUM_LB_MAP_MAX_ENTRIES and are sized
 * up before loading for large labs (bpf_map__set_max_entries); they are allocated as they
 * fill. The LRU maps (conntrack, NAT, affinity, socket reverse NAT) are allocated whole when
 * created, so they are sized for a lab, not Cilium's production defaults (512k/256k):
 * when full they drop their least recently used entries. */
#define CILIUM_LB_MAP_MAX_ENTRIES	65536
#define LB4_SRC_RANGE_MAP_SIZE		65536
#define CT_MAP_SIZE_TCP			32768
#define CT_MAP_SIZE_ANY			16384
#define SNAT_MAPPING_IPV4_SIZE		16384
#define LB4_REVERSE_NAT_SK_MAP_SIZE	16384
#define LB4_AFFINITY_MAP_SIZE		16384

/* NodePort range and the source ports SNAT hands out (NODEPORT_PORT_MIN_NAT..MAX_NAT). */
#define NODEPORT_PORT_MIN	30000
#define NODEPORT_PORT_MAX	32767
#define NODEPORT_PORT_MIN_NAT	(NODEPORT_PORT_MAX + 1)
#define NODEPORT_PORT_MAX_NAT	65535
#define SNAT_COLLISION_RETRIES	32

/* service_loopback_ipv4: the source a pod sees when it reaches itself through a Service. */
#define IPV4_LOOPBACK		bpf_htonl(0xa9fe2a01)	/* 169.254.42.1 */

/* Conntrack lifetimes in seconds (Cilium's defaults: CT_CONNECTION_LIFETIME_TCP,
 * CT_SYN_TIMEOUT, CT_CONNECTION_LIFETIME_NONTCP, CT_CLOSE_TIMEOUT). */
#define CT_CONNECTION_LIFETIME_TCP	21600
#define CT_SYN_TIMEOUT			60
#define CT_CONNECTION_LIFETIME_NONTCP	60
#define CT_CLOSE_TIMEOUT		10

#define TUPLE_F_OUT		0
#define TUPLE_F_IN		1
#define TUPLE_F_RELATED		2
#define TUPLE_F_SERVICE		4

enum ct_status {
	CT_NEW,
	CT_ESTABLISHED,
	CT_REPLY,
	CT_RELATED,
};

/* Lookup scope for externalTrafficPolicy=Local */
#define LB_LOOKUP_SCOPE_EXT	0
#define LB_LOOKUP_SCOPE_INT	1

/* Service flags (lb4_service->flags) */
enum {
	SVC_FLAG_EXTERNAL_IP     = (1 << 0),
	SVC_FLAG_NODEPORT        = (1 << 1),
	SVC_FLAG_EXT_LOCAL_SCOPE = (1 << 2),
	SVC_FLAG_HOSTPORT        = (1 << 3),
	SVC_FLAG_AFFINITY        = (1 << 4),
	SVC_FLAG_LOADBALANCER    = (1 << 5),
	SVC_FLAG_ROUTABLE        = (1 << 6),
	SVC_FLAG_SOURCE_RANGE    = (1 << 7),
};

/* Service flags (lb4_service->flags2) */
enum {
	SVC_FLAG_LOCALREDIRECT   = (1 << 0),
	SVC_FLAG_NAT_46X64       = (1 << 1),
	SVC_FLAG_L7_LOADBALANCER = (1 << 2),
	SVC_FLAG_LOOPBACK        = (1 << 3),
	SVC_FLAG_INT_LOCAL_SCOPE = (1 << 4),
	SVC_FLAG_TWO_SCOPES      = (1 << 5),
};

/* Backend states (lb4_backend->flags) */
enum {
	BE_STATE_ACTIVE = 0,
	BE_STATE_TERMINATING,
	BE_STATE_QUARANTINED,
	BE_STATE_MAINTENANCE,
};

#define LB_ALGORITHM_SHIFT	24
#define AFFINITY_TIMEOUT_MASK	((1 << LB_ALGORITHM_SHIFT) - 1)

/* ct_entry flag bits, in the order of Cilium's bitfield (rx_closing first). */
#define CT_F_RX_CLOSING		(1 << 0)
#define CT_F_TX_CLOSING		(1 << 1)
#define CT_F_LB_LOOPBACK	(1 << 3)
#define CT_F_SEEN_NON_SYN	(1 << 4)
#define CT_F_NODE_PORT		(1 << 5)

struct lb4_key {
	__be32 address;		/* Service virtual IPv4 address */
	__be16 dport;		/* L4 port filter, if unset, all ports apply */
	__u16 backend_slot;	/* Backend iterator, 0 indicates the svc frontend */
	__u8 proto;		/* L4 protocol, or IPPROTO_ANY */
	__u8 scope;		/* LB_LOOKUP_SCOPE_* for externalTrafficPolicy=Local */
	__u8 pad[2];
};

struct lb4_service {
	union {
		__u32 backend_id;	/* slot > 0: backend ID in lb4_backends */
		__u32 affinity_timeout;	/* slot 0: low 24 bits timeout, high 8 algorithm */
		__u32 l7_lb_proxy_port;
	};
	__u16 count;		/* slot 0: number of backend slots */
	__u16 rev_nat_index;	/* Reverse NAT ID in lb4_reverse_nat (network order) */
	__u8 flags;
	__u8 flags2;
	__u16 qcount;		/* slot 0: backend slots under quarantine */
};

struct lb4_backend {
	__be32 address;		/* Service endpoint IPv4 address */
	__be16 port;		/* L4 port filter */
	__u8 proto;		/* L4 protocol */
	__u8 flags;		/* BE_STATE_* */
	__u16 cluster_id;
	__u8 zone;
	__u8 pad;
};

struct lb4_reverse_nat {
	__be32 address;
	__be16 port;
} __attribute__((packed));

/* Connection tracking tuple. netlab stores both addresses and ports as the packet of the
 * direction named by ``flags`` carries them (TUPLE_F_OUT: the client's packet after DNAT;
 * TUPLE_F_SERVICE: the client's packet to the frontend). */
struct ipv4_ct_tuple {
	__be32 daddr;
	__be32 saddr;
	__be16 dport;
	__be16 sport;
	__u8 nexthdr;
	__u8 flags;
} __attribute__((packed));

struct ct_entry {
	__u64 reserved0;
	__u64 backend_id;
	__u64 packets;
	__u64 bytes;
	__u32 lifetime;
	__u16 rx_closing:1,
	      tx_closing:1,
	      reserved1:1,
	      lb_loopback:1,
	      seen_non_syn:1,
	      node_port:1,
	      proxy_redirect:1,
	      dsr_internal:1,
	      from_l7lb:1,
	      reserved2:1,
	      from_tunnel:1,
	      reserved3:5;
	__u16 rev_nat_index;
	__u16 reserved4;
	__u8 tx_flags_seen;
	__u8 rx_flags_seen;
	__u32 src_sec_id;
	__u32 last_tx_report;
	__u32 last_rx_report;
};

/* What a lookup found, for the program that asked. */
struct ct_state {
	__u16 rev_nat_index;
	__u16 loopback:1,
	      node_port:1,
	      closing:1,
	      reserved:13;
	__u32 backend_id;
};

union lb4_affinity_client_id {
	__u32 client_ip;
	__u64 client_cookie;
} __attribute__((packed));

struct lb4_affinity_key {
	union lb4_affinity_client_id client_id;
	__u16 rev_nat_id;
	__u8 netns_cookie:1,
	     reserved:7;
	__u8 pad1;
	__u32 pad2;
} __attribute__((packed));

struct lb_affinity_val {
	__u64 last_used;
	__u32 backend_id;
	__u32 pad;
} __attribute__((packed));

struct lb_affinity_match {
	__u32 backend_id;
	__u16 rev_nat_id;
	__u16 pad;
} __attribute__((packed));

struct lb4_src_range_key {
	struct bpf_lpm_trie_key lpm_key;
	__u16 rev_nat_id;
	__u16 pad;
	__u32 addr;
};

#define SRC_RANGE_STATIC_PREFIX(STRUCT) \
	(8 * (sizeof(STRUCT) - sizeof(struct bpf_lpm_trie_key)))

struct nat_entry {
	__u64 created;
	__u64 needs_ct;
	__u64 pad1;
	__u64 pad2;
};

struct ipv4_nat_entry {
	struct nat_entry common;
	union {
		struct lb4_reverse_nat nat_info;
		struct {
			__be32 to_saddr;
			__be16 to_sport;
		};
		struct {
			__be32 to_daddr;
			__be16 to_dport;
		};
	};
};

struct ipv4_revnat_tuple {
	__u64 cookie;
	__be32 address;
	__be16 port;
	__u16 pad;
};

struct ipv4_revnat_entry {
	__be32 address;
	__be16 port;
	__u16 rev_nat_index;
};

/* Per-node configuration, fixed when the node's programs are loaded (Cilium's load-time
 * configuration). netlab writes it into .rodata before loading; offsets come from BTF. */
volatile const __be32 CONFIG_NODE_IPV4 = 0;		/* the node's own address (SNAT source) */
volatile const __be32 CONFIG_POD_CIDR_ADDR = 0;		/* this node's pod CIDR: local backends */
volatile const __be32 CONFIG_POD_CIDR_MASK = 0;
volatile const __u64 CONFIG_NETNS_COOKIE = 0;		/* the node's netns: socket LB acts there only */

static __always_inline __u32 bpf_mono_now(void)
{
	return (__u32)(bpf_ktime_get_ns() / 1000000000ULL);
}

static __always_inline int backend_is_local(__be32 addr)
{
	return CONFIG_POD_CIDR_MASK && (addr & CONFIG_POD_CIDR_MASK) == CONFIG_POD_CIDR_ADDR;
}
