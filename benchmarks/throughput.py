"""Benchmark: one bulk TCP transfer through a ClusterIP, per proxy mode, in MB/s.

A real two-node lab is brought up with ``Lab.up`` for each mode (the lab's client pod on node-1,
a backend pod ``sink-local`` on node-1 and ``sink-remote`` on node-2, and two ClusterIP Services
``tp-local`` and ``tp-remote``, port 80 -> 5201, one per backend; no cluster DNS). The lab's agent
answers one HTTP request per connection, so each backend pod gets a sink of its own instead: a
listening socket created inside the pod's namespace (from a worker thread, via
``netlab.kernel.threads.call``) that reads a connection to its end and answers with the byte
count. From inside the client pod, one connection streams ``--size`` bytes (default 1 GiB) to the
ClusterIP, half-closes, and waits for the count; the time is from before ``connect()`` to the
count's arrival. The same transfer straight to the backend pod's own address (no Service, no
DNAT) is the same-run baseline, on the same node and across nodes. The four paths take turns,
one transfer each per round, ``--repeat`` rounds; the median is kept, with the range.

Modes: iptables and nftables with what the lab picks for such a small set (iptables: the nft back
end; nftables: kube-proxy's layout), userspace (every byte copied by the proxy in the agent),
ebpf (the client pod's tc program rewrites each packet), and IPVS with ``--ipvs`` (in the VM).

    python benchmarks/throughput.py                     # host modes, 1 GiB, 3 transfers each
    python benchmarks/throughput.py --size 256M --repeat 1
    python -m tests.tooling.vm --timeout 3600 -- python benchmarks/throughput.py \\
        --ipvs --modes iptables,ipvs --size 256M --repeat 1 --json -
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import struct
import sys
import threading
import time
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

from netlab.errors import LabError
from netlab.kernel import netns, threads
from netlab.lab.lifecycle import Lab
from netlab.lab.record import state_dir
from netlab.scenario.k8s import Container, ObjectMeta, Pod, PodSpec, Service, ServicePort
from netlab.scenario.labspec import (
    DEFAULT_NODE_NETWORK,
    DnsSpec,
    LabSpec,
    ProxySpec,
    default_external_clients,
)
from netlab.scenario.model import Scenario

LAB = "bench-tp"
NODES = ("node-1", "node-2")
SINK_PORT = 5201
SERVICE_PORT = 80
CHUNK = 1 << 20
HOST_MODES = ("iptables", "nftables", "userspace", "ebpf")
ALL_MODES = (*HOST_MODES, "ipvs")
SINKS = {"sink-local": NODES[0], "sink-remote": NODES[1]}  # pod -> node (the client: node-1)


def scenario(mode: str) -> Scenario:
    lab = LabSpec(
        name=LAB,
        nodes=NODES,
        proxy=ProxySpec(mode=mode),
        external_clients=default_external_clients(DEFAULT_NODE_NETWORK),
        client_pods=True,
        dns=DnsSpec(enabled=False),
    )
    pods = [
        Pod(
            meta=ObjectMeta(name=name, labels={"app": name}),
            spec=PodSpec(containers=[Container("sink")], node_name=node),
        )
        for name, node in SINKS.items()
    ]
    services = [
        Service(
            meta=ObjectMeta(name=name.replace("sink", "tp")),
            ports=[ServicePort(port=SERVICE_PORT, name="data", target_port=SINK_PORT)],
            selector={"app": name},
        )
        for name in SINKS
    ]
    return Scenario(file="bench-throughput", lab=lab, pods=pods, services=services)


def listen() -> socket.socket:
    """Called on a worker thread inside a backend pod: the socket belongs to that namespace."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("", SINK_PORT))
    sock.listen(8)
    sock.settimeout(0.2)
    return sock


class Sink(threading.Thread):
    """Reads each connection to its end, then answers with the byte count (8 bytes)."""

    def __init__(self, sock: socket.socket):
        super().__init__(daemon=True, name="bench-sink")
        self.sock = sock
        self.stop = threading.Event()

    def run(self) -> None:
        buf = bytearray(CHUNK)
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(120)
                total = 0
                try:
                    while n := conn.recv_into(buf):
                        total += n
                    conn.sendall(struct.pack("!Q", total))
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.join(5)
        self.sock.close()


def transfer(ip: str, port: int, size: int) -> float:
    """Called inside the client pod: stream ``size`` bytes, half-close, wait for the count.
    Returns the seconds from before connect() to the count's arrival."""
    data = memoryview(os.urandom(CHUNK))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.settimeout(120)
    try:
        t0 = time.perf_counter()
        sock.connect((ip, port))
        left = size
        while left:
            n = min(CHUNK, left)
            sock.sendall(data[:n])
            left -= n
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while len(reply) < 8:
            chunk = sock.recv(8 - len(reply))
            if not chunk:
                break
            reply += chunk
        seconds = time.perf_counter() - t0
    finally:
        sock.close()
    if len(reply) != 8 or struct.unpack("!Q", reply)[0] != size:
        got = struct.unpack("!Q", reply)[0] if len(reply) == 8 else None
        raise BenchError(f"{ip}:{port}: the sink counted {got} bytes, want {size}")
    return seconds


def run_mode(mode: str, size: int, repeat: int, quiet: float) -> list[dict[str, Any]]:
    if netns.exists(f"{LAB}-{NODES[0]}"):
        raise BenchError(f"namespace {LAB}-{NODES[0]} already exists: not this run's, left alone")
    print(f"{mode}: bringing the lab up ...", flush=True)
    lab = Lab.up(scenario(mode), mode=mode)
    sinks: list[Sink] = []
    out: list[dict[str, Any]] = []
    try:
        state = lab.state
        client = next(p for p in state.pods if p.role == "client" and p.node == NODES[0])
        pods = {p.name: p for p in state.pods}
        ips = {s.meta.name: s.cluster_ip for s in state.services}
        for name in SINKS:
            sink = Sink(threads.call(listen, netns_name=pods[name].netns))
            sink.start()
            sinks.append(sink)
        paths = [
            ("same node", "pod IP (baseline)", pods["sink-local"].ip, SINK_PORT),
            ("same node", "ClusterIP", ips["tp-local"], SERVICE_PORT),
            ("other node", "pod IP (baseline)", pods["sink-remote"].ip, SINK_PORT),
            ("other node", "ClusterIP", ips["tp-remote"], SERVICE_PORT),
        ]
        mine = list(lab.record.netns)
        daemons = [d.pid for d in lab.record.daemons]
        for _, _, ip, port in paths:
            threads.call(transfer, ip, port, CHUNK, netns_name=client.netns)  # warm-up
        samples: list[list[float]] = [[] for _ in paths]
        worst = [0.0 for _ in paths]
        disturbed = [False for _ in paths]
        # Round after round, one transfer per path: a slow spell of the shared machine lands on
        # every path alike instead of on whichever path happened to be measured then.
        for _ in range(repeat):
            for i, (_, _, ip, port) in enumerate(paths):
                wait_quiet(mine, quiet)
                before = foreign_namespaces(mine)
                work0 = part_of_the_work(daemons)
                watch = CpuWatch()
                t0 = time.perf_counter()
                seconds = threads.call(transfer, ip, port, size, netns_name=client.netns)
                wall = time.perf_counter() - t0
                work = (part_of_the_work(daemons) - work0) / os.sysconf("SC_CLK_TCK")
                others = max(0.0, watch.others() - work / wall)
                worst[i] = max(worst[i], others)
                disturbed[i] = disturbed[i] or bool(before) or others > BUSY_CORES
                samples[i].append(seconds)
        for i, (where, via, _, _) in enumerate(paths):
            med = statistics.median(samples[i])
            res = {
                "mode": mode,
                "describe": lab.proxier.describe(),
                "where": where,
                "via": via,
                "bytes": size,
                "seconds": med,
                "mb_per_s": size / med / 1e6,
                "mb_per_s_min": size / max(samples[i]) / 1e6,
                "mb_per_s_max": size / min(samples[i]) / 1e6,
                "samples": samples[i],
                "other_cores_max": worst[i],
                "disturbed": disturbed[i],
            }
            print(
                f"  {where:10} {via:18} {res['mb_per_s']:8.0f} MB/s "
                f"({res['mb_per_s_min']:.0f}-{res['mb_per_s_max']:.0f})",
                flush=True,
            )
            out.append(res)
    finally:
        for sink in sinks:
            sink.close()
        lab.down()
    return out


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(text)


def report(results: list[dict[str, Any]]) -> str:
    base = {(r["mode"], r["where"]): r for r in results if r["via"].startswith("pod IP")}
    rows = []
    for r in results:
        b = base.get((r["mode"], r["where"]))
        rows.append(
            [
                r["describe"],
                r["where"],
                r["via"],
                f"{r['mb_per_s']:,.0f}",
                f"{r['mb_per_s_min']:,.0f}-{r['mb_per_s_max']:,.0f}",
                f"{r['mb_per_s'] * 8 / 1000:.2f}",
                f"{r['mb_per_s'] / b['mb_per_s']:.2f}" if b else "",
                f"{r['seconds']:.2f}",
                "disturbed" if r["disturbed"] else "",
            ]
        )
    return table(
        ["mode", "backend on", "to", "MB/s", "min-max", "Gbit/s", "vs pod IP", "seconds", ""], rows
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_mode_args(ap, HOST_MODES, ALL_MODES)
    ap.add_argument("--size", type=parse_size, default=1 << 30, help="bytes per transfer (1G)")
    ap.add_argument("--repeat", type=int, default=3, help="transfers per path, median kept")
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="before each transfer, wait up to this long for the shared machine to be quiet",
    )
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON to OUT ('-': stdout)")
    args = ap.parse_args(argv)
    modes = chosen_modes(ap, args, HOST_MODES, ALL_MODES)
    if os.path.exists(state_dir(LAB)):
        print(f"error: a lab {LAB} is up (not this run's); left alone", file=sys.stderr)
        return 1

    results: list[dict[str, Any]] = []
    error = ""
    with sigterm_as_interrupt():
        try:
            for mode in modes:
                results += run_mode(mode, args.size, args.repeat, args.wait_quiet)
        except (BenchError, LabError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        except KeyboardInterrupt:
            print("\ninterrupted: the lab is down", file=sys.stderr)
            return 130

    if results:
        print()
        print(
            f"One TCP stream of {args.size:,} bytes from the client pod on node-1, median of "
            f"{args.repeat}; MB = 10^6 bytes"
        )
        print(report(results))
    data = {
        "benchmark": "throughput",
        "machine": machine(),
        "bytes": args.size,
        "repeat": args.repeat,
        "results": results,
        "error": error,
    }
    return finish(args.json, data, (f"{LAB}-",), error)


if __name__ == "__main__":
    sys.exit(main())
