"""Benchmark: one full kube-proxy nftables sync into a fresh node namespace, both layouts.

For N ClusterIP Services with 2 endpoints each (pods on 2 nodes; the cluster state is built as
benchmarks/iptables_sync.py builds it), netlab's nftables proxier renders the node's transaction
and one ``nft -f -`` loads it into a brand-new namespace (``nftdev-bench-node``), once per layout:

* ``kube-proxy``: upstream's layout, a ``numgen random mod 2 vmap { ... }`` anonymous map per
  Service (so N anonymous sets in the table);
* ``fast``: the same table with those maps replaced by a uniform ``numgen ... == 0 goto`` cascade
  (see netlab/proxy/nftables/render.py for why it is equivalent).

Then, with the N Services loaded, one more Service is added, two ways: a full re-sync (list the
table's chains and sets, render everything, one ``nft -f``: what NftablesProxier.sync does) and
a partial sync (``Ruleset.delta``: only the new Service's chains and elements, as upstream's
partial syncs). The namespace is made fresh for every measurement and removed after it.

    python benchmarks/nftables_sync.py                    # 1k and 10k, both layouts
    python benchmarks/nftables_sync.py --sizes 1000 --repeat 3
    python benchmarks/nftables_sync.py --json out.json
"""

from __future__ import annotations

import argparse
import ipaddress
import statistics
import sys
import time
from typing import Any

from _common import (
    BenchError,
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
from netlab.kernel import netns, process, threads
from netlab.proxy.nftables.proxier import NftablesProxier
from netlab.proxy.nftables.render import LAYOUTS, build, parse_existing
from netlab.proxy.servicemap import node_view
from netlab.scenario.k8s import ObjectMeta, Service, ServicePort

NODE_NETNS = "nftdev-bench-node"
DEFAULT_SIZES = (1000, 10000)
SLOW = 10.0  # seconds: a measurement this slow is not repeated


def nft_apply(text: str) -> float:
    t0 = time.perf_counter()
    process.run(NODE_NETNS, ["nft", "-f", "-"], input=text, timeout=900)
    return time.perf_counter() - t0


def fresh_netns() -> None:
    """A brand-new node namespace, made from a worker thread as the lab makes node namespaces."""
    if netns.exists(NODE_NETNS):
        raise BenchError(f"namespace {NODE_NETNS} already exists: remove it yourself first")
    threads.call(netns.create_and_enter, NODE_NETNS)


def remove_netns() -> None:
    netns.remove(NODE_NETNS)


def service_chains() -> int:
    """How many per-Service and per-endpoint chains the loaded table has."""
    listing = process.run(NODE_NETNS, ["nft", "-t", "list", "chains", "ip"], timeout=300).stdout
    return sum(1 for c in parse_existing(listing).chains if "/" in c)


def add_service(state: ClusterState, index: int) -> None:
    """One more ClusterIP Service with 2 endpoints (reusing two existing pods' addresses)."""
    name = f"extra-{index}"
    ip = ipaddress.IPv4Address("10.96.200.0") + index
    state.services.append(
        Service(
            meta=ObjectMeta(name=name, labels={"app": name}),
            ports=[ServicePort(port=80, name="http", target_port=8080)],
            selector={"app": name},
            cluster_ip=str(ip),
        )
    )
    pods = state.pods[:2]
    state.slices.append(
        EndpointSlice(
            namespace="default",
            name=f"{name}-abcde",
            service=f"default/{name}",
            ports=[EndpointPort("http", 8080, "TCP")],
            endpoints=[Endpoint(address=p.ip, node_name=p.node, pod=p.key) for p in pods],
        )
    )


def measure(services: int, layout: str, repeat: int) -> dict[str, Any]:
    state = make_state(services)
    node = state.nodes[0]
    node.netns = NODE_NETNS
    proxier = NftablesProxier(state, layout)
    t0 = time.perf_counter()
    view = node_view(state, node.name)
    t1 = time.perf_counter()
    ruleset = build(view, proxier.options(node), layout)
    text = ruleset.transaction(first=True)
    render_s = time.perf_counter() - t1
    want = len(ruleset.service_chains())

    loads: list[float] = []
    disturbed = False
    extra: dict[str, float] = {}
    for i in range(repeat):
        wait_quiet([NODE_NETNS])
        disturbed = disturbed or bool(foreign_namespaces([NODE_NETNS]))
        fresh_netns()
        try:
            loads.append(nft_apply(text))
            disturbed = disturbed or bool(foreign_namespaces([NODE_NETNS]))
            have = service_chains()
            if have != want:
                raise BenchError(f"{layout}: {have} service/endpoint chains loaded, want {want}")
            if i == 0:
                extra = add_one(state, proxier)
        finally:
            remove_netns()
        settle()
        if loads[-1] > SLOW:
            break
    return {
        "services": services,
        "layout": layout,
        "lines": text.count("\n"),
        "node_view_seconds": t1 - t0,
        "render_seconds": render_s,
        "seconds": statistics.median(loads),
        "samples": loads,
        **extra,
        "disturbed": disturbed,
    }


def add_one(state: ClusterState, proxier: NftablesProxier) -> dict[str, float]:
    """With the state loaded: add one Service by a full re-sync (NftablesProxier.sync: list the
    table, render everything, one nft -f), then another by a partial sync (Ruleset.delta)."""
    node = state.nodes[0]
    add_service(state, 1)
    t0 = time.perf_counter()
    result = proxier.sync(node, first=False)
    full_s = time.perf_counter() - t0

    opts = proxier.options(node)
    middle = build(node_view(state, node.name), opts, proxier.layout)
    add_service(state, 2)
    view = node_view(state, node.name)
    t1 = time.perf_counter()
    after = build(view, opts, proxier.layout)
    delta = after.delta(middle)
    render_s = time.perf_counter() - t1
    delta_nft = nft_apply(delta)
    if service_chains() != len(after.service_chains()):
        raise BenchError(f"{proxier.layout}: wrong chains after adding two Services")
    return {
        "add_one_full_sync_seconds": full_s,  # includes node_view, listing and rendering
        "add_one_full_sync_nft_seconds": result.seconds,
        "add_one_partial_render_seconds": render_s,  # build + delta, without node_view
        "add_one_partial_nft_seconds": delta_nft,
        "add_one_partial_lines": float(delta.count("\n")),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--sizes",
        type=lambda s: tuple(int(x) for x in s.split(",")),
        default=DEFAULT_SIZES,
        help="comma-separated Service counts (default 1000,10000)",
    )
    ap.add_argument(
        "--layouts",
        type=lambda s: tuple(s.split(",")),
        default=LAYOUTS,
        help="comma-separated layouts (default kube-proxy,fast)",
    )
    ap.add_argument(
        "--repeat", type=int, default=3, help=f"loads per case, median kept (not past {SLOW:.0f} s)"
    )
    ap.add_argument("--json", metavar="OUT", help="write the results as JSON to OUT")
    args = ap.parse_args(argv)

    results: list[dict[str, Any]] = []
    failed = False
    with sigterm_as_interrupt():
        try:
            for n in args.sizes:
                for layout in args.layouts:
                    print(f"{n:>6} Services, {layout:10} ...", end="", flush=True)
                    try:
                        res = measure(n, layout, args.repeat)
                    except (LabError, BenchError) as exc:
                        failed = True
                        print(f" FAILED: {exc}", flush=True)
                        results.append({"services": n, "layout": layout, "error": str(exc)})
                        continue
                    print(f" {res['seconds']:.2f} s", flush=True)
                    results.append(res)
        finally:
            if netns.exists(NODE_NETNS):
                remove_netns()

    print()
    print(
        "Full nftables sync (one nft -f into a fresh netns), ClusterIP Services x 2 endpoints; "
        "then one more Service by a full re-sync and by a partial sync"
    )
    rows = []
    for r in results:
        if "error" in r:
            rows.append([f"{r['services']:,}", r["layout"], "FAILED", "", "", "", "", "", ""])
            continue
        rows.append(
            [
                f"{r['services']:,}",
                r["layout"],
                f"{r['lines']:,}",
                f"{r['node_view_seconds']:.2f}",
                f"{r['render_seconds']:.2f}",
                f"{r['seconds']:.2f}",
                f"{r['add_one_full_sync_nft_seconds']:.2f}",
                f"{r['add_one_partial_nft_seconds']:.3f}",
                "disturbed" if r["disturbed"] else "quiet",
            ]
        )
    print(
        table(
            [
                "Services",
                "layout",
                "lines",
                "node_view s",
                "render s",
                "nft -f s (median)",
                "+1 full re-sync nft s",
                "+1 partial nft s",
                "machine",
            ],
            rows,
        )
    )
    print(
        "node_view: netlab's Service/endpoint view of the state (not nftables-specific); "
        "render: build + transaction text"
    )
    write_json(args.json, {"benchmark": "nftables_sync", "machine": machine(), "results": results})
    if netns.exists(NODE_NETNS):
        print(f"error: namespace {NODE_NETNS} is still there", file=sys.stderr)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
