"""Shared helpers of the benchmarks: namespace bookkeeping, settling, statistics, tables, JSON.

Every namespace a benchmark creates is recorded in a :class:`Owned` set before it is made, and
only those are ever removed (never by pattern). All names start with ``bench``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from netlab.kernel import netns

PREFIX = "bench"
ETC_NETNS = "/etc/netns"  # per-namespace /etc files (``ip netns exec`` binds them over /etc)


class BenchError(RuntimeError):
    """A benchmark could not measure what it set out to (the run exits non-zero)."""


@dataclass
class Owned:
    """The namespaces this process made (or is about to make); the only ones it removes."""

    names: set[str] = field(default_factory=set)

    def claim(self, names: Iterable[str]) -> None:
        names = list(names)
        for name in names:
            if not name.startswith(PREFIX):
                raise BenchError(f"refusing to manage namespace {name!r}: not a {PREFIX}* name")
        clashes = [n for n in names if netns.exists(n) or os.path.exists(etc_dir(n))]
        if clashes:
            raise BenchError(
                f"namespace {clashes[0]} already exists ({len(clashes)} clashes); "
                "it is not this run's, so it is left alone: remove it yourself first"
            )
        self.names.update(names)

    def release_all(self) -> int:
        """Remove every recorded namespace that still exists; returns how many were removed."""
        removed = 0
        for name in sorted(self.names):
            try:
                remove_etc(name)
                if netns.remove(name):
                    removed += 1
            except OSError as exc:  # keep going: remove as much as possible
                print(f"warning: could not remove namespace {name}: {exc}", file=sys.stderr)
        self.names.clear()
        return removed


def etc_dir(name: str) -> str:
    return os.path.join(ETC_NETNS, name)


def remove_etc(name: str) -> bool:
    """Remove ``/etc/netns/NAME`` (only ever called for this run's own namespaces)."""
    d = etc_dir(name)
    if not os.path.isdir(d):
        return False
    shutil.rmtree(d, ignore_errors=True)
    return True


@contextmanager
def etc_netns_tidy() -> Iterator[None]:
    """Leave /etc/netns as found: if it did not exist before and is empty after, remove it (and
    netlab's own marker for it, through netlab when netlab has one)."""
    existed = os.path.isdir(ETC_NETNS)
    try:
        yield
    finally:
        try:
            from netlab.kernel import etcnetns  # type: ignore[attr-defined,unused-ignore]

            etcnetns.remove_dir_if_ours_and_empty()
        except (ImportError, AttributeError, OSError):
            pass
        if not existed and os.path.isdir(ETC_NETNS):
            with contextlib.suppress(OSError):
                os.rmdir(ETC_NETNS)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt so ``finally`` clean-up runs for it as for Ctrl-C."""

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def netns_cleanup_running() -> bool:
    """Is the kernel freeing namespaces right now?

    ``netns.remove`` and ``ip netns del`` only drop the bind mount; the kernel then frees the
    namespace (its veths, bridges, routes, netfilter tables) later, in ``cleanup_net`` on its
    ``netns`` work queue. A kernel worker running an item of that queue is named
    ``kworker/...+netns`` while it does (``R-netns`` is the idle rescuer thread).
    """
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/comm") as f:
                comm = f.read()
        except OSError:
            continue
        if comm.startswith("kworker/") and "+netns" in comm:
            return True
    return False


def foreign_namespaces(mine: Iterable[str]) -> list[str]:
    """Named namespaces on the machine that are not this run's (other people's labs and tests)."""
    own = set(mine)
    return [n for n in netns.list_all() if n not in own]


def _busy_jiffies() -> int:
    """CPU time (all CPUs, in clock ticks) spent on anything but idle and I/O wait so far."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already inside user)
    return sum(fields[:8]) - fields[3] - fields[4]


def _own_ticks() -> float:
    t = os.times()
    return (t.user + t.system + t.children_user + t.children_system) * os.sysconf("SC_CLK_TCK")


class CpuWatch:
    """How busy the rest of the machine was over a stretch of time, in cores.

    The machine is shared (other people's tests, VMs); this is the whole machine's busy CPU time
    minus this process's own (and its waited-for children's), divided by the wall time. Kernel
    work done for us in kernel threads (namespace clean-up) counts as "other", so it errs high.
    """

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.busy0 = _busy_jiffies()
        self.own0 = _own_ticks()

    def others(self) -> float:
        wall = time.perf_counter() - self.t0
        if wall <= 0:
            return 0.0
        hz = os.sysconf("SC_CLK_TCK")
        busy = _busy_jiffies() - self.busy0
        own = _own_ticks() - self.own0
        return max(0.0, (busy - own) / hz / wall)


def _ticks(pid: int) -> int:
    """CPU time (clock ticks, user + system) process ``pid`` has used so far; 0 if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])


def part_of_the_work(daemons: list[int]) -> int:
    """CPU ticks so far that belong to the measurement though not to this process: the lab's
    agent (it answers or proxies), softirq time (the packets' own processing, charged to no
    process) and the ksoftirqd threads (the same, when deferred)."""
    with open("/proc/stat") as f:
        softirq = int(f.readline().split()[7])
    ksoftirqd = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().startswith("ksoftirqd/"):
                        ksoftirqd += _ticks(int(entry))
            except OSError:
                continue
    return softirq + ksoftirqd + sum(_ticks(pid) for pid in daemons)


BUSY_CORES = 0.3  # others using more than this share of the 2 cores make a run "disturbed"


def wait_quiet(mine: Iterable[str], timeout: float = 60.0) -> float:
    """Wait (up to ``timeout``) until no other named namespaces exist and the rest of the machine
    uses under ``BUSY_CORES`` cores (over half a second), so concurrent labs, tests and VMs on this
    shared machine do not share the measurement. Returns the seconds waited."""
    t0 = time.perf_counter()
    while True:
        foreign = foreign_namespaces(mine)
        watch = CpuWatch()
        time.sleep(0.5)
        load = watch.others()
        if not foreign and load < BUSY_CORES:
            break
        if time.perf_counter() - t0 > timeout:
            print(
                f"warning: after {timeout:.0f}s still {len(foreign)} other namespaces and "
                f"{load:.1f} busy cores elsewhere; measuring anyway (marked disturbed)",
                file=sys.stderr,
            )
            break
    return time.perf_counter() - t0


def settle(timeout: float = 120.0, idle: float = 0.3, pause: float = 1.0) -> float:
    """Wait until the kernel's namespace clean-up work queue has been idle for ``idle`` seconds
    (at most ``timeout``), then ``pause`` more seconds, so the asynchronous freeing of one run's
    namespaces does not land in the next run's time. Returns the seconds until the queue went
    idle (without the idle window and the pause)."""
    t0 = time.perf_counter()
    last_busy = t0
    while True:
        now = time.perf_counter()
        if netns_cleanup_running():
            last_busy = now
        elif now - last_busy >= idle:
            break
        if now - t0 > timeout:
            print(
                f"warning: namespace clean-up still running after {timeout:.0f}s", file=sys.stderr
            )
            break
        time.sleep(0.02)
    waited = max(0.0, last_busy - t0)
    time.sleep(pause)
    return waited


def summary(samples: Sequence[float]) -> dict[str, float]:
    return {
        "median": statistics.median(samples),
        "min": min(samples),
        "max": max(samples),
    }


def machine() -> dict[str, Any]:
    def out(argv: list[str]) -> str:
        try:
            return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            return ""

    return {
        "nproc": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "iproute2": out(["ip", "-V"]),
        "iptables": out(["iptables", "--version"]),
        "pyroute2": _version("pyroute2"),
        "netlab_commit": out(["git", "-C", os.path.dirname(__file__), "rev-parse", "HEAD"]),
        "run_netns_fs": _fs_type(netns.NETNS_DIR),
        "loadavg_at_end": os.getloadavg()[0],
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
    }


def _version(dist: str) -> str:
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:
        return ""


def _fs_type(path: str) -> str:
    """The file system type of the mount ``path`` is on (e.g. tmpfs or ext4 for /run/netns)."""
    best, kind = "", ""
    try:
        with open("/proc/mounts") as f:
            for line in f:
                parts = line.split()
                mnt, fs = parts[1], parts[2]
                if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) >= len(
                    best
                ):
                    best, kind = mnt, fs
    except (OSError, IndexError):
        pass
    return kind


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain aligned text table (first column left-aligned, the rest right-aligned)."""
    cells = [[str(h) for h in headers], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def fmt(r: list[str]) -> str:
        return "  ".join(
            c.ljust(widths[i]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(r)
        )

    lines = [fmt(cells[0]), "  ".join("-" * w for w in widths)]
    lines += [fmt(r) for r in cells[1:]]
    return "\n".join(lines)


def write_json(path: str | None, data: dict[str, Any]) -> None:
    if not path:
        return
    with open(path, "w") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write("\n")
    print(f"results written to {path}")


def add_mode_args(
    ap: argparse.ArgumentParser, host_modes: Sequence[str], known: Sequence[str] = ()
) -> None:
    """``--modes`` and ``--ipvs``, as every benchmark that compares modes takes them."""
    of = f"of {', '.join(known)} " if known else ""
    ap.add_argument(
        "--modes",
        type=lambda s: tuple(s.split(",")),
        default=None,
        help=f"comma-separated modes {of}(default: {','.join(host_modes)}; ipvs with --ipvs)",
    )
    ap.add_argument("--ipvs", action="store_true", help="also IPVS (needs ip_vs: run in the VM)")


def chosen_modes(
    ap: argparse.ArgumentParser,
    args: argparse.Namespace,
    host_modes: tuple[str, ...],
    known: Sequence[str] = (),
) -> tuple[str, ...]:
    """The modes to measure: ``--modes`` or the host's; IPVS only with ``--ipvs`` (its kernel
    module is missing on the machines this runs on: it runs in the VM), and always with it."""
    modes: tuple[str, ...] = args.modes or (host_modes + (("ipvs",) if args.ipvs else ()))
    unknown = [m for m in modes if known and m not in known]
    if unknown:
        ap.error(f"unknown mode {unknown[0]} (modes: {', '.join(known)})")
    if "ipvs" in modes and not args.ipvs:
        ap.error("the ipvs mode needs --ipvs (and a kernel with IPVS: run it in the VM)")
    if args.ipvs and "ipvs" not in modes:
        modes = (*modes, "ipvs")
    return modes


def finish(out: str | None, data: dict[str, Any], prefixes: tuple[str, ...], error: str) -> int:
    """Write the results (``-``: one ``JSON`` line on stdout), then the exit status: 1 when the
    run failed or left one of its namespaces behind."""
    if out == "-":
        print("JSON " + json.dumps(data))
    else:
        write_json(out, data)
    leftover = [n for n in netns.list_all() if n.startswith(prefixes)]
    if leftover:
        print(f"error: namespace {leftover[0]} is still there", file=sys.stderr)
        return 1
    if error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0
