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

from tests.lab.host import NETLAB, REPO, HostSnapshot, netlab, scenario, snapshot

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


def _start(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*NETLAB, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait_for(proc: subprocess.Popen[str], marker: str, timeout: float = 120) -> list[str]:
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return seen
    raise AssertionError(f"{marker!r} never appeared: {''.join(seen)}")


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
    proc = _start("run", _write(tmp_path, MANY_PODS))
    try:
        _wait_for(proc, marker)
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
    proc = _start("up", _write(tmp_path, MANY_PODS))
    _wait_for(proc, "building")
    time.sleep(0.3)  # well inside the namespace build
    proc.kill()
    proc.wait()
    assert snapshot().netns != clean_host.netns  # it did leave namespaces behind
    os.unlink(tmp_path / "scenario.yaml")
    done = netlab("cleanup", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["labs"] == ["many"]


def test_killed_lab_with_agent_is_cleaned_up(tmp_path: Path, clean_host: HostSnapshot) -> None:
    up = netlab("up", scenario("nodeport.yaml"), "--name", "killed")
    assert up.returncode == 0, up.stderr
    # The lab is up: its agent runs, tagged with the lab's name.
    assert snapshot().tagged_processes
    done = netlab("cleanup", "killed", "--json")
    report = json.loads(done.stdout)
    assert report["labs"] == ["killed"]
    assert len(report["processes"]) >= 1
    assert "killed-node-1" in report["namespaces"]


def test_cleanup_leaves_foreign_namespaces_alone(clean_host: HostSnapshot) -> None:
    subprocess.run(["ip", "netns", "add", "not-netlab-test"], check=True)
    try:
        done = netlab("cleanup", "--json")
        assert done.returncode == 0
        assert "not-netlab-test" not in json.loads(done.stdout)["namespaces"]
        assert os.path.exists("/run/netns/not-netlab-test")
    finally:
        subprocess.run(["ip", "netns", "del", "not-netlab-test"], check=True)
