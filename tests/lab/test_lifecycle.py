"""Nothing is left behind: after passing, failing, interrupted and killed runs, and cleanup."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

from netlab.kernel import process
from netlab.lab.lifecycle import Lab
from tests.lab.host import (
    NETLAB,
    REPO,
    HostSnapshot,
    netlab,
    scenario,
    snapshot,
    start_netlab,
    wait_for_line,
)

MANY_PODS = textwrap.dedent("""\
    apiVersion: netlab.dev/v1alpha1
    kind: Lab
    metadata: {name: many}
    spec:
      nodes: 3
      checks:
      - {from: pod/client-node-1, to: service/web, connections: 400}
      - {from: pod/client-node-2, to: service/web, connections: 400}
    ---
    apiVersion: apps/v1
    kind: Deployment
    metadata: {name: web}
    spec:
      replicas: 240
      selector: {matchLabels: {app: web}}
      template:
        metadata: {labels: {app: web}}
        spec:
          containers:
          - {name: web, image: agnhost, ports: [{containerPort: 8080}]}
    ---
    apiVersion: v1
    kind: Service
    metadata: {name: web}
    spec:
      selector: {app: web}
      ports: [{port: 80, targetPort: 8080}]
    """)


def _write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_failing_check_exits_1_and_leaves_nothing(tmp_path: Path, clean_host: HostSnapshot) -> None:
    text = (
        Path(scenario("nodeport.yaml"))
        .read_text()
        .replace("expect: {result: timeout}", "expect: {endpoints: all}")
    )
    proc = netlab("run", _write(tmp_path, text), "--json")
    data = json.loads(proc.stdout)
    assert proc.returncode == 1
    assert data["passed"] is False
    failed = [c for c in data["checks"] if not c["passed"]]
    assert [c["name"] for c in failed] == ["local-policy-no-local-endpoint"]
    assert failed[0]["observed"]["outcomes"] == {"timeout": failed[0]["connections"]}
    assert failed[0]["failures"][0].startswith("expected every connection to be connected")


def test_invalid_input_exits_2_and_creates_nothing(
    tmp_path: Path, clean_host: HostSnapshot
) -> None:
    bad = _write(
        tmp_path,
        textwrap.dedent("""\
        apiVersion: v1
        kind: Service
        metadata: {name: web}
        spec:
          type: NodePort
          selector: {app: web}
          ports: [{port: 80, nodePort: 40000}]
        """),
    )
    proc = netlab("run", bad)
    assert proc.returncode == 2
    assert (
        "provided port is not in the valid range. The range of valid ports is 30000-32767"
        in proc.stderr
    )
    assert f"{bad}:7:" in proc.stderr


@pytest.mark.parametrize("marker", ["building", "programming", "starting pod servers", "running"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_interrupted_run_removes_everything(
    tmp_path: Path, clean_host: HostSnapshot, marker: str, sig: signal.Signals
) -> None:
    proc = start_netlab("run", _write(tmp_path, MANY_PODS))
    try:
        wait_for_line(proc, marker)
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    assert "interrupted" in out


def test_killed_run_is_cleaned_up_without_the_file(
    tmp_path: Path, clean_host: HostSnapshot
) -> None:
    proc = start_netlab("up", _write(tmp_path, MANY_PODS))
    wait_for_line(proc, "building")
    time.sleep(0.3)  # well inside the namespace build
    proc.kill()
    proc.wait()
    assert snapshot().netns != clean_host.netns  # it did leave namespaces behind
    os.unlink(tmp_path / "scenario.yaml")
    done = netlab("cleanup", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["labs"] == ["many"]


def _gone_or_zombie(pid: int) -> bool:
    """Dead: no /proc entry, or a zombie nobody has reaped yet (it has no environment left)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_killed_lab_with_agent_is_cleaned_up(clean_host: HostSnapshot) -> None:
    """The lab's processes die by SIGKILL (no handler runs, nothing is removed); ``cleanup``
    then removes every namespace the state file lists and leaves the host as it was."""
    up = netlab("up", scenario("nodeport.yaml"), "--name", "killed")
    assert up.returncode == 0, up.stderr
    record = Lab.open("killed").record
    pids = sorted(process.find_tagged("killed"))
    # The lab is up: its one process, the agent, runs tagged with the lab's name.
    assert pids == [d.pid for d in record.daemons]
    namespaces = sorted(set(snapshot().netns) - set(clean_host.netns))
    assert namespaces == sorted(record.netns)
    assert "killed-node-1" in namespaces

    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while not all(map(_gone_or_zombie, pids)) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [pid for pid in pids if not _gone_or_zombie(pid)] == []
    assert process.find_tagged("killed") == []
    # Killed, nothing was torn down: every namespace is still there.
    assert sorted(set(snapshot().netns) - set(clean_host.netns)) == namespaces

    done = netlab("cleanup", "killed", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # Dead processes are not "removed" by cleanup (it reports what it stopped): none are left;
    # every namespace the lab made is removed, in the state file's order, each once.
    assert report == {"labs": ["killed"], "namespaces": record.netns, "processes": []}
    after = snapshot()
    assert after == clean_host, clean_host.diff(after)


def test_cleanup_leaves_foreign_namespaces_alone(clean_host: HostSnapshot) -> None:
    subprocess.run(["ip", "netns", "add", "not-netlab-test"], check=True)
    try:
        done = netlab("cleanup", "--json")
        assert done.returncode == 0
        assert "not-netlab-test" not in json.loads(done.stdout)["namespaces"]
        assert os.path.exists("/run/netns/not-netlab-test")
    finally:
        subprocess.run(["ip", "netns", "del", "not-netlab-test"], check=True)


def _comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def test_cleanup_stops_the_lab_and_only_the_labs_processes(clean_host: HostSnapshot) -> None:
    """A live lab's agent and a program started in one of its pods are stopped; a program that
    merely carries the lab's tag (inherited, in the host's namespace) is spared."""
    up = netlab("up", scenario("clusterip.yaml"), "--name", "tagged")
    assert up.returncode == 0, up.stderr
    agent = [d.pid for d in Lab.open("tagged").record.daemons]
    env = {**os.environ, process.LAB_ENV: "tagged"}
    inside = subprocess.Popen(
        [*NETLAB, "exec", "tagged", "pod/solo", "--", "sleep", "300"], cwd=REPO, env=env
    )
    outside = subprocess.Popen(["sleep", "300"], env=env)
    try:
        deadline = time.monotonic() + 10
        while _comm(inside.pid) != "sleep" and time.monotonic() < deadline:
            time.sleep(0.01)  # exec replaces itself with `ip netns exec`, then with sleep
        assert _comm(inside.pid) == "sleep"
        assert sorted(process.find_tagged("tagged")) == sorted([*agent, inside.pid, outside.pid])
        done = netlab("cleanup", "tagged", "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert sorted(report["processes"]) == sorted([*agent, inside.pid])
        assert inside.wait(timeout=10) == -signal.SIGTERM
        assert outside.poll() is None
    finally:
        outside.kill()
        outside.wait()
        inside.kill()
        inside.wait()
    after = snapshot()
    assert after == clean_host, clean_host.diff(after)


def test_host_without_etc_netns_gets_it_back_absent(clean_host: HostSnapshot) -> None:
    """A fresh host has no /etc/netns: the lab makes it (noting so in /run/netlab), and ``down``
    removes it, the note and /run/netlab again."""
    existed = os.path.isdir("/etc/netns")
    if existed:
        if os.listdir("/etc/netns"):
            pytest.skip("/etc/netns holds other namespaces' files; this test needs it empty")
        os.rmdir("/etc/netns")
    try:
        up = netlab("up", scenario("clusterip.yaml"), "--name", "fresh")
        assert up.returncode == 0, up.stderr
        assert os.path.isdir("/etc/netns/fresh-solo")
        down = netlab("down", "fresh")
        assert down.returncode == 0, down.stderr
        assert not os.path.exists("/etc/netns")
        assert not os.path.exists("/run/netlab")
    finally:
        netlab("cleanup", "fresh")
        if existed and not os.path.exists("/etc/netns"):
            os.mkdir("/etc/netns")
