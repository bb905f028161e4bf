"""The bpf(2) system call from Python: map reads and writes (one element or in bulk), pinning,
test runs of programs on crafted packets, cgroup attachments, and object information.

Each command fills the part of ``union bpf_attr`` it uses (include/uapi/linux/bpf.h), laid out
here with ``struct``; every failure is an ``OSError`` carrying the kernel's errno.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
from collections.abc import Iterator
from dataclasses import dataclass

# enum bpf_cmd
BPF_MAP_LOOKUP_ELEM = 1
BPF_MAP_UPDATE_ELEM = 2
BPF_MAP_DELETE_ELEM = 3
BPF_MAP_GET_NEXT_KEY = 4
BPF_PROG_LOAD = 5
BPF_OBJ_PIN = 6
BPF_OBJ_GET = 7
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_TEST_RUN = 10
BPF_PROG_GET_NEXT_ID = 11
BPF_MAP_GET_NEXT_ID = 12
BPF_PROG_GET_FD_BY_ID = 13
BPF_MAP_GET_FD_BY_ID = 14
BPF_OBJ_GET_INFO_BY_FD = 15
BPF_PROG_QUERY = 16
BPF_MAP_LOOKUP_BATCH = 24
BPF_MAP_UPDATE_BATCH = 26
BPF_MAP_DELETE_BATCH = 27

# map update flags
BPF_ANY = 0
BPF_NOEXIST = 1
BPF_EXIST = 2

# enum bpf_map_type (the ones netlab's programs use)
BPF_MAP_TYPE_HASH = 1
BPF_MAP_TYPE_ARRAY = 2
BPF_MAP_TYPE_LRU_HASH = 9
BPF_MAP_TYPE_LPM_TRIE = 11

# enum bpf_attach_type (cgroup socket address hooks)
BPF_CGROUP_INET4_CONNECT = 10
BPF_CGROUP_UDP4_SENDMSG = 14
BPF_CGROUP_UDP4_RECVMSG = 19
BPF_CGROUP_INET4_GETPEERNAME = 29
BPF_F_ALLOW_MULTI = 1 << 1

# Map types without batch operations answer one of these (ENOTSUPP is kernel-internal, 524).
ENOTSUPP = 524
_NO_BATCH = (errno.EINVAL, ENOTSUPP, errno.EOPNOTSUPP)

_SYSCALL_NR = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "ppc64le": 361, "s390x": 351}
_ATTR_SIZE = 144
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def _nr() -> int:
    nr = _SYSCALL_NR.get(platform.machine())
    if nr is None:
        raise OSError(errno.ENOSYS, f"bpf(2): unknown syscall number on {platform.machine()}")
    return nr


def bpf(cmd: int, attr: ctypes.Array[ctypes.c_char]) -> int:
    """bpf(cmd, attr, size); the result, or OSError."""
    ret = int(
        _libc.syscall(ctypes.c_long(_nr()), ctypes.c_int(cmd), attr, ctypes.c_uint(len(attr)))
    )
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"bpf({cmd}): {os.strerror(err)}")
    return ret


def _attr(fmt: str, *values: int) -> ctypes.Array[ctypes.c_char]:
    buf = ctypes.create_string_buffer(_ATTR_SIZE)
    struct.pack_into(fmt, buf, 0, *values)
    return buf


def _addr(buf: ctypes.Array[ctypes.c_char] | None) -> int:
    return ctypes.addressof(buf) if buf is not None else 0


def available() -> bool:
    """Whether this kernel answers bpf(2) at all (for ``netlab doctor``)."""
    try:
        bpf(BPF_PROG_GET_NEXT_ID, _attr("=I", 0))
    except OSError as exc:
        return exc.errno == errno.ENOENT
    return True


# maps -------------------------------------------------------------------------------------


def map_lookup(fd: int, key: bytes, value_size: int) -> bytes | None:
    kbuf = ctypes.create_string_buffer(key, len(key))
    vbuf = ctypes.create_string_buffer(value_size)
    try:
        bpf(BPF_MAP_LOOKUP_ELEM, _attr("=IIQQQ", fd, 0, _addr(kbuf), _addr(vbuf), 0))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise
    return vbuf.raw


def map_update(fd: int, key: bytes, value: bytes, flags: int = BPF_ANY) -> None:
    kbuf = ctypes.create_string_buffer(key, len(key))
    vbuf = ctypes.create_string_buffer(value, len(value))
    bpf(BPF_MAP_UPDATE_ELEM, _attr("=IIQQQ", fd, 0, _addr(kbuf), _addr(vbuf), flags))


def map_delete(fd: int, key: bytes) -> bool:
    kbuf = ctypes.create_string_buffer(key, len(key))
    try:
        bpf(BPF_MAP_DELETE_ELEM, _attr("=IIQQQ", fd, 0, _addr(kbuf), 0, 0))
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            return False
        raise
    return True


def map_keys(fd: int, key_size: int) -> Iterator[bytes]:
    """Every key, by BPF_MAP_GET_NEXT_KEY (works for every map type)."""
    cur: ctypes.Array[ctypes.c_char] | None = None
    nxt = ctypes.create_string_buffer(key_size)
    while True:
        try:
            bpf(BPF_MAP_GET_NEXT_KEY, _attr("=IIQQQ", fd, 0, _addr(cur), _addr(nxt), 0))
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return
            raise
        key = nxt.raw
        yield key
        cur = ctypes.create_string_buffer(key, key_size)


def map_dump(fd: int, key_size: int, value_size: int) -> dict[bytes, bytes]:
    """Every entry: in bulk (BPF_MAP_LOOKUP_BATCH) where the map supports it, else one by
    one. Entries deleted meanwhile are skipped."""
    try:
        return _dump_batch(fd, key_size, value_size)
    except OSError as exc:
        if exc.errno not in _NO_BATCH:
            raise
    out: dict[bytes, bytes] = {}
    for key in list(map_keys(fd, key_size)):
        value = map_lookup(fd, key, value_size)
        if value is not None:
            out[key] = value
    return out


def _dump_batch(fd: int, key_size: int, value_size: int, chunk: int = 4096) -> dict[bytes, bytes]:
    out: dict[bytes, bytes] = {}
    keys = ctypes.create_string_buffer(key_size * chunk)
    values = ctypes.create_string_buffer(value_size * chunk)
    token_in: ctypes.Array[ctypes.c_char] | None = None
    token_out = ctypes.create_string_buffer(max(key_size, 8))
    while True:
        attr = _attr(
            "=QQQQIIQQ",
            _addr(token_in),
            _addr(token_out),
            _addr(keys),
            _addr(values),
            chunk,
            fd,
            0,
            0,
        )
        done = False
        try:
            bpf(BPF_MAP_LOOKUP_BATCH, attr)
        except OSError as exc:
            if exc.errno != errno.ENOENT:
                raise
            done = True
        count = struct.unpack_from("=I", attr, 32)[0]
        kraw, vraw = keys.raw, values.raw
        for i in range(count):
            out[kraw[i * key_size : (i + 1) * key_size]] = vraw[
                i * value_size : (i + 1) * value_size
            ]
        if done:
            return out
        token_in = ctypes.create_string_buffer(token_out.raw, len(token_out))


def map_update_batch(
    fd: int, items: list[tuple[bytes, bytes]] | tuple[tuple[bytes, bytes], ...], flags: int = 0
) -> None:
    """Update many entries in one call (BPF_MAP_UPDATE_BATCH); maps that cannot (LPM tries)
    are written one element at a time."""
    if not items:
        return
    keys = b"".join(k for k, _v in items)
    values = b"".join(v for _k, v in items)
    kbuf = ctypes.create_string_buffer(keys, len(keys))
    vbuf = ctypes.create_string_buffer(values, len(values))
    attr = _attr("=QQQQIIQQ", 0, 0, _addr(kbuf), _addr(vbuf), len(items), fd, flags, 0)
    try:
        bpf(BPF_MAP_UPDATE_BATCH, attr)
    except OSError as exc:
        if exc.errno not in _NO_BATCH:
            raise
        done = struct.unpack_from("=I", attr, 32)[0]
        if done:  # a partial batch is a real failure, not a missing feature
            raise
        for key, value in items:
            map_update(fd, key, value, flags)


def map_delete_batch(fd: int, keys: list[bytes] | tuple[bytes, ...]) -> None:
    """Delete many entries in one call; entries already gone are not an error."""
    if not keys:
        return
    raw = b"".join(keys)
    kbuf = ctypes.create_string_buffer(raw, len(raw))
    attr = _attr("=QQQQIIQQ", 0, 0, _addr(kbuf), 0, len(keys), fd, 0, 0)
    try:
        bpf(BPF_MAP_DELETE_BATCH, attr)
        return
    except OSError as exc:
        if exc.errno not in (*_NO_BATCH, errno.ENOENT):
            raise
    for key in keys:
        map_delete(fd, key)


# objects ----------------------------------------------------------------------------------


def obj_get(path: str) -> int:
    """An fd for a pinned map or program."""
    p = ctypes.create_string_buffer(path.encode())
    return bpf(BPF_OBJ_GET, _attr("=QII", _addr(p), 0, 0))


def obj_pin(fd: int, path: str) -> None:
    p = ctypes.create_string_buffer(path.encode())
    bpf(BPF_OBJ_PIN, _attr("=QII", _addr(p), fd, 0))


@dataclass(frozen=True)
class MapInfo:
    id: int
    type: int
    key_size: int
    value_size: int
    max_entries: int
    flags: int
    name: str


def map_info(fd: int) -> MapInfo:
    info = ctypes.create_string_buffer(88)
    bpf(BPF_OBJ_GET_INFO_BY_FD, _attr("=IIQ", fd, len(info), _addr(info)))
    t, mid, ks, vs, me, fl = struct.unpack_from("=IIIIII", info, 0)
    name = info.raw[24:40].split(b"\0", 1)[0].decode(errors="replace")
    return MapInfo(mid, t, ks, vs, me, fl, name)


@dataclass(frozen=True)
class ProgInfo:
    id: int
    type: int
    name: str


def prog_info(fd: int) -> ProgInfo:
    info = ctypes.create_string_buffer(256)
    bpf(BPF_OBJ_GET_INFO_BY_FD, _attr("=IIQ", fd, len(info), _addr(info)))
    ptype, pid = struct.unpack_from("=II", info, 0)
    name = info.raw[64:80].split(b"\0", 1)[0].decode(errors="replace")
    return ProgInfo(pid, ptype, name)


def prog_ids() -> list[int]:
    """Every loaded program's ID."""
    out: list[int] = []
    start = 0
    while True:
        attr = _attr("=III", start, 0, 0)
        try:
            bpf(BPF_PROG_GET_NEXT_ID, attr)
        except OSError as exc:
            if exc.errno == errno.ENOENT:
                return out
            raise
        start = struct.unpack_from("=I", attr, 4)[0]
        out.append(start)


def prog_fd_by_id(prog_id: int) -> int:
    return bpf(BPF_PROG_GET_FD_BY_ID, _attr("=III", prog_id, 0, 0))


def map_fd_by_id(map_id: int) -> int:
    return bpf(BPF_MAP_GET_FD_BY_ID, _attr("=III", map_id, 0, 0))


# programs ---------------------------------------------------------------------------------

BPF_PROG_TYPE_SCHED_CLS = 3


def prog_load_pass(prog_type: int = BPF_PROG_TYPE_SCHED_CLS) -> int:
    """Load the smallest program (``r0 = 0; exit``): a probe of what the kernel accepts."""
    insns = bytes([0xB7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0])
    ibuf = ctypes.create_string_buffer(insns, len(insns))
    lic = ctypes.create_string_buffer(b"GPL")
    return bpf(BPF_PROG_LOAD, _attr("=IIQQ", prog_type, 2, _addr(ibuf), _addr(lic)))


@dataclass(frozen=True)
class TestRun:
    retval: int
    data: bytes
    duration_ns: int


def prog_test_run(
    fd: int, data: bytes, ctx: bytes | None = None, repeat: int = 1, out_size: int = 0
) -> TestRun:
    """Run a program on ``data`` (BPF_PROG_TEST_RUN) in the calling thread's namespace;
    ``ctx`` is a ``struct __sk_buff`` for tc programs (ifindex, mark...)."""
    din = ctypes.create_string_buffer(data, len(data))
    dout = ctypes.create_string_buffer(max(out_size, len(data) + 256))
    cin = ctypes.create_string_buffer(ctx, len(ctx)) if ctx else None
    attr = _attr(
        "=IIIIQQIIIIQQ",
        fd,
        0,
        len(data),
        len(dout),
        _addr(din),
        _addr(dout),
        repeat,
        0,
        len(ctx) if ctx else 0,
        0,
        _addr(cin),
        0,
    )
    bpf(BPF_PROG_TEST_RUN, attr)
    retval, _in, size_out = struct.unpack_from("=III", attr, 4)
    duration = struct.unpack_from("=I", attr, 36)[0]
    return TestRun(retval, dout.raw[:size_out], duration)


def prog_attach(target_fd: int, prog_fd: int, attach_type: int, flags: int = 0) -> None:
    bpf(BPF_PROG_ATTACH, _attr("=IIII", target_fd, prog_fd, attach_type, flags))


def prog_detach(target_fd: int, prog_fd: int, attach_type: int) -> None:
    bpf(BPF_PROG_DETACH, _attr("=IIII", target_fd, prog_fd, attach_type, 0))


def prog_query(target_fd: int, attach_type: int) -> list[int]:
    """IDs of the programs attached to a cgroup for ``attach_type``."""
    ids = (ctypes.c_uint32 * 64)()
    attr = _attr("=IIIIQI", target_fd, attach_type, 0, 0, ctypes.addressof(ids), len(ids))
    bpf(BPF_PROG_QUERY, attr)
    count = struct.unpack_from("=I", attr, 24)[0]
    return list(ids[:count])
