"""Derived checks: what a scenario that wrote no checks is held to, from its manifests alone."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from netlab.checks.reach import reachable, reachable_via_load_balancer, ready_endpoints
from netlab.cluster.build import SYSTEM_SERVICES
from netlab.cluster.state import ClusterState, PodInfo
from netlab.proxy.servicemap import EndpointInfo, is_proxied
from netlab.scenario.checkspec import (
    FAILED,
    SNAT_IF_REMOTE,
    CheckSpec,
    ConnectCheck,
    ConnectExpect,
    Destination,
    DnsCheck,
    DnsExpect,
    Source,
)
from netlab.scenario.k8s import Service
from netlab.scenario.labspec import CLIENT_NAMESPACE


def derive(state: ClusterState, mode: str = "iptables") -> list[CheckSpec]:
    """Checks for a scenario that wrote none: every Service port, from a client pod on every
    node to its ClusterIP, and from the external client to every node's NodePort."""
    out: list[CheckSpec] = []
    clients = {p.node: p for p in state.pods if p.role == "client"}
    zone = state.lab.dns.domain
    userspace = mode == "userspace"
    ebpf = mode == "ebpf"
    # What a backend sees of an outside client with externalTrafficPolicy Cluster: kube-proxy
    # masquerades; Cilium SNATs only towards backends on other nodes (bpf/lib/nodeport.h).
    outside = SNAT_IF_REMOTE if ebpf else "masqueraded"
    dns_on = any(
        f"{s.meta.namespace}/{s.meta.name}" == "kube-system/kube-dns" for s in state.services
    )
    first_client = next(iter(clients.values()), None)
    if dns_on:
        for node in state.nodes:
            client = clients.get(node.name)
            if client is not None:
                out.append(
                    DnsCheck(
                        name=f"cluster DNS from {node.name}",
                        source=Source("pod", client.name, CLIENT_NAMESPACE),
                        query="kubernetes.default",
                        qtype="A",
                        expect=DnsExpect(answers=("service/default/kubernetes",)),
                        derived=True,
                    )
                )
    for svc in state.services:
        if f"{svc.meta.namespace}/{svc.meta.name}" in SYSTEM_SERVICES:
            continue
        fqdn = f"{svc.meta.name}.{svc.meta.namespace}.svc.{zone}"
        client_src = (
            Source("pod", first_client.name, CLIENT_NAMESPACE) if first_client is not None else None
        )
        if svc.type == "ExternalName":
            if dns_on and client_src is not None:
                out.append(_derived_external_name(state, svc, fqdn, client_src))
            continue
        if svc.headless:
            if dns_on and client_src is not None:
                out += _derived_headless(state, svc, fqdn, client_src)
            continue
        if not is_proxied(svc):
            out += _derived_unproxied(state, svc, clients)
            continue
        for lb_ip in svc.load_balancer_ingress:
            for sp in svc.ports:
                port = sp.name or sp.port
                reach, has_any = reachable_via_load_balancer(state, svc, sp, mode)
                local = svc.external_traffic_policy == "Local" and not userspace
                out.append(
                    ConnectCheck(
                        name=f"{svc.meta.namespace}/{svc.meta.name}:{port} loadBalancer {lb_ip} "
                        "from external",
                        source=Source("external"),
                        destination=Destination(
                            svc.meta.name, svc.meta.namespace, port, via="loadBalancer"
                        ),
                        protocol=sp.protocol,
                        expect=_derived_expect(
                            reach,
                            has_any,
                            "client" if local else outside,
                            no_route="unreachable" if local else "",
                            userspace=userspace,
                            ebpf=ebpf,
                            protocol=sp.protocol,
                        ),
                        derived=True,
                    )
                )
        for sp in svc.ports:
            port = sp.name or sp.port
            label = f"{svc.meta.namespace}/{svc.meta.name}:{port}"
            for node in state.nodes:
                client = clients.get(node.name)
                if client is None:
                    continue
                reach, has_any = reachable(state, svc, sp, node.name, False, mode)
                expect = _derived_expect(
                    reach,
                    has_any,
                    "masqueraded" if userspace else "client",
                    userspace=userspace,
                    ebpf=ebpf,
                    protocol=sp.protocol,
                )
                if mode == "ipvs" and not reach and has_any:
                    # internalTrafficPolicy Local with no endpoint here: IPVS keeps the virtual
                    # server without real servers, and ip_vs_leave answers ICMP port unreachable
                    # (rate-limited per client: after a burst of 6, a timeout). No DROP rule.
                    expect = ConnectExpect(result=FAILED)
                if not userspace and _host_network_elsewhere(state, reach, node.name):
                    # A pod reaching another node's own address leaves the cluster network:
                    # the CNI masquerades it (netlab.cluster.cni), so which address the
                    # backend sees depends on the endpoint picked.
                    expect = replace(expect, source=None)
                out.append(
                    ConnectCheck(
                        name=f"{label} clusterIP from {node.name}",
                        source=Source("pod", client.name, CLIENT_NAMESPACE),
                        destination=Destination(svc.meta.name, svc.meta.namespace, port),
                        protocol=sp.protocol,
                        expect=expect,
                        derived=True,
                    )
                )
            if not sp.node_port:
                continue
            for node in state.nodes:
                reach, has_any = reachable(state, svc, sp, node.name, True, mode)
                local = svc.external_traffic_policy == "Local" and not userspace
                out.append(
                    ConnectCheck(
                        name=f"{label} nodePort {sp.node_port} on {node.name} from external",
                        source=Source("external"),
                        destination=Destination(
                            svc.meta.name, svc.meta.namespace, port, via="nodePort", node=node.name
                        ),
                        protocol=sp.protocol,
                        expect=_derived_expect(
                            reach,
                            has_any,
                            "client" if local else outside,
                            userspace=userspace,
                            ebpf=ebpf,
                            protocol=sp.protocol,
                        ),
                        derived=True,
                    )
                )
    return out


def _host_network_elsewhere(
    state: ClusterState, reach: tuple[EndpointInfo, ...], node: str
) -> bool:
    """Whether an endpoint is a node's own address (a hostNetwork pod) on another node."""
    nodes = {n.ip: n.name for n in state.nodes}
    return any(e.ip in nodes and nodes[e.ip] != node for e in reach)


def _derived_expect(
    reach: tuple[EndpointInfo, ...],
    has_any: bool,
    source: str,
    no_route: str = "",
    *,
    userspace: bool = False,
    ebpf: bool = False,
    protocol: str = "TCP",
) -> ConnectExpect:
    """Reached and how; else DROP (timeout) when only the local policy leaves nothing here,
    REJECT (refused) when the Service has no endpoints at all. ``no_route``: what a client sees
    when the load balancer has no healthy node to send to (its route is withdrawn). The
    userspace proxy instead accepts and closes (TCP) or drops (UDP) what it cannot send on.
    Cilium tells no endpoints anywhere and none here apart only by what it writes: a frontend
    without backends in the scope asked is answered with an ICMP port unreachable either way
    (bpf/lib/lb.h lb4_local -> DROP_NO_SERVICE -> tail_no_service_ipv4)."""
    if reach:
        return ConnectExpect(result="connected", endpoints="all", source=source)
    if no_route:
        return ConnectExpect(result=no_route)
    if userspace:
        return ConnectExpect(result="closed" if protocol == "TCP" else "timeout")
    if ebpf:
        return ConnectExpect(result="refused")
    return ConnectExpect(result="timeout" if has_any else "refused")


def _derived_unproxied(
    state: ClusterState, svc: Service, clients: dict[str, PodInfo]
) -> list[CheckSpec]:
    """A Service labelled for another proxy (service.kubernetes.io/service-proxy-name) or as
    headless (service.kubernetes.io/headless): no mode programs it, so its ClusterIP and
    NodePorts lead nowhere. How that fails differs by mode (no route, a drop, a reset)."""
    out: list[CheckSpec] = []
    ns, name = svc.meta.namespace, svc.meta.name
    for sp in svc.ports:
        port = sp.name or sp.port
        for node in state.nodes:
            client = clients.get(node.name)
            if client is not None:
                out.append(
                    ConnectCheck(
                        name=f"{ns}/{name}:{port} clusterIP from {node.name} is not proxied",
                        source=Source("pod", client.name, CLIENT_NAMESPACE),
                        destination=Destination(name, ns, port),
                        protocol=sp.protocol,
                        expect=ConnectExpect(result=FAILED),
                        derived=True,
                    )
                )
    return out


def _derived_external_name(
    state: ClusterState, svc: Service, fqdn: str, source: Source
) -> DnsCheck:
    """An ExternalName resolves to a CNAME to its target (and the target's address when the
    outside world knows it). One that looks like an IPv4 address does not resolve at all:
    CoreDNS does not publish it."""
    target = svc.external_name.rstrip(".").lower()
    try:
        ipaddress.IPv4Address(target)
        expect = DnsExpect(rcode="NXDOMAIN")
    except ValueError:
        known = [s for s in state.lab.external_servers if s.name == target]
        answers = (f"external/{known[0].name}",) if known else None
        expect = DnsExpect(cname=target, answers=answers)
    return DnsCheck(
        name=f"{svc.meta.namespace}/{svc.meta.name} ExternalName resolves",
        source=source,
        query=fqdn + ".",
        qtype="A",
        expect=expect,
        derived=True,
    )


def _derived_headless(
    state: ClusterState, svc: Service, fqdn: str, source: Source
) -> list[CheckSpec]:
    """A headless Service's name lists its ready endpoints (NXDOMAIN with none), and a client
    dialling the name reaches the pods themselves: no DNAT."""
    ready = ready_endpoints(state, svc, None)
    ns, name = svc.meta.namespace, svc.meta.name
    out: list[CheckSpec] = [
        DnsCheck(
            name=f"{ns}/{name} headless A records",
            source=source,
            query=fqdn + ".",
            qtype="A",
            expect=DnsExpect(answers=(f"endpoints/{ns}/{name}",))
            if ready
            else DnsExpect(rcode="NXDOMAIN"),
            derived=True,
        )
    ]
    if ready:
        for sp in svc.ports:
            if not ready_endpoints(state, svc, sp):
                continue
            out.append(
                ConnectCheck(
                    name=f"{ns}/{name}:{sp.name or sp.port} by name reaches pods directly",
                    source=source,
                    destination=Destination(name, ns, sp.name or sp.port, via="name"),
                    protocol=sp.protocol,
                    expect=ConnectExpect(endpoints="all", source="client", dnat=False),
                    derived=True,
                )
            )
    return out
