"""The ebpf mode's rendering: Cilium's frontends, scopes, flags and IDs for a node (pure)."""

from __future__ import annotations

from netlab.proxy.ebpf import render as r
from netlab.proxy.servicemap import ProxiedService
from tests.unit.servicemaps import TEST_NODE_NAME, ep, svc

NODE = r.NodeInfo(TEST_NODE_NAME, "192.168.56.11")
LOCAL = ep("10.244.1.5", 8080, TEST_NODE_NAME)
REMOTE = ep("10.244.2.5", 8080, "other-node")


def one(ps: ProxiedService) -> r.Rendered:
    return r.render_node([ps], NODE)[0]


def by_type(rendered: r.Rendered) -> dict[str, list[r.Frontend]]:
    out: dict[str, list[r.Frontend]] = {}
    for f in rendered.frontends:
        out.setdefault(f.type, []).append(f)
    return out


def test_clusterip_frontend_is_non_routable_with_a_slot_per_endpoint() -> None:
    out = one(svc("default", "web", "10.96.0.10", LOCAL, REMOTE))
    (f,) = out.frontends
    assert (f.type, f.address, f.port, f.proto) == ("ClusterIP", "10.96.0.10", 80, 6)
    assert not f.routable and f.flags == 0 and f.flags2 == 0
    assert f.scopes == ((r.SCOPE_EXT, (1, 2)),)
    assert [(b.id, b.address, b.port, b.proto) for b in out.backends] == [
        (1, "10.244.1.5", 8080, 6),
        (2, "10.244.2.5", 8080, 6),
    ]


def test_nodeport_has_the_surrogate_and_the_node_address() -> None:
    out = by_type(one(svc("default", "web", "10.96.0.10", LOCAL, node_port=30080)))
    wildcard, node_ip = out["NodePort"]
    assert (wildcard.address, wildcard.port, wildcard.routable) == ("0.0.0.0", 30080, False)
    assert (node_ip.address, node_ip.port, node_ip.routable) == ("192.168.56.11", 30080, True)
    assert node_ip.flags & r.SVC_FLAG_NODEPORT
    assert len({f.id for fs in out.values() for f in fs}) == 3  # an ID per frontend


def test_nodeport_addresses_leaving_out_the_node_ip_keep_only_the_surrogate() -> None:
    # --nodeport-addresses whose CIDRs hold no device address: no routable NodePort frontend,
    # only the 0.0.0.0 surrogate the node's own sockets reach.
    node = r.NodeInfo(TEST_NODE_NAME, "192.168.56.11", nodeport_ips=())
    ps = svc("default", "web", "10.96.0.10", LOCAL, node_port=30080)
    (wildcard,) = by_type(r.render_node([ps], node)[0])["NodePort"]
    assert (wildcard.address, wildcard.routable) == ("0.0.0.0", False)


def test_udp_is_a_frontend_of_its_own() -> None:
    out = one(svc("default", "dns", "10.96.0.10", ep("10.244.1.2", 53), protocol="UDP", port=53))
    assert out.frontends[0].proto == 17 and out.backends[0].proto == 17


def test_load_balancer_with_source_ranges() -> None:
    ps = svc(
        "default",
        "lb",
        "10.96.0.40",
        REMOTE,
        load_balancer_vips=("192.0.2.10",),
        load_balancer_source_ranges=("203.0.113.0/24",),
    )
    (lb,) = by_type(one(ps))["LoadBalancer"]
    assert lb.flags == r.SVC_FLAG_LOADBALANCER | r.SVC_FLAG_ROUTABLE | r.SVC_FLAG_SOURCE_RANGE
    assert lb.source_ranges == ("203.0.113.0/24",)


def test_external_policy_local_gets_two_scopes() -> None:
    ps = svc(
        "default", "local", "10.96.0.31", LOCAL, REMOTE, node_port=30083, external_policy_local=True
    )
    out = by_type(one(ps))
    (cluster_ip,) = out["ClusterIP"]
    assert cluster_ip.scopes == ((r.SCOPE_EXT, (1, 2)),)  # pods: every endpoint
    for np in out["NodePort"]:
        assert np.flags & r.SVC_FLAG_EXT_LOCAL_SCOPE
        assert np.flags2 & r.SVC_FLAG_TWO_SCOPES
        assert np.scopes == ((r.SCOPE_EXT, (1,)), (r.SCOPE_INT, (1, 2)))


def test_external_policy_local_without_a_local_endpoint_leaves_the_scope_empty() -> None:
    ps = svc("default", "local", "10.96.0.31", REMOTE, node_port=30083, external_policy_local=True)
    np = by_type(one(ps))["NodePort"][1]
    assert np.scopes == ((r.SCOPE_EXT, ()), (r.SCOPE_INT, (1,)))


def test_internal_policy_local() -> None:
    (f,) = one(
        svc("default", "nl", "10.96.0.32", LOCAL, REMOTE, internal_policy_local=True)
    ).frontends
    assert f.flags2 & r.SVC_FLAG_INT_LOCAL_SCOPE and f.scopes == ((r.SCOPE_EXT, (1,)),)
    (g,) = one(svc("default", "nl", "10.96.0.32", REMOTE, internal_policy_local=True)).frontends
    assert g.scopes == ((r.SCOPE_EXT, ()),)


def test_client_ip_affinity() -> None:
    ps = svc(
        "default",
        "s",
        "10.96.0.50",
        LOCAL,
        session_affinity_client_ip=True,
        sticky_max_age_seconds=60,
    )
    (f,) = one(ps).frontends
    assert f.flags & r.SVC_FLAG_AFFINITY and f.affinity_timeout == 60


def test_no_endpoints_keeps_the_frontend_with_no_slots() -> None:
    (f,) = one(svc("default", "nobody", "10.96.0.20")).frontends
    assert f.scopes == ((r.SCOPE_EXT, ()),)


def test_terminating_endpoints_are_backends_in_that_state() -> None:
    t = ep("10.244.1.9", 8080, TEST_NODE_NAME, ready=False, serving=True, terminating=True)
    out = one(svc("default", "t", "10.96.0.60", t))
    assert out.backends[0].state == r.BE_STATE_TERMINATING


def test_ids_are_kept_and_the_lowest_free_reused() -> None:
    sids = r.IdAllocator(r.MAX_SERVICE_ID)
    bids = r.IdAllocator(r.MAX_BACKEND_ID)
    a = svc("default", "a", "10.96.0.1", LOCAL)
    b = svc("default", "b", "10.96.0.2", REMOTE)
    first = r.render_node([a, b], NODE, sids, bids)
    assert [f.id for x in first for f in x.frontends] == [1, 2]
    again = r.render_node([a, b], NODE, sids, bids)
    assert [f.id for x in again for f in x.frontends] == [1, 2]
    c = svc("default", "c", "10.96.0.3", REMOTE)
    later = r.render_node([b, c], NODE, sids, bids)  # a is gone; its ID is freed after this sync
    assert [f.id for x in later for f in x.frontends] == [2, 3]
    assert [b.id for x in later for b in x.backends] == [2, 2]  # one backend, shared
    d = svc("default", "d", "10.96.0.4", REMOTE)
    last = r.render_node([b, c, d], NODE, sids, bids)
    assert [f.id for x in last for f in x.frontends] == [2, 3, 1]  # the lowest free ID
