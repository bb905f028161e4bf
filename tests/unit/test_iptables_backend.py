"""Which iptables back end a lab's rules go to: ``iptablesBackend`` (auto | nft | legacy).

``auto`` is nft up to 2000 Service ports and legacy above (docs/scenarios.md): past that the nft
back end of iptables-restore slows down far worse than linearly.
"""

from __future__ import annotations

import pytest

from netlab.cluster.build import build_cluster
from netlab.proxy.iptables.proxier import AUTO_LEGACY_THRESHOLD, IptablesProxier, pick_backend
from netlab.proxy.registry import make_proxier
from netlab.proxy.servicemap import node_view
from netlab.scenario.load import parse_scenario


def test_the_threshold_is_the_documented_2000() -> None:
    assert AUTO_LEGACY_THRESHOLD == 2000


@pytest.mark.parametrize(
    ("service_ports", "backend"),
    [(0, "nft"), (1, "nft"), (1999, "nft"), (2000, "nft"), (2001, "legacy"), (10_000, "legacy")],
)
def test_auto_switches_to_legacy_only_above_the_threshold(service_ports: int, backend: str) -> None:
    assert pick_backend("auto", service_ports) == backend


@pytest.mark.parametrize("service_ports", [0, 2000, 2001, 10_000])
@pytest.mark.parametrize("requested", ["nft", "legacy"])
def test_an_explicit_back_end_is_kept_whatever_the_size(requested: str, service_ports: int) -> None:
    assert pick_backend(requested, service_ports) == requested


def _scenario(backend: str, ports: int) -> str:
    """A lab without DNS (so default/kubernetes:https is its only other Service port) and one
    Service with ``ports`` ports."""
    port_lines = "".join(
        f"  - {{name: p{i}, port: {10000 + i}, targetPort: {10000 + i}}}\n" for i in range(ports)
    )
    return (
        "apiVersion: netlab.dev/v1alpha1\n"
        "kind: Lab\n"
        "metadata: {name: backend}\n"
        "spec:\n"
        "  dns: {enabled: false}\n"
        f"  proxy: {{mode: iptables, iptablesBackend: {backend}}}\n"
        "---\n"
        "apiVersion: v1\n"
        "kind: Service\n"
        "metadata: {name: many}\n"
        "spec:\n"
        "  selector: {app: many}\n"
        "  ports:\n" + port_lines
    )


@pytest.mark.parametrize(("ports", "backend"), [(1999, "nft"), (2000, "legacy")])
def test_auto_counts_the_clusters_service_ports(ports: int, backend: str) -> None:
    """The proxier counts every proxied Service port, default/kubernetes:https included: 1999
    more make exactly 2000 (nft), 2000 more make 2001 (legacy)."""
    state = build_cluster(parse_scenario(_scenario("auto", ports), "backend.yaml"))
    assert len(node_view(state, state.nodes[0].name)) == ports + 1
    proxier = IptablesProxier(state)
    assert proxier.backend == backend
    assert proxier.describe() == f"iptables ({backend} back end)"


@pytest.mark.parametrize("requested", ["nft", "legacy"])
def test_the_lab_document_chooses_the_back_end(requested: str) -> None:
    state = build_cluster(parse_scenario(_scenario(requested, 1), "backend.yaml"))
    assert state.lab.proxy.iptables_backend == requested
    proxier = make_proxier("iptables", state)
    assert isinstance(proxier, IptablesProxier)
    assert proxier.backend == requested
    assert proxier.describe() == f"iptables ({requested} back end)"


def test_a_recorded_back_end_wins_over_the_lab_document() -> None:
    """A live lab reopens its proxier with the back end its state file recorded."""
    state = build_cluster(parse_scenario(_scenario("legacy", 1), "backend.yaml"))
    proxier = make_proxier("iptables", state, "nft")
    assert isinstance(proxier, IptablesProxier)
    assert proxier.backend == "nft"
