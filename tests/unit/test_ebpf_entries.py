"""The ebpf mode's map writes: encoded entries, Cilium's write order, incremental syncs.

Needs the compiled objects' BTF (built with clang, no root); no kernel.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator

import pytest

from netlab.errors import PrerequisiteError
from netlab.proxy.ebpf import datapath, entries, render
from netlab.proxy.ebpf.layout import MapLayout
from netlab.proxy.ebpf.proxier import EbpfProxier, _NodeState
from netlab.proxy.servicemap import ProxiedService
from tests.lab.states import one_service_state
from tests.unit.servicemaps import TEST_NODE_NAME, ep, svc

NODE = render.NodeInfo(TEST_NODE_NAME, "192.168.56.11")


@pytest.fixture(scope="module")
def layouts() -> dict[str, MapLayout]:
    try:
        return datapath.layouts()
    except PrerequisiteError as exc:
        pytest.skip(f"cannot build the BPF objects here: {exc}")


@pytest.fixture(scope="module")
def encoder(layouts: dict[str, MapLayout]) -> entries.Encoder:
    return entries.Encoder(layouts)


def contents(
    encoder: entries.Encoder, *services: ProxiedService, ids: tuple[render.IdAllocator, ...] = ()
) -> entries.Contents:
    sids, bids = ids or (
        render.IdAllocator(render.MAX_SERVICE_ID),
        render.IdAllocator(render.MAX_BACKEND_ID),
    )
    return encoder.all(render.render_node(list(services), NODE, sids, bids))


def test_service_entries(layouts: dict[str, MapLayout], encoder: entries.Encoder) -> None:
    c = contents(
        encoder, svc("default", "web", "10.96.0.10", ep("10.244.1.5", 8080), ep("10.244.2.5", 8080))
    )
    key, value = layouts[entries.SERVICES].key, layouts[entries.SERVICES].value
    ((master_k, master_v),) = c.masters.items()
    assert key.decode(master_k)["address"] == int(ipaddress.IPv4Address("10.96.0.10"))
    assert key.decode(master_k)["backend_slot"] == 0
    assert value.decode(master_v)["count"] == 2 and value.decode(master_v)["rev_nat_index"] == 1
    slots = sorted(
        (key.decode(k)["backend_slot"], value.decode(v)["backend_id"]) for k, v in c.slots.items()
    )
    assert slots == [(1, 1), (2, 2)]
    ((rk, rv),) = c.revnat.items()
    assert rk == b"\x00\x01"  # network byte order
    assert layouts[entries.REVNAT].value.decode(rv) == {
        "address": int(ipaddress.IPv4Address("10.96.0.10")),
        "port": 80,
    }
    be = {
        layouts[entries.BACKENDS].key.decode(k)["value"]: layouts[entries.BACKENDS].value.decode(v)
        for k, v in c.backends.items()
    }
    assert be[2]["address"] == int(ipaddress.IPv4Address("10.244.2.5")) and be[2]["port"] == 8080


def test_source_range_and_affinity_entries(
    layouts: dict[str, MapLayout], encoder: entries.Encoder
) -> None:
    c = contents(
        encoder,
        svc(
            "default",
            "lb",
            "10.96.0.40",
            ep("10.244.2.5", 8080),
            load_balancer_vips=("192.0.2.10",),
            load_balancer_source_ranges=("203.0.113.0/24",),
            session_affinity_client_ip=True,
            sticky_max_age_seconds=30,
        ),
    )
    (k,) = c.source_range
    sr = layouts[entries.SOURCE_RANGE].key.decode(k)
    assert sr["lpm_key.prefixlen"] == 32 + 24
    assert sr["addr"] == int(ipaddress.IPv4Address("203.0.113.0"))
    assert len(c.affinity_match) == 2  # the backend, for the ClusterIP and the LB frontend


def test_plan_writes_in_ciliums_order(encoder: entries.Encoder) -> None:
    ids = (render.IdAllocator(render.MAX_SERVICE_ID), render.IdAllocator(render.MAX_BACKEND_ID))
    old = contents(
        encoder,
        svc("default", "a", "10.96.0.1", ep("10.244.1.5", 8080), ep("10.244.1.6", 8080)),
        ids=ids,
    )
    new = contents(encoder, svc("default", "a", "10.96.0.1", ep("10.244.1.7", 8080)), ids=ids)
    whats = [op.what for op in entries.plan(old, new)]
    assert whats == [
        "backends",
        "backend slots",
        "frontends (slot 0)",
        "stale slots",
        "stale backends",
    ]
    assert entries.plan(new, new) == []


def test_delta_never_deletes_what_it_writes(encoder: entries.Encoder) -> None:
    a = contents(encoder, svc("default", "a", "10.96.0.1", ep("10.244.1.5", 8080)))
    delta = entries.Delta()
    delta.diff(a, entries.Contents())  # everything of a deleted ...
    delta.diff(entries.Contents(), a)  # ... and written again
    ops = delta.ops()
    assert all(not op.delete for op in ops)
    held = entries.Contents()
    delta.apply_to(held)
    assert held.masters == a.masters and held.backends == a.backends


def test_recover_ids_reads_back_what_was_written(
    layouts: dict[str, MapLayout], encoder: entries.Encoder
) -> None:
    c = contents(
        encoder, svc("default", "web", "10.96.0.10", ep("10.244.1.5", 8080), node_port=30080)
    )
    sids, bids = entries.recover_ids(c, layouts)
    assert sids == {
        ("10.96.0.10", 80, 6): 1,
        ("0.0.0.0", 30080, 6): 2,
        ("192.168.56.11", 30080, 6): 3,
    }
    assert bids == {("10.244.1.5", 8080, 6): 1}


class TestIncrementalSyncs:
    """EbpfProxier._changes: only Services whose objects changed are rendered and written."""

    @pytest.fixture
    def proxier(self, layouts: dict[str, MapLayout]) -> Iterator[tuple[EbpfProxier, _NodeState]]:
        state = one_service_state("unused", "unit")
        p = EbpfProxier(state, root="/nonexistent")
        ns = _NodeState(
            entries.Contents(),
            render.IdAllocator(render.MAX_SERVICE_ID),
            render.IdAllocator(render.MAX_BACKEND_ID),
        )
        delta = p._changes(state.nodes[0], ns)
        delta.apply_to(ns.applied)
        yield p, ns

    def test_nothing_changed_nothing_written(self, proxier: tuple[EbpfProxier, _NodeState]) -> None:
        p, ns = proxier
        assert p._changes(p.state.nodes[0], ns).ops() == []

    def test_a_removed_service_is_deleted_and_its_backends_kept_while_shared(
        self, proxier: tuple[EbpfProxier, _NodeState]
    ) -> None:
        p, ns = proxier
        web = next(s for s in p.state.services if s.meta.name == "web")
        p.state.services.remove(web)
        ops = p._changes(p.state.nodes[0], ns).ops()
        assert [op.what for op in ops] == [
            "stale frontends",
            "stale slots",
            "stale reverse NAT",
            "stale backends",
        ]
        (stale,) = [op for op in ops if op.what == "stale backends"]
        assert len(stale.delete) == 2  # web's two pods; no other Service uses them

    def test_new_slices_of_one_service_rewrite_only_it(
        self, proxier: tuple[EbpfProxier, _NodeState]
    ) -> None:
        p, ns = proxier
        import copy

        i = next(i for i, sl in enumerate(p.state.slices) if sl.service == "default/web")
        sl = copy.deepcopy(p.state.slices[i])
        sl.endpoints = sl.endpoints[:1]
        p.state.slices[i] = sl
        ops = p._changes(p.state.nodes[0], ns).ops()
        assert [op.what for op in ops] == ["frontends (slot 0)", "stale slots", "stale backends"]
