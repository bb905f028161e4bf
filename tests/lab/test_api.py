"""The Python API on real labs: ``with netlab.up(...) as lab`` checks, connects, runs commands,
reads the live state, changes readiness, and is removed whatever ends the block (an exception,
Ctrl-C, SIGTERM)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

import netlab
from tests.lab.host import REPO, HostSnapshot, scenario, snapshot


@pytest.fixture(scope="module")
def lab() -> Iterator[netlab.Lab]:
    before = snapshot()
    with netlab.up(scenario("clusterip.yaml"), mode="nftables", name="api-lab") as live:
        yield live
    assert live.removed
    after = snapshot()
    assert after == before, before.diff(after)


def test_check_runs_the_scenarios_checks_in_the_labs_mode(lab: netlab.Lab) -> None:
    assert (lab.name, lab.mode) == ("api-lab", "nftables")
    results = lab.check()
    assert results.passed, results.report()
    assert [r.name for r in results] == [s.name for s in lab.checks()]
    assert len(results) == 6


def test_connect_reports_the_endpoints_reached(lab: netlab.Lab) -> None:
    web = [p.name for p in lab.state.pods if p.labels.get("app") == "web"]
    result = lab.connect("pod/client-node-1", "service/web:http", expect={"source": "client"})
    assert result.passed, result.failures
    assert sorted(result.reached) == sorted(web)
    assert sum(result.reached.values()) == result.connections
    assert result.expected["endpoints"] == sorted(web)


def test_connect_fails_honestly(lab: netlab.Lab) -> None:
    wrong = lab.connect(
        "node/node-2", "service/web:http", expect={"result": "timeout"}, connections=3
    )
    assert not wrong.passed
    assert wrong.failures == ["expected every connection to be timeout, got 3 connected"]
    with pytest.raises(netlab.ScenarioError) as caught:
        lab.connect("pod/nobody", "service/web:http")
    assert [d.path for d in caught.value.diagnostics] == ["from"]


def test_exec_returns_the_completed_process(lab: netlab.Lab) -> None:
    client = lab.state.pod("netlab", "client-node-1")
    out = lab.exec("pod/netlab/client-node-1", ["ip", "-4", "-o", "addr", "show", "eth0"])
    assert out.returncode == 0, out.stderr
    assert f" {client.ip}/24 " in out.stdout
    failed = lab.exec("external", ["false"])
    assert failed.returncode == 1
    with pytest.raises(subprocess.CalledProcessError):
        lab.exec("node/node-1", ["false"], check=True)
    with pytest.raises(netlab.UsageError, match="unknown target"):
        lab.exec("nowhere/x", ["true"])


def test_status_rules_and_get_read_the_live_lab(lab: netlab.Lab) -> None:
    status = lab.status()
    assert status.proxy == lab.proxy and status.mode == "nftables"
    assert [n.name for n in status.nodes] == ["node-1", "node-2"]
    assert status.to_data()["lab"] == "api-lab"
    assert [s.name for s in netlab.labs()].count("api-lab") == 1
    assert netlab.attach("api-lab").state.services == lab.state.services
    rules = lab.rules("node/node-1", service="web")
    assert "table ip kube-proxy" in rules and "default/web" in rules
    table = lab.get("svc").table()
    assert [row[0] for row in table.cells()] == ["kubernetes", "solo", "web"]


def test_readiness_changes_who_answers(lab: netlab.Lab) -> None:
    web = sorted(p.name for p in lab.state.pods if p.labels.get("app") == "web")
    lab.ready(f"pod/{web[0]}", False)
    try:
        reached = lab.connect("pod/client-node-1", "service/web:http").reached
        assert sorted(reached) == web[1:]
    finally:
        lab.ready(f"pod/{web[0]}", True)
    assert sorted(lab.connect("pod/client-node-1", "service/web:http").reached) == web


def test_an_exception_in_the_block_removes_the_lab(clean_host: HostSnapshot) -> None:
    with pytest.raises(RuntimeError, match="the test's own error"):  # noqa: SIM117
        with netlab.up(scenario("no-endpoints.yaml"), name="api-raises") as lab:
            assert lab.status().status == "up"
            raise RuntimeError("the test's own error")
    assert lab.removed
    with pytest.raises(netlab.UsageError, match="no lab named api-raises"):
        netlab.attach("api-raises")


SCRIPT = """
import sys, time, netlab
with netlab.up({file!r}, name="api-signal"):
    print("up", flush=True)
    time.sleep(60)
print("block left", flush=True)
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_a_signal_during_the_block_removes_the_lab(
    sig: signal.Signals, clean_host: HostSnapshot
) -> None:
    code = SCRIPT.format(file=scenario("no-endpoints.yaml"))
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"up\n"
    time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert b"KeyboardInterrupt" in err  # the script did not catch it; the with block did unwind
    assert b"block left" not in err
    # Python ends on an uncaught KeyboardInterrupt by dying of SIGINT, as a shell expects
    assert proc.returncode == -signal.SIGINT
