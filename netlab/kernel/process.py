"""Programs in namespaces: one-shot tools, and the lab's own long-running processes.

Every process a lab starts carries ``NETLAB_LAB=<lab>`` in its environment (its own daemons
also ``NETLAB_DAEMON=<lab>``). Stopping one is always by exact PID, checked against its recorded
start time and that tag, never by name pattern.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass

from netlab.errors import LabError, PrerequisiteError
from netlab.kernel import netns

LAB_ENV = "NETLAB_LAB"
DAEMON_ENV = "NETLAB_DAEMON"


def run(
    netns_name: str | None,
    argv: list[str],
    *,
    input: str | None = None,
    timeout: float = 120,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` inside ``netns_name`` (via ``nsenter --net``); keep its output for errors."""
    full = (
        argv if netns_name is None else ["nsenter", f"--net={netns.path(netns_name)}", "--", *argv]
    )
    try:
        proc = subprocess.run(
            full, input=input, capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError as exc:
        raise PrerequisiteError(
            f"{argv[0]} is not installed", hint="run netlab doctor to see what to install"
        ) from exc
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{argv[0]} did not finish within {timeout:.0f}s") from exc
    if check and proc.returncode != 0:
        where = f" in {netns_name}" if netns_name else ""
        raise LabError(
            f"{' '.join(argv[:3])} failed{where} (exit {proc.returncode})",
            detail=(proc.stderr or proc.stdout).strip(),
        )
    return proc


@dataclass(frozen=True)
class Daemon:
    pid: int
    start_time: int  # field 22 of /proc/PID/stat, to tell a reused PID apart
    name: str


def start_time(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def spawn(
    lab: str, name: str, argv: list[str], log_path: str, ready_timeout: float = 240
) -> Daemon:
    """Start a lab daemon in its own session (Ctrl-C at the terminal does not reach it) and wait
    until it writes ``ready`` on the pipe it is given as its last argument.

    A daemon that dies is seen at once (its end of the pipe closes), so the timeout only bounds a
    live daemon that is slow: generous, because in the emulated VM on a loaded host the agent has
    been measured taking 81 s to serve its pods."""
    read_fd, write_fd = os.pipe()
    env = {**os.environ, LAB_ENV: lab, DAEMON_ENV: lab, "PYTHONUNBUFFERED": "1"}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [*argv, str(write_fd)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            pass_fds=(write_fd,),
            start_new_session=True,
            env=env,
        )
    os.close(write_fd)
    daemon = Daemon(proc.pid, start_time(proc.pid) or 0, name)
    try:
        line = _read_line(read_fd, ready_timeout)
    finally:
        os.close(read_fd)
    if line != "ready":
        stop(daemon, lab)
        with contextlib.suppress(OSError), open(log_path) as f:
            tail = f.read()[-2000:]
        raise LabError(f"{name} did not start", detail=line or tail)
    return daemon


def _read_line(fd: int, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    data = b""
    while b"\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            return ""
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def _env_value(pid: int, key: str) -> str | None:
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            env = f.read().split(b"\0")
    except OSError:
        return None
    prefix = f"{key}=".encode()
    for item in env:
        if item.startswith(prefix):
            return item[len(prefix) :].decode(errors="replace")
    return None


def lab_of(pid: int) -> str | None:
    """The ``NETLAB_LAB`` tag in a process's environment, if any."""
    return _env_value(pid, LAB_ENV)


def _netns_inode(pid: int) -> int | None:
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


def find_tagged(lab: str | None = None, netns_inodes: Collection[int] | None = None) -> list[int]:
    """PIDs whose environment carries the lab tag (any lab if ``lab`` is None); never ourselves.

    With ``netns_inodes`` (the lab's namespaces), a tag alone is not enough: the process must
    be in one of them, or be one of the lab's own daemons. A tag inherited by something that
    left the lab (a program started from a ``netlab exec`` shell that moved elsewhere) is spared.
    """
    out = []
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        pid = int(entry)
        tag = lab_of(pid)
        if tag is None or (lab is not None and tag != lab):
            continue
        if (
            netns_inodes is not None
            and _env_value(pid, DAEMON_ENV) != tag
            and _netns_inode(pid) not in netns_inodes
        ):
            continue
        out.append(pid)
    return out


def stop(daemon: Daemon, lab: str, grace: float = 2.0) -> bool:
    """Stop exactly this daemon: same PID, same start time, same lab tag."""
    if start_time(daemon.pid) != daemon.start_time or lab_of(daemon.pid) != lab:
        return False
    return kill_pid(daemon.pid, grace)


def kill_pid(pid: int, grace: float = 2.0) -> bool:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.01)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not _alive(pid):
            break
        time.sleep(0.01)
    return True


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]
