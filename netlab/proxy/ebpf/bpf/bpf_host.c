// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The node's own device: cil_from_netdev on tc ingress of the node's eth0 (Cilium's
 * bpf_host.c with nodeport_lb4 from bpf/lib/nodeport.h).
 *
 * A packet to a NodePort, LoadBalancer address or external IP of this node: check
 * loadBalancerSourceRanges, pick a backend from the external-scope slots (only local ones
 * with externalTrafficPolicy: Local), DNAT. A local backend gets the packet through the
 * stack with the client's address kept; for a backend on another node the source becomes
 * this node's address (SNAT) and the packet is forwarded out directly. A frontend without
 * backends answers with an ICMP port unreachable; a ClusterIP arriving from outside is
 * dropped. A packet to no frontend may be the reply of a SNATed connection: reverse SNAT,
 * reverse DNAT, and forward it back to the client.
 */
#include "lib/common.h"
#include "lib/maps.h"
#include "lib/pkt.h"
#include "lib/conntrack.h"
#include "lib/lb.h"
#include "lib/nat.h"
#include "lib/icmp.h"
#include "lib/fib.h"

static __always_inline int rev_nodeport_lb4(struct __sk_buff *ctx, struct pkt4 *p)
{
	void *map = get_ct_map4(p->proto);
	struct ct_state st = {};
	int ret;

	ret = snat_v4_rev_nat(ctx, p);
	if (ret == DROP_NAT_NO_MAPPING)
		return CTX_ACT_OK; /* not ours: the node's own traffic */
	if (ret < 0)
		return ret;
	if (ct_lookup_reply4(map, p, &st, 1) == CT_REPLY && st.rev_nat_index) {
		ret = lb4_rev_nat(ctx, p, &st);
		if (ret < 0)
			return ret;
	}
	return fib_redirect_v4(ctx, p);
}

static __always_inline int nodeport_lb4(struct __sk_buff *ctx)
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
	svc = lb4_lookup_service(&key, 0);
	if (!svc)
		return rev_nodeport_lb4(ctx, &p);
	if (!lb4_svc_is_routable(svc))
		return DROP_IS_CLUSTER_IP;
	if (!lb4_src_range_ok(svc, p.saddr))
		return DROP_NOT_IN_SRC_RANGE;

	ret = lb4_local(ctx, &p, &key, svc, &st);
	if (ret == DROP_NO_SERVICE)
		return tail_no_service_ipv4(ctx, &p);
	if (ret < 0)
		return ret;
	st.node_port = 1;
	if (ct_upsert_out4(get_ct_map4(p.proto), &p, &st) < 0)
		return DROP_NO_SERVICE;
	if (backend_is_local(p.daddr))
		return CTX_ACT_OK;

	/* The backend is elsewhere: its reply must come back through this node. */
	ret = snat_v4_nat(ctx, &p);
	if (ret < 0)
		return ret;
	return fib_redirect_v4(ctx, &p);
}

SEC("tc")
int cil_from_netdev(struct __sk_buff *ctx)
{
	int ret = nodeport_lb4(ctx);

	return ret < 0 ? CTX_ACT_DROP : ret;
}

char _license[] SEC("license") = "Dual BSD/GPL";
