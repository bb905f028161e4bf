"""Running one resolved check for real: probes from inside the source's namespace, captures in
the backends, the client node's conntrack table; then the pure verdict of :mod:`netlab.checks`."""

from __future__ import annotations

import os
import re
import shutil
import time
from typing import Protocol, runtime_checkable

from netlab import checks
from netlab.checks.model import (
    CheckResult,
    ResolvedCheck,
    ResolvedConnect,
    ResolvedDns,
    ResolvedHttp,
)
from netlab.checks.observations import CapturedPacket, ConntrackEntry, DNSResult, Observation
from netlab.cluster.state import Node
from netlab.kernel import conntrack, threads
from netlab.proxy.base import Proxier
from netlab.traffic import dnsquery, probe
from netlab.traffic.capture import Capture
from netlab.traffic.held import HeldConnection
from netlab.traffic.pcap import Tcpdump


@runtime_checkable
class TracksConnections(Protocol):
    """A proxier whose own connection tracking says what was DNATed (the ebpf mode: Cilium's
    conntrack map, since its DNAT happens before netfilter sees the packet)."""

    def tracked_connections(
        self, node: Node, protocol: str, source_ip: str
    ) -> list[ConntrackEntry]: ...


def run_check(
    lab: str,
    check: ResolvedCheck,
    held: dict[str, HeldConnection] | None = None,
    pcap_dir: str | None = None,
    *,
    proxier: Proxier | None = None,
    cgroup: str | None = None,
) -> CheckResult:
    """Probe, then judge. ``lab`` names the lab whose processes the captures belong to;
    ``held`` holds the connections checks keep open (``hold``) and use again (``connection``);
    ``cgroup``: where a node-sourced probe must run (the mode's :meth:`Proxier.node_cgroup`).
    With ``pcap_dir``, a connect or http check is also recorded with tcpdump at both ends (the
    client and every backend); the pcaps are kept, under a folder named after the check, if it
    fails."""
    if isinstance(check, ResolvedDns):
        t0 = time.perf_counter()
        answer = threads.call(_lookup, check, netns_name=check.source_netns)
        return checks.evaluate_dns(check, answer, time.perf_counter() - t0)

    def run() -> CheckResult:
        if isinstance(check, ResolvedHttp):
            return _run_http(lab, check, cgroup)
        if check.spec.hold or check.spec.connection:
            return _run_held(lab, check, {} if held is None else held, proxier, cgroup)
        return _run_connect(lab, check, proxier, cgroup)

    if pcap_dir is None:
        return run()
    folder = os.path.join(pcap_dir, re.sub(r"[^A-Za-z0-9_.-]+", "_", check.name))
    os.makedirs(folder, exist_ok=True)
    dumps = _start_pcaps(lab, check, folder)
    try:
        result = run()
    finally:
        for d in dumps:
            d.stop()
    if result.passed:
        shutil.rmtree(folder, ignore_errors=True)
    else:
        result.observed["pcaps"] = sorted(d.path for d in dumps if d.path)
    return result


def _start_pcaps(lab: str, check: ResolvedConnect, folder: str) -> list[Tcpdump]:
    """tcpdump at the client and at every backend (each namespace once), this check's protocol
    and the ICMP errors that may answer it."""
    ends = {check.source_netns: "client"}
    for b in check.backends:
        ends.setdefault(b.netns, f"backend-{b.pod}")
    bpf = f"{check.protocol.lower()} or icmp"
    dumps: list[Tcpdump] = []
    try:
        for ns, label in ends.items():
            # "any": a pod has only eth0 (and lo), a node or the outside world several.
            path = os.path.join(folder, re.sub(r"[^A-Za-z0-9_.-]+", "_", label) + ".pcap")
            dumps.append(Tcpdump(lab, ns, "any", path, bpf))
    except BaseException:
        for d in dumps:
            d.close()
        raise
    return dumps


def _tracked(check: ResolvedConnect, proxier: Proxier | None) -> list[ConntrackEntry]:
    if isinstance(proxier, TracksConnections):
        node = next((n for n in proxier.state.nodes if n.netns == check.conntrack_netns), None)
        if node is not None:
            return proxier.tracked_connections(node, check.protocol, check.source_ip)
    return conntrack.entries(check.conntrack_netns, check.protocol, check.source_ip)


def _run_held(
    lab: str,
    check: ResolvedConnect,
    held: dict[str, HeldConnection],
    proxier: Proxier | None,
    cgroup: str | None,
) -> CheckResult:
    """Open a connection and keep it (``hold``), or send over a kept one (``connection``)."""
    t0 = time.perf_counter()
    spec = check.spec
    observations: list[Observation] = []
    if spec.hold:
        old = held.pop(spec.hold, None)
        if old is not None:
            old.close()
        conn, first = HeldConnection.open(
            spec.hold,
            check.source_netns,
            check.protocol,
            check.dest_ip,
            check.dest_port,
            check.bind,
            spec.timeout,
            cgroup_path=cgroup,
            lab=lab,
        )
        observations.append(first)
        if conn is not None:
            held[spec.hold] = conn
    else:
        conn = held.get(spec.connection)
        for _ in range(check.connections):
            if conn is None:
                observations.append(
                    Observation("closed", error=f"connection {spec.connection} was never opened")
                )
            else:
                observations.append(conn.request(spec.timeout))
    tracked = None
    if check.conntrack_netns and any(o.outcome == "connected" for o in observations):
        tracked = {e.original[2]: e for e in _tracked(check, proxier)}
    return checks.evaluate(check, observations, None, time.perf_counter() - t0, tracked=tracked)


def _targets(check: ResolvedConnect) -> list[str | Observation]:
    """What each connection dials: the destination, or a fresh resolution of the name."""
    if check.dial_name:
        return threads.call(_resolve_each, check, netns_name=check.source_netns)
    return [check.dest_ip] * check.connections


def _run_http(lab: str, check: ResolvedHttp, cgroup: str | None) -> CheckResult:
    t0 = time.perf_counter()
    answers = probe.http_each(
        check.source_netns,
        _targets(check),
        check.dest_port,
        check.path,
        check.spec.timeout,
        check.bind,
        cgroup_path=cgroup,
        lab=lab,
    )
    return checks.evaluate_http(check, answers, time.perf_counter() - t0)


def _probe(
    lab: str, check: ResolvedConnect, targets: list[str | Observation], cgroup: str | None
) -> list[Observation]:
    """The connections, all at once; with session affinity the first one alone before the
    rest, as a client's first request precedes its next ones (and so the proxy's memory of
    the client exists before they arrive)."""

    def run(batch: list[str | Observation]) -> list[Observation]:
        return probe.probe_each(
            check.source_netns,
            batch,
            check.dest_port,
            check.protocol,
            check.spec.timeout,
            check.bind,
            cgroup_path=cgroup,
            lab=lab,
        )

    if (check.sticky or check.max_endpoints is not None) and len(targets) > 1:
        return run(targets[:1]) + run(targets[1:])
    return run(targets)


def _run_connect(
    lab: str, check: ResolvedConnect, proxier: Proxier | None, cgroup: str | None
) -> CheckResult:
    t0 = time.perf_counter()
    captures: dict[str, Capture] = {}
    captured: dict[str, list[CapturedPacket]] | None = None
    try:
        if check.captures:
            for b in check.backends:
                bpf = f"tcp and dst port {b.port} and tcp[tcpflags] & tcp-syn != 0"
                captures[b.pod] = Capture(lab, b.netns, "eth0", bpf)
        observations = _probe(lab, check, _targets(check), cgroup)
        if captures:
            captured = {pod: c.stop() for pod, c in captures.items()}
    finally:
        for c in captures.values():
            c.close()  # reaps a stopped capture; kills one left running by an error
    tracked = None
    if check.conntrack_netns and any(o.outcome == "connected" for o in observations):
        tracked = {e.original[2]: e for e in _tracked(check, proxier)}
    return checks.evaluate(check, observations, captured, time.perf_counter() - t0, tracked=tracked)


def _lookup(check: ResolvedDns) -> DNSResult:
    """A dns check's question, asked from inside the source (on a worker thread there)."""
    plan = check.plan
    if plan.search:
        return dnsquery.resolve(check.resolv, plan.name, plan.qtype, timeout=check.spec.timeout)
    return dnsquery.query(
        check.resolv.nameservers[0], plan.name, plan.qtype, timeout=check.spec.timeout
    )


def _resolve_each(check: ResolvedConnect) -> list[str | Observation]:
    """Resolve the name once per connection, as a client resolving before each connect does
    (the cluster DNS shuffles addresses, as CoreDNS's loadbalance plugin does). The hosts file
    comes first, as nsswitch's ``hosts: files dns`` has it: a pod's own hostname and FQDN
    resolve there, as for getent and curl."""
    assert check.resolv is not None
    local = check.hosts.lookup(check.dial_name) if check.hosts is not None else None
    if local is not None:
        return [local] * check.connections
    out: list[str | Observation] = []
    for _ in range(check.connections):
        result = dnsquery.resolve(check.resolv, check.dial_name, "A", timeout=check.spec.timeout)
        addresses = result.data("A") if result.ok else []
        if addresses:
            out.append(addresses[0])
        else:
            why = result.herrno or result.error or result.rcode
            out.append(Observation("unresolved", error=f"{check.dial_name}: {why}"))
    return out
