"""The command line on a live lab: up, status, exec, rules, check, down; exit statuses."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from netlab.checks.validate import load_and_validate
from netlab.lab.lifecycle import Lab
from tests.lab.host import NETLAB, REPO, HostSnapshot, netlab, scenario, snapshot

LOCAL_DROP = (
    '-A KUBE-EXTERNAL-SERVICES -p tcp -m comment --comment "default/local:http has no local '
    'endpoints" -m addrtype --dst-type LOCAL -m tcp --dport 30081 -j DROP'
)


@pytest.fixture(scope="module")
def live() -> Iterator[str]:
    name = "cli-lab"
    before = snapshot()
    up = netlab("up", scenario("nodeport.yaml"), "--name", name)
    assert up.returncode == 0, up.stderr
    yield name
    down = netlab("down", name)
    assert down.returncode == 0, down.stderr
    after = snapshot()
    assert after == before, before.diff(after)


def test_status_lists_the_lab(live: str) -> None:
    listing = netlab("status", "--json")
    assert live in [lab["lab"] for lab in json.loads(listing.stdout)]
    data = json.loads(netlab("status", live, "--json").stdout)
    assert [n["name"] for n in data["nodes"]] == ["node-1", "node-2"]
    assert [n["ip"] for n in data["nodes"]] == ["192.168.56.11", "192.168.56.12"]
    web = next(s for s in data["services"] if s["name"] == "web")
    assert web["type"] == "NodePort"
    assert web["ports"][0]["nodePort"] == 30080
    kube = next(s for s in data["services"] if s["name"] == "kubernetes")
    assert kube["clusterIP"] == "10.96.0.1"
    pods = {p["name"]: p for p in data["pods"]}
    assert pods["web-a"]["node"] == "node-1"
    assert pods["web-a"]["netns"] == f"{live}-web-a"


def test_exec_runs_inside_the_pod(live: str) -> None:
    out = netlab("exec", live, "pod/web-a", "--", "ip", "-o", "-4", "addr", "show", "eth0")
    assert out.returncode == 0, out.stderr
    assert " 10.244.1.2/24 " in out.stdout
    ext = netlab("exec", live, "external", "--", "ip", "-o", "-4", "addr", "show", "eth0")
    assert " 192.168.56.100/24 " in ext.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_exec_curl_through_the_nodeport_sees_masquerade(live: str) -> None:
    """Cluster policy: node-2 masquerades to the address it forwards from, so the source a
    backend sees depends on where it runs: node-2's own pod (web-b) sees node-2's cni0 gateway,
    node-1's pod (web-a) sees node-2's eth0 address. /whoami tells both in one connection."""
    state = Lab.open(live).state
    dialled = state.node("node-2")
    where = {p.name: p.node for p in state.pods}
    expected_source = {
        name: dialled.gateway if node == dialled.name else dialled.ip
        for name, node in where.items()
        if name in ("web-a", "web-b")
    }
    assert expected_source == {"web-a": "192.168.56.12", "web-b": "10.244.2.1"}
    url = f"http://{dialled.ip}:30080/whoami"
    out = netlab("exec", live, "external", "--", "curl", "-s", "-m", "2", *(["-w", "\n", url] * 20))
    assert out.returncode == 0, out.stderr
    answers = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(answers) == 20
    for answer in answers:
        ip, _, port = answer["clientip"].rpartition(":")
        assert ip == expected_source[answer["hostname"]], answer
        assert port.isdigit(), answer
    # Cluster policy: both endpoints answer (each with probability 1/2 per connection).
    assert {a["hostname"] for a in answers} == {"web-a", "web-b"}


def test_rules_show_kube_proxy_state_as_iptables_save_prints_it(live: str) -> None:
    out = netlab("rules", live, "node/node-1")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert (
        '-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES' in text
    )
    assert "-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000" in text
    assert "-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN" in text
    nat = text[text.index("*nat") :]
    services = [ln for ln in nat.splitlines() if ln.startswith("-A KUBE-SERVICES ")]
    assert services[-1] == (
        '-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be '
        'the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS'
    )
    # default/kubernetes:https, hashed as upstream hashes it.
    assert ":KUBE-SVC-NPX46M4PTMTKRN6Y - [0:0]" in text
    # The Local policy Service's DROP (node-2 has no local endpoint) lives on node-2 only.
    node2 = netlab("rules", live, "node/node-2")
    assert node2.returncode == 0, node2.stderr
    marker = '--comment "default/local:http has no local endpoints"'
    assert [ln for ln in node2.stdout.splitlines() if marker in ln] == [LOCAL_DROP]
    assert LOCAL_DROP not in text.splitlines()
    assert [ln for ln in text.splitlines() if marker in ln] == []


def test_rules_for_one_service(live: str) -> None:
    text = netlab("rules", live, "node/node-1", "--service", "web").stdout
    assert "default/web:http" in text
    assert "default/local:http" not in text
    assert "KUBE-SVC-NPX46M4PTMTKRN6Y" not in text
    assert text.count(":KUBE-SEP-") == 2


def test_check_reruns_the_scenarios_checks(live: str) -> None:
    specs = load_and_validate(scenario("nodeport.yaml"), name=live)[0].lab.checks
    assert specs is not None and len(specs) == 11
    out = netlab("check", live, "--json")
    assert out.returncode == 0, out.stdout
    data = json.loads(out.stdout)
    assert data["lab"] == live
    assert data["passed"] is True
    assert [c["name"] for c in data["checks"]] == [s.name for s in specs]
    assert [c["name"] for c in data["checks"] if not c["passed"]] == []
    assert data["summary"] == {"checks": 11, "passed": 11, "failed": 0}


CHECKS_FROM_ANOTHER_FILE = """\
  checks:
  - name: other-file-by-address
    from: external
    to: node/node-2:30080
    expect: {endpoints: [web-a, web-b]}
  - name: other-file-expects-a-connection
    from: external
    to: {service: local, via: nodePort, node: node-2}
    expect: {endpoints: all}
"""


def test_check_takes_the_checks_from_another_file(live: str, tmp_path: Path) -> None:
    """``netlab check LAB FILE``: the live lab, the other file's checks (one of them wrong)."""
    text = Path(scenario("nodeport.yaml")).read_text()
    head, sep, tail = text.partition("  checks:\n")
    assert sep
    manifests = tail[tail.index("---\n") :]
    other = tmp_path / "other-checks.yaml"
    other.write_text(head + CHECKS_FROM_ANOTHER_FILE + manifests)
    out = netlab("check", live, str(other), "--json")
    assert out.returncode == 1, out.stdout
    data = json.loads(out.stdout)
    assert data["lab"] == live
    assert data["passed"] is False
    assert [(c["name"], c["passed"]) for c in data["checks"]] == [
        ("other-file-by-address", True),
        ("other-file-expects-a-connection", False),
    ]
    failed = data["checks"][1]
    assert failed["observed"]["outcomes"] == {"timeout": failed["connections"]}


def test_unknown_lab_and_bad_targets_exit_2(live: str) -> None:
    assert netlab("down", "no-such-lab").returncode == 2
    bad = netlab("rules", live, "node/node-9")
    assert bad.returncode == 2
    assert "no node node-9" in bad.stderr
    assert netlab("exec", live, "pod/nope", "--", "true").returncode == 2


def test_second_up_of_the_same_lab_is_refused(live: str) -> None:
    again = netlab("up", scenario("nodeport.yaml"), "--name", live)
    assert again.returncode == 4
    assert f"lab {live} is already up" in again.stderr


def test_not_root_exits_3(clean_host: HostSnapshot) -> None:
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv not installed")
    proc = subprocess.run(
        [
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            *NETLAB,
            "run",
            scenario("clusterip.yaml"),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 3, proc.stderr
    assert "needs root" in proc.stderr


def test_two_labs_at_once(clean_host: HostSnapshot) -> None:
    for name in ("twin-a", "twin-b"):
        assert netlab("up", scenario("clusterip.yaml"), "--name", name).returncode == 0
    try:
        for name in ("twin-a", "twin-b"):
            out = netlab("check", name, "--json")
            assert out.returncode == 0, out.stdout
        names = [lab["lab"] for lab in json.loads(netlab("status", "--json").stdout)]
        assert {"twin-a", "twin-b"} <= set(names)
    finally:
        for name in ("twin-a", "twin-b"):
            netlab("down", name)


def test_down_removes_the_lab(clean_host: HostSnapshot) -> None:
    assert netlab("up", scenario("no-endpoints.yaml"), "--name", "going").returncode == 0
    out = netlab("down", "going")
    assert out.returncode == 0
    assert "lab going removed" in out.stdout


def test_get_prints_kubectls_columns(live: str) -> None:
    state = Lab.open(live).state
    out = netlab("get", "svc", live)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    web = next(ln.split() for ln in lines if ln.startswith("web "))
    cluster_ip = state.service("default", "web").cluster_ip
    assert web[:5] == ["web", "NodePort", cluster_ip, "<none>", "80:30080/TCP"]
    wide = netlab("get", "pods", live, "-A", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[:8] == [
        "NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
    ]  # fmt: skip
    web_a = next(ln.split() for ln in wide if " web-a " in ln)
    assert web_a[:5] == ["default", "web-a", "1/1", "Running", "0"]
    assert web_a[6:8] == [state.pod("default", "web-a").ip, "node-1"]
    listed = json.loads(netlab("get", "endpointslices", live, "-o", "json").stdout)
    assert {i["kind"] for i in listed["items"]} == {"EndpointSlice"}
    empty = netlab("get", "pods", live, "-n", "nowhere")
    assert (empty.returncode, empty.stdout) == (0, "")
    assert empty.stderr.strip() == "No resources found in nowhere namespace."


def test_status_and_check_take_o_yaml_and_wide(live: str) -> None:
    import yaml

    data = yaml.safe_load(netlab("status", live, "-o", "yaml").stdout)
    assert data["lab"] == live and data["nodes"][0]["name"] == "node-1"
    wide = netlab("status", live, "-o", "wide")
    assert "NETNS" in wide.stdout and f"{live}-web-a" in wide.stdout
    checked = netlab("check", live, "-o", "wide")
    assert checked.returncode == 0, checked.stdout
    header = next(ln for ln in checked.stdout.splitlines() if ln.startswith("RESULT "))
    assert header.split()[:3] == ["RESULT", "CHECK", "FROM"]
    assert checked.stdout.rstrip().endswith("11/11 checks passed")


FAILING_CHECK = """\
  checks:
  - name: still-answers
    from: external
    to: node/node-1:30080
    expect: {endpoints: [web-a, web-b]}
  - name: wrongly-expects-a-refusal
    from: external
    to: node/node-2:30080
    expect: {result: refused}
"""


def test_run_junit_has_one_case_per_check_and_says_why_one_failed(
    tmp_path: Path, clean_host: HostSnapshot
) -> None:
    from tests.unit.junitxml import validate_junit

    text = Path(scenario("nodeport.yaml")).read_text()
    head, _, tail = text.partition("  checks:\n")
    failing = tmp_path / "failing.yaml"
    failing.write_text(head + FAILING_CHECK + tail[tail.index("---\n") :])
    report = tmp_path / "report.xml"
    out = netlab("run", str(failing), "--name", "junit-lab", "--junit", str(report))
    assert out.returncode == 1, out.stdout + out.stderr
    root = validate_junit(report.read_text())
    cases = root.findall("testsuite/testcase")
    assert [c.get("name") for c in cases] == ["still-answers", "wrongly-expects-a-refusal"]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure is not None and failure.text
    assert "expected every connection to be refused" in failure.text
    assert "expected:\n  result: refused" in failure.text
    assert "observed:\n  outcomes: {connected: 3}" in failure.text
    # A run that cannot build its lab still leaves a report: one error case.
    broken = tmp_path / "broken.yaml"
    broken.write_text(head + "  checks:\n  - {from: pod/ghost, to: service/web:http}\n" + tail)
    out = netlab("run", str(broken), "--junit", str(report))
    assert out.returncode == 2
    root = validate_junit(report.read_text())
    error = root.find("testsuite/testcase/error")
    assert error is not None and error.get("type") == "ScenarioError"
    assert 'pod "ghost" not found' in (error.text or "")
