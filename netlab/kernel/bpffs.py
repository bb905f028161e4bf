"""The lab's own BPF file system, where its pinned maps live.

These hosts mount no bpffs, and a lab must not borrow someone else's: each lab mounts one in a
directory of its own state dir (``/run/netlab/<lab>/bpffs``), never over an existing mount,
and unmounts it on ``down`` and ``cleanup``. Unmounting drops every pin in it; a map lives on
only while a loaded program still uses it, and those go with the lab's namespaces and cgroups.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os

from netlab.errors import LabError, PrerequisiteError

BPF_FS_MAGIC = 0xCAFE4A11
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_void_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def mounts(fstype: str = "bpf") -> list[str]:
    """Mount points of file systems of ``fstype`` (from /proc/self/mountinfo)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split(" ", 1)[0] == fstype:
                out.append(left.split()[4].replace("\\040", " "))
    return out


def is_mounted(path: str) -> bool:
    return os.path.realpath(path) in {os.path.realpath(p) for p in mounts()}


def mount(path: str) -> None:
    """Mount a fresh bpffs on ``path`` (made if missing). Refuses a path that already is a
    mount point of any kind."""
    os.makedirs(path, mode=0o700, exist_ok=True)
    if os.path.ismount(path):
        if is_mounted(path):
            return  # ours already (the path is inside the lab's own directory)
        raise LabError(f"{path} is already a mount point", hint="netlab mounts its own bpffs there")
    if _libc.mount(b"bpf", path.encode(), b"bpf", 0, b"mode=0700") != 0:
        err = ctypes.get_errno()
        if err in (errno.ENODEV, errno.EPERM):
            raise PrerequisiteError(
                f"cannot mount a BPF file system ({os.strerror(err)})",
                hint="the ebpf mode needs root and a kernel with bpffs (CONFIG_BPF_SYSCALL)",
            )
        raise LabError(f"mount -t bpf {path}: {os.strerror(err)}")


def unmount(path: str) -> bool:
    """Unmount the bpffs on ``path`` (lazily, as busy pins may still be open) and remove the
    directory; False if nothing was mounted there."""
    if not is_mounted(path):
        return False
    if _libc.umount2(path.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise LabError(f"umount {path}: {os.strerror(err)}")
    with contextlib.suppress(OSError):
        os.rmdir(path)
    return True


def mounted_under(prefix: str) -> list[str]:
    """bpffs mount points inside ``prefix`` (a lab's state directory)."""
    base = os.path.realpath(prefix).rstrip("/") + "/"
    return [p for p in mounts() if os.path.realpath(p).startswith(base)]
