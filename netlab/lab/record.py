"""A lab's record: its claimed name, its state directory and the state file.

The state file (``/run/netlab/<lab>/state.json``) is written before anything is created and
records the desired state, every namespace planned and every process started, so ``status``,
``rules``, ``exec`` and ``down`` need no scenario file. ``/run`` is a tmpfs, like ``/run/netns``:
both vanish together at reboot. Independently of the file, every namespace carries its lab's tag
(``lo``'s alias) and every process the ``NETLAB_LAB`` variable, so ``cleanup`` finds leftovers of a
lab whose state file was lost.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field

from netlab.cluster.state import ClusterState
from netlab.errors import LabError, UsageError
from netlab.kernel import process
from netlab.lab import cloud
from netlab.lab.paths import STATE_FILE, STATE_ROOT
from netlab.scenario.labschema import LAB_NAME_HINT, lab_name_problem
from netlab.serial import from_data, to_data

STATE_VERSION = 1


@dataclass
class LabRecord:
    """The state file."""

    name: str
    scenario: str
    created: float
    status: str  # "building" | "up"
    mode: str
    cluster: ClusterState
    netns: list[str] = field(default_factory=list)
    daemons: list[process.Daemon] = field(default_factory=list)
    backend: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    load_balancers: list[cloud.Backends] = field(default_factory=list)
    version: int = STATE_VERSION
    generation: int = 0  # counts writes: another process's change shows as a new number


def state_dir(name: str) -> str:
    """The lab's own directory; a name that is not a lab name never becomes a path."""
    problem = lab_name_problem(name)
    if problem:
        raise UsageError(problem, hint=LAB_NAME_HINT)
    return os.path.join(STATE_ROOT, name)


def claim(name: str) -> None:
    """Take the lab's name: its state directory, made exclusively so two runs cannot share it."""
    os.makedirs(STATE_ROOT, exist_ok=True)
    try:
        os.mkdir(state_dir(name))
    except FileExistsError:
        raise LabError(f"lab {name} is already up", hint=f"run: netlab down {name}") from None


def write_record(record: LabRecord) -> None:
    d = state_dir(record.name)
    os.makedirs(d, exist_ok=True)
    record.generation += 1
    tmp = os.path.join(d, STATE_FILE + ".tmp")
    with open(tmp, "w") as f:
        json.dump(to_data(record), f)
    os.replace(tmp, os.path.join(d, STATE_FILE))


def read_record(name: str) -> LabRecord | None:
    try:
        with open(os.path.join(state_dir(name), STATE_FILE)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    if data.get("version") != STATE_VERSION:
        return None
    return from_data(LabRecord, data)


def list_labs() -> list[LabRecord]:
    try:
        names = sorted(os.listdir(STATE_ROOT))
    except FileNotFoundError:
        return []
    return [r for n in names if not lab_name_problem(n) and (r := read_record(n)) is not None]


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Hold off SIGINT/SIGTERM/SIGHUP while tearing down, so a second Ctrl-C (or a closed
    terminal) cannot leave half a lab."""
    old = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        for s in old:
            signal.signal(s, signal.SIG_IGN)
    except ValueError:  # not the main thread
        old = {}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


LOCK_FILE = "change.lock"


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """Hold the lab's change lock: one process at a time changes a lab (an exclusive flock on
    a file in its state directory, released however the process ends)."""
    try:
        fd = os.open(os.path.join(state_dir(name), LOCK_FILE), os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:
        raise LabError(
            f"lab {name} was removed meanwhile", hint="netlab status lists the labs that are up"
        ) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)
