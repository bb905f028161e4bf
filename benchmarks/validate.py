"""Benchmark: what ``netlab validate`` costs, beside baselines measured in the same run.

1. One ``netlab validate`` command on a shipped scenario (a new process each time, as a user or
   CI runs it), beside the bare interpreter starting and exiting (``python -c pass``), with the
   command's import time and its validation time apart.
2. A file of 5,000 Services (each as ``kubectl create service clusterip`` writes one: a name,
   a selector, port 80 to 8080) and one Deployment of two replicas, validated in-process:
   reading the YAML with positions, the manifests, the cluster model. Beside it, the same text
   read by PyYAML alone: libyaml's C loader (``yaml.load_all`` with ``CSafeLoader``), the floor
   for YAML in Python, and PyYAML's pure-Python loader.
3. Capacity refusals, each a located error: 2147483647 replicas, 600 replicas on 2 nodes, 300
   LoadBalancers for a /24 pool, more NodePorts than 30000-32767 holds.

No root needed; nothing is built. Times are medians of ``--repeat`` runs, CPU time of this
process (the machine is shared; CPU time is what the work costs) and wall time. The parts of
the large file's validation, and PyYAML beside them, are measured with Python's cycle
collector paused, as ``load_and_validate`` pauses it, so that they add up to the whole.
With ``--before DIR`` (a directory holding another netlab package, e.g. ``git archive COMMIT
netlab | tar -x -C DIR``; may be given more than once) the shipped scenario and the large file
are also validated by that netlab, in the same run, as a command and in-process.

    .venv/bin/python benchmarks/validate.py
    .venv/bin/python benchmarks/validate.py --repeat 9 --json -
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from netlab.checks.validate import collector_paused, load_and_validate
from netlab.cluster.build import build_cluster
from netlab.errors import ScenarioError
from netlab.scenario.load import parse_scenario
from netlab.scenario.yamlpos import load_documents

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "clusterip.yaml"
NETLAB = Path(sys.executable).parent / "netlab"

DEPLOYMENT = """\
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
        image: registry.k8s.io/e2e-test-images/agnhost:2.53
        ports: [{containerPort: 8080, name: http}]
"""
SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: svc-{i}
spec:
  selector:
    app: web
  ports:
  - port: 80
    targetPort: 8080
"""


def services_file(count: int) -> str:
    return DEPLOYMENT + "---\n" + "---\n".join(SERVICE.format(i=i) for i in range(count))


def measure(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    """Median CPU and wall seconds of ``fn`` over ``repeat`` runs (after one warm-up run)."""
    fn()
    cpu, wall = [], []
    for _ in range(repeat):
        c, w = time.process_time(), time.perf_counter()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return {"cpu": statistics.median(cpu), "wall": statistics.median(wall)}


def paused(fn: Callable[[], object]) -> Callable[[], object]:
    """``fn`` with the cycle collector paused as ``load_and_validate`` pauses it."""

    def run() -> object:
        with collector_paused():
            return fn()

    return run


def command(argv: list[str], repeat: int) -> dict[str, float]:
    """Median wall and CPU seconds (user + system, of the child) of running ``argv``."""
    subprocess.run(argv, capture_output=True, check=False)
    wall, cpu = [], []
    for _ in range(repeat):
        before = os.times()
        w = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=False)
        wall.append(time.perf_counter() - w)
        after = os.times()
        cpu.append(
            (after.children_user - before.children_user)
            + (after.children_system - before.children_system)
        )
    return {"cpu": statistics.median(cpu), "wall": statistics.median(wall)}


_BEFORE = """\
import json, statistics, sys, time
sys.path.insert(0, sys.argv[1])
from netlab.checks.validate import load_and_validate
load_and_validate(sys.argv[2])  # warm-up, as measure() does
cpu, wall = [], []
for _ in range(int(sys.argv[3])):
    c, w = time.process_time(), time.perf_counter()
    load_and_validate(sys.argv[2])
    cpu.append(time.process_time() - c)
    wall.append(time.perf_counter() - w)
print(json.dumps({"cpu": statistics.median(cpu), "wall": statistics.median(wall)}))
"""


def before(directory: str, text: str, repeat: int) -> dict[str, float]:
    """The same validation by the netlab in ``directory``, in a process of its own."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _BEFORE, directory, f.name, str(repeat)],
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        os.unlink(f.name)
    result: dict[str, float] = json.loads(proc.stdout)
    return result


def refused(text: str) -> Callable[[], object]:
    def run() -> object:
        try:
            load_and_validate_text(text)
        except ScenarioError as exc:
            return exc.diagnostics
        raise AssertionError("accepted")

    return run


def load_and_validate_text(text: str) -> object:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    try:
        return load_and_validate(f.name)
    finally:
        os.unlink(f.name)


def capacity_cases() -> dict[str, str]:
    def deployment(replicas: int) -> str:
        return DEPLOYMENT.replace("replicas: 2", f"replicas: {replicas}")

    lbs = "---\n".join(
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: lb-{i}}}\n"
        "spec: {type: LoadBalancer, selector: {app: web}, ports: [{port: 80}]}\n"
        for i in range(300)
    )
    ports = ", ".join(f"{{name: p{j}, port: {j + 1}}}" for j in range(10))
    node_ports = "---\n".join(
        f"apiVersion: v1\nkind: Service\nmetadata: {{name: np-{i}}}\n"
        f"spec: {{type: NodePort, selector: {{app: web}}, ports: [{ports}]}}\n"
        for i in range(280)
    )
    return {
        "replicas: 2147483647": deployment(2147483647),
        "600 replicas on 2 nodes": deployment(600),
        "300 LoadBalancers, a /24 pool": lbs,
        "2,800 NodePorts (range holds 2,768)": node_ports,
    }


def before_command(directory: str, file: Path) -> list[str]:
    """``netlab validate FILE`` by the netlab in ``directory``, as a command."""
    main = (
        f"import sys; sys.path.insert(0, {directory!r}); from netlab.cli.main import main; "
        f"sys.exit(main(['validate', {str(file)!r}]))"
    )
    return [sys.executable, "-c", main]


def run(repeat: int, count: int, before_dirs: list[str]) -> dict[str, Any]:
    report: dict[str, Any] = {"python": sys.version.split()[0], "load": os.getloadavg()}
    py = sys.executable
    report["command"] = {
        "netlab validate": command([str(NETLAB), "validate", str(SCENARIO)], repeat),
        "baseline: python -c pass": command([py, "-c", "pass"], repeat),
        "imports of the command": command([py, "-c", "import netlab.cli.main"], repeat),
        "validation in-process": measure(lambda: load_and_validate(SCENARIO), repeat),
    }
    for directory in before_dirs:
        report["command"][f"before: the netlab in {directory}"] = command(
            before_command(directory, SCENARIO), repeat
        )
    text = services_file(count)
    scenario = parse_scenario(text, "services.yaml")
    report["services"] = {
        "count": count,
        "bytes": len(text.encode()),
        "netlab: load, validate, cluster model": measure(
            lambda: load_and_validate_text(text), repeat
        ),
        "  of which YAML with positions": measure(
            paused(lambda: load_documents(text, "s")), repeat
        ),
        "  of which manifests (and YAML)": measure(
            paused(lambda: parse_scenario(text, "services.yaml")), repeat
        ),
        "  of which the cluster model": measure(paused(lambda: build_cluster(scenario)), repeat),
        "baseline: PyYAML, libyaml's C loader": measure(
            paused(lambda: list(yaml.load_all(text, Loader=yaml.CSafeLoader))), repeat
        ),
        "baseline: PyYAML, pure-Python loader": measure(
            paused(lambda: list(yaml.load_all(text, Loader=yaml.SafeLoader))),
            max(1, repeat // 3),
        ),
    }
    for directory in before_dirs:
        report["services"][f"before: the netlab in {directory}"] = before(
            directory, text, max(1, repeat // 3)
        )
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(text)
    try:
        report["services command"] = {
            "netlab validate FILE": command([str(NETLAB), "validate", f.name], repeat),
        }
        for directory in before_dirs:
            report["services command"][f"before: the netlab in {directory}"] = command(
                before_command(directory, Path(f.name)), max(1, repeat // 3)
            )
    finally:
        os.unlink(f.name)
    report["refusals"] = {
        name: measure(refused(case), repeat) for name, case in capacity_cases().items()
    }
    return report


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5, help="runs per measurement (median)")
    p.add_argument("--services", type=int, default=5000, help="Services in the large file")
    p.add_argument("--json", metavar="FILE", help="also write the report as JSON (- = stdout)")
    p.add_argument(
        "--before",
        metavar="DIR",
        action="append",
        default=[],
        help="another netlab to compare with (repeatable)",
    )
    args = p.parse_args()
    report = run(args.repeat, args.services, args.before)
    load = ", ".join(f"{x:.2f}" for x in report["load"])
    print(f"python {report['python']}, load average {load}; medians of {args.repeat} runs")
    for section in ("command", "services", "services command", "refusals"):
        print(f"\n{section}")
        for name, value in report[section].items():
            if isinstance(value, dict):
                print(f"  {name:<42} cpu {value['cpu']:7.3f} s   wall {value['wall']:7.3f} s")
            else:
                print(f"  {name:<42} {value}")
    if args.json:
        text = json.dumps(report, indent=2)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
