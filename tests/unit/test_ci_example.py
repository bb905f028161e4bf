"""The GitHub Actions example in docs/ stays runnable: all four modes, the Debian packages
scripts/setup installs, and netlab command lines that netlab's own parser accepts."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import yaml

from netlab.cli.main import build_parser
from netlab.scenario.labschema import PROXY_MODES

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "docs" / "examples" / "netlab-scenarios.yml"


def workflow() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def steps() -> list[dict[str, Any]]:
    job = workflow()["jobs"]["scenarios"]
    result: list[dict[str, Any]] = job["steps"]
    return result


def test_a_matrix_of_the_four_kube_proxy_modes_on_a_stock_ubuntu_runner() -> None:
    job = workflow()["jobs"]["scenarios"]
    assert job["runs-on"].startswith("ubuntu-")
    assert job["strategy"]["matrix"]["mode"] == ["iptables", "nftables", "ipvs", "userspace"]
    assert set(job["strategy"]["matrix"]["mode"]) <= set(PROXY_MODES)
    assert job["strategy"]["fail-fast"] is False


def test_it_installs_what_scripts_setup_installs_and_loads_ipvs() -> None:
    setup = (ROOT / "scripts" / "setup").read_text()
    m = re.search(r"^debs=\(([^)]*)\)", setup, re.M)
    assert m, "scripts/setup lists its Debian packages as debs=(...)"
    wanted = set(m.group(1).split())
    runs = "\n".join(s.get("run", "") for s in steps())
    installed = set()
    for line in runs.splitlines():
        if "apt-get install" in line:
            installed |= {w for w in line.split() if not w.startswith("-")} - {
                "sudo",
                "apt-get",
                "install",
            }
    assert wanted <= installed, wanted - installed
    assert re.search(r"modprobe -a .*\bip_vs\b", runs)
    assert "cleanup" in runs


def test_every_netlab_command_line_parses() -> None:
    parser = build_parser()
    found = 0
    for step in steps():
        script = step.get("run", "").replace("${{ matrix.mode }}", "nftables")
        for line in script.splitlines():
            words = shlex.split(line.strip().rstrip("|").replace("|| status=1", ""))
            if '"$NETLAB"' not in line:
                continue
            found += 1
            argv = []
            for word in words[words.index("$NETLAB") + 1 :]:
                argv.append("scenario.yaml" if word.rstrip(";") == "$f" else word.rstrip(";"))
                if word.endswith(";"):  # the shell command ends here
                    break
            args = parser.parse_args(argv)
            assert args.command in {"doctor", "validate", "run", "cleanup"}
            if args.command == "run":
                assert args.mode == "nftables" and args.junit
    assert found >= 4
