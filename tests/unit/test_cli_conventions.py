"""Command-line conventions users already have: help on every option, ``-o`` as kubectl has it,
shell completion, and no traceback ever, even when the reader of the output leaves early."""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from netlab.cli import completers
from netlab.cli.main import EXIT_BROKEN_PIPE, build_parser
from netlab.lab import paths
from netlab.lab.record import LabRecord
from netlab.serial import to_data

ROOT = Path(__file__).resolve().parents[2]
NETLAB = [sys.executable, "-m", "netlab.cli"]
SCENARIO = str(ROOT / "scenarios" / "clusterip.yaml")


def subcommands() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def test_every_option_and_argument_has_help_text() -> None:
    missing = []
    for name, parser in subcommands().items():
        assert parser.description, name
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            if not action.help or action.help == argparse.SUPPRESS:
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")
    assert not missing, f"without help text: {missing}"


@pytest.mark.parametrize("command", ["status", "run", "check", "get"])
def test_table_commands_take_o_and_json(command: str) -> None:
    parser = build_parser()
    positional = {"status": [], "run": ["f.yaml"], "check": ["lab"], "get": ["svc", "lab"]}
    for fmt in ("table", "wide", "json", "yaml"):
        args = parser.parse_args([command, *positional[command], "-o", fmt])
        assert args.output == fmt
    assert parser.parse_args([command, *positional[command]]).output == "table"
    assert parser.parse_args([command, *positional[command], "--json"]).output == "json"


@pytest.mark.parametrize("command", ["validate", "up", "doctor", "cleanup"])
def test_data_commands_take_json_or_yaml(command: str) -> None:
    parser = build_parser()
    positional = {"validate": ["f.yaml"], "up": ["f.yaml"], "doctor": [], "cleanup": []}
    assert parser.parse_args([command, *positional[command], "-o", "yaml"]).output == "yaml"
    assert parser.parse_args([command, *positional[command], "--json"]).output == "json"
    assert parser.parse_args([command, *positional[command]]).output is None
    with pytest.raises(SystemExit):
        parser.parse_args([command, *positional[command], "-o", "wide"])


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "--json", SCENARIO],
        ["validate", SCENARIO],
        ["schema"],
        ["--help"],
        ["completion", "bash"],
        ["validate", "-o", "yaml", str(ROOT / "README.md")],
    ],
    ids=["validate-json", "validate", "schema", "help", "completion", "invalid-yaml"],
)
def test_a_reader_that_leaves_early_gets_no_traceback(argv: list[str]) -> None:
    """``netlab validate --json FILE | head -1``: the pipe is closed before netlab writes (it is
    still starting), so its first write fails with EPIPE; it must say nothing and exit 141."""
    proc = subprocess.Popen(
        [*NETLAB, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=60)
    assert err == ""
    # argparse itself ignores a failed write of --help and exits 0; everything else is ours
    assert code == (0 if argv == ["--help"] else EXIT_BROKEN_PIPE)


def test_validate_json_piped_into_head_prints_only_its_first_line() -> None:
    shell = f"{' '.join(NETLAB)} validate --json {SCENARIO} | head -1"
    proc = subprocess.run(
        ["bash", "-c", shell], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert proc.stdout == "{\n"
    assert proc.stderr == ""


def test_completion_scripts_for_bash_and_zsh() -> None:
    bash = subprocess.run(
        [*NETLAB, "completion", "bash"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    assert "complete " in bash and "netlab" in bash and "_ARGCOMPLETE=1" in bash
    zsh = subprocess.run(
        [*NETLAB, "completion", "zsh"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    assert zsh.startswith("#compdef netlab")


def _complete(line: str, tmp_path: Path, entry: str = "") -> list[str]:
    """What the shell gets for ``line`` (argcomplete's protocol, as the scripts speak it)."""
    out = tmp_path / "completions"
    env = {
        **os.environ,
        "_ARGCOMPLETE": "1",
        "COMP_LINE": line,
        "COMP_POINT": str(len(line)),
        "_ARGCOMPLETE_STDOUT_FILENAME": str(out),
    }
    command = [sys.executable, "-c", entry] if entry else [sys.executable, "-m", "netlab.cli"]
    proc = subprocess.run(command, env=env, capture_output=True, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr
    return [c.strip() for c in out.read_text().split("\v") if c.strip()]


def test_tab_completes_commands_and_choices(tmp_path: Path) -> None:
    assert _complete("netlab sta", tmp_path) == ["status"]
    assert _complete("netlab status -o ", tmp_path) == ["table", "wide", "json", "yaml"]
    assert _complete("netlab completion ", tmp_path)[-2:] == ["bash", "zsh"]


@pytest.fixture
def fake_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A state file as a lab writes it, in a state directory of the test's own."""
    from netlab.checks.validate import load_and_validate

    _, state = load_and_validate(ROOT / "scenarios" / "dns.yaml", name="tabby")
    record = LabRecord("tabby", SCENARIO, 0.0, "up", "iptables", state)
    (tmp_path / "tabby").mkdir()
    (tmp_path / "tabby" / paths.STATE_FILE).write_text(json.dumps(to_data(record)))
    (tmp_path / "not-a-lab").mkdir()
    monkeypatch.setattr(paths, "STATE_ROOT", str(tmp_path))
    return "tabby"


def test_completers_read_lab_names_and_targets(fake_lab: str) -> None:
    assert completers.lab_names() == [fake_lab]
    ns = argparse.Namespace(lab=fake_lab)
    assert "node/node-1" in completers.nodes(parsed_args=ns)
    pods = completers.pods(parsed_args=ns)
    assert "pod/netlab/client-node-1" in pods
    assert any(p.startswith("pod/kube-system/coredns-") for p in pods)
    assert completers.targets(parsed_args=ns)[-2:] == ["external", "fabric"]
    assert "kube-system/kube-dns" in completers.services(parsed_args=ns)
    assert {"default", "kube-system", "netlab"} <= set(completers.namespaces(parsed_args=ns))
    nobody = argparse.Namespace(lab="gone")
    assert completers.pods(parsed_args=nobody) == []


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_a_rich_table_with_headers_and_literal_cells() -> None:
    from netlab.cli.output import Out

    screen = _Terminal()
    Out(screen).table(["NAME", "TYPE"], [["[red]web[/red]", "ClusterIP"]], title="services")
    text = screen.getvalue()
    assert "services" in text and "NAME" in text and "TYPE" in text
    assert "[red]web[/red]" in text  # user text is never taken for markup
    assert "─" in text  # a rule under the header, as rich draws it
    pipe = io.StringIO()
    Out(pipe).table(["NAME", "TYPE"], [["web", "ClusterIP"]])
    assert pipe.getvalue() == "NAME   TYPE\nweb    ClusterIP\n"


def test_tab_completes_a_labs_targets(fake_lab: str, tmp_path: Path) -> None:
    """The completers are wired to the arguments: argcomplete's protocol, on a fake lab."""
    root = paths.STATE_ROOT  # the fake lab's state directory (fake_lab points netlab there)
    line = "from netlab.lab import paths; paths.STATE_ROOT = {root!r}\n"
    entry = line.format(root=root) + "from netlab.cli.main import main; main()"

    def complete(words: str) -> list[str]:
        return _complete(words, tmp_path, entry)

    assert complete("netlab status ta") == [fake_lab]
    assert complete(f"netlab exec {fake_lab} node/") == ["node/node-1", "node/node-2"]
    assert "pod/netlab/client-node-1" in complete(f"netlab exec {fake_lab} pod/netlab/")
    assert complete(f"netlab rules {fake_lab} node/node-1 --service kube-system/") == [
        "kube-system/kube-dns"
    ]
    assert complete(f"netlab get svc {fake_lab} -n kube-") == ["kube-system"]


def test_validate_in_a_pipe_starts_without_rich_or_the_explain_layer() -> None:
    """rich is imported to print to a terminal, the trace and explain code for their commands:
    a validation in CI pays neither at start-up."""
    code = (
        "import sys; from netlab.cli.main import main; main(['validate', sys.argv[1]]); "
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith('rich')} | "
        "{m for m in sys.modules if m.startswith('netlab.explain')}))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, SCENARIO], capture_output=True, text=True, check=True
    )
    assert proc.stdout.splitlines()[-1] == "[]", proc.stdout
