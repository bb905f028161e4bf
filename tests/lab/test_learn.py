"""Privileged: trace, explain, conntrack, capture, graph and ``run --pcap`` on real labs.

Labs are shared per module (one per mode), so the whole file costs a few lab bring-ups. The IPVS
trace is checked by the tutorial's IPVS section (tests/lab/test_tutorial.py, in the VM here).
"""

from __future__ import annotations

import json
import os
import re
import select
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from netlab.kernel import process
from netlab.lab.lifecycle import Lab
from netlab.traffic import probe
from tests.lab.host import NETLAB, REPO, netlab, scenario, snapshot


def _up(path: str, name: str, mode: str) -> Iterator[str]:
    before = snapshot()
    up = netlab("up", path, "--name", name, "--mode", mode)
    assert up.returncode == 0, up.stderr
    try:
        yield name
    finally:
        down = netlab("down", name)
        assert down.returncode == 0, down.stderr
        after = snapshot()
        assert after == before, before.diff(after)


@pytest.fixture(scope="module")
def ipt() -> Iterator[str]:
    yield from _up(scenario("clusterip.yaml"), "learn-ipt", "iptables")


@pytest.fixture(scope="module")
def nft() -> Iterator[str]:
    yield from _up(scenario("clusterip.yaml"), "learn-nft", "nftables")


@pytest.fixture(scope="module")
def rejects() -> Iterator[str]:
    yield from _up(scenario("no-endpoints.yaml"), "learn-rej", "iptables")


@pytest.fixture(scope="module")
def userspace() -> Iterator[str]:
    yield from _up(scenario("clusterip.yaml"), "learn-us", "userspace")


def trace(lab: str, *args: str) -> dict[str, Any]:
    out = netlab("trace", lab, *args, "--json")
    assert out.returncode == 0, out.stderr
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def steps(data: dict[str, Any], node: str, direction: str = "original") -> list[dict[str, str]]:
    (packet,) = [
        p
        for p in data["packets"]
        if p["node"] == node and p["direction"] == direction and p["connection"] == "client"
    ]
    return [s for ps in packet["passes"] for s in ps["steps"]]


def node_tables(lab: str, node: str) -> str:
    return process.run(f"{lab}-{node}", ["nft", "list", "tables"]).stdout


def test_trace_iptables_lists_the_chains_in_order_the_dnat_and_the_backend(ipt: str) -> None:
    tables = {n: node_tables(ipt, n) for n in ("node-1", "node-2")}
    data = trace(ipt, "pod/client-node-1", "service/web:http")
    assert data["outcome"] == "connected"
    state = Lab.open(ipt).state
    backend = next(p for p in state.pods if p.name == data["answered_by"].removeprefix("pod/"))
    assert data["backend"] == f"{backend.ip}:8080"
    assert data["seen_source"] == data["client"]  # a pod client keeps its address
    met = steps(data, "node-1")
    chains = [s["chain"] for s in met]
    svc = next(c for c in chains if c.startswith("KUBE-SVC-"))
    sep = next(c for c in chains if c.startswith("KUBE-SEP-"))
    assert chains.index("KUBE-SERVICES") < chains.index(svc) < chains.index(sep)
    dnat = next(s for s in met if s["chain"] == sep and "-j DNAT" in s["rule"])
    assert f"--to-destination {backend.ip}:8080" in dnat["rule"]
    first = next(p for p in data["packets"] if p["node"] == "node-1")
    notes = [n for ps in first["passes"] for n in ps["notes"]]
    assert f"DNAT: destination {data['dialled']} -> {backend.ip}:8080" in notes
    assert data["path"][0]["where"] == "pod/client-node-1"
    assert data["path"][-1]["where"] == data["answered_by"]
    (ct,) = [c for c in data["conntrack"] if c["node"] == "node-1"]
    assert ct["flow"]["reply_src"] == data["answered_by"]
    # Switched off afterwards: no trace rule or table is left in the nodes.
    assert {n: node_tables(ipt, n) for n in ("node-1", "node-2")} == tables


def test_trace_from_the_node_shows_the_masquerade(ipt: str) -> None:
    data = trace(ipt, "node/node-2", "service/web:http")
    assert data["masqueraded"] is True
    met = steps(data, "node-2")
    assert any(s["chain"] == "KUBE-MARK-MASQ" for s in met)
    # node-2 masquerades; a backend on node-1 adds node-1's pass of the packet after it.
    (packet,) = [
        p for p in data["packets"] if p["direction"] == "original" and p["node"] == "node-2"
    ]
    assert "its source masqueraded to " in packet["fate"]


def test_trace_prints_a_readable_tree_without_a_terminal(ipt: str) -> None:
    out = netlab("trace", ipt, "pod/client-node-1", "service/web:http")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith(f"trace {ipt}: pod/client-node-1 10.244.1.4:")
    assert lines[1].startswith("  connected: answered by pod/web-")
    assert any(re.match(r"^      -A KUBE-SEP-\w+ .* -j DNAT --to-destination ", ln) for ln in lines)


def test_trace_of_a_service_without_endpoints_shows_the_reject(rejects: str) -> None:
    data = trace(rejects, "pod/client-node-1", "service/nobody:web")
    assert data["outcome"] == "refused"
    assert data["decided_by"].startswith("rejected by KUBE-SERVICES: ")
    assert '"default/nobody:web has no endpoints"' in data["decided_by"]
    assert "-j REJECT" in data["decided_by"]


def test_trace_nftables_shows_service_ips_the_service_and_endpoint_chains(nft: str) -> None:
    tables = node_tables(nft, "node-1")
    data = trace(nft, "pod/client-node-1", "service/web:http")
    assert data["outcome"] == "connected"
    met = steps(data, "node-1")
    lookup = next(s for s in met if "vmap @service-ips" in s["rule"])
    assert lookup["verdict"].startswith("goto service-")
    assert lookup["verdict"].endswith("-default/web/tcp/http")
    pick = next(s for s in met if s["chain"] == lookup["verdict"].removeprefix("goto "))
    assert pick["rule"].startswith("numgen random mod 3 vmap")
    dnat = next(s for s in met if s["chain"].startswith("endpoint-"))
    assert dnat["rule"] == f"meta l4proto tcp dnat to {data['backend']}"
    assert node_tables(nft, "node-1") == tables  # netlab-trace is gone


def test_trace_userspace_shows_the_portal_and_the_two_connections(userspace: str) -> None:
    data = trace(userspace, "pod/client-node-1", "service/web:http")
    assert data["outcome"] == "connected" and data["masqueraded"] is True
    met = steps(data, "node-1")
    assert any(
        s["chain"] == "KUBE-PORTALS-CONTAINER" and "-j REDIRECT --to-ports" in s["rule"]
        for s in met
    )
    assert {c["connection"] for c in data["conntrack"] if c["node"] == "node-1"} == {
        "client",
        "proxy",
    }
    assert any(p["connection"] == "proxy" for p in data["packets"])


def test_explain_every_language_on_a_live_lab(nft: str) -> None:
    for lang in ("en", "zh"):
        out = netlab("explain", nft, "service/web", "--node", "node-2", "--lang", lang)
        assert out.returncode == 0, out.stderr
        assert "numgen random mod 3 vmap" in out.stdout
        assert ("随机" in out.stdout) == (lang == "zh")
    bad = netlab("explain", nft, "service/nope")
    assert bad.returncode == 2 and "no Service service/nope" in bad.stderr


def test_conntrack_view_names_both_sides(ipt: str) -> None:
    trace(ipt, "pod/client-node-1", "service/web:http")
    out = netlab("conntrack", ipt, "node/node-1", "--service", "default/web", "--json")
    assert out.returncode == 0, out.stderr
    flows = json.loads(out.stdout)["flows"]
    assert flows, out.stdout
    f = flows[0]
    assert f["nat"] == "DNAT"
    assert f["original"]["src_name"] == "pod/client-node-1"
    assert f["original"]["dst_name"] == "service default/web:http"
    assert f["reply"]["src_name"].startswith("pod/web-")
    text = netlab("conntrack", ipt, "node/node-1", "--service", "default/web").stdout
    assert "(service default/web:http)" in text and "ORIGINAL" in text and "REPLY" in text


def test_capture_writes_a_pcap_holding_the_dnated_syn(ipt: str, tmp_path: Path) -> None:
    lab = Lab.open(ipt)
    web = next(p for p in lab.state.pods if p.name.startswith("web-") and p.node == "node-2")
    client = lab.pod("client-node-1")
    svc = lab.state.service("default", "web")
    pcap = tmp_path / "web.pcap"
    proc = subprocess.Popen(
        [
            *NETLAB,
            "capture",
            ipt,
            f"pod/{web.name}",
            "-w",
            str(pcap),
            "--filter",
            "tcp dst port 8080 and tcp[tcpflags] & tcp-syn != 0",
            "-c",
            "1",
            "--seconds",
            "60",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:
        assert proc.stderr is not None
        ready, _, _ = select.select([proc.stderr], [], [], 60)
        assert ready and "capturing on" in proc.stderr.readline()
        # Connections until one lands on this backend (each picks an endpoint at random).
        for _ in range(60):
            answer = probe.probe(client.netns, svc.cluster_ip, 80)[0]
            if answer.hostname == web.name:
                break
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    read = subprocess.run(
        ["tcpdump", "-r", str(pcap), "-n"], capture_output=True, text=True, check=True
    )
    (line,) = read.stdout.splitlines()
    # DNATed on the client's node: addressed to the pod's own IP and targetPort.
    assert f"IP {client.ip}." in line and f" > {web.ip}.8080: Flags [S]" in line


def test_graph_of_a_live_lab(ipt: str) -> None:
    out = netlab("graph", ipt, "-f", "dot")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith(f'digraph "{ipt}"') and "svc_default_web" in out.stdout


FAILING_CHECK = """\
  - name: wrong-on-purpose
    from: pod/client-node-1
    to: service/solo
    expect: {result: refused}
"""


def test_run_keeps_a_pcap_per_failed_check(tmp_path: Path) -> None:
    text = Path(scenario("clusterip.yaml")).read_text()
    head, sep, tail = text.partition("  checks:\n")
    assert sep
    first = tail.index("  - name: pod-to-clusterip-node-2")
    path = tmp_path / "failing.yaml"
    path.write_text(head + sep + tail[:first] + FAILING_CHECK + tail[tail.index("---\n") :])
    pcaps = tmp_path / "pcaps"
    out = netlab("run", str(path), "--name", "learn-pcap", "--pcap", str(pcaps), "--json")
    assert out.returncode == 1, out.stderr
    data = json.loads(out.stdout)
    assert [(c["name"], c["passed"]) for c in data["checks"]] == [
        ("pod-to-clusterip-node-1", True),
        ("wrong-on-purpose", False),
    ]
    assert sorted(os.listdir(pcaps)) == ["wrong-on-purpose"]
    kept = sorted(os.listdir(pcaps / "wrong-on-purpose"))
    assert kept == ["backend-solo.pcap", "client.pcap"]
    assert data["checks"][1]["observed"]["pcaps"] == [
        str(pcaps / "wrong-on-purpose" / k) for k in kept
    ]
    # The lab is gone; its pcaps stay: the SYN reached solo, the client saw it leave.
    read = subprocess.run(
        ["tcpdump", "-r", str(pcaps / "wrong-on-purpose" / "backend-solo.pcap"), "-n"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert re.search(r"> 10\.244\.1\.2\.9376: Flags \[S\]", read.stdout), read.stdout
    client_read = subprocess.run(
        ["tcpdump", "-r", str(pcaps / "wrong-on-purpose" / "client.pcap"), "-n"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Flags [S]" in client_read.stdout
