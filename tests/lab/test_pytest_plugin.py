"""The pytest plugin as another team uses it: a small external test file, run by pytest in its
own process through ``pytester`` (the plugin loaded by its entry point, as when installed).

It passes when the Services behave, fails honestly when a check fails, runs the suite in another
mode with ``--netlab-mode``, keeps a failed test's lab with ``--netlab-keep-on-failure`` and
says how to reach it, and otherwise leaves the host exactly as it found it.
"""

from __future__ import annotations

import re

import pytest

from tests.lab.host import HostSnapshot, netlab

pytest_plugins = ["pytester"]

SCENARIO = """\
apiVersion: netlab.dev/v1alpha1
kind: Lab
metadata: {name: teamweb}
spec:
  nodes: 2
  proxy: {mode: iptables}
  checks:
  - name: balanced
    from: pod/client-node-1
    to: service/web:http
    expect: {endpoints: all, source: client}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: registry.k8s.io/e2e-test-images/agnhost:2.47
        ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
"""

TESTS = """\
import pytest

pytestmark = pytest.mark.netlab(scenario="web.yaml", mode="iptables")


def test_web_is_balanced(netlab_lab, request):
    expected_mode = request.config.getoption("netlab_mode") or "iptables"
    assert netlab_lab.mode == expected_mode
    results = netlab_lab.check()
    assert results.passed, results.report()
    reached = netlab_lab.connect("pod/client-node-1", "service/web:http").reached
    assert len(reached) == 2 and sum(reached.values()) >= 10


def test_web_refuses(netlab_lab):
    # Wrong on purpose: web has endpoints, so connections are accepted, not refused.
    result = netlab_lab.connect(
        "pod/client-node-2", "service/web:http", expect={"result": "refused"}
    )
    assert result.passed, "\\n".join(result.failures)
"""


@pytest.fixture
def team_suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", raising=False)
    pytester.makefile(".yaml", web=SCENARIO)
    pytester.makepyfile(test_team=TESTS)
    return pytester


def test_passes_and_fails_honestly_in_another_mode_leaving_nothing(
    team_suite: pytest.Pytester, clean_host: HostSnapshot
) -> None:
    result = team_suite.runpytest_subprocess("-p", "no:cacheprovider", "--netlab-mode", "nftables")
    result.assert_outcomes(passed=1, failed=1)
    out = result.stdout.str()
    assert "expected every connection to be refused, got 3 connected" in out
    assert "labs kept for inspection" not in out
    # clean_host: every namespace, rule, process and state file is gone


def test_keep_on_failure_leaves_the_lab_and_says_how_to_reach_it(
    team_suite: pytest.Pytester, clean_host: HostSnapshot
) -> None:
    result = team_suite.runpytest_subprocess(
        "-p", "no:cacheprovider", "--netlab-keep-on-failure", "-k", "refuses"
    )
    result.assert_outcomes(failed=1, deselected=1)
    out = result.stdout.str()
    found = re.search(r"its lab (teamweb-[0-9a-f]{6}) is still up", out)
    assert found, out
    lab = found.group(1)
    try:
        for command in (f"netlab status {lab}", f"netlab down {lab}", f"netlab exec {lab} pod/"):
            assert command in out, command
        status = netlab("status", lab, "--json")
        assert status.returncode == 0, status.stderr
    finally:
        down = netlab("down", lab)
    assert down.returncode == 0, down.stderr
