"""The lab's cgroups (v2), where the ebpf mode's socket load-balancer is attached.

Cgroup socket programs act on every socket of every process in the cgroup they are attached
to, so netlab never attaches at a cgroup root: each lab gets ``netlab-<lab>`` under the
cgroup v2 mount (``/sys/fs/cgroup/unified`` in the hybrid layout of these hosts), and in it
one cgroup per node, with that node's programs (which also check the socket's namespace).
Only processes netlab starts for a node (node-sourced probes, ``netlab exec LAB node/N``) are
placed in it. Removal detaches every program, moves any process still inside back to the
root (where it came from), and removes the directories.
"""

from __future__ import annotations

import contextlib
import errno
import os

from netlab.errors import LabError, PrerequisiteError
from netlab.kernel import bpf

PREFIX = "netlab-"
ATTACH_TYPES = (
    bpf.BPF_CGROUP_INET4_CONNECT,
    bpf.BPF_CGROUP_UDP4_SENDMSG,
    bpf.BPF_CGROUP_UDP4_RECVMSG,
    bpf.BPF_CGROUP_INET4_GETPEERNAME,
)


def root() -> str | None:
    """Where cgroup v2 is mounted (the first cgroup2 mount), or None."""
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split(" ", 1)[0] == "cgroup2":
                return left.split()[4]
    return None


def require_root() -> str:
    path = root()
    if path is None:
        raise PrerequisiteError(
            "cgroup v2 is not mounted: the ebpf mode's socket load-balancing needs it",
            hint="mount cgroup2 (e.g. mount -t cgroup2 none /sys/fs/cgroup/unified) or boot "
            "with systemd.unified_cgroup_hierarchy",
        )
    return path


def lab_dir(lab: str, base: str | None = None) -> str:
    return os.path.join(base or require_root(), f"{PREFIX}{lab}")


def node_dir(lab: str, node: str, base: str | None = None) -> str:
    return os.path.join(lab_dir(lab, base), node)


def ensure(lab: str, nodes: list[str]) -> None:
    for node in nodes:
        os.makedirs(node_dir(lab, node), exist_ok=True)


def attach(path: str, prog_fd: int, attach_type: int) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        bpf.prog_attach(fd, prog_fd, attach_type, bpf.BPF_F_ALLOW_MULTI)
    finally:
        os.close(fd)


def attached(path: str) -> dict[int, list[int]]:
    """attach type -> IDs of the programs attached to the cgroup ``path``."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return {t: bpf.prog_query(fd, t) for t in ATTACH_TYPES}
    finally:
        os.close(fd)


def detach_all(path: str) -> int:
    """Detach every socket program from ``path``; how many were detached."""
    count = 0
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for t in ATTACH_TYPES:
            for prog_id in bpf.prog_query(fd, t):
                with contextlib.suppress(OSError):
                    prog = bpf.prog_fd_by_id(prog_id)
                    try:
                        bpf.prog_detach(fd, prog, t)
                        count += 1
                    finally:
                        os.close(prog)
    finally:
        os.close(fd)
    return count


def _procs(path: str) -> list[int]:
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


def enter(path: str) -> None:
    """Move the calling process into the cgroup ``path`` (for a child before it execs)."""
    fd = os.open(os.path.join(path, "cgroup.procs"), os.O_WRONLY)
    try:
        os.write(fd, b"0")
    finally:
        os.close(fd)


def remove_lab(lab: str) -> bool:
    """Remove the lab's cgroups (programs detached, processes moved out); False if none."""
    base = root()
    if base is None:
        return False
    top = lab_dir(lab, base)
    if not os.path.isdir(top):
        return False
    for entry in sorted(os.listdir(top)):
        path = os.path.join(top, entry)
        if os.path.isdir(path):
            _remove_one(path, base)
    _remove_one(top, base)
    return True


def _remove_one(path: str, base: str) -> None:
    with contextlib.suppress(OSError):
        detach_all(path)
    for pid in _procs(path):
        # A process netlab placed here and that outlived the lab goes back to the root.
        with contextlib.suppress(OSError), open(os.path.join(base, "cgroup.procs"), "w") as f:
            f.write(str(pid))
    try:
        os.rmdir(path)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise LabError(f"cannot remove cgroup {path}: {exc.strerror}") from exc


def wrap(path: str, argv: list[str]) -> list[str]:
    """``argv`` run in the cgroup ``path``: a shell moves itself there, then execs it (no
    Python code runs between fork and exec)."""
    script = 'echo $$ > "$0/cgroup.procs" && exec "$@"'
    return ["sh", "-c", script, path, *argv]
