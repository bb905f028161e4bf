"""Network namespaces: create, enter, tag, list and remove them, fast and from threads.

A namespace is made the way ``ip netns add`` makes it (``unshare(CLONE_NEWNET)`` and a bind
mount on ``/run/netns/NAME``), but from a thread of this process instead of a new process: a
thread's network namespace is its own, so one worker thread can create a namespace, open netlink
sockets inside it, and move on. That is what makes 1,000 pods cost about a second instead of the
tens of seconds of a process (or ``pyroute2.netns.create``) per namespace.

The process's main thread never changes namespace; only worker threads do, and
:func:`assert_not_host` guards every write that must not land in the host's namespace.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import threading
from collections.abc import Iterator

NETNS_DIR = "/run/netns"
CLONE_NEWNET = 0x40000000
MS_BIND = 4096
MS_REC = 16384
MS_SHARED = 1 << 20
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_void_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.unshare.argtypes = [ctypes.c_int]

# The namespace this process started in (the main thread's), kept open to return to.
_HOST_FD = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
_HOST_NETNS_INODE = os.fstat(_HOST_FD).st_ino
_dir_lock = threading.Lock()
_dir_ready = False


def _check(rc: int, what: str) -> None:
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def path(name: str) -> str:
    return f"{NETNS_DIR}/{name}"


def exists(name: str) -> bool:
    return os.path.exists(path(name))


def list_all() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def ensure_dir() -> None:
    """Make ``/run/netns`` a shared mount point, exactly as iproute2 does on first use.

    Shared propagation lets the bind mounts be seen from other mount namespaces (``ip netns``
    and ``ip netns exec`` rely on it). Nothing else on the host is touched.
    """
    global _dir_ready
    with _dir_lock:
        if _dir_ready:
            return
        os.makedirs(NETNS_DIR, mode=0o755, exist_ok=True)
        d = NETNS_DIR.encode()
        if _libc.mount(b"", d, b"none", MS_SHARED | MS_REC, None) != 0:
            if ctypes.get_errno() != errno.EINVAL:
                _check(-1, "mount --make-shared /run/netns")
            _check(_libc.mount(d, d, b"none", MS_BIND | MS_REC, None), "mount --bind /run/netns")
            _check(
                _libc.mount(b"", d, b"none", MS_SHARED | MS_REC, None),
                "mount --make-shared /run/netns",
            )
        _dir_ready = True


def inode(name: str) -> int | None:
    """The namespace's inode (as ``/proc/PID/ns/net`` shows it), or None if it is gone."""
    try:
        return os.stat(path(name)).st_ino
    except OSError:
        return None


def current_inode() -> int:
    return os.stat(f"/proc/self/task/{threading.get_native_id()}/ns/net").st_ino


def assert_not_host() -> None:
    """Refuse to go on if this thread is in the host's own network namespace."""
    if current_inode() == _HOST_NETNS_INODE:
        raise RuntimeError("refusing to change the host's network namespace")


def create_and_enter(name: str) -> None:
    """Create namespace ``name`` and move the calling (worker) thread into it."""
    if threading.current_thread() is threading.main_thread():
        raise RuntimeError("namespaces are created from worker threads only")
    ensure_dir()
    target = path(name)
    fd = os.open(target, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0)
    os.close(fd)
    try:
        _check(_libc.unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET)")
        src = f"/proc/self/task/{threading.get_native_id()}/ns/net".encode()
        _check(_libc.mount(src, target.encode(), b"none", MS_BIND, None), f"bind mount {target}")
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(target)
        raise


def enter(name_or_fd: str | int) -> None:
    """Move the calling worker thread into a namespace (by name or open fd)."""
    if threading.current_thread() is threading.main_thread():
        raise RuntimeError("only worker threads change namespace")
    if isinstance(name_or_fd, int):
        _check(_libc.setns(name_or_fd, CLONE_NEWNET), "setns")
        return
    fd = os.open(path(name_or_fd), os.O_RDONLY)
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), f"setns {name_or_fd}")
    finally:
        os.close(fd)


def enter_host() -> None:
    """Return the calling worker thread to the namespace this process started in."""
    enter(_HOST_FD)


@contextlib.contextmanager
def inside(name: str) -> Iterator[None]:
    """Run a block with the current worker thread inside ``name``, then return to the host."""
    enter(name)
    try:
        yield
    finally:
        enter_host()


def open_fd(name: str) -> int:
    return os.open(path(name), os.O_RDONLY | os.O_CLOEXEC)


def remove(name: str) -> bool:
    """Unmount and unlink ``/run/netns/name``; the kernel frees the namespace when unused."""
    target = path(name)
    if not os.path.exists(target):
        return False
    if _libc.umount2(target.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise OSError(err, f"umount {target}: {os.strerror(err)}")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(target)
    return True
