"""Generate, or check, the command output shown in the tutorial (docs/tutorial.md, docs/zh/).

Every ``console`` block of the tutorial is a script a reader can type: lines starting with ``$ ``
are commands, the rest is their output. This tool runs each file's commands in order, from the
repository, as root (they build real labs) and puts what they printed under them (``--write``),
or says which blocks no longer match what netlab prints (``--check``, the default; a test runs
it). A block after an ``<!-- vm -->`` line runs in the throwaway VM (IPVS: docs/ipvs-vm.md).

Output that varies from run to run is compared normalised: ephemeral and masquerade ports,
timings, dates, counters, connection states. The repository's own path is printed relative to
it, as the commands are written. Which endpoint a connection reaches is the kernel's random
choice, so the tutorial's traces name the one they want (``netlab trace ... --endpoint POD``).

    sudo scripts/tutorial --write           # regenerate every block (host and VM)
    sudo scripts/tutorial                   # check them
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
FILES = (REPO / "docs" / "tutorial.md", REPO / "docs" / "zh" / "tutorial.md")
VM_MARK = "<!-- vm -->"
RESULT_MARK = "TUTORIAL-BLOCK-RESULT "


@dataclass
class Block:
    start: int  # line index of the opening fence
    end: int  # line index of the closing fence
    commands: list[str]
    shown: list[str]  # the lines between the fences, as the file has them
    vm: bool

    def outputs(self) -> str:
        return "\n".join(self.shown)


def blocks(lines: list[str]) -> list[Block]:
    out: list[Block] = []
    i = 0
    while i < len(lines):
        if lines[i].strip() == "```console":
            j = i + 1
            while j < len(lines) and lines[j].strip() != "```":
                j += 1
            body = lines[i + 1 : j]
            commands = [ln[2:] for ln in body if ln.startswith("$ ")]
            vm = i > 0 and lines[i - 1].strip() == VM_MARK
            out.append(Block(i, j, commands, body, vm))
            i = j
        i += 1
    return out


def run(command: str) -> str:
    """One command as a reader runs it (netlab on PATH), its output and a non-zero status."""
    env = {**os.environ, "PATH": f"{REPO / '.venv' / 'bin'}:{os.environ.get('PATH', '')}"}
    env.pop("NETLAB_DEBUG", None)
    t0 = time.monotonic()
    proc = subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
        check=False,
    )
    if os.environ.get("TUTORIAL_TIMES"):
        print(f"{time.monotonic() - t0:6.1f}s  {command}", file=sys.stderr)
    # The repository's own path is shown relative to it, as the commands are written.
    text = proc.stdout.rstrip("\n").replace(f"{REPO}/", "")
    if proc.returncode:
        text += f"\n# exit status {proc.returncode}"
        print(f"note: {command!r} exited {proc.returncode}", file=sys.stderr)
    return text


def render(commands: Iterable[str], outputs: dict[str, str] | None = None) -> list[str]:
    """A console block's body: each command, then what it printed (run now, or taken from
    ``outputs``)."""
    body: list[str] = []
    for command in commands:
        body.append(f"$ {command}")
        output = outputs[command] if outputs is not None else run(command)
        body += output.splitlines() if output else []
    return body


def session(all_blocks: list[Block]) -> dict[str, str]:
    """The VM's blocks run as one session, each distinct command once (in order of first
    appearance, ``netlab down`` last): the English and Chinese IPVS sections differ only in
    ``--lang``, and in the emulated VM every lab and command costs seconds."""
    commands = list(dict.fromkeys(c for b in all_blocks for c in b.commands))
    downs = [c for c in commands if c.startswith("netlab down ")]
    return {c: run(c) for c in [*(c for c in commands if c not in downs), *downs]}


def stable_ports() -> set[int]:
    """Ports that are the same in every run: every Service, target and NodePort of the shipped
    scenarios, and the userspace proxy's ports (derived from the Service names)."""
    sys.path.insert(0, str(REPO))
    from netlab.checks.validate import load_and_validate
    from netlab.proxy.servicemap import node_view
    from netlab.proxy.userspace.render import portals

    ports: set[int] = set()
    for path in sorted((REPO / "scenarios").glob("*.yaml")):
        _, state = load_and_validate(str(path))
        for svc in state.services:
            for p in svc.ports:
                ports |= {p.port, p.node_port}
            ports.add(svc.health_check_node_port)
        for sl in state.slices:
            ports |= {p.port for p in sl.ports}
        for node in state.nodes:
            ports |= {p.proxy_port for p in portals(node_view(state, node.name))}
    return ports


_ADDR_PORT = re.compile(r"\b(\d{1,3}(?:\.\d{1,3}){3})([:.])(\d{4,5})\b")
_VARYING = (
    (re.compile(r"\b\d+\.\d+s\b"), "N.NNs"),
    (re.compile(r"\[\d+:\d+\]"), "[N:N]"),
    (re.compile(r"^# (Generated|Completed) .*$", re.M), "# \\1"),
    (re.compile(r"\b\d+ more packets\b"), "N more packets"),
    (re.compile(r"counter packets \d+ bytes \d+"), "counter packets N bytes N"),
    (re.compile(r"\b\d+ packets? captured\b"), "N packets captured"),
    # Cilium's conntrack entries: when they expire (seconds of the host's monotonic clock).
    (re.compile(r"expires=\d+ \(remaining: \d+ sec\(s\)\)"), "expires=N (remaining: N sec(s))"),
    (re.compile(r"^\d\d:\d\d:\d\d\.\d{6} ", re.M), "HH:MM:SS.ssssss "),  # tcpdump
    (re.compile(r"\b(seq|ack|TS val|ecr) \d+"), "\\1 N"),
    (re.compile(r"(Masq|Local|Tunnel|Route)(\s+\d+)\s+\d+\s+\d+\s*$", re.M), "\\1\\2 N N"),
    (
        re.compile(r"^(tcp|udp) +(\w+ +)?(ESTABLISHED|TIME_WAIT|CLOSE|SYN_SENT|FIN_WAIT)\b", re.M),
        "\\1 STATE",
    ),
    (
        re.compile(r"\b(ESTABLISHED|TIME_WAIT|CLOSE|SYN_SENT|FIN_WAIT|SYN_RECV|CLOSE_WAIT)\b"),
        "STATE",
    ),
)


def normalise(text: str, stable: set[int]) -> str:
    def port(m: re.Match[str]) -> str:
        value = int(m.group(3))
        return m.group(0) if value in stable or value < 1024 else f"{m.group(1)}{m.group(2)}PORT"

    text = _ADDR_PORT.sub(port, text)
    for pattern, repl in _VARYING:
        text = pattern.sub(repl, text)
    return "\n".join(ln.rstrip() for ln in text.splitlines())


def host_blocks(path: Path) -> list[Block]:
    return [b for b in blocks(path.read_text().splitlines()) if not b.vm]


def vm_blocks(path: Path) -> list[Block]:
    return [b for b in blocks(path.read_text().splitlines()) if b.vm]


def regenerate(path: Path, which: str, vm_bodies: list[list[str]] | None = None) -> None:
    """Rewrite the file's blocks: ``host`` ones by running them here, ``vm`` ones from
    ``vm_bodies`` (what the VM printed)."""
    with labs_removed():
        _regenerate(path, which, vm_bodies)


def _regenerate(path: Path, which: str, vm_bodies: list[list[str]] | None) -> None:
    lines = path.read_text().splitlines()
    new: list[str] = []
    last = 0
    vm_iter = iter(vm_bodies or [])
    for b in blocks(lines):
        if (b.vm and which == "host") or (not b.vm and which == "vm"):
            continue
        new += lines[last : b.start + 1]
        new += next(vm_iter) if b.vm else render(b.commands)
        last = b.end
    new += lines[last:]
    path.write_text("\n".join(new) + "\n")


@contextlib.contextmanager
def labs_removed() -> Iterator[None]:
    """Whatever happens in the blocks, the labs they brought up are gone afterwards."""
    from netlab.lab.record import list_labs

    before = {r.name for r in list_labs()}
    try:
        yield
    finally:
        for r in list_labs():
            if r.name not in before:
                run(f"netlab down {r.name}")


def check(paths: Iterable[Path], vm: bool) -> list[str]:
    """Run the blocks (the VM's ones when ``vm``) and say which differ from the files."""
    stable = stable_ports()
    problems = []
    with labs_removed():
        problems = _check(paths, vm, stable)
    return problems


def _check(paths: Iterable[Path], vm: bool, stable: set[int]) -> list[str]:
    problems = []
    paths = [p.resolve() for p in paths]
    outputs = session([b for p in paths for b in vm_blocks(p)]) if vm else None
    for path in paths:
        for b in vm_blocks(path) if vm else host_blocks(path):
            got = normalise("\n".join(render(b.commands, outputs)), stable)
            want = normalise(b.outputs(), stable)
            if got != want:
                diff = "\n".join(
                    difflib.unified_diff(
                        want.splitlines(), got.splitlines(), "tutorial", "netlab", lineterm=""
                    )
                )
                rel = path.relative_to(REPO)
                problems.append(f"{rel}:{b.start + 1}: the block no longer matches:\n{diff}")
    return problems


def _vm_run(paths: list[Path]) -> dict[str, list[list[str]]]:
    """Every VM block of ``paths``, run in one VM; its bodies per file."""
    from tests.tooling import vm

    kernel = vm.prepare()
    argv = [sys.executable, "-m", "tests.tooling.tutorial", "--emit-vm", *map(str, paths)]
    result = vm.run(argv, 3000, {"PYTHONUNBUFFERED": "1"}, cwd=REPO, kernel=kernel)
    if result.returncode != 0:
        raise SystemExit(f"the VM run failed ({result.returncode}):\n{result.output}")
    out: dict[str, list[list[str]]] = {}
    for line in result.output.splitlines():
        if line.startswith(RESULT_MARK):
            item = json.loads(line[len(RESULT_MARK) :])
            out.setdefault(item["file"], []).append(item["body"])
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="scripts/tutorial", description=__doc__.split("\n\n")[0])
    p.add_argument("--write", action="store_true", help="regenerate the blocks")
    p.add_argument("--host-only", action="store_true", help="leave the VM's blocks alone")
    p.add_argument("--emit-vm", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("files", nargs="*", type=Path, default=list(FILES))
    args = p.parse_args(argv)
    if args.emit_vm:  # inside the VM: run its blocks, print the bodies
        with labs_removed():
            outputs = session([b for p in args.files for b in vm_blocks(p)])
        for path in args.files:
            for b in vm_blocks(path):
                body = render(b.commands, outputs)
                print(RESULT_MARK + json.dumps({"file": str(path), "body": body}), flush=True)
        return 0
    if args.write:
        for path in args.files:
            regenerate(path, "host")
        if not args.host_only and any(vm_blocks(p) for p in args.files):
            bodies = _vm_run(list(args.files))
            for path in args.files:
                regenerate(path, "vm", bodies.get(str(path), []))
        return 0
    problems = check(args.files, vm=False)
    for problem in problems:
        print(problem)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
