"""Benchmark: one full sync of one node in every proxy mode, and adding one Service after it.

For N ClusterIP Services with 2 endpoints each (the cluster state built as
benchmarks/iptables_sync.py builds it: ``make_state``), each mode's proxier
(:func:`netlab.proxy.registry.make_proxier`; the nftables proxier with each layout) runs
``sync(node, first=True)`` into a brand-new namespace ``bench-modes-node``, exactly the call a lab
makes on ``netlab up``. Then one more Service (2 endpoints) is added to the state and the same
proxier runs ``sync(node, first=False)``: the proxier's normal later sync, as a lab does it after
a change (iptables and nftables: a partial sync, only what changed, as kube-proxy's; IPVS:
``ipset save``, read and reconcile the IPVS table; userspace: one full ``iptables-restore``;
ebpf: only the changed map entries, in Cilium's order). Each measurement gets a fresh namespace,
removed after it; the ebpf mode's bpffs (a fresh directory of this run) and cgroups
(``netlab-bench-sync``) are removed with it.

Cases: iptables with the back end ``auto`` picks (nft up to 2,000 Service ports, legacy above),
and both back ends at 1k; nftables with both layouts (``kube-proxy``, upstream's; ``fast``);
userspace with the back end its proxier picks (and legacy beside it); ebpf (the first sync
includes loading and attaching the programs, as a lab's does); IPVS only with ``--ipvs``,
meant for the VM (``python -m tests.tooling.vm -- ...``; see docs/ipvs-vm.md). The same-run
baseline is the iptables mode (``auto``'s back end) at the same size.

    python benchmarks/modes_sync.py                       # 1k and 10k, every host mode
    python benchmarks/modes_sync.py --quick               # 1k only
    python benchmarks/modes_sync.py --json out.json
    python -m tests.tooling.vm --timeout 3000 -- \\
        python benchmarks/modes_sync.py --ipvs --modes iptables,ipvs --json -
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
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

from netlab.cluster.state import ClusterState, Endpoint, EndpointPort, EndpointSlice
from netlab.errors import LabError
from netlab.kernel import bpffs, cgroup, netns, process, rules, threads
from netlab.proxy.base import Proxier
from netlab.proxy.ebpf import datapath, entries
from netlab.proxy.ebpf import render as ebpf_render
from netlab.proxy.ebpf.proxier import EbpfProxier
from netlab.proxy.iptables.proxier import pick_backend
from netlab.proxy.nftables.proxier import NftablesProxier, pick_layout
from netlab.proxy.nftables.render import LAYOUTS, parse_existing
from netlab.proxy.nftables.render import build as nft_build
from netlab.proxy.registry import make_proxier
from netlab.proxy.servicemap import node_view
from netlab.scenario.k8s import ObjectMeta, Service, ServicePort

NODE_NETNS = "bench-modes-node"
DEFAULT_SIZES = (1000, 10000)
SLOW = 10.0  # seconds: a full sync this slow is taken once, not --repeat times
RETRIES = 2  # a short measurement the shared machine disturbed is taken again this often
HOST_MODES = ("iptables", "nftables", "userspace", "ebpf")


@dataclass(frozen=True)
class Case:
    mode: str
    variant: str  # iptables/userspace: back end; nftables: layout; ipvs: "netlink"; ebpf: "tc"
    auto: bool  # what the lab picks by default for this size

    @property
    def label(self) -> str:
        return f"{self.mode} ({self.variant})"


def cases(size: int, ports: int, layout: str, modes: tuple[str, ...]) -> list[Case]:
    """The cases measured at one size (``ports``: Service ports in the node's view; ``layout``:
    the nftables layout the lab picks for this state)."""
    out: list[Case] = []
    if "iptables" in modes:
        auto = pick_backend("auto", ports)
        backends = ["nft", "legacy"] if size <= 1000 else [auto]
        out += [Case("iptables", b, b == auto) for b in backends]
    if "nftables" in modes:
        out += [Case("nftables", lay, lay == layout) for lay in LAYOUTS]
    if "userspace" in modes:
        auto = pick_backend("auto", 0)  # what UserspaceProxier picks, whatever the size
        out += [Case("userspace", b, b == auto) for b in dict.fromkeys([auto, "legacy"])]
    if "ipvs" in modes:
        out.append(Case("ipvs", "netlink", True))
    if "ebpf" in modes:
        out.append(Case("ebpf", "tc", True))
    return out


def make(case: Case, state: ClusterState) -> Proxier:
    if case.mode == "ebpf":  # its bpffs in a fresh directory of this run, not the lab's
        return EbpfProxier(state, root=tempfile.mkdtemp(prefix="bench-bpffs-"))
    if case.mode == "nftables":
        return NftablesProxier(state, case.variant)  # as a Lab document's nftablesLayout
    if case.mode == "ipvs":
        return make_proxier("ipvs", state)
    return make_proxier(case.mode, state, case.variant)


def add_service(state: ClusterState, index: int) -> None:
    """One more ClusterIP Service with 2 endpoints (two existing pods' addresses), sorted last
    (namespace ``zz-added``), as nftables_sync adds one."""
    name = f"added-{index}"
    state.services.append(
        Service(
            meta=ObjectMeta(name=name, namespace="zz-added", labels={"app": name}),
            ports=[ServicePort(port=80, name="http", target_port=8080)],
            selector={"app": name},
            cluster_ip=str(ipaddress.IPv4Address("10.96.250.0") + index),
        )
    )
    pods = state.pods[-2:]
    state.slices.append(
        EndpointSlice(
            namespace="zz-added",
            name=f"{name}-abcde",
            service=f"zz-added/{name}",
            ports=[EndpointPort("http", 8080, "TCP")],
            endpoints=[Endpoint(address=p.ip, node_name=p.node, pod=p.key) for p in pods],
        )
    )


def remove_added(state: ClusterState) -> None:
    state.services.pop()
    state.slices.pop()


def loaded(case: Case, proxier: Proxier, state: ClusterState) -> tuple[int, int]:
    """(found, wanted): per-Service objects in the kernel now, and how many the state needs.
    iptables: KUBE-SVC chains; userspace: portal REDIRECT rules; nftables: per-Service and
    per-endpoint chains; IPVS: virtual servers; ebpf: reverse NAT entries (one a frontend)."""
    node = state.nodes[0]
    view = node_view(state, node.name)
    if case.mode == "ebpf":
        assert isinstance(proxier, EbpfProxier)
        with datapath.Maps(datapath.pin_dir(proxier.root, node.name)) as maps:
            found = len(maps.dump(entries.REVNAT))
        info = ebpf_render.NodeInfo(node.name, node.ip)
        return found, sum(len(r.frontends) for r in ebpf_render.render_node(view, info))
    if case.mode == "iptables":
        saved = rules.iptables_save(NODE_NETNS, case.variant, "nat")
        found = sum(1 for ln in saved.splitlines() if ln.startswith(":KUBE-SVC-"))
        return found, len(view)
    if case.mode == "userspace":
        saved = rules.iptables_save(NODE_NETNS, case.variant, "nat")
        found = sum(1 for ln in saved.splitlines() if ln.startswith("-A KUBE-PORTALS-CONTAINER "))
        return found, len(view)
    if case.mode == "nftables":
        assert isinstance(proxier, NftablesProxier)
        listing = process.run(NODE_NETNS, ["nft", "-t", "list", "chains", "ip"], timeout=300)
        found = sum(1 for c in parse_existing(listing.stdout).chains if "/" in c)
        wanted = len(nft_build(view, proxier.options(node), case.variant).service_chains())
        return found, wanted
    ipvs_list = process.run(NODE_NETNS, ["ipvsadm", "-Ln"], timeout=600).stdout
    found = sum(1 for ln in ipvs_list.splitlines() if ln.startswith(("TCP ", "UDP ", "SCTP ")))
    return found, len(proxier.ruleset(node).virtual_servers)  # type: ignore[attr-defined]


def fresh_netns(owned: Owned) -> None:
    """A brand-new node namespace, made from a worker thread as the lab makes them."""
    owned.claim([NODE_NETNS])
    threads.call(netns.create_and_enter, NODE_NETNS)


def release_bpf(proxier: EbpfProxier, state: ClusterState) -> None:
    """The run's bpffs (its pinned maps and programs) and the cgroups of the bench lab."""
    bpffs.unmount(proxier.root)
    with contextlib.suppress(FileNotFoundError):
        os.rmdir(proxier.root)
    cgroup.remove_lab(state.lab.name)


def one_run(case: Case, state: ClusterState, owned: Owned, quiet: float) -> dict[str, Any]:
    """A full first sync into a fresh namespace, then one more Service by a later sync."""
    node = state.nodes[0]
    wait_quiet([NODE_NETNS], quiet)
    before = foreign_namespaces([NODE_NETNS])
    proxier = make(case, state)
    fresh_netns(owned)
    try:
        watch = CpuWatch()
        t0 = time.perf_counter()
        first = proxier.sync(node, first=True)
        full = time.perf_counter() - t0
        others = watch.others()
        found, wanted = loaded(case, proxier, state)
        if found != wanted:
            raise BenchError(f"{case.label}: {found} loaded after the full sync, want {wanted}")
        count = found
        add_service(state, 1)
        try:
            watch = CpuWatch()
            t1 = time.perf_counter()
            later = proxier.sync(node, first=False)
            add = time.perf_counter() - t1
            others = max(others, watch.others())
            found, wanted = loaded(case, proxier, state)
        finally:
            remove_added(state)
        if found != wanted:
            raise BenchError(f"{case.label}: {found} loaded after adding one, want {wanted}")
        during = foreign_namespaces([NODE_NETNS])
    finally:
        owned.release_all()
        if isinstance(proxier, EbpfProxier):
            release_bpf(proxier, state)
    settle()
    return {
        "full_seconds": full,
        "full_apply_seconds": first.seconds,
        "full_lines": first.lines,
        "add_one_seconds": add,
        "add_one_apply_seconds": later.seconds,
        "add_one_lines": later.lines,
        "loaded": count,
        "note": first.note,
        "other_cores": others,
        "disturbed": bool(before or during) or others > BUSY_CORES,
    }


def measure(
    case: Case, state: ClusterState, repeat: int, owned: Owned, quiet: float
) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    retries = 0
    while len(runs) < repeat:
        run = one_run(case, state, owned, quiet)
        if run["disturbed"] and run["full_seconds"] < 5 and retries < RETRIES:
            retries += 1
            print(" (disturbed, again)", end="", flush=True)
            continue
        runs.append(run)
        if run["full_seconds"] > SLOW:
            break
    med = {
        k: statistics.median(r[k] for r in runs)
        for k in ("full_seconds", "full_apply_seconds", "add_one_seconds", "add_one_apply_seconds")
    }
    return {
        "mode": case.mode,
        "variant": case.variant,
        "auto": case.auto,
        **med,
        "full_lines": runs[0]["full_lines"],
        "add_one_lines": runs[0]["add_one_lines"],
        "loaded": runs[0]["loaded"],
        "note": runs[0]["note"],
        "samples_full": [r["full_seconds"] for r in runs],
        "samples_add_one": [r["add_one_seconds"] for r in runs],
        "other_cores_max": max(r["other_cores"] for r in runs),
        "disturbed": any(r["disturbed"] for r in runs),
    }


def report(results: list[dict[str, Any]]) -> str:
    baseline: dict[int, dict[str, Any]] = {
        r["services"]: r
        for r in results
        if r.get("mode") == "iptables" and r.get("auto") and "error" not in r
    }
    rows = []
    for r in results:
        if "error" in r:
            rows.append(
                [f"{r['services']:,}", f"{r['mode']} ({r['variant']})", "FAILED"] + [""] * 7
            )
            continue
        base = baseline.get(r["services"])
        ratio = f"{r['full_seconds'] / base['full_seconds']:.1f}x" if base else ""
        add_ratio = f"{r['add_one_seconds'] / base['add_one_seconds']:.1f}x" if base else ""
        rows.append(
            [
                f"{r['services']:,}",
                f"{r['mode']} ({r['variant']})" + (" *" if r["auto"] else ""),
                f"{r['full_lines']:,}",
                f"{r['full_seconds']:.2f}",
                f"{r['full_apply_seconds']:.2f}",
                ratio,
                f"{r['add_one_seconds']:.2f}",
                f"{r['add_one_apply_seconds']:.2f}",
                add_ratio,
                f"{len(r['samples_full'])}" + (" disturbed" if r["disturbed"] else ""),
            ]
        )
    return table(
        [
            "Services",
            "mode (variant)",
            "lines",
            "full sync s",
            "of which apply s",
            "vs iptables",
            "+1 Service s",
            "of which apply s",
            "vs iptables",
            "runs",
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
        "--repeat", type=int, default=3, help=f"runs per case, median kept (not past {SLOW:.0f} s)"
    )
    ap.add_argument(
        "--wait-quiet",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="before each run, wait up to this long for the shared machine to be quiet",
    )
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON to OUT ('-': stdout)")
    args = ap.parse_args(argv)
    sizes = (1000,) if args.quick else args.sizes
    modes = chosen_modes(ap, args, HOST_MODES)

    owned = Owned()
    results: list[dict[str, Any]] = []
    failed = False
    with sigterm_as_interrupt():
        try:
            for n in sizes:
                print(f"building the state for {n:,} Services ...", flush=True)
                state = make_state(n)
                state.nodes[0].netns = NODE_NETNS
                ports = len(node_view(state, state.nodes[0].name))
                for case in cases(n, ports, pick_layout(state), modes):
                    print(f"  {case.label:24}", end="", flush=True)
                    try:
                        res = measure(case, state, args.repeat, owned, args.wait_quiet)
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
                    res["service_ports"] = ports
                    print(
                        f" full {res['full_seconds']:.2f} s, +1 {res['add_one_seconds']:.2f} s",
                        flush=True,
                    )
                    results.append(res)
        except KeyboardInterrupt:
            owned.release_all()
            print("\ninterrupted: this run's namespace is removed", file=sys.stderr)
            return 130
        finally:
            owned.release_all()

    print()
    print(
        "One node's full sync (proxier.sync(node, first=True) into a fresh netns) and one more "
        "Service (proxier.sync(node, first=False)), ClusterIP Services x 2 endpoints; "
        "* = what the lab picks by default; baseline: iptables with auto's back end"
    )
    print(report(results))
    data = {"benchmark": "modes_sync", "machine": machine(), "results": results}
    if args.json == "-":
        print("JSON " + json.dumps(data))
    else:
        write_json(args.json, data)
    if netns.exists(NODE_NETNS):
        print(f"error: namespace {NODE_NETNS} is still there", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
