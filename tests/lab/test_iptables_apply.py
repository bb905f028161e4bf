"""Privileged: the iptables proxier's full and partial syncs, loaded by the real iptables-restore.

Each test syncs node-1 of a lab skeleton into a namespace of its own (``scratch_ns``) and checks
what the unit tests cannot: that the kernel takes a partial sync, and that it leaves exactly the
tables a full sync leaves.
"""

from __future__ import annotations

import pytest

from netlab.cluster.state import EndpointSlice
from netlab.kernel import rules
from netlab.proxy.iptables.proxier import IptablesProxier
from netlab.scenario.k8s import ObjectMeta, Service, ServicePort
from tests.lab.host import HostSnapshot
from tests.lab.states import one_service_state


def _saved(netns_name: str, backend: str) -> str:
    text = rules.iptables_save(netns_name, backend)
    return "\n".join(ln for ln in text.splitlines() if not ln.startswith("#"))


@pytest.mark.parametrize("backend", ["nft", "legacy"])
def test_partial_sync_leaves_what_a_full_sync_leaves(
    clean_host: HostSnapshot, scratch_ns: str, backend: str
) -> None:
    state = one_service_state(scratch_ns, "iptdev")
    node = state.nodes[0]
    proxier = IptablesProxier(state, backend)
    first = proxier.sync(node, first=True)
    assert first.note == f"{backend} back end, full"

    # A second Service selecting web's pods: one more ClusterIP, by a partial sync.
    state.services.append(
        Service(
            meta=ObjectMeta(name="api"),
            ports=[ServicePort(port=81, name="http", target_port=8080)],
            selector={"app": "web"},
            cluster_ip="10.96.0.51",
        )
    )
    web = state.slices[-1]
    state.slices.append(
        EndpointSlice("default", "api-abcde", "default/api", web.ports, web.endpoints)
    )
    added = proxier.sync(node, first=False)
    assert added.note == f"{backend} back end, partial"
    assert added.lines < first.lines
    partial = _saved(scratch_ns, backend)
    assert "default/api:http cluster IP" in partial

    # A proxier that has applied nothing (a new process) syncs in full: the same tables.
    fresh = IptablesProxier(state, backend)
    assert fresh.sync(node, first=False).note == f"{backend} back end, full"
    assert _saved(scratch_ns, backend) == partial

    # The Service goes again: its chains are deleted by the next partial sync.
    state.services.pop()
    state.slices.pop()
    fresh.sync(node, first=False)
    after = _saved(scratch_ns, backend)
    assert "default/api" not in after
    assert set(after.splitlines()) < set(partial.splitlines())
