"""Loading BPF objects with libbpf (``libbpf.so.1`` through ctypes).

libbpf does what a BPF loader must: relocate map references, load the BTF, create (or reuse)
the maps, pin those marked ``LIBBPF_PIN_BY_NAME`` under a pin root, and load each program
through the verifier. netlab adds two things before loading: the node's configuration written
into the object's ``.rodata`` (at offsets read from BTF), and map sizes for large labs.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from netlab.errors import LabError, PrerequisiteError

HINT = "apt-get install -y libbpf1 (or run ./scripts/setup)"
LOG_SIZE = 1 << 22


class _OpenOpts(ctypes.Structure):
    """struct bpf_object_open_opts (libbpf 1.x, include/bpf/libbpf.h)."""

    _fields_ = [
        ("sz", ctypes.c_size_t),
        ("object_name", ctypes.c_char_p),
        ("relaxed_maps", ctypes.c_bool),
        ("pin_root_path", ctypes.c_char_p),
        ("_removed_attach_prog_fd", ctypes.c_uint32),
        ("kconfig", ctypes.c_char_p),
        ("btf_custom_path", ctypes.c_char_p),
        ("kernel_log_buf", ctypes.c_char_p),
        ("kernel_log_size", ctypes.c_size_t),
        ("kernel_log_level", ctypes.c_uint32),
    ]


_lib: ctypes.CDLL | None = None


def library() -> ctypes.CDLL:
    """libbpf, loaded once; exit 3 with what to install when it is missing."""
    global _lib
    if _lib is not None:
        return _lib
    name = "libbpf.so.1"
    try:
        lib = ctypes.CDLL(name, use_errno=True)
    except OSError:
        found = ctypes.util.find_library("bpf")
        if not found:
            raise PrerequisiteError("libbpf (libbpf.so.1) is not installed", hint=HINT) from None
        lib = ctypes.CDLL(found, use_errno=True)
    vp = ctypes.c_void_p
    lib.bpf_object__open_file.argtypes = [ctypes.c_char_p, ctypes.POINTER(_OpenOpts)]
    lib.bpf_object__open_file.restype = vp
    lib.bpf_object__load.argtypes = [vp]
    lib.bpf_object__close.argtypes = [vp]
    lib.bpf_object__close.restype = None
    lib.bpf_object__next_map.argtypes = [vp, vp]
    lib.bpf_object__next_map.restype = vp
    lib.bpf_map__name.argtypes = [vp]
    lib.bpf_map__name.restype = ctypes.c_char_p
    lib.bpf_map__fd.argtypes = [vp]
    lib.bpf_map__set_max_entries.argtypes = [vp, ctypes.c_uint32]
    lib.bpf_map__initial_value.argtypes = [vp, ctypes.POINTER(ctypes.c_size_t)]
    lib.bpf_map__initial_value.restype = vp
    lib.bpf_map__set_initial_value.argtypes = [vp, ctypes.c_void_p, ctypes.c_size_t]
    lib.bpf_object__find_program_by_name.argtypes = [vp, ctypes.c_char_p]
    lib.bpf_object__find_program_by_name.restype = vp
    lib.bpf_program__fd.argtypes = [vp]
    lib.libbpf_set_print.argtypes = [vp]
    lib.libbpf_set_print.restype = vp
    lib.libbpf_set_print(None)  # its warnings would go to our stderr; errors come back here
    _lib = lib
    return lib


@dataclass
class LoadedObject:
    """A loaded object: its programs' and maps' fds, valid until :meth:`close`."""

    path: str
    handle: int
    programs: dict[str, int] = field(default_factory=dict)
    maps: dict[str, int] = field(default_factory=dict)

    def close(self) -> None:
        if self.handle:
            library().bpf_object__close(self.handle)
            self.handle = 0


def _maps(lib: ctypes.CDLL, obj: int) -> Iterator[tuple[str, int]]:
    m = lib.bpf_object__next_map(obj, None)
    while m:
        yield lib.bpf_map__name(m).decode(), m
        m = lib.bpf_object__next_map(obj, m)


def load(
    path: str,
    pin_root: str,
    programs: tuple[str, ...],
    rodata: Mapping[int, bytes] | None = None,
    max_entries: Mapping[str, int] | None = None,
) -> LoadedObject:
    """Open, configure and load ``path``; pinned maps go to (or are reused from) ``pin_root``.

    ``rodata``: byte offset -> bytes to write into the object's ``.rodata`` before loading.
    """
    lib = library()
    log = ctypes.create_string_buffer(LOG_SIZE)
    opts = _OpenOpts(
        sz=ctypes.sizeof(_OpenOpts),
        pin_root_path=pin_root.encode(),
        kernel_log_buf=ctypes.cast(log, ctypes.c_char_p),
        kernel_log_size=LOG_SIZE,
    )
    obj = lib.bpf_object__open_file(path.encode(), ctypes.byref(opts))
    if not obj:
        err = ctypes.get_errno()
        raise LabError(f"libbpf cannot open {path}: {os.strerror(err)}")
    loaded = LoadedObject(path, obj)
    try:
        for name, m in _maps(lib, obj):
            if max_entries and name in max_entries:
                _check(lib.bpf_map__set_max_entries(m, max_entries[name]), f"size {name}")
            if rodata and name.endswith(".rodata"):
                _write_rodata(lib, m, rodata)
        ret = lib.bpf_object__load(obj)
        if ret:
            tail = log.value.decode(errors="replace").strip()[-3000:]
            raise LabError(
                f"the kernel refused {os.path.basename(path)}: {os.strerror(-ret)}",
                detail=tail,
                hint="see netlab doctor for the ebpf requirements",
            )
        for name, m in _maps(lib, obj):
            loaded.maps[name] = lib.bpf_map__fd(m)
        for prog in programs:
            p = lib.bpf_object__find_program_by_name(obj, prog.encode())
            if not p:
                raise LabError(f"{os.path.basename(path)} has no program {prog}")
            loaded.programs[prog] = lib.bpf_program__fd(p)
    except BaseException:
        loaded.close()
        raise
    return loaded


def _write_rodata(lib: ctypes.CDLL, m: int, values: Mapping[int, bytes]) -> None:
    size = ctypes.c_size_t(0)
    ptr = lib.bpf_map__initial_value(m, ctypes.byref(size))
    if not ptr:
        raise LabError("the object's .rodata cannot be configured")
    data = bytearray(ctypes.string_at(ptr, size.value))
    for offset, value in values.items():
        if offset + len(value) > len(data):
            raise LabError(f".rodata has no room for {len(value)} bytes at {offset}")
        data[offset : offset + len(value)] = value
    buf = (ctypes.c_char * len(data)).from_buffer(data)
    _check(lib.bpf_map__set_initial_value(m, buf, len(data)), "configure .rodata")


def _check(ret: int, what: str) -> None:
    if ret:
        raise LabError(f"libbpf: {what}: {os.strerror(-ret if ret < 0 else ret)}")


@contextlib.contextmanager
def loaded(
    path: str,
    pin_root: str,
    programs: tuple[str, ...],
    rodata: Mapping[int, bytes] | None = None,
    max_entries: Mapping[str, int] | None = None,
) -> Iterator[LoadedObject]:
    """:func:`load`, closed again when the block ends (attachments keep what they use)."""
    obj = load(path, pin_root, programs, rodata, max_entries)
    try:
        yield obj
    finally:
        obj.close()
