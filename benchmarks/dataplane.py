"""Benchmark: the data plane's connection set-up time against the number of Services, per mode.

A real one-node lab is brought up with ``Lab.up`` (a client pod, two server pods served by the
lab's agent like any lab's pods; no cluster DNS). Three probed ClusterIP Services, each backed by
the two server pods, are added to the lab's state with OTHER Services around them (each with 2
endpoints that are addresses of nothing: they only make rules), and the lab syncs its node the
way it does after any change (``Lab.sync``; in userspace mode the agent is reloaded too, so it
serves every Service's proxy socket). netlab renders Services sorted by namespace/name, so:

* ``a-probe/probe`` comes first in the dispatch (KUBE-SERVICES, KUBE-PORTALS-CONTAINER),
* ``m-probe/probe`` in the middle (half the others are ``lower/bench-svc-NNNNN``, half
  ``upper/bench-svc-NNNNN``),
* ``z-probe/probe`` last.

The lab grows 0 -> 1k -> 5k -> 10k other Services (one lab per mode; each step one more sync).
At each point, from inside the client pod, many fresh TCP connections are opened to the three
ClusterIPs in turn (each bound to a source port never used before in the lab, so each is a new
conntrack entry that crosses the whole dispatch), and for each one the time until ``connect()``
returns (SYN -> SYN-ACK through the DNAT; in userspace mode, until the proxy's socket accepted)
and until the first byte of the backend's answer to ``GET /`` (which in userspace mode includes
the proxy's own dial to the backend) are taken.

Baselines, both from the same run: the grown lab's own 0-Services point, and a second lab of the
same mode, ``bench-dp0``, identical but never grown, measured at every point in alternating
blocks with the grown one (10 blocks per point). The shared machine (and the host under its VM)
has slow spells of seconds that shift every latency by ~30 % at once; the paired lab sees the
same spells, so "vs base lab" is the robust comparison, and "vs 0 point" the plain one.

Modes: iptables with the legacy back end (what ``auto`` picks for large sets; so 10k loads
fast), nftables with both layouts, userspace, ebpf, and IPVS with ``--ipvs`` (in the VM); on request
also ``iptables-nft``, iptables with its nft back end (10k Services take ~30 s to load).

    python benchmarks/dataplane.py                          # host modes, 2,000 per point
    python benchmarks/dataplane.py --sizes 0,1000 --connections 500
    python -m tests.tooling.vm --timeout 3600 -- python benchmarks/dataplane.py \\
        --ipvs --modes iptables,ipvs --connections 300 --json -
"""

from __future__ import annotations

import argparse
import errno
import gc
import ipaddress
import math
import os
import socket
import sys
import time
from dataclasses import dataclass
from typing import Any

from _common import (
    BUSY_CORES,
    BenchError,
    CpuWatch,
    add_mode_args,
    chosen_modes,
    finish,
    foreign_namespaces,
    machine,
    part_of_the_work,
    sigterm_as_interrupt,
    table,
    wait_quiet,
)

from netlab.cluster.state import ClusterState, Endpoint, EndpointPort, EndpointSlice
from netlab.errors import LabError
from netlab.kernel import netns, rules, threads
from netlab.lab.lifecycle import Lab
from netlab.lab.record import state_dir
from netlab.proxy.servicemap import node_view
from netlab.scenario.k8s import (
    Container,
    ContainerPort,
    ObjectMeta,
    Pod,
    PodSpec,
    Service,
    ServicePort,
)
from netlab.scenario.labspec import (
    DEFAULT_NODE_NETWORK,
    DnsSpec,
    LabSpec,
    ProxySpec,
    default_external_clients,
)
from netlab.scenario.model import Scenario

LAB = "bench-dp"  # the lab that grows
BASE_LAB = "bench-dp0"  # the same lab without other Services, measured alongside
BLOCKS = 10  # each point's connections alternate between the two labs in this many blocks
NODE = "node-1"
SERVER_PORT = 8080
SERVICE_PORT = 80
PROBES = ("a-probe", "m-probe", "z-probe")  # namespaces: first, middle, last
POSITIONS = ("first", "middle", "last")
DEFAULT_SIZES = (0, 1000, 5000, 10000)
WARMUP = 50  # connections per probe before each point, not counted
FIRST_SOURCE_PORT = 1500  # below the ephemeral range: no port is ever used twice in a lab
REQUEST = b"GET / HTTP/1.1\r\nHost: probe\r\nConnection: close\r\n\r\n"
TIMEOUT = 5.0


@dataclass(frozen=True)
class ModeCase:
    key: str  # as given to --modes
    mode: str
    proxy: ProxySpec
    note: str


CASES = {
    "iptables": ModeCase(
        "iptables",
        "iptables",
        ProxySpec(mode="iptables", iptables_backend="legacy"),
        "legacy back end (what auto picks above 2,000 Service ports)",
    ),
    "iptables-nft": ModeCase(
        "iptables-nft",
        "iptables",
        ProxySpec(mode="iptables", iptables_backend="nft"),
        "nft back end of iptables (what auto picks up to 2,000 Service ports; slow to load 10k)",
    ),
    "nftables-fast": ModeCase(
        "nftables-fast",
        "nftables",
        ProxySpec(mode="nftables", nftables_layout="fast"),
        "fast layout (what auto picks above 2,000 Service ports)",
    ),
    "nftables-kube-proxy": ModeCase(
        "nftables-kube-proxy",
        "nftables",
        ProxySpec(mode="nftables", nftables_layout="kube-proxy"),
        "kube-proxy's layout",
    ),
    "userspace": ModeCase(
        "userspace",
        "userspace",
        ProxySpec(mode="userspace", iptables_backend="legacy"),
        "proxy sockets in the lab's agent; portal rules with the legacy back end",
    ),
    "ipvs": ModeCase(
        "ipvs", "ipvs", ProxySpec(mode="ipvs"), "IPVS (netlink); companion iptables rules (nft)"
    ),
    "ebpf": ModeCase(
        "ebpf",
        "ebpf",
        ProxySpec(mode="ebpf"),
        "Cilium's kube-proxy replacement: hash map lookups in the client pod's tc program",
    ),
}
HOST_MODES = ("iptables", "nftables-fast", "nftables-kube-proxy", "userspace", "ebpf")


def scenario(case: ModeCase, name: str) -> Scenario:
    """One node, two server pods (served by the agent on port 8080); the lab adds its client."""
    lab = LabSpec(
        name=name,
        nodes=(NODE,),
        proxy=case.proxy,
        external_clients=default_external_clients(DEFAULT_NODE_NETWORK),
        client_pods=True,
        dns=DnsSpec(enabled=False),
    )
    pods = [
        Pod(
            meta=ObjectMeta(name=f"server-{i}", labels={"app": "server"}),
            spec=PodSpec(
                containers=[Container("server", ports=[ContainerPort(SERVER_PORT)])],
                node_name=NODE,
            ),
        )
        for i in range(2)
    ]
    return Scenario(file="bench-dataplane", lab=lab, pods=pods)


def add_service(
    state: ClusterState, namespace: str, name: str, cluster_ip: str, endpoints: list[Endpoint]
) -> None:
    """A ClusterIP Service (port 80 -> 8080) with its EndpointSlice, added to the lab's state."""
    state.services.append(
        Service(
            meta=ObjectMeta(name=name, namespace=namespace, labels={"app": name}),
            ports=[ServicePort(port=SERVICE_PORT, name="http", target_port=SERVER_PORT)],
            selector={"app": name},
            cluster_ip=cluster_ip,
        )
    )
    state.slices.append(
        EndpointSlice(
            namespace=namespace,
            name=f"{name}-abcde",
            service=f"{namespace}/{name}",
            ports=[EndpointPort("http", SERVER_PORT, "TCP")],
            endpoints=endpoints,
        )
    )


def add_probes(state: ClusterState) -> dict[str, str]:
    """The three probed Services, each backed by both server pods; returns namespace -> IP."""
    servers = [p for p in state.pods if p.labels.get("app") == "server"]
    ips = {}
    for i, ns in enumerate(PROBES):
        ip = str(ipaddress.IPv4Address("10.99.0.1") + i)
        eps = [Endpoint(address=p.ip, node_name=p.node, pod=p.key) for p in servers]
        add_service(state, ns, "probe", ip, eps)
        ips[ns] = ip
    return ips


NOTHING = ipaddress.IPv4Address("172.30.0.0")  # endpoint addresses of nothing
OTHER_IPS = ipaddress.IPv4Address("10.100.0.0")


def grow(state: ClusterState, have: int, want: int) -> None:
    """Add other Services until there are ``want``: half in namespace ``lower`` (sorted before
    m-probe), half in ``upper`` (after it), so m-probe stays in the middle."""
    for i in range(have // 2, want // 2):
        for half, ns in enumerate(("lower", "upper")):
            k = 2 * i + half
            eps = [
                Endpoint(address=str(NOTHING + 2 * k + j), node_name="", pod=f"{ns}/nothing-{k}")
                for j in range(2)
            ]
            add_service(state, ns, f"bench-svc-{i:05d}", str(OTHER_IPS + k), eps)


def dispatch_positions(lab: Lab, mode: str) -> dict[str, Any]:
    """Where each probe's rule sits in the chain the first packet walks: KUBE-SERVICES (iptables)
    or KUBE-PORTALS-CONTAINER (userspace), 1-based, read back from the node; nftables, IPVS and
    ebpf look the ClusterIP up in a map / hash table."""
    if mode not in ("iptables", "userspace"):
        return {ns: "lookup" for ns in PROBES} | {"chain_rules": 0}
    chain = "KUBE-SERVICES" if mode == "iptables" else "KUBE-PORTALS-CONTAINER"
    node = lab.state.nodes[0]
    backend = getattr(lab.proxier, "backend", "legacy")
    saved = rules.iptables_save(node.netns, backend, "nat")
    lines = [ln for ln in saved.splitlines() if ln.startswith(f"-A {chain} ")]
    out: dict[str, Any] = {"chain_rules": len(lines)}
    for ns in PROBES:
        hits = [i for i, ln in enumerate(lines, 1) if f"{ns}/probe:http" in ln]
        if not hits:
            raise BenchError(f"{ns}/probe has no rule in {chain}")
        out[ns] = hits[0]
    return out


def connections(
    targets: list[str], count: int, first_port: int
) -> tuple[dict[str, list[int]], dict[str, list[int]], int, list[str]]:
    """Run inside the client pod: ``count`` rounds of one fresh connection to each target in
    turn. Returns per target the connect() and first-byte times (ns), the next unused source
    port, and errors (a failed connection is an error of the benchmark, not a sample)."""
    conn: dict[str, list[int]] = {t: [] for t in targets}
    first: dict[str, list[int]] = {t: [] for t in targets}
    errors: list[str] = []
    port = first_port
    gc_was = gc.isenabled()
    gc.disable()
    try:
        for _ in range(count):
            for ip in targets:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                try:
                    while True:
                        try:
                            sock.bind(("", port))
                            break
                        except OSError as exc:
                            if exc.errno != errno.EADDRINUSE:
                                raise
                            port += 1
                    port += 1
                    sock.settimeout(TIMEOUT)
                    t0 = time.perf_counter_ns()
                    sock.connect((ip, SERVICE_PORT))
                    t1 = time.perf_counter_ns()
                    sock.sendall(REQUEST)
                    data = sock.recv(65536)
                    t2 = time.perf_counter_ns()
                    while chunk := sock.recv(65536):
                        data += chunk
                except OSError as exc:
                    errors.append(f"{ip} from port {port - 1}: {exc}")
                    continue
                finally:
                    sock.close()
                if not data.startswith(b"HTTP/1.1 200"):
                    errors.append(f"{ip}: unexpected answer {data[:40]!r}")
                    continue
                conn[ip].append(t1 - t0)
                first[ip].append(t2 - t0)
    finally:
        if gc_was:
            gc.enable()
    return conn, first, port, errors


def pct(samples: list[int], q: float) -> float:
    """Nearest-rank percentile, in microseconds."""
    s = sorted(samples)
    return s[max(0, math.ceil(q * len(s)) - 1)] / 1000.0


@dataclass
class Side:
    """One lab being measured: its probes' addresses, its client pod, its next source port."""

    lab: Lab
    probe_ips: dict[str, str]
    client_netns: str
    port: int = FIRST_SOURCE_PORT

    @classmethod
    def up(cls, name: str, case: ModeCase) -> Side:
        lab = Lab.up(scenario(case, name), mode=case.mode)
        try:
            ips = add_probes(lab.state)
            lab.sync()
            if case.mode == "userspace":
                lab.reload_agent(timeout=600)
        except BaseException:
            lab.down()
            raise
        client = next(p for p in lab.state.pods if p.role == "client")
        return cls(lab, ips, client.netns)

    def run(self, count: int) -> tuple[dict[str, list[int]], dict[str, list[int]]]:
        targets = [self.probe_ips[ns] for ns in PROBES]
        conn, first, self.port, errors = threads.call(
            connections, targets, count, self.port, netns_name=self.client_netns
        )
        if errors:
            raise BenchError(f"{len(errors)} connections failed, first: {errors[0]}")
        return conn, first


def stats(conn: dict[str, list[int]], first: dict[str, list[int]], ip: str) -> dict[str, float]:
    return {
        "connect_p50_us": pct(conn[ip], 0.50),
        "connect_p99_us": pct(conn[ip], 0.99),
        "first_byte_p50_us": pct(first[ip], 0.50),
        "first_byte_p99_us": pct(first[ip], 0.99),
    }


def measure_point(base: Side, grown: Side, count: int, quiet: float) -> dict[str, Any]:
    """``count`` connections per probe in each lab, in BLOCKS alternating blocks: the base lab
    (no other Services) and the grown one, so a slow spell of the shared machine (or of its
    host) lands on both alike."""
    mine = list(base.lab.record.netns) + list(grown.lab.record.netns)
    wait_quiet(mine, quiet)
    before = foreign_namespaces(mine)
    for side in (base, grown):
        side.run(WARMUP)
    daemons = [d.pid for side in (base, grown) for d in side.lab.record.daemons]
    samples: dict[str, tuple[dict[str, list[int]], dict[str, list[int]]]] = {}
    work0 = part_of_the_work(daemons)
    watch = CpuWatch()
    t0 = time.perf_counter()
    per_block = [count // BLOCKS + (1 if i < count % BLOCKS else 0) for i in range(BLOCKS)]
    for n in per_block:
        for name, side in (("base", base), ("grown", grown)):
            conn, first = side.run(n)
            if name not in samples:
                samples[name] = ({ip: [] for ip in conn}, {ip: [] for ip in first})
            for ip in conn:
                samples[name][0][ip] += conn[ip]
                samples[name][1][ip] += first[ip]
    wall = time.perf_counter() - t0
    work = (part_of_the_work(daemons) - work0) / os.sysconf("SC_CLK_TCK") / wall
    others = max(0.0, watch.others() - work)
    during = foreign_namespaces(mine)
    point: dict[str, Any] = {
        "connections_per_probe": count,
        "blocks": BLOCKS,
        "seconds": wall,
        "other_cores": others,
        "agent_softirq_cores": work,
        "disturbed": bool(before or during) or others > BUSY_CORES,
        "probes": {},
        "base": {},
    }
    for ns in PROBES:
        point["probes"][ns] = stats(*samples["grown"], grown.probe_ips[ns])
        point["base"][ns] = stats(*samples["base"], base.probe_ips[ns])
    return point


def run_mode(case: ModeCase, sizes: list[int], count: int, quiet: float) -> list[dict[str, Any]]:
    for name in (BASE_LAB, LAB):
        if netns.exists(f"{name}-{NODE}") or os.path.exists(state_dir(name)):
            raise BenchError(f"lab {name} already exists: not this run's, left alone")
    print(f"{case.key}: bringing the labs up ...", flush=True)
    base = Side.up(BASE_LAB, case)
    out: list[dict[str, Any]] = []
    try:
        grown = Side.up(LAB, case)
        lab = grown.lab
        try:
            have = 0
            for n in sizes:
                grow(lab.state, have, n)
                have = n
                t0 = time.perf_counter()
                results = lab.sync()
                sync_s = time.perf_counter() - t0
                reload_s = 0.0
                if case.mode == "userspace":
                    t1 = time.perf_counter()
                    lab.reload_agent(timeout=600)
                    reload_s = time.perf_counter() - t1
                ports = len(node_view(lab.state, NODE))
                positions = dispatch_positions(lab, case.mode)
                print(
                    f"  {n:>6,} other Services: synced in {sync_s:.2f} s"
                    + (f", agent reloaded in {reload_s:.2f} s" if reload_s else "")
                    + "; measuring ...",
                    end="",
                    flush=True,
                )
                point = measure_point(base, grown, count, quiet)
                point.update(
                    mode=case.key,
                    others=n,
                    service_ports=ports,
                    sync_seconds=sync_s,
                    sync_note=results[0].note,
                    agent_reload_seconds=reload_s,
                    positions=positions,
                )
                p, b = point["probes"], point["base"]
                print(
                    " connect p50 "
                    + " / ".join(f"{p[ns]['connect_p50_us']:.0f}" for ns in PROBES)
                    + " us (first/middle/last; base lab "
                    + " / ".join(f"{b[ns]['connect_p50_us']:.0f}" for ns in PROBES)
                    + ")"
                    + (" disturbed" if point["disturbed"] else ""),
                    flush=True,
                )
                out.append(point)
        finally:
            lab.down()
    finally:
        base.lab.down()
    return out


def report(points: list[dict[str, Any]], what: str) -> str:
    zero = {p["mode"]: p for p in points if p["others"] == 0}
    rows = []
    for p in points:
        z = zero.get(p["mode"])
        pos = p["positions"]
        for ns, where in zip(PROBES, POSITIONS, strict=True):
            s50 = p["probes"][ns][f"{what}_p50_us"]
            b50 = p["base"][ns][f"{what}_p50_us"]
            z50 = z["probes"][ns][f"{what}_p50_us"] if z else float("nan")
            rows.append(
                [
                    p["mode"],
                    f"{p['others']:,}",
                    f"{where} ({pos[ns]}/{pos['chain_rules']})"
                    if pos["chain_rules"]
                    else f"{where} (lookup)",
                    f"{s50:.1f}",
                    f"{p['probes'][ns][f'{what}_p99_us']:.1f}",
                    f"{b50:.1f}",
                    f"{s50 - b50:+.1f}",
                    f"{s50 - z50:+.1f}",
                    "disturbed" if p["disturbed"] else "",
                ]
            )
    return table(
        [
            "mode",
            "other Services",
            "probe (rule/chain)",
            "p50 us",
            "p99 us",
            "base lab p50",
            "vs base lab",
            "vs 0 point",
            "",
        ],
        rows,
    )


def per_rule(points: list[dict[str, Any]]) -> list[list[str]]:
    """ns per rule walked: the last probe's p50 minus the first's, over the rules between."""
    rows = []
    for p in points:
        pos = p["positions"]
        if not pos["chain_rules"] or p["others"] == 0:
            continue
        first, last = PROBES[0], PROBES[-1]
        walked = pos[last] - pos[first]
        diff = p["probes"][last]["connect_p50_us"] - p["probes"][first]["connect_p50_us"]
        rows.append(
            [
                p["mode"],
                f"{p['others']:,}",
                f"{walked:,}",
                f"{diff:.1f}",
                f"{diff * 1000 / walked:.1f}",
            ]
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=list(DEFAULT_SIZES),
        help="comma-separated counts of other Services, ascending (default 0,1000,5000,10000)",
    )
    add_mode_args(ap, HOST_MODES, tuple(CASES))
    ap.add_argument("--connections", type=int, default=2000, help="connections per probe and point")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="before each point, wait up to this long for the shared machine to be quiet",
    )
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON to OUT ('-': stdout)")
    args = ap.parse_args(argv)
    if args.sizes != sorted(args.sizes):
        ap.error("--sizes must be ascending (the lab grows)")
    modes = chosen_modes(ap, args, HOST_MODES, tuple(CASES))
    for name in (LAB, BASE_LAB):
        if os.path.exists(state_dir(name)):
            print(f"error: a lab {name} is up (not this run's); left alone", file=sys.stderr)
            return 1

    points: list[dict[str, Any]] = []
    error = ""
    with sigterm_as_interrupt():
        try:
            for key in modes:
                points += run_mode(CASES[key], args.sizes, args.connections, args.wait_quiet)
        except (BenchError, LabError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        except KeyboardInterrupt:
            print("\ninterrupted: the lab is down", file=sys.stderr)
            return 130

    if points:
        for what, title in (
            ("connect", "connect() returning (SYN -> SYN-ACK through the DNAT)"),
            ("first_byte", "first byte of the backend's answer to GET / (from before connect)"),
        ):
            print()
            print(f"{title}, {args.connections} fresh connections per probe and point:")
            print(report(points, what))
        rows = per_rule(points)
        if rows:
            print()
            print("Cost per rule walked (connect p50, last probe minus first):")
            print(table(["mode", "other Services", "rules between", "us", "ns per rule"], rows))
        for key in modes:
            print(f"  {key}: {CASES[key].note}")
    data = {
        "benchmark": "dataplane",
        "machine": machine(),
        "connections_per_probe": args.connections,
        "warmup_per_probe": WARMUP,
        "modes": {k: CASES[k].note for k in modes},
        "points": points,
        "error": error,
    }
    return finish(args.json, data, (f"{LAB}-", f"{BASE_LAB}-"), error)


if __name__ == "__main__":
    sys.exit(main())
