"""The ebpf mode's BPF objects: compiled from ``bpf/*.c`` with clang into a cache.

``scripts/setup`` builds them (``python -m netlab.proxy.ebpf.objects``); a lab builds them on
demand when they are missing. The cache key is a hash of every source file, the compiler's
version and the flags, so editing a source (or upgrading clang) rebuilds, and an unchanged
tree never does. Objects are written to a temporary directory and renamed into place, so a
reader never sees half a build.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading

from netlab.errors import LabError, PrerequisiteError

SOURCE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "bpf")
PROGRAMS = ("bpf_lxc", "bpf_host", "bpf_sock")
CACHE_ENV = "NETLAB_BPF_CACHE"
CFLAGS = ("-O2", "-g", "-target", "bpf", "-Wall", "-Werror")
TOOLCHAIN_HINT = "apt-get install -y clang llvm libbpf-dev (or run ./scripts/setup)"


def cache_root() -> str:
    if os.environ.get(CACHE_ENV):
        return os.environ[CACHE_ENV]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "netlab", "bpf")


def find_clang() -> str | None:
    """``clang``, else the newest versioned ``clang-NN`` on PATH."""
    if shutil.which("clang"):
        return "clang"
    versions = sorted(
        (int(n.split("-", 1)[1]), n)
        for d in os.environ.get("PATH", "").split(os.pathsep)
        if os.path.isdir(d)
        for n in os.listdir(d)
        if n.startswith("clang-") and n.split("-", 1)[1].isdigit()
    )
    return versions[-1][1] if versions else None


def include_dirs() -> list[str]:
    """The architecture's UAPI directory (``asm/types.h``), as Debian lays headers out."""
    arch = sysconfig.get_config_var("MULTIARCH") or ""
    path = os.path.join("/usr/include", arch)
    return [path] if arch and os.path.isdir(os.path.join(path, "asm")) else []


def missing_headers() -> list[str]:
    """Headers the sources need that this host lacks, with their Debian package."""
    out = []
    dirs = ["/usr/include", *include_dirs()]
    for header, pkg in (
        ("bpf/bpf_helpers.h", "libbpf-dev"),
        ("linux/bpf.h", "linux-libc-dev"),
        ("asm/types.h", "linux-libc-dev"),
    ):
        if not any(os.path.exists(os.path.join(d, header)) for d in dirs):
            out.append(f"{header} ({pkg})")
    return out


def _sources() -> list[str]:
    out = []
    for root, _dirs, files in os.walk(SOURCE_DIR):
        out += [os.path.join(root, f) for f in files if f.endswith((".c", ".h"))]
    return sorted(out)


def _compiler_version(clang: str) -> str:
    try:
        proc = subprocess.run([clang, "--version"], capture_output=True, text=True, timeout=30)
    except OSError as exc:
        raise PrerequisiteError(f"{clang} cannot run: {exc}", hint=TOOLCHAIN_HINT) from exc
    return proc.stdout.splitlines()[0] if proc.stdout else ""


def cache_key(clang: str) -> str:
    h = hashlib.sha256()
    for path in _sources():
        h.update(os.path.relpath(path, SOURCE_DIR).encode() + b"\0")
        with open(path, "rb") as f:
            h.update(f.read() + b"\0")
    h.update(_compiler_version(clang).encode() + b"\0" + " ".join(CFLAGS).encode())
    return h.hexdigest()[:16]


def require_toolchain() -> str:
    """The compiler to use; exit 3 (with what to install) when it or a header is missing."""
    clang = find_clang()
    if clang is None:
        raise PrerequisiteError(
            "clang is not installed: the ebpf mode compiles its programs with it",
            hint=TOOLCHAIN_HINT,
        )
    lacking = missing_headers()
    if lacking:
        raise PrerequisiteError(
            f"headers for building BPF programs are missing: {', '.join(lacking)}",
            hint=TOOLCHAIN_HINT,
        )
    return clang


_lock = threading.Lock()
_built: dict[str, str] = {}  # SOURCE_DIR -> its build directory, once per process


def build_dir() -> str:
    """The directory holding this source tree's objects, building them first if needed (once
    per process: the key hashes every source and asks the compiler for its version).
    Thread-safe: a lab loads programs on one thread while another reads their BTF."""
    with _lock:
        found = _built.get(SOURCE_DIR)
        if found is None or not os.path.isdir(found):
            found = _built[SOURCE_DIR] = _build_dir()
        return found


def _build_dir() -> str:
    clang = require_toolchain()
    out = os.path.join(cache_root(), cache_key(clang))
    if all(os.path.exists(os.path.join(out, f"{p}.o")) for p in PROGRAMS):
        return out
    os.makedirs(cache_root(), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".build-", dir=cache_root())
    try:
        _compile_all(clang, tmp)
        try:
            os.rename(tmp, out)
        except OSError:
            if not os.path.isdir(out):  # another process built it meanwhile: keep theirs
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _prune(keep=os.path.basename(out))
    return out


def _compile_all(clang: str, out: str) -> None:
    incs = [f"-I{d}" for d in include_dirs()]
    procs = []
    for prog in PROGRAMS:
        argv = [clang, *CFLAGS, *incs, "-c", f"{prog}.c", "-o", os.path.join(out, f"{prog}.o")]
        procs.append(
            (
                prog,
                subprocess.Popen(
                    argv,
                    cwd=SOURCE_DIR,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        )
    errors = []
    for prog, proc in procs:
        _out, err = proc.communicate(timeout=300)
        if proc.returncode:
            errors.append(f"{prog}.c:\n{err.strip()}")
    if errors:
        raise LabError("compiling the ebpf programs failed", detail="\n".join(errors))


def _prune(keep: str) -> None:
    """Remove builds of older source trees (directories named by a 16-hex-digit key)."""
    with contextlib.suppress(OSError):
        for name in os.listdir(cache_root()):
            if name != keep and len(name) == 16 and all(c in "0123456789abcdef" for c in name):
                shutil.rmtree(os.path.join(cache_root(), name), ignore_errors=True)


def object_path(program: str) -> str:
    if program not in PROGRAMS:
        raise ValueError(f"unknown BPF program object {program!r}")
    return os.path.join(build_dir(), f"{program}.o")


def main(argv: list[str] | None = None) -> int:
    """``python -m netlab.proxy.ebpf.objects``: build (or find) the objects, print where."""
    del argv
    try:
        print(build_dir())
    except (PrerequisiteError, LabError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        detail = getattr(exc, "detail", "")
        if detail:
            print(detail, file=sys.stderr)
        hint = getattr(exc, "hint", "")
        if hint:
            print(f"hint: {hint}", file=sys.stderr)
        return 3 if isinstance(exc, PrerequisiteError) else 4
    return 0


if __name__ == "__main__":
    sys.exit(main())
