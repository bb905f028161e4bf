"""Privileged: kube-proxy's nftables table, rendered by netlab, loaded by the real ``nft``.

Each test makes its own namespace ``nftdev-<pid>-...`` from a worker thread (as the lab makes
node namespaces), runs ``nft`` only inside it, and removes it in ``finally``. It checks what the
unit tests cannot: that the kernel takes every transaction (syntax, references, element comments,
affinity sets, both layouts), that a later sync removes what is stale, and that a sync is
idempotent.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from netlab.kernel import process
from netlab.proxy.naming import ServicePortName
from netlab.proxy.nftables.proxier import NftablesProxier
from netlab.proxy.nftables.render import LAYOUTS, NftablesOptions, parse_existing, render
from netlab.proxy.servicemap import EndpointInfo, ProxiedService, ServicePortInfo
from tests.lab.host import HostSnapshot
from tests.lab.states import one_service_state

OPTS = NftablesOptions(
    node_ip="192.168.56.11", cluster_cidr="10.244.0.0/16", service_cidr="10.96.0.0/12"
)


def nft(name: str, *args: str, text: str | None = None) -> str:
    return process.run(name, ["nft", *args], input=text).stdout


def apply(name: str, services: list[ProxiedService], layout: str, *, first: bool) -> str:
    existing = None
    if not first:
        existing = parse_existing(
            nft(name, "-t", "list", "chains", "ip"), nft(name, "-t", "list", "sets", "ip")
        )
    nft(name, "-f", "-", text=render(services, OPTS, layout, first=first, existing=existing))
    return nft(name, "list", "table", "ip", "kube-proxy")


def ep(ip: str, port: int = 8080, local: bool = False) -> EndpointInfo:
    return EndpointInfo(ip, port, "node-1" if local else "node-2", "", local)


def svc(name: str, cip: str, *eps: EndpointInfo, **fields: Any) -> ProxiedService:
    info = ServicePortInfo(ServicePortName("default", name, "http", "TCP"), cip, 80, **fields)
    return ProxiedService(info, eps)


def services(web_eps: tuple[EndpointInfo, ...], *, with_sticky: bool) -> list[ProxiedService]:
    out = [
        svc("web", "10.96.0.20", *web_eps),
        svc(
            "lb",
            "10.96.0.21",
            ep("10.244.1.5", local=True),
            ep("10.244.2.5"),
            node_port=30080,
            load_balancer_vips=("192.168.56.240",),
            load_balancer_source_ranges=("192.168.56.0/24", "203.0.113.0/25"),
            external_policy_local=True,
        ),
        svc("empty", "10.96.0.22", node_port=30081, external_ips=("192.168.56.250",)),
    ]
    if with_sticky:
        out.append(
            svc(
                "sticky",
                "10.96.0.23",
                ep("10.244.1.7"),
                ep("10.244.2.7"),
                session_affinity_client_ip=True,
            )
        )
    return out


def chains(listing: str) -> set[str]:
    return set(re.findall(r"^\tchain (\S+) \{$", listing, re.M))


def sets(listing: str) -> set[str]:
    return set(re.findall(r"^\t(?:set|map) (\S+) \{$", listing, re.M))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_sync_twice_removes_stale_objects(
    clean_host: HostSnapshot, scratch_ns: str, layout: str
) -> None:
    first_eps = (ep("10.244.1.2", local=True), ep("10.244.2.2"))
    listing = apply(scratch_ns, services(first_eps, with_sticky=True), layout, first=True)
    have = chains(listing)
    assert {"filter-prerouting-pre-dnat", "nat-prerouting", "services", "reject-chain"} <= have
    web = [c for c in have if "default/web/" in c]
    assert len(web) == 3  # service- + two endpoint- chains
    assert any(c.startswith("endpoint-") and "10.244.2.2/8080" in c for c in web)
    assert len([c for c in have if "default/sticky/" in c]) == 3
    assert len([s for s in sets(listing) if s.startswith("affinity-")]) == 2
    assert {"firewall-ips", "service-ips", "no-endpoint-services", "cluster-ips"} <= sets(listing)
    assert "nodeport-ips" not in sets(listing)
    assert 'comment "default/empty:http" : goto reject-chain' in listing
    assert "masquerade fully-random" in listing
    if layout == "fast":
        assert "vmap {" not in listing  # no anonymous maps at all
        assert "numgen random mod 2" in listing
    else:
        assert "numgen random mod 2 vmap" in listing

    # Second sync: the sticky Service is gone, web's second endpoint moved.
    second_eps = (ep("10.244.1.2", local=True), ep("10.244.2.9"))
    listing = apply(scratch_ns, services(second_eps, with_sticky=False), layout, first=False)
    have = chains(listing)
    assert not [c for c in have if "default/sticky/" in c]
    assert not [s for s in sets(listing) if s.startswith("affinity-")]
    assert not [c for c in have if "10.244.2.2/8080" in c]
    assert any("10.244.2.9/8080" in c for c in have)
    assert "10.96.0.23" not in listing
    assert "10.96.0.20 . tcp . 80 : goto service-" in listing

    # Once more with nothing changed: the same table (a full sync is idempotent).
    assert (
        apply(scratch_ns, services(second_eps, with_sticky=False), layout, first=False) == listing
    )
    # (A "first" sync re-creates the base chains, so they list in another order.)
    again = apply(scratch_ns, services(second_eps, with_sticky=False), layout, first=True)
    assert sorted(again.splitlines()) == sorted(listing.splitlines())


@pytest.mark.parametrize("layout", LAYOUTS)
def test_proxier_sync_and_live_rules(
    clean_host: HostSnapshot, scratch_ns: str, layout: str
) -> None:
    state = one_service_state(scratch_ns, "nftdev")
    node = state.nodes[0]
    proxier = NftablesProxier(state, layout)
    assert proxier.node_sysctls() == {}
    assert proxier.describe() == f"nftables ({layout} layout)"
    text = proxier.render_text(node, first=True)
    result = proxier.sync(node, first=True)
    assert result.lines == len(text.splitlines())
    assert result.seconds > 0
    assert (result.node, result.note) == (node.name, f"{layout} layout, full")
    full = proxier.live_rules(node)
    assert full.startswith("table ip kube-proxy {")
    assert "default/kubernetes/tcp/https" in full  # the lab's own kubernetes Service

    one = proxier.live_rules(node, ("default", "web"))
    assert "chain service-" in one and "default/web/tcp/http" in one
    assert "10.96.0.50 . tcp . 80 : goto service-" in one
    assert "kubernetes" not in one
    assert "chain services" not in one

    # A later sync after the Service is deleted: its chains go, the rest stays.
    state.services = [s for s in state.services if s.meta.name != "web"]
    state.slices = [s for s in state.slices if s.service != "default/web"]
    partial = proxier.sync(node, first=False)
    assert partial.note == f"{layout} layout, partial"
    assert 0 < partial.lines < result.lines // 4  # only web's objects, not the whole table
    after = proxier.live_rules(node)
    assert "default/web/" not in after
    assert "default/kubernetes/tcp/https" in after
    # A proxier that has applied nothing (a new process) syncs in full, to the same table.
    fresh = NftablesProxier(state, layout)
    assert fresh.sync(node, first=False).note == f"{layout} layout, full"
    assert fresh.live_rules(node) == after
    # Nothing changed since: a partial sync with nothing to write.
    assert fresh.sync(node, first=False).lines == 0
    assert fresh.live_rules(node) == after
