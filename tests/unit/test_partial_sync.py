"""A chain of partial syncs leaves every node as one full sync of the final state would.

Each test drives a mode's proxier through random changes of a cluster (tests/unit/churn.py),
syncing every node after each change as a lab does, with the kernel's tools replaced by fakes
that keep the node's tables; after every change each node must hold exactly what a fresh full
sync of the state leaves, and the proxier's memory must render exactly as a full render does.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from netlab.cluster.state import Endpoint, EndpointPort, EndpointSlice
from netlab.kernel import process, rules
from netlab.proxy.changes import ChangeTracker
from netlab.proxy.iptables.proxier import IptablesProxier
from netlab.proxy.iptables.render import render as ipt_render
from netlab.proxy.ipvs.proxier import IpvsProxier
from netlab.proxy.ipvs.render import render as render_ipvs
from netlab.proxy.nftables.proxier import NftablesProxier
from netlab.proxy.nftables.render import LAYOUTS, build
from netlab.proxy.servicemap import node_view
from netlab.proxy.userspace.proxier import UserspaceProxier
from netlab.proxy.userspace.render import PROXY_PORTS, port_seed, portals
from netlab.scenario.k8s import ObjectMeta, Service, ServicePort
from tests.unit.churn import Churn, FakeIptables, base_state
from tests.unit.fakeipvs import FakeKernel
from tests.unit.test_nftables_render import FakeNft, assert_nftables_equal

STEPS = 30


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Per namespace: a FakeIptables (key ``iptables:NS``) and a FakeNft (``nft:NS``)."""
    fakes: dict[str, Any] = {}

    def restore(netns: str, text: str, backend: str) -> float:
        fakes.setdefault(f"iptables:{netns}", FakeIptables()).restore(text)
        return 0.0

    def run(netns: str, argv: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        assert argv == ["nft", "-f", "-"], argv
        fakes.setdefault(f"nft:{netns}", FakeNft()).run(kw["input"])
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(rules, "iptables_restore", restore)
    monkeypatch.setattr(process, "run", run)
    yield fakes


@pytest.mark.parametrize("seed", range(6))
def test_iptables_partial_syncs_reach_the_full_sync_state(
    kernel: dict[str, Any], seed: int
) -> None:
    state = base_state()
    churn = Churn(state, seed)
    for _ in range(6):
        churn.add()
    proxier = IptablesProxier(state, "nft")
    for node in state.nodes:
        assert proxier.sync(node, first=True).note == "nft back end, full"
    for step in range(STEPS):
        what = churn.step()
        for node in state.nodes:
            result = proxier.sync(node, first=False)
            assert result.note == "nft back end, partial", (step, what)
            full = FakeIptables()
            full.restore(IptablesProxier(state, "nft").render_text(node, first=True))
            assert kernel[f"iptables:{node.netns}"].tables == full.tables, (step, what)
            fresh = ipt_render(node_view(state, node.name), proxier.options(node))
            kept = proxier.held[node.name].rendered()
            assert kept.restore_text(bootstrap=True) == fresh.restore_text(bootstrap=True)


def test_iptables_partial_sync_writes_only_the_changed_service(
    kernel: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    state = base_state()
    churn = Churn(state, 1)
    for _ in range(5):
        churn.add()
    proxier = IptablesProxier(state, "nft")
    node = state.nodes[0]
    proxier.sync(node, first=True)
    churn.add()
    added = state.services[-1]
    written: list[str] = []

    def restore(netns: str, text: str, backend: str) -> float:
        written.append(text)
        return 0.0

    monkeypatch.setattr(rules, "iptables_restore", restore)
    proxier.sync(node, first=False)
    nat = written[0][written[0].index("*nat") :]
    declared = {ln[1:].split(" ", 1)[0] for ln in nat.splitlines() if ln.startswith(":")}
    mine = ipt_render(
        [s for s in node_view(state, node.name) if s.info.spn.name == added.meta.name],
        proxier.options(node),
    ).active_nat_chains()
    # The top-level chains, and the new Service's own: no other Service's chain.
    assert declared == mine
    # Nothing changed since: nothing to write.
    assert proxier.sync(node, first=False).lines == 0


def test_iptables_large_cluster_mode_switches_every_chain(kernel: dict[str, Any]) -> None:
    """Past 1,000 endpoints the comments leave every endpoint chain: all are rewritten."""
    state = base_state()
    churn = Churn(state, 3)
    for _ in range(4):
        churn.add()
    proxier = IptablesProxier(state, "legacy")
    for node in state.nodes:
        proxier.sync(node, first=True)
    big = churn.service()
    eps = [
        Endpoint(f"10.245.{i // 200}.{i % 200 + 1}", f"node-{1 + i % 2}", "") for i in range(1100)
    ]
    state.services.append(big)
    state.slices.append(
        EndpointSlice(
            big.meta.namespace,
            f"{big.meta.name}-big",
            f"{big.meta.namespace}/{big.meta.name}",
            [EndpointPort(p.name, 8080, p.protocol) for p in big.ports],
            eps,
        )
    )
    for removed in (False, True):
        if removed:
            state.services.remove(big)
            state.slices.pop()
        for node in state.nodes:
            proxier.sync(node, first=False)
            full = FakeIptables()
            full.restore(IptablesProxier(state, "legacy").render_text(node, first=True))
            assert kernel[f"iptables:{node.netns}"].tables == full.tables
            assert proxier.held[node.name].large_cluster is not removed


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("seed", range(4))
def test_nftables_partial_syncs_reach_the_full_sync_state(
    kernel: dict[str, Any], layout: str, seed: int
) -> None:
    state = base_state()
    churn = Churn(state, 100 + seed)
    for _ in range(6):
        churn.add()
    proxier = NftablesProxier(state, layout)
    for node in state.nodes:
        assert proxier.sync(node, first=True).note == f"{layout} layout, full"
    for step in range(STEPS):
        what = churn.step()
        for node in state.nodes:
            assert proxier.sync(node, first=False).note == f"{layout} layout, partial"
            full = FakeNft()
            fresh = build(node_view(state, node.name), proxier.options(node), layout)
            full.run(fresh.transaction())
            assert_nftables_equal(full.dump(), kernel[f"nft:{node.netns}"].dump())
            assert proxier.held[node.name].ruleset() == fresh, (step, what)


def test_tracker_sees_only_what_changed() -> None:
    state = base_state()
    churn = Churn(state, 7)
    for _ in range(5):
        churn.add()
    tracker = ChangeTracker()
    assert tracker.observe(state) == {f"{s.meta.namespace}/{s.meta.name}" for s in state.services}
    assert tracker.observe(state) == set()
    # A no-op update (an equal new object) and an equal new slice are no change.
    state.services[3] = type(state.services[3])(**vars(state.services[3]))
    state.slices = list(state.slices)
    assert tracker.observe(state) == set()
    churn.add()
    new = state.services[-1]
    assert tracker.observe(state) == {f"{new.meta.namespace}/{new.meta.name}"}
    # Every node gets the change at its own sync; a node that never synced gets None.
    tracker.synced_in_full("node-1")
    tracker.synced_in_full("node-2")
    del state.services[-1]
    gone = f"{new.meta.namespace}/{new.meta.name}"
    tracker.observe(state)
    assert tracker.checkout("node-1") == {gone}
    assert tracker.checkout("node-1") == set()
    assert tracker.checkout("node-2") == {gone}
    assert tracker.checkout("node-3") is None


@pytest.mark.parametrize("seed", range(6))
def test_ipvs_partial_syncs_reach_the_full_sync_state(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    """IPVS: every node's addresses, IPVS table, ipsets and companion rules after each partial
    sync are those a fresh proxier's full sync of the same state leaves, and a partial sync
    reads back only the real servers of the virtual servers it changes."""
    kernel = FakeKernel()
    kernel.install(monkeypatch)
    state = base_state()
    churn = Churn(state, 200 + seed)
    for _ in range(6):
        churn.add()
    proxier = IpvsProxier(state, "nft")
    for node in state.nodes:
        assert proxier.sync(node, first=True).note.endswith(", full")
    for step in range(STEPS):
        what = churn.step()
        for node in state.nodes:
            read_back = kernel.node(node.netns).read_back
            result = proxier.sync(node, first=False)
            assert result.note.endswith(", partial"), (step, what, result.note)
            assert kernel.node(node.netns).read_back == read_back  # nothing listed whole
            held = proxier.held[node.name]
            reference = replace(node, netns=f"ref-{node.netns}")
            IpvsProxier(state, "nft").sync(reference, first=True)
            assert kernel.node(node.netns).state() == kernel.nodes.pop(reference.netns).state(), (
                step,
                what,
            )
            assert held.ruleset() == render_ipvs(node_view(state, node.name), held.opts)


def test_ipvs_partial_sync_drains_tcp_real_servers(monkeypatch: pytest.MonkeyPatch) -> None:
    """A TCP real server with connections whose endpoint goes is quiesced (weight 0), looked at
    again by every later sync, and deleted once its connections are gone; a UDP one goes at
    once (graceful_termination.go)."""
    kernel = FakeKernel()
    kernel.install(monkeypatch)
    state = base_state()
    node = state.nodes[0]
    fake = kernel.node(node.netns)
    for proto in ("TCP", "UDP"):
        state.services.append(
            Service(
                ObjectMeta(name=f"web-{proto.lower()}"),
                [ServicePort(80, proto, "http", 8080)],
                cluster_ip=f"10.96.5.{len(state.services)}",
            )
        )
        state.slices.append(_slice(state.services[-1], "10.244.1.5", "10.244.2.6"))
    proxier = IpvsProxier(state, "nft")
    proxier.sync(node, first=True)
    keys = {
        vs.protocol: vs.key
        for vs in proxier.held[node.name].virtual_servers.values()
        if vs.service.startswith("default/web-")
    }
    for key in keys.values():
        fake.dests[key][("10.244.2.6", 8080)] = replace(
            fake.dests[key][("10.244.2.6", 8080)], active_conns=3
        )
    for i, svc in enumerate(state.services[-2:]):  # the endpoint on node-2 goes
        state.slices[len(state.slices) - 2 + i] = _slice(svc, "10.244.1.5")
    proxier.sync(node, first=False)
    tcp, udp = fake.dests[keys["TCP"]], fake.dests[keys["UDP"]]
    assert tcp[("10.244.2.6", 8080)].weight == 0
    assert ("10.244.2.6", 8080) not in udp
    assert proxier.held[node.name].draining == {keys["TCP"]}
    proxier.sync(node, first=False)  # nothing changed: still draining
    assert tcp[("10.244.2.6", 8080)].weight == 0
    tcp[("10.244.2.6", 8080)] = replace(tcp[("10.244.2.6", 8080)], active_conns=0)
    proxier.sync(node, first=False)
    assert set(fake.dests[keys["TCP"]]) == {("10.244.1.5", 8080)}
    assert proxier.held[node.name].draining == set()


def _slice(svc: Service, *ips: str) -> EndpointSlice:
    key = f"{svc.meta.namespace}/{svc.meta.name}"
    port = svc.ports[0]
    endpoints = [Endpoint(ip, f"node-{ip.split('.')[2]}", "") for ip in ips]
    return EndpointSlice(
        "default",
        f"{svc.meta.name}-abc",
        key,
        [EndpointPort("http", 8080, port.protocol)],
        endpoints,
    )


@pytest.mark.parametrize("seed", range(6))
def test_userspace_partial_syncs_reach_the_full_sync_state(
    kernel: dict[str, Any], seed: int
) -> None:
    """userspace: rules deleted and inserted in place leave the chains exactly as a full sync
    (same rules, same order), proxy ports included."""
    state = base_state()
    churn = Churn(state, 300 + seed)
    for _ in range(8):
        churn.add()
    proxier = UserspaceProxier(state, "nft")
    for node in state.nodes:
        assert proxier.sync(node, first=True).note == "nft back end, full"
    for step in range(STEPS):
        what = churn.step()
        for node in state.nodes:
            assert proxier.sync(node, first=False).note == "nft back end, partial"
            full = FakeIptables()
            full.restore(UserspaceProxier(state, "nft").render_text(node, first=True))
            assert kernel[f"iptables:{node.netns}"].tables == full.tables, (step, what)
            held = proxier.held[node.name]
            assert held.portals() == portals(node_view(state, node.name))


def test_userspace_new_port_moves_a_later_proxy_port(kernel: dict[str, Any]) -> None:
    """A Service port that takes the proxy port a later one had moves that one too."""
    state = base_state()
    proxier = UserspaceProxier(state, "nft")
    node = state.nodes[0]
    proxier.sync(node, first=True)
    later = next(
        p for p in proxier.held[node.name].portals() if p.service.info.spn.name == "kube-dns"
    )
    taken = later.proxy_port
    # Find a name sorting before kube-system/kube-dns whose seed lands on that port.
    lo, hi = PROXY_PORTS
    name = next(
        n
        for n in (f"a{i}" for i in range(200000))
        if lo + port_seed(f"kube-system/{n}:p/tcp") % (hi - lo + 1) == taken
    )
    state.services.append(
        Service(
            ObjectMeta(name=name, namespace="kube-system"),
            [ServicePort(1, name="p")],
            cluster_ip="10.96.9.9",
        )
    )
    proxier.sync(node, first=False)
    moved = {p.service.info.spn: p.proxy_port for p in proxier.held[node.name].portals()}
    assert moved[later.service.info.spn] != taken
    full = FakeIptables()
    full.restore(UserspaceProxier(state, "nft").render_text(node, first=True))
    assert kernel[f"iptables:{node.netns}"].tables == full.tables
