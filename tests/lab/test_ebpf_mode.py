"""Privileged: the ebpf mode in a real lab. What a Cilium user would look at (``netlab rules``
as ``cilium-dbg`` and ``bpftool`` views), a node's own sockets load-balanced at connect() by
the programs on the node's cgroup, and nothing left behind when a run is interrupted or killed:
no bpffs, pin, program, map, tc filter or cgroup.

The interrupted and killed runs come first, with labs of their own; the lab of the other tests
(scenarios/nodeport.yaml in ebpf mode) is shared by them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from netlab.kernel import cgroup
from netlab.lab.lifecycle import Lab
from tests.lab.host import (
    HostSnapshot,
    netlab,
    scenario,
    snapshot,
    start_netlab,
    wait_for_line,
)

LAB = "ebpf-np"


def test_without_clang_ebpf_exits_3_before_building(
    tmp_path: Path, clean_host: HostSnapshot
) -> None:
    """A host without the compiler: ``--mode ebpf`` names it and its fix, exit 3, nothing
    made (PATH holds every other tool the mode needs)."""
    bin_dir = str(tmp_path / "bin")
    os.mkdir(bin_dir)
    for tool in ("ip", "nsenter", "iptables-nft-restore", "bpftool"):
        found = shutil.which(tool)
        assert found, tool
        os.symlink(found, os.path.join(bin_dir, tool))
    done = netlab(
        "run",
        scenario("clusterip.yaml"),
        "--mode",
        "ebpf",
        "--name",
        "ebpf-noclang",
        env={"PATH": bin_dir},
    )
    assert done.returncode == 3, done.stdout + done.stderr
    assert "clang" in done.stderr and "apt-get install" in done.stderr, done.stderr
    assert snapshot() == clean_host


# Interrupted and killed runs first: before the module's shared lab exists, so that
# `netlab cleanup` (every lab) finds theirs alone.


@pytest.mark.parametrize("marker", ["starting pod servers", "running"])
def test_interrupted_ebpf_run_removes_everything(clean_host: HostSnapshot, marker: str) -> None:
    proc = start_netlab("run", scenario("clusterip.yaml"), "--mode", "ebpf", "--name", "ebpf-int")
    try:
        wait_for_line(proc, marker)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out


def test_killed_ebpf_lab_is_cleaned_up(clean_host: HostSnapshot) -> None:
    """SIGKILL after the programs are loaded and attached (nothing is removed), then
    ``netlab cleanup``: no bpffs, pin, program, map or cgroup of the lab remains."""
    proc = start_netlab("up", scenario("clusterip.yaml"), "--mode", "ebpf", "--name", "ebpf-kill")
    wait_for_line(proc, "starting pod servers")
    proc.kill()
    proc.wait()
    left = snapshot()
    assert left.bpffs and left.bpf_programs and "netlab-ebpf-kill" in left.cgroups
    assert any(f.endswith("cil_from_netdev") for f in left.tc_filters), left.tc_filters
    assert any(f.endswith("cil_to_container") for f in left.tc_filters), left.tc_filters
    done = netlab("cleanup", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["labs"] == ["ebpf-kill"]
    after = snapshot()
    assert after == clean_host, clean_host.diff(after)


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    before = snapshot()
    up = netlab("up", scenario("nodeport.yaml"), "--mode", "ebpf", "--name", LAB)
    assert up.returncode == 0, up.stdout + up.stderr
    try:
        yield Lab.open(LAB)
    finally:
        down = netlab("down", LAB)
        assert down.returncode == 0, down.stderr
        after = snapshot()
        assert after == before, before.diff(after)


def _web_cluster_ip(lab: Lab) -> str:
    return lab.state.service("default", "web").cluster_ip


def test_rules_show_the_maps_as_cilium_dbg(lab: Lab) -> None:
    out = netlab("rules", LAB, "node/node-1")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    for title in (
        "# cilium-dbg service list",
        "# cilium-dbg bpf lb list",
        "# cilium-dbg bpf ct list global",
        "# cilium-dbg bpf nat list",
    ):
        assert title in text
    cip = _web_cluster_ip(lab)
    # The ClusterIP frontend, its type, its backends with their pods; the NodePort surrogate.
    row = re.search(
        rf"^(\d+)\s+{re.escape(cip)}:80/TCP\s+ClusterIP\s+1 => (\S+) \(active\)", text, re.M
    )
    assert row, text
    assert "# default/web:http -> pod/default/web-" in text
    assert re.search(r"^\d+\s+0\.0\.0\.0:30080/TCP\s+NodePort", text, re.M)
    assert re.search(r"^\d+\s+192\.168\.56\.11:30080/TCP\s+NodePort", text, re.M)
    # bpf lb list: slot 0 with Cilium's flag words.
    assert f"0.0.0.0:0 ({row.group(1)}) (0) [ClusterIP, non-routable]" in text
    assert "[NodePort, non-routable]" in text and "[NodePort]" in text
    assert "[NodePort, Local, two-scopes]" in text  # the Local policy's external scope
    assert "30081/TCP/i" in text  # and its internal one


def test_rules_for_one_service_with_conntrack_counters(lab: Lab) -> None:
    cip = _web_cluster_ip(lab)
    # A connection from a pod leaves entries in the node's conntrack map.
    conn = netlab(
        "exec", LAB, "pod/netlab/client-node-1", "--", "curl", "-s", f"http://{cip}/hostname"
    )
    assert conn.returncode == 0, conn.stderr
    out = netlab("rules", LAB, "node/node-1", "--service", "default/web", "--counters")
    assert out.returncode == 0, out.stderr
    assert "default/local" not in out.stdout and "30081" not in out.stdout
    svc_lines = [ln for ln in out.stdout.splitlines() if " SVC " in ln]
    assert svc_lines and all(f"-> {cip}:80" in ln for ln in svc_lines), out.stdout
    assert re.search(r"TCP OUT \S+ -> \S+ .*Packets=[1-9]\d* Bytes=[1-9]", out.stdout), out.stdout
    assert "# pod/netlab/client-node-1 -> pod/default/web-" in out.stdout
    # netlab conntrack: netfilter never saw that DNAT; Cilium's conntrack map holds it.
    flows = netlab("conntrack", LAB, "node/node-1", "--service", "default/web")
    assert flows.returncode == 0, flows.stderr
    dnat = [ln for ln in flows.stdout.splitlines() if "[cilium_ct4_global]" in ln]
    assert dnat and any(f"{cip}:80" in ln and "pod/web-" in ln for ln in dnat), flows.stdout


def test_rules_raw_dumps_the_pinned_maps_and_attachments(lab: Lab) -> None:
    out = netlab("rules", LAB, "node/node-1", "--raw")
    assert out.returncode == 0, out.stderr
    pins = f"/run/netlab/{LAB}/bpffs/node-1/tc/globals"
    assert f"# bpftool map dump pinned {pins}/cilium_lb4_services_v2" in out.stdout
    assert '"backend_slot": 0' in out.stdout  # BTF field names in bpftool's dump
    assert "cil_from_netdev" in out.stdout and "cil_from_container" in out.stdout
    assert "cil_sock4_connect" in out.stdout and "cil_sock4_getpeername" in out.stdout
    assert netlab("rules", LAB, "node/node-1", "--raw", "--counters").returncode == 2


def test_node_sockets_are_load_balanced_at_connect(lab: Lab) -> None:
    """From the node (in its cgroup): the connection goes straight to a backend, no NAT, yet
    getpeername() shows the ClusterIP (cil_sock4_getpeername)."""
    cip = _web_cluster_ip(lab)
    out = netlab(
        "exec",
        LAB,
        "node/node-1",
        "--",
        "curl",
        "-s",
        "-w",
        "\n%{remote_ip}:%{remote_port}\n",
        f"http://{cip}/clientip",
    )
    assert out.returncode == 0, out.stderr
    client, peer = out.stdout.strip().splitlines()[-2:]
    assert peer == f"{cip}:80"
    assert client.split(":")[0] in ("192.168.56.11", "10.244.1.1")  # the node's own address


def test_node_udp_through_socket_lb_answers_from_the_frontend(lab: Lab) -> None:
    """sendmsg4 sends the query to a CoreDNS pod, recvmsg4 makes the answer come from the
    kube-dns ClusterIP again (dig would reject an answer from elsewhere)."""
    dns = lab.state.service("kube-system", "kube-dns").cluster_ip
    out = netlab(
        "exec",
        LAB,
        "node/node-2",
        "--",
        "dig",
        "+short",
        "+tries=1",
        "+time=2",
        f"@{dns}",
        "kubernetes.default.svc.cluster.local",
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip() == lab.state.service("default", "kubernetes").cluster_ip


def test_programs_are_attached_to_the_labs_cgroups_only(lab: Lab) -> None:
    root = cgroup.root()
    assert root is not None
    attached = cgroup.attached(cgroup.node_dir(LAB, "node-1"))
    assert all(len(ids) == 1 for ids in attached.values()), attached
    assert all(ids == [] for ids in cgroup.attached(root).values())  # never at the root


def test_trace_shows_the_map_entries_the_connection_met(lab: Lab) -> None:
    cip = _web_cluster_ip(lab)
    out = netlab("trace", LAB, "pod/netlab/client-node-1", "service/web:http", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["outcome"] == "connected"
    assert data["seen_source"] == data["client"]  # DNAT only: the backend sees the pod
    client_port = data["client"].rpartition(":")[2]
    maps = data["maps"]
    assert any(
        m.startswith(f"node/node-1: cilium_lb4_services_v2: {cip}:80/TCP") and "(0) [" in m
        for m in maps
    ), maps
    ct = [m for m in maps if m.startswith("node/node-1: cilium_ct4_global: TCP ")]
    assert ct and any(f":{client_port} -> {cip}:80 " in m for m in ct), ct
    assert data["backend"] in " ".join(maps)  # the slot the kernel picked
    # A node's own connection is load-balanced inside connect(): nothing to trace; said so.
    node = netlab("trace", LAB, "node/node-1", "service/web:http")
    assert node.returncode == 2 and "socket LB" in node.stderr, node.stderr


def test_explain_shows_the_ids_the_maps_hold(lab: Lab) -> None:
    cip = _web_cluster_ip(lab)
    out = netlab("explain", LAB, "service/default/web", "--node", "node-1")
    assert out.returncode == 0, out.stderr
    found = re.search(
        rf"\[cilium_lb4_services_v2\] {re.escape(cip)}:80/TCP\s+0\.0\.0\.0:0 \((\d+)\)", out.stdout
    )
    assert found, out.stdout
    rules = netlab("rules", LAB, "node/node-1")
    assert f"0.0.0.0:0 ({found.group(1)}) (0) [ClusterIP, non-routable]" in rules.stdout
    assert "cil_from_container" in out.stdout and "cilium_lb4_reverse_nat" in out.stdout
