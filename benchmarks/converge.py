"""Benchmark: from a change in the cluster to every node synced, per proxy mode.

For N ClusterIP Services with 2 endpoints each on a 2-node cluster (``make_state``, as
benchmarks/iptables_sync.py builds it), each mode's proxier syncs both nodes in full into fresh
namespaces (``bench-conv-node-1``, ``-2``), as ``netlab up`` does. Then changes are made to the
cluster state, each by replacing objects as the API server does, and after each one both nodes
are synced again (``proxier.sync(node, first=False)`` per node, as ``Lab.sync`` does after any
change):

- ``add``: one more Service with its EndpointSlice (2 endpoints);
- ``endpoint``: an existing Service's EndpointSlice replaced with one of its two endpoints not
  ready (a pod failing its readiness probe), or ready again on the next round;
- ``remove``: the added Service and its slice deleted.

Each sync's time is split into netlab's share (finding what changed, rendering, diffing: the
wall time minus the kernel's share) and the kernel's share (``SyncResult.seconds``: the
``iptables-restore``, ``nft -f``, ``ipset`` processes and the netlink requests).

The baseline, in the same run and on the same changes, is netlab's sync before it kept anything
between syncs, built from the same renderers into a second pair of namespaces
(``bench-conv-base-1``, ``-2``): each sync renders every Service of the node's view and diffs it
against the previous render (iptables: ``RenderedIptables.partial_text``; nftables:
``Ruleset.delta``; userspace: the whole portal chains rewritten; IPVS: ``apply_ruleset`` with
``first=False``, which reads the node's ipsets, IPVS table and addresses back). At the end of
each case the two pairs of nodes must hold exactly the same rules, read back with the modes' own
tools, or the run fails.

    python benchmarks/converge.py                      # 1k and 10k, iptables, nftables, userspace
    python benchmarks/converge.py --quick              # 1k only
    python -m tests.tooling.vm --timeout 3000 -- \\
        python benchmarks/converge.py --ipvs --modes iptables,ipvs --json -
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from typing import Any

from _common import (
    BUSY_CORES,
    BenchError,
    CpuWatch,
    Owned,
    add_mode_args,
    chosen_modes,
    foreign_namespaces,
    machine,
    settle,
    sigterm_as_interrupt,
    table,
    wait_quiet,
    write_json,
)
from iptables_sync import make_state
from modes_sync import Case, add_service, make, remove_added

from netlab.cluster.state import ClusterState, EndpointSlice, Node
from netlab.errors import LabError
from netlab.kernel import netns, process, rules, threads
from netlab.proxy.base import Proxier, SyncResult
from netlab.proxy.iptables.proxier import IptablesProxier, pick_backend
from netlab.proxy.iptables.render import render as iptables_render
from netlab.proxy.ipvs.proxier import IpvsProxier, apply_ruleset
from netlab.proxy.ipvs.render import render as ipvs_render
from netlab.proxy.nftables.proxier import NftablesProxier, pick_layout
from netlab.proxy.nftables.render import build as nft_build
from netlab.proxy.servicemap import node_view
from netlab.proxy.userspace.render import portals
from netlab.proxy.userspace.render import render as userspace_render

DEFAULT_SIZES = (1000, 10000)
HOST_MODES = ("iptables", "nftables", "userspace")
CHANGES = ("add", "endpoint", "remove")
NETLAB_NS = ("bench-conv-node-1", "bench-conv-node-2")
BASE_NS = ("bench-conv-base-1", "bench-conv-base-2")


def cases(state: ClusterState, modes: tuple[str, ...]) -> list[Case]:
    ports = len(node_view(state, state.nodes[0].name))
    out: list[Case] = []
    if "iptables" in modes:
        out.append(Case("iptables", pick_backend("auto", ports), True))
    if "nftables" in modes:
        lab = pick_layout(state)
        out += [Case("nftables", layout, layout == lab) for layout in ("kube-proxy", "fast")]
    if "userspace" in modes:
        out.append(Case("userspace", pick_backend("auto", 0), True))
    if "ipvs" in modes:
        out.append(Case("ipvs", pick_backend("auto", 0), True))
    return out


# ---------------------------------------------------------------------------------------------
# The baseline: every sync renders the node's whole view and diffs it with the previous render.


class Baseline:
    """netlab's syncs before change tracking, from the same renderers, into other namespaces."""

    def __init__(self, case: Case, state: ClusterState, proxier: Proxier) -> None:
        self.case, self.state, self.proxier = case, state, proxier
        self.previous: dict[str, Any] = {}

    def sync(self, node: Node, *, first: bool) -> tuple[float, float, int]:
        """One node: (wall seconds, of which the kernel's, lines)."""
        t0 = time.perf_counter()
        kernel, text = 0.0, ""
        view = node_view(self.state, node.name)
        mode, p = self.case.mode, self.proxier
        if mode == "iptables":
            assert isinstance(p, IptablesProxier)
            rendered = iptables_render(view, p.options(node))
            text = (
                rendered.restore_text(bootstrap=True)
                if first
                else rendered.partial_text(self.previous[node.name])
            )
            kernel = rules.iptables_restore(node.netns, text, self.case.variant)
            self.previous[node.name] = rendered
        elif mode == "nftables":
            assert isinstance(p, NftablesProxier)
            ruleset = nft_build(view, p.options(node), self.case.variant)
            text = (
                ruleset.transaction(first=True)
                if first
                else ruleset.delta(self.previous[node.name])
            )
            if text:
                k0 = time.perf_counter()
                process.run(node.netns, ["nft", "-f", "-"], input=text, timeout=600)
                kernel = time.perf_counter() - k0
            self.previous[node.name] = ruleset
        elif mode == "userspace":
            text = userspace_render(portals(view), node.ip, bootstrap=first)
            kernel = rules.iptables_restore(node.netns, text, self.case.variant)
        else:
            assert isinstance(p, IpvsProxier)
            stats = apply_ruleset(
                node.netns, ipvs_render(view, p.options(node)), first=first, backend=p.backend
            )
            kernel, lines = stats.seconds, stats.lines
            return time.perf_counter() - t0, kernel, lines
        return time.perf_counter() - t0, kernel, text.count("\n")


# ---------------------------------------------------------------------------------------------
# Changes: new objects in place of old ones, as the API server stores each update.


def change(kind: str, state: ClusterState) -> None:
    if kind == "add":
        add_service(state, 1)
    elif kind == "remove":
        remove_added(state)
    else:
        # svc-00000's slice (the first Service's): its node-2 endpoint not ready, or ready
        # again if it was not.
        i = next(i for i, sl in enumerate(state.slices) if sl.service == "default/svc-00000")
        sl = state.slices[i]
        ready = not next(ep.ready for ep in sl.endpoints if ep.node_name == "node-2")
        endpoints = [
            replace(ep, ready=ready, serving=ready) if ep.node_name == "node-2" else ep
            for ep in sl.endpoints
        ]
        state.slices[i] = EndpointSlice(sl.namespace, sl.name, sl.service, sl.ports, endpoints)


# ---------------------------------------------------------------------------------------------
# Reading the nodes back, to prove both paths hold the same rules.


def held(case: Case, name: str) -> object:
    if case.mode == "nftables":
        data = json.loads(
            process.run(
                name, ["nft", "-j", "list", "table", "ip", "kube-proxy"], timeout=600
            ).stdout
        )
        objects: list[str] = []
        chains: dict[str, list[str]] = {}
        for item in data["nftables"]:
            kind, body = next(iter(item.items()))
            if not isinstance(body, dict):
                continue
            body = {k: v for k, v in body.items() if k != "handle"}
            if kind == "rule":
                chains.setdefault(body["chain"], []).append(json.dumps(body, sort_keys=True))
            else:
                if "elem" in body:
                    body["elem"] = sorted(json.dumps(e, sort_keys=True) for e in body["elem"])
                objects.append(json.dumps({kind: body}, sort_keys=True))
        return sorted(objects), chains
    backend = case.variant
    tables: dict[str, dict[str, list[str]]] = {}
    chain_rules: dict[str, list[str]] = {}
    for line in rules.iptables_save(name, backend).splitlines():
        if line.startswith("*"):
            chain_rules = tables.setdefault(line[1:], {})
        elif line.startswith(":"):
            chain_rules.setdefault(line[1:].split(" ", 1)[0], [])
        elif line.startswith("-A "):
            _, chain, rule = line.split(" ", 2)
            chain_rules.setdefault(chain, []).append(rule)
    if case.mode != "ipvs":
        return tables
    ipvs = sorted(process.run(name, ["ipvsadm", "-Sn"], timeout=600).stdout.splitlines())
    # A set's create line carries a random hash seed (initval): name and type only.
    sets = sorted(
        " ".join(ln.split()[:3]) if ln.startswith("create ") else ln
        for ln in process.run(name, ["ipset", "save"], timeout=600).stdout.splitlines()
    )
    addrs = process.run(name, ["ip", "-4", "-o", "addr", "show", "dev", "kube-ipvs0"]).stdout
    return tables, ipvs, sets, sorted(re.findall(r"inet (\S+)", addrs))


# ---------------------------------------------------------------------------------------------


@dataclass
class Sample:
    total: float
    netlab: float
    kernel: float
    lines: int
    others: float  # cores the rest of the machine used meanwhile


def sync_all(proxier: Proxier, nodes: list[Node]) -> Sample:
    watch = CpuWatch()
    t0 = time.perf_counter()
    results: list[SyncResult] = [proxier.sync(n, first=False) for n in nodes]
    total = time.perf_counter() - t0
    kernel = sum(r.seconds for r in results)
    return Sample(total, total - kernel, kernel, sum(r.lines for r in results), watch.others())


def base_all(base: Baseline, nodes: list[Node]) -> Sample:
    watch = CpuWatch()
    t0 = time.perf_counter()
    parts = [base.sync(n, first=False) for n in nodes]
    total = time.perf_counter() - t0
    kernel = sum(k for _, k, _ in parts)
    return Sample(total, total - kernel, kernel, sum(n for *_, n in parts), watch.others())


def median(samples: list[Sample], field: str) -> float:
    quiet = [s for s in samples if s.others <= BUSY_CORES] or samples
    return float(statistics.median(float(getattr(s, field)) for s in quiet))


def one_case(
    case: Case,
    state: ClusterState,
    owned: Owned,
    repeat: int,
    base_repeat: int,
    changes: tuple[str, ...],
    quiet: float,
) -> dict[str, Any]:
    mine = [*NETLAB_NS, *BASE_NS]
    wait_quiet(mine, quiet)
    before = foreign_namespaces(mine)
    owned.claim(mine)
    for name in mine:
        threads.call(netns.create_and_enter, name)
    nodes = [replace(n, netns=ns) for n, ns in zip(state.nodes, NETLAB_NS, strict=True)]
    base_nodes = [replace(n, netns=ns) for n, ns in zip(state.nodes, BASE_NS, strict=True)]
    try:
        proxier = make(case, state)
        t0 = time.perf_counter()
        for node in nodes:
            proxier.sync(node, first=True)
        full = time.perf_counter() - t0
        base = Baseline(case, state, make(case, state))
        for node in base_nodes:
            base.sync(node, first=True)
        ours: dict[str, list[Sample]] = {k: [] for k in changes}
        theirs: dict[str, list[Sample]] = {k: [] for k in changes}
        for r in range(repeat):
            for kind in changes:
                change(kind, state)
                # Alternate which path goes first, so a slow spell of the machine is shared.
                paths = ["netlab", "base"] if r % 2 == 0 else ["base", "netlab"]
                for path in paths:
                    if path == "netlab":
                        s = sync_all(proxier, nodes)
                        if s.lines == 0 and (kind != "endpoint" or case.mode != "userspace"):
                            raise BenchError(f"{case.label}: {kind} synced nothing")
                        ours[kind].append(s)
                    elif r < base_repeat:
                        theirs[kind].append(base_all(base, base_nodes))
            if "add" in changes and "remove" not in changes:
                remove_added(state)
                sync_all(proxier, nodes)
        # Past --baseline-repeat the baseline skipped syncs: one more catches its nodes up (it
        # diffs the whole view against its last render, whatever happened since).
        base_all(base, base_nodes)
        for a, b in zip(nodes, base_nodes, strict=True):
            if held(case, a.netns) != held(case, b.netns):
                raise BenchError(
                    f"{case.label}: {a.name} differs from the baseline's after the run"
                )
        during = foreign_namespaces(mine)
    finally:
        owned.release_all()
    settle()
    out: dict[str, Any] = {
        "mode": case.mode,
        "variant": case.variant,
        "auto": case.auto,
        "full_sync_seconds": full,
        "disturbed": bool(before or during),
        "changes": {},
    }
    for kind in changes:
        row: dict[str, Any] = {}
        for name, samples in (("netlab", ours[kind]), ("baseline", theirs[kind])):
            row[name] = {
                "total": median(samples, "total"),
                "netlab": median(samples, "netlab"),
                "kernel": median(samples, "kernel"),
                "lines": samples[0].lines,
                "samples": [[s.total, s.netlab, s.kernel] for s in samples],
                "disturbed_samples": sum(1 for s in samples if s.others > BUSY_CORES),
            }
        out["changes"][kind] = row
    return out


def report(results: list[dict[str, Any]]) -> str:
    rows = []
    for r in results:
        if "error" in r:
            rows.append(
                [f"{r['services']:,}", f"{r['mode']} ({r['variant']})", "FAILED", *[""] * 9]
            )
            continue
        for kind, row in r["changes"].items():
            a, b = row["netlab"], row["baseline"]
            rows.append(
                [
                    f"{r['services']:,}",
                    f"{r['mode']} ({r['variant']})" + (" *" if r["auto"] else ""),
                    kind,
                    f"{a['total'] * 1000:.1f}",
                    f"{a['netlab'] * 1000:.1f}",
                    f"{a['kernel'] * 1000:.1f}",
                    f"{a['lines']:,}",
                    f"{b['total'] * 1000:.1f}",
                    f"{b['netlab'] * 1000:.1f}",
                    f"{b['kernel'] * 1000:.1f}",
                    f"{b['lines']:,}",
                    f"{b['netlab'] / a['netlab']:.0f}x" if a["netlab"] > 0 else "",
                ]
            )
    return table(
        [
            "Services",
            "mode",
            "change",
            "netlab: ms",
            "netlab's",
            "kernel's",
            "lines",
            "baseline: ms",
            "netlab's",
            "kernel's",
            "lines",
            "netlab's share, baseline / now",
        ],
        rows,
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sizes",
        type=lambda s: tuple(int(x) for x in s.split(",")),
        default=DEFAULT_SIZES,
        help="comma-separated Service counts (default 1000,10000)",
    )
    ap.add_argument("--quick", action="store_true", help="1k Services only")
    add_mode_args(ap, HOST_MODES)
    ap.add_argument(
        "--changes",
        type=lambda s: tuple(s.split(",")),
        default=CHANGES,
        help=f"comma-separated changes to measure (default {','.join(CHANGES)})",
    )
    ap.add_argument("--repeat", type=int, default=5, help="rounds of changes; medians kept")
    ap.add_argument(
        "--baseline-repeat",
        type=int,
        default=None,
        help="rounds in which the baseline is timed too (default: every round)",
    )
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="before each case, wait up to this long for the shared machine to be quiet",
    )
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON to OUT ('-': stdout)")
    args = ap.parse_args(argv)
    sizes = (1000,) if args.quick else args.sizes
    modes = chosen_modes(ap, args, HOST_MODES)
    unknown = [c for c in args.changes if c not in CHANGES]
    if unknown:
        ap.error(f"unknown change {unknown[0]!r} (changes: {', '.join(CHANGES)})")
    base_repeat = args.repeat if args.baseline_repeat is None else args.baseline_repeat

    owned = Owned()
    results: list[dict[str, Any]] = []
    failed = False
    with sigterm_as_interrupt():
        try:
            for n in sizes:
                print(f"building the state for {n:,} Services ...", flush=True)
                state = make_state(n)
                for case in cases(state, modes):
                    print(f"  {case.label:24}", end="", flush=True)
                    try:
                        res = one_case(
                            case,
                            state,
                            owned,
                            args.repeat,
                            base_repeat,
                            args.changes,
                            args.wait_quiet,
                        )
                    except (LabError, BenchError, OSError, subprocess.CalledProcessError) as exc:
                        failed = True
                        print(f" FAILED: {exc}", flush=True)
                        results.append(
                            {
                                "services": n,
                                "mode": case.mode,
                                "variant": case.variant,
                                "error": str(exc),
                            }
                        )
                        continue
                    res["services"] = n
                    print(
                        " "
                        + ", ".join(
                            f"{k} {v['netlab']['total'] * 1000:.0f} ms "
                            f"(netlab {v['netlab']['netlab'] * 1000:.1f})"
                            for k, v in res["changes"].items()
                        ),
                        flush=True,
                    )
                    results.append(res)
        except KeyboardInterrupt:
            owned.release_all()
            print("\ninterrupted: this run's namespaces are removed", file=sys.stderr)
            return 130
        finally:
            owned.release_all()

    print()
    print(
        "From a change to both nodes synced (medians, ms): netlab now, and the baseline (every "
        "sync renders the whole view and diffs it); netlab's share = wall - kernel's share; "
        "* = what a lab picks by default"
    )
    print(report(results))
    data = {"benchmark": "converge", "machine": machine(), "results": results}
    if args.json == "-":
        print("JSON " + json.dumps(data))
    else:
        write_json(args.json, data)
    left = [n for n in (*NETLAB_NS, *BASE_NS) if netns.exists(n)]
    if left:
        print(f"error: namespace {left[0]} is still there", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
