"""Run commands that need kernel features this host lacks (IPVS, dummy devices) in a throwaway VM.

The VM boots Debian's stock kernel (the package ``linux-image-amd64`` depends on, downloaded and
unpacked into a cache, never installed) under QEMU with virtme-ng, sharing the host's whole
filesystem read-only over 9p, so the repository and its Python venv work inside it unchanged.
The guest runs a small shell script as root that loads the modules the tests need, runs the
command from the given directory, and writes the command's combined output and exit status into
a run folder shared read-write (``--rwdir``); the host reads them when the VM has powered off.

    python -m tests.tooling.vm --prepare                    # install and cache what it needs
    python -m tests.tooling.vm -- python -m pytest -m ipvs tests/lab

Library: :func:`prepare` (idempotent; installs Debian packages, virtme-ng and the kernel on
demand, caches the kernel under :data:`CACHE_DIR`), :func:`run` (boot, run, return a
:class:`VMResult` with the command's real exit status), :func:`host_has_ipvs` and
:func:`host_has_dummy` (does this host need the VM at all?). See docs/ipvs-vm.md.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import importlib.util
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

CACHE_DIR = Path(os.environ.get("NETLAB_VM_CACHE", "/var/cache/netlab/vm"))
DEBIAN_PACKAGES = ("qemu-system-x86", "kmod", "busybox-static")
# The version seen working here; pinned so that a new release cannot change CI under our feet.
VIRTME_NG_REQUIREMENT = "virtme-ng==1.42"
KERNEL_META_PACKAGE = "linux-image-amd64"
# Loaded before the command runs; built-in ones load "successfully" and missing ones are only
# reported (anything else is loaded on demand: the guest's /lib/modules/<version> is the cache).
GUEST_MODULES = (
    "ip_vs",
    "ip_vs_rr",
    "ip_vs_wrr",
    "ip_vs_sh",
    "dummy",
    "veth",
    "bridge",
    "br_netfilter",
    "nf_conntrack",
    "nf_nat",
    "xt_conntrack",
    "xt_comment",
    "xt_mark",
    "xt_addrtype",
    "xt_MASQUERADE",
    "xt_statistic",
)
# Passed from the caller's environment into the guest, besides every NETLAB_* variable.
PASS_ENV = (
    "PATH",
    "VIRTUAL_ENV",
    "PYTHONPATH",
    "PYTHONUNBUFFERED",
    "PYTHONHASHSEED",
    "PYTEST_ADDOPTS",
    "CI",
    "LANG",
    "LC_ALL",
    "TERM",
)
PASS_ENV_PREFIXES = ("NETLAB_",)
IN_VM_ENV = "NETLAB_IN_VM"
MEMORY = "2G"
CPUS = 2
TIMEOUT_STATUS = 124  # what run() returns when it had to kill the VM (as timeout(1) does)
NO_STATUS = 255  # the guest never wrote an exit status (it did not boot, or crashed)
CANCELLED_STATUS = 130  # the caller cancelled the run (as a shell reports an interrupt)
# virtme-ng's guest mounts fresh tmpfs file systems here, hiding the host's files under them.
HIDDEN_IN_GUEST = (
    "/run",
    "/dev/shm",
    "/var/log",
    "/var/tmp",
    "/var/cache",
    "/var/lib/apt",
    "/var/lib/private",
)
STALE_RUN_SECONDS = 24 * 3600
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_./+@%:,-]+$")  # vng pastes paths into a shell command
_DEB_STATUS_OK = "install ok installed"


class VMError(RuntimeError):
    """The VM could not be prepared or started (not: the command inside it failed)."""


@dataclass(frozen=True)
class Kernel:
    """A distribution kernel unpacked into the cache: ``root/boot/vmlinuz-<version>`` and
    ``root/lib/modules/<version>`` (with a ``modules.dep`` made by ``depmod -b``)."""

    package: str
    version: str
    root: Path

    @property
    def vmlinuz(self) -> Path:
        return self.root / "boot" / f"vmlinuz-{self.version}"

    @property
    def moddir(self) -> Path:
        for base in ("lib/modules", "usr/lib/modules"):
            candidate = self.root / base / self.version
            if candidate.is_dir():
                return candidate
        return self.root / "lib" / "modules" / self.version


@dataclass(frozen=True)
class VMResult:
    """What the command inside the VM did: its own exit status and combined output."""

    returncode: int
    output: str
    seconds: float
    timed_out: bool = False


Log = Callable[[str], None]


def _stderr_log(message: str) -> None:
    print(f"netlab-vm: {message}", file=sys.stderr, flush=True)


# --- host commands --------------------------------------------------------------------------


def _run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    timeout: float = 1800,
    env: Mapping[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a host command to completion; raise :class:`VMError` with its output if it fails."""
    try:
        proc = subprocess.run(
            list(argv),
            cwd=cwd,
            env={**os.environ, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError as exc:
        raise VMError(f"{argv[0]} is not installed") from exc
    except subprocess.TimeoutExpired as exc:
        raise VMError(f"{shlex.join(argv)} did not finish within {timeout:.0f}s") from exc
    if proc.returncode != 0:
        detail = (proc.stderr.strip() or proc.stdout.strip())[-2000:]
        raise VMError(f"{shlex.join(argv)} failed (exit {proc.returncode}): {detail}")
    return proc


_APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}
_apt_updated = False


def _apt_update(log: Log) -> None:
    global _apt_updated
    if _apt_updated:
        return
    log("apt-get update")
    _run(["apt-get", "update", "-q"], env=_APT_ENV)
    _apt_updated = True


def _apt_lists_present() -> bool:
    lists = Path("/var/lib/apt/lists")
    return lists.is_dir() and any("_Packages" in p.name for p in lists.iterdir())


def _apt(argv: Sequence[str], log: Log, *, cwd: Path | None = None) -> str:
    """Run an apt command; on a machine whose package lists are missing or stale (the command
    fails), ``apt-get update`` once and try again."""
    if not _apt_lists_present():
        _apt_update(log)
    try:
        return _run(argv, cwd=cwd, env=_APT_ENV).stdout
    except VMError:
        if _apt_updated:
            raise
        _apt_update(log)
        return _run(argv, cwd=cwd, env=_APT_ENV).stdout


def _missing_debian_packages(names: Sequence[str]) -> list[str]:
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${Status}\n", *names],
        capture_output=True,
        text=True,
        check=False,
    )
    installed = {
        line.split(" ", 1)[0].split(":", 1)[0]
        for line in proc.stdout.splitlines()
        if line.endswith(_DEB_STATUS_OK)
    }
    return [name for name in names if name not in installed]


def _scripts_dir() -> Path:
    """Where pip puts console scripts for the running interpreter (a venv's ``bin``)."""
    return Path(sysconfig.get_path("scripts"))


def _virtme_ng_installed() -> bool:
    return (
        importlib.util.find_spec("virtme_ng") is not None
        and (_scripts_dir() / "vng").exists()
        and (_scripts_dir() / "virtme-run").exists()
    )


# --- prepare --------------------------------------------------------------------------------


@contextlib.contextmanager
def _cache_lock() -> Iterator[None]:
    """One prepare at a time per machine (two CI jobs must not unpack into the same folder)."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _kernel_package(log: Log) -> str | None:
    """The package ``linux-image-amd64`` depends on (``linux-image-6.1.0-NN-amd64``)."""
    for attempt in range(2):
        out = _apt(["apt-cache", "depends", KERNEL_META_PACKAGE], log)
        for line in out.splitlines():
            key, _, value = line.strip().lstrip("|").partition(":")
            name = value.strip()
            if key == "Depends" and name.startswith("linux-image-") and "<" not in name:
                return name
        if attempt == 0 and not _apt_updated:
            _apt_update(log)  # lists too old to name it
    return None


def _load_kernel(root: Path) -> Kernel | None:
    """The kernel unpacked at ``root`` by an earlier prepare, if it is complete."""
    marker = root / ".netlab-kernel"
    try:
        package, version = marker.read_text().split()
    except (OSError, ValueError):
        return None
    kernel = Kernel(package=package, version=version, root=root)
    if not kernel.vmlinuz.is_file() or not (kernel.moddir / "modules.dep").is_file():
        return None
    return kernel


def cached_kernels() -> list[Kernel]:
    """Complete kernels in the cache, oldest first."""
    if not CACHE_DIR.is_dir():
        return []
    found = [k for p in CACHE_DIR.iterdir() if p.is_dir() and (k := _load_kernel(p))]
    return sorted(found, key=lambda k: k.root.stat().st_mtime)


def _fetch_kernel(package: str, log: Log) -> Kernel:
    """``apt-get download`` the kernel package, ``dpkg -x`` it, ``depmod -b`` it, and move the
    finished tree into place in one rename (an interrupted fetch leaves no half a kernel)."""
    dest = CACHE_DIR / package
    work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=CACHE_DIR))
    try:
        log(f"downloading {package} (not installing it) into {CACHE_DIR}")
        # Downloading as root into a folder _apt cannot write would only warn; say so up front.
        _apt(["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", package], log, cwd=work)
        debs = sorted(work.glob("*.deb"))
        if len(debs) != 1:
            raise VMError(f"apt-get download {package} left {len(debs)} .deb files")
        tree = work / "tree"
        log(f"unpacking {debs[0].name}")
        _run(["dpkg", "-x", str(debs[0]), str(tree)])
        versions = [
            p.name
            for base in ("lib/modules", "usr/lib/modules")
            if (tree / base).is_dir()
            for p in (tree / base).iterdir()
            if p.is_dir()
        ]
        if len(versions) != 1:
            raise VMError(f"{debs[0].name} holds {len(versions)} module trees: {versions}")
        version = versions[0]
        kernel = Kernel(package=package, version=version, root=tree)
        if not kernel.vmlinuz.is_file():
            raise VMError(f"{debs[0].name} has no boot/vmlinuz-{version}")
        # The package's postinst would run depmod; here it runs on the unpacked tree only.
        _run(["depmod", "-a", "-b", str(tree), version])
        (tree / ".netlab-kernel").write_text(f"{package} {version}\n")
        if dest.exists():
            shutil.rmtree(dest)  # an incomplete tree from an older netlab
        os.rename(tree, dest)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    loaded = _load_kernel(dest)
    if loaded is None:
        raise VMError(f"{dest} is incomplete after unpacking")
    return loaded


def prepare(log: Log | None = None) -> Kernel:
    """Make sure everything the VM needs is here, installing what is missing; return the kernel.

    Installs (only when missing) the Debian packages :data:`DEBIAN_PACKAGES` with apt-get, the
    PyPI package virtme-ng into the running interpreter's environment with pip, and the kernel
    package that ``linux-image-amd64`` depends on, downloaded and unpacked under
    :data:`CACHE_DIR` (the host's own ``/boot`` and ``/lib/modules`` are not touched). A second
    call downloads nothing. If apt cannot name the kernel (no package lists, no mirror), the
    newest cached kernel is used.
    """
    say = log or _stderr_log
    with _cache_lock():
        missing = _missing_debian_packages(DEBIAN_PACKAGES)
        if missing:
            say(f"installing Debian packages: {' '.join(missing)}")
            install = ["apt-get", "install", "-y", "-q", "--no-install-recommends"]
            # Wait for another apt (a concurrent set-up script) instead of failing on its lock.
            _apt([*install, "-o", "DPkg::Lock::Timeout=600", *missing], say)
            still = _missing_debian_packages(DEBIAN_PACKAGES)
            if still:
                raise VMError(f"apt-get install did not install {' '.join(still)}")
        if not _virtme_ng_installed():
            say(f"installing {VIRTME_NG_REQUIREMENT} into {sys.prefix}")
            _run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--disable-pip-version-check",
                    VIRTME_NG_REQUIREMENT,
                ]
            )
            importlib.invalidate_caches()
            if not _virtme_ng_installed():
                raise VMError(f"pip installed virtme-ng but vng is not in {_scripts_dir()}")
        try:
            package = _kernel_package(say)
        except VMError as exc:
            package = None
            say(f"apt cannot name the kernel package: {exc}")
        if package is None:
            cached = cached_kernels()
            if not cached:
                raise VMError(f"no kernel: apt names no package for {KERNEL_META_PACKAGE}")
            say(f"using the cached kernel {cached[-1].package}")
            return cached[-1]
        return _load_kernel(CACHE_DIR / package) or _fetch_kernel(package, say)


# --- run ------------------------------------------------------------------------------------


def _check_safe(path: Path | str, what: str) -> str:
    text = str(path)
    if not _SAFE_PATH.match(text):
        raise VMError(f"{what} {text!r}: vng needs a path without spaces or shell characters")
    return text


def guest_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables the guest command gets: the selected ones from this process's environment
    (:data:`PASS_ENV` and ``NETLAB_*``), then ``env``, and ``NETLAB_IN_VM=1``."""
    result = {
        k: v for k, v in os.environ.items() if k in PASS_ENV or k.startswith(PASS_ENV_PREFIXES)
    }
    # The interpreter running this (a venv's python) comes first, as `python` on the host does.
    bindir = os.path.dirname(sys.executable)
    path = result.get("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    result["PATH"] = f"{bindir}:{path}" if bindir not in path.split(":") else path
    result.update(env or {})
    result["HOME"] = "/root"
    result["PYTHONDONTWRITEBYTECODE"] = "1"  # the shared root is read-only in the guest
    result[IN_VM_ENV] = "1"
    return result


def guest_script(
    argv: Sequence[str],
    *,
    outdir: Path,
    cwd: Path,
    env: Mapping[str, str],
    modules: Sequence[str] = GUEST_MODULES,
) -> str:
    """The shell script the guest runs as root (its output and status go to ``outdir``)."""
    q = shlex.quote
    exports = "\n".join(f"export {k}={q(v)}" for k, v in sorted(env.items()) if _is_name(k))
    return f"""#!/bin/sh
# Written by tests.tooling.vm; runs as root inside the throwaway VM, then the VM powers off.
out={q(str(outdir))}
exec >"$out/output" 2>&1 </dev/null
echo "netlab-vm: guest kernel $(uname -r), $(nproc) CPUs, $(cut -d' ' -f1 /proc/uptime)s up"
if [ ! -e "/lib/modules/$(uname -r)/modules.dep" ]; then
    echo "netlab-vm: /lib/modules/$(uname -r) is missing: modules will not load"
fi
mods={q(" ".join(modules))}
if [ -n "$mods" ] && ! modprobe -a $mods 2>/dev/null; then
    for m in $mods; do
        modprobe "$m" 2>/dev/null || echo "netlab-vm: module $m could not be loaded"
    done
fi
# /etc is an overlay whose lower layer is the host's live /etc: give the guest an /etc/netns of
# its own, so that namespaces made on the host meanwhile neither show up nor collide here.
mkdir -p /etc/netns && mount -t tmpfs -o mode=0755 netlab-vm-netns /etc/netns
{exports}
echo "netlab-vm: modules loaded at $(cut -d' ' -f1 /proc/uptime)s; running: "{q(shlex.join(argv))}
if cd {q(str(cwd))}; then
    {shlex.join(argv)}
    rc=$?
else
    rc=127
fi
echo "netlab-vm: exit status $rc at $(cut -d' ' -f1 /proc/uptime)s"
echo "$rc" >"$out/status.tmp" && mv "$out/status.tmp" "$out/status"
sync
"""


def _is_name(key: str) -> bool:
    return re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) is not None


def _hidden_in_guest(path: Path) -> bool:
    return any(path == Path(h) or Path(h) in path.parents for h in HIDDEN_IN_GUEST)


def vng_command(
    kernel: Kernel,
    script: Path,
    outdir: Path,
    memory: str,
    cpus: int,
    shares: Sequence[Path] = (),
) -> list[str]:
    """The vng command line; ``shares`` are extra host folders the guest must see (read-only)
    that its own tmpfs mounts would otherwise hide."""
    extra: list[str] = []
    for share in dict.fromkeys(shares):
        if _hidden_in_guest(share):
            extra += ["--rodir", _check_safe(share, "shared folder")]
    return [
        str(_scripts_dir() / "vng"),
        # /dev/kvm exists here, but a guest hangs at boot with it: emulate the CPU.
        "--disable-kvm",
        "--force-9p",
        "--memory",
        memory,
        "--cpus",
        str(cpus),
        "--rwdir",
        _check_safe(outdir, "run folder"),
        # The guest links /lib/modules/<version> into the unpacked tree (virtme-ng does that for
        # a kernel image whose tree has lib/modules), but it hides /var/cache under a tmpfs:
        # share the tree again at its own path so the link resolves.
        "--rodir",
        _check_safe(kernel.root, "kernel tree"),
        *extra,
        "--run",
        _check_safe(kernel.vmlinuz, "kernel"),
        "--user",
        "root",
        "--exec",
        f"/bin/sh {_check_safe(script, 'script')}",
    ]


def _live_members(pgid: int) -> list[int]:
    """Processes of process group ``pgid`` that have not exited (zombies do not count)."""
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()  # state ppid pgrp ...
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            pids.append(int(entry.name))
    return pids


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL, whatever is left of the VM's process group (vng, virtme-run,
    qemu), then reap vng.

    The group is the one ``start_new_session`` made for this VM alone, and its leader (vng) is
    not reaped until the end here, so the group's id cannot have passed to anyone else's.
    """
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if not _live_members(proc.pid):
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        deadline = time.monotonic() + 5
        while _live_members(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=10)


def _exited_unreaped(proc: subprocess.Popen[bytes]) -> bool:
    """Has the leader (vng) exited? Asked without reaping it (WNOWAIT)."""
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True  # already reaped
    return info is not None


class _Tail:
    """Copy what the guest has appended to its output file to a stream, as it arrives."""

    def __init__(self, path: Path, stream: TextIO | None) -> None:
        self.path = path
        self.stream = stream
        self.offset = 0

    def pump(self) -> None:
        if self.stream is None:
            return
        try:
            with open(self.path, "rb") as f:
                f.seek(self.offset)
                data = f.read()
        except FileNotFoundError:
            return
        # Only whole lines: the rest comes with the next pump.
        end = data.rfind(b"\n") + 1
        if end:
            self.stream.write(data[:end].decode("utf-8", "replace"))
            self.stream.flush()
            self.offset += end

    def finish(self) -> None:
        if self.stream is None:
            return
        self.pump()
        with contextlib.suppress(FileNotFoundError), open(self.path, "rb") as f:
            f.seek(self.offset)
            rest = f.read()
            if rest:
                self.stream.write(rest.decode("utf-8", "replace") + "\n")
                self.stream.flush()


def run(
    argv: Sequence[str],
    timeout: float,
    env: Mapping[str, str] | None = None,
    *,
    cwd: str | os.PathLike[str] | None = None,
    kernel: Kernel | None = None,
    memory: str = MEMORY,
    cpus: int = CPUS,
    modules: Sequence[str] = GUEST_MODULES,
    stream: TextIO | None = None,
    log: Log | None = None,
    cancel: threading.Event | None = None,
    niceness: int = 0,
) -> VMResult:
    """Boot the VM, run ``argv`` as root in ``cwd`` (default: the current directory) inside it,
    and return its exit status and combined output.

    ``env`` adds to the variables passed from this process (:func:`guest_environment`). The VM
    is killed after ``timeout`` seconds (then ``returncode`` is :data:`TIMEOUT_STATUS`); if the
    guest never reports a status (it did not boot), ``returncode`` is :data:`NO_STATUS` and the
    output ends with vng's own log. ``stream`` gets the guest's output as it is written. Nothing
    is left running afterwards, even when the caller is interrupted, or ``cancel`` is set (from
    another thread; then ``returncode`` is :data:`CANCELLED_STATUS`). ``niceness`` lowers the
    emulator's CPU priority, for a run beside other work that must keep its pace.
    """
    if not argv:
        raise ValueError("run() needs a command")
    say = log or _stderr_log
    kernel = kernel or prepare(say)
    workdir = Path(cwd if cwd is not None else os.getcwd()).resolve()
    runs = CACHE_DIR / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    _remove_stale_runs(runs)
    outdir = Path(tempfile.mkdtemp(prefix="run-", dir=runs))
    started = time.monotonic()
    try:
        script = outdir / "guest.sh"
        script.write_text(
            guest_script(
                argv, outdir=outdir, cwd=workdir, env=guest_environment(env), modules=modules
            )
        )
        (outdir / "tmp").mkdir()
        # The directory to run in and the Python environment must be visible in the guest.
        shares = [workdir, Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()]
        command = vng_command(kernel, script, outdir, memory, cpus, shares)
        if niceness:
            command = ["nice", "-n", str(niceness), *command]
        vng_env = {
            **os.environ,
            # vng starts `virtme-run` through the shell: it must find this venv's copy.
            "PATH": f"{_scripts_dir()}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            # virtme-run's own temporary files go to the run folder, removed with it.
            "TMPDIR": str(outdir / "tmp"),
        }
        timed_out = cancelled = False
        with open(outdir / "vng.log", "wb") as vng_log:
            proc = subprocess.Popen(
                command,
                cwd=workdir,
                env=vng_env,
                stdin=subprocess.DEVNULL,
                stdout=vng_log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        tail = _Tail(outdir / "output", stream)
        try:
            deadline = started + timeout
            while not _exited_unreaped(proc):
                if time.monotonic() >= deadline:
                    timed_out = True
                    break
                if cancel is not None and cancel.is_set():
                    cancelled = True
                    break
                tail.pump()
                time.sleep(0.25)
        finally:
            _kill_group(proc)  # stragglers too, or the whole VM on timeout or interrupt
        tail.finish()
        seconds = time.monotonic() - started
        output = _read_text(outdir / "output")
        status = _read_text(outdir / "status").strip()
        if cancelled:
            note = f"netlab-vm: killed the VM after {seconds:.0f}s (cancelled)\n"
            _write(stream, note)
            return VMResult(CANCELLED_STATUS, output + note, seconds)
        if timed_out:
            note = f"netlab-vm: killed the VM after {timeout:.0f}s (timeout)\n"
            _write(stream, note)
            return VMResult(TIMEOUT_STATUS, output + note, seconds, timed_out=True)
        if not status.isdigit():
            vng_tail = "\n".join(_read_text(outdir / "vng.log").splitlines()[-40:])
            note = (
                f"netlab-vm: the guest wrote no exit status (vng exited {proc.returncode}); "
                f"vng's log ends:\n{vng_tail}\n"
            )
            _write(stream, note)
            return VMResult(NO_STATUS, output + note, seconds)
        return VMResult(int(status), output, seconds)
    finally:
        if os.environ.get("NETLAB_VM_KEEP") == "1":
            say(f"kept the run folder {outdir}")
        else:
            shutil.rmtree(outdir, ignore_errors=True)


def _remove_stale_runs(runs: Path) -> None:
    """Run folders left by a killed host process (a run removes its own when it ends)."""
    now = time.time()
    for entry in runs.glob("run-*"):
        with contextlib.suppress(OSError):
            if now - entry.stat().st_mtime > STALE_RUN_SECONDS:
                shutil.rmtree(entry, ignore_errors=True)


def _write(stream: TextIO | None, text: str) -> None:
    if stream is not None:
        stream.write(text)
        stream.flush()


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", "replace")
    except FileNotFoundError:
        return ""


# --- does this host need the VM? ------------------------------------------------------------


def _module_available(name: str) -> bool:
    """Is ``name`` built into the running kernel or loadable from its module tree?"""
    moddir = Path("/lib/modules") / os.uname().release
    pattern = re.compile(rf"(^|/){re.escape(name)}\.ko(\.\w+)?:?(\s|$)", re.MULTILINE)
    for index in ("modules.builtin", "modules.dep"):
        with contextlib.suppress(OSError):
            if pattern.search((moddir / index).read_text()):
                return True
    return False


def _probe_in_scratch_netns(job: Callable[[], bool]) -> bool:
    """Run ``job`` in a fresh, throwaway network namespace (needs root); False if it raises."""
    from netlab.kernel import netns, threads

    name = f"netlab-vmprobe-{os.getpid()}-{threading.get_native_id()}"

    def body() -> bool:
        netns.create_and_enter(name)
        return job()

    try:
        return threads.call(body)
    except Exception:
        return False
    finally:
        with contextlib.suppress(OSError):
            netns.remove(name)


def _ipvs_job() -> bool:
    if os.path.exists("/proc/net/ip_vs"):
        return True
    from pyroute2 import IPVS

    # Binding the IPVS generic netlink family makes the kernel load ip_vs if it can.
    with contextlib.suppress(Exception):
        IPVS().close()
    return os.path.exists("/proc/net/ip_vs")


def _dummy_job() -> bool:
    from pyroute2 import IPRoute

    with IPRoute() as ipr:
        ipr.link("add", ifname="probe0", kind="dummy")
        ipr.link("del", ifname="probe0")
    return True


@functools.cache
def host_has_ipvs() -> bool:
    """Can IPVS be used on this host (ip_vs loaded, or built in or loadable and then loaded)?"""
    if os.path.exists("/proc/net/ip_vs"):
        return True
    if not _module_available("ip_vs") or os.geteuid() != 0:
        return False
    return _probe_in_scratch_netns(_ipvs_job)


@functools.cache
def host_has_dummy() -> bool:
    """Can dummy devices be made on this host? Tried in a scratch namespace when root."""
    if os.geteuid() != 0:
        return os.path.isdir("/sys/module/dummy") or _module_available("dummy")
    return _probe_in_scratch_netns(_dummy_job)


# --- command line ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in args:
        split = args.index("--")
        args, command = args[:split], args[split + 1 :]
    parser = argparse.ArgumentParser(
        prog="python -m tests.tooling.vm",
        usage="%(prog)s [--prepare] [options] [-- CMD ARGS...]",
        description="Run a command as root in a throwaway VM with Debian's stock kernel "
        "(for IPVS and dummy devices); exit with the command's own status.",
    )
    parser.add_argument("--prepare", action="store_true", help="only install and cache")
    parser.add_argument("--timeout", type=float, default=1200, help="kill the VM after SECONDS")
    parser.add_argument("--cwd", help="directory to run in (default: the current one)")
    parser.add_argument("--memory", default=MEMORY)
    parser.add_argument("--cpus", type=int, default=CPUS)
    parser.add_argument(
        "--env", action="append", default=[], metavar="NAME=VALUE", help="set in the guest"
    )
    opts = parser.parse_args(args)
    if not opts.prepare and not command:
        parser.error("give a command after --, or --prepare")
    extra: dict[str, str] = {}
    for item in opts.env:
        name, sep, value = item.partition("=")
        if not sep or not _is_name(name):
            parser.error(f"--env wants NAME=VALUE, not {item!r}")
        extra[name] = value
    try:
        started = time.monotonic()
        kernel = prepare()
        _stderr_log(f"ready in {time.monotonic() - started:.1f}s: kernel {kernel.version}")
        if opts.prepare and not command:
            return 0
        result = run(
            command,
            opts.timeout,
            extra,
            cwd=opts.cwd,
            kernel=kernel,
            memory=opts.memory,
            cpus=opts.cpus,
            stream=sys.stdout,
        )
    except VMError as exc:
        _stderr_log(f"error: {exc}")
        return NO_STATUS
    except KeyboardInterrupt:
        _stderr_log("interrupted: the VM was stopped")
        return 130
    _stderr_log(f"VM finished in {result.seconds:.1f}s; guest exit status {result.returncode}")
    return result.returncode if 0 <= result.returncode <= 255 else NO_STATUS


if __name__ == "__main__":
    sys.exit(main())
