"""Removing labs: ``down``'s helpers and ``cleanup``, which finds whatever any lab left by its
state file and its tags (never by a pattern) and removes exactly that."""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from netlab.cluster import topology
from netlab.kernel import bpf, bpffs, cgroup, etcnetns, netns, process
from netlab.kernel import build as kbuild
from netlab.lab.paths import STATE_ROOT
from netlab.lab.record import list_labs, shielded, state_dir
from netlab.proxy.ebpf import record as bpf_record
from netlab.scenario.labschema import lab_name_problem


def find_lab_namespaces(lab: str | None, *, prefix_only: bool = False) -> list[str]:
    """Namespaces whose tag names ``lab`` (any netlab lab if None). With ``prefix_only``, only
    names starting with ``<lab>-`` are inspected (fast path for ``down``)."""
    out = []
    for name in netns.list_all():
        if prefix_only and lab is not None and not name.startswith(f"{lab}-"):
            continue
        tag = kbuild.read_tag(name)
        parsed = topology.parse_tag(tag) if tag else None
        if parsed and (lab is None or parsed[0] == lab):
            out.append(name)
    return out


@dataclass
class CleanupReport:
    labs: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    processes: list[int] = field(default_factory=list)


def cleanup(lab: str | None = None) -> CleanupReport:
    """Remove whatever netlab labs left (one lab, or all), found by state files and tags."""
    report = CleanupReport()
    with shielded():
        records = [r for r in list_labs() if lab is None or r.name == lab]
        report.labs = [r.name for r in records]
        # Namespaces a record lists are removed even untagged: a run killed between creating
        # /run/netns/NAME and tagging it leaves exactly such a one.
        names = [n for r in records for n in r.netns if netns.exists(n)]
        for name in netns.list_all():
            parsed = topology.parse_tag(kbuild.read_tag(name) or "")
            if parsed is None or (lab is not None and parsed[0] != lab):
                continue
            names.append(name)
            if parsed[0] not in report.labs:
                report.labs.append(parsed[0])
        # An ebpf lab's cgroups and bpffs are named after it; a lab whose record is unreadable
        # still has its state directory (claimed before anything else, removed last).
        for name in [*_listdir(STATE_ROOT), *_bpffs_labs()]:
            if lab_name_problem(name) or (lab is not None and name != lab):
                continue
            if os.path.isdir(state_dir(name)) and name not in report.labs:
                report.labs.append(name)
        names = list(dict.fromkeys(names))
        inodes = {i for n in names if (i := netns.inode(n)) is not None}
        for record in records:
            for d in record.daemons:
                if process.stop(d, record.name):
                    report.processes.append(d.pid)
        for pid in process.find_tagged(lab, inodes):
            process.kill_pid(pid)
            report.processes.append(pid)
        bpf_labs = list(dict.fromkeys([*report.labs, *([lab] if lab else [])]))
        for name in bpf_labs:
            remove_bpf_objects(name, before_namespaces=True)
        for name in names:
            etcnetns.remove(name)
            if netns.remove(name):
                report.namespaces.append(name)
        for name in bpf_labs:
            remove_bpf_objects(name, before_namespaces=False)
        # The state directory is netlab's own: every entry in it belongs to some lab.
        for name in report.labs if lab is None else [lab]:
            shutil.rmtree(state_dir(name), ignore_errors=True)
        if lab is None:
            with contextlib.suppress(FileNotFoundError):
                for entry in os.listdir(STATE_ROOT):
                    if not lab_name_problem(entry) and os.path.isdir(state_dir(entry)):
                        shutil.rmtree(state_dir(entry), ignore_errors=True)
        tidy_roots()
    return report


def remove_bpf_objects(lab: str, *, before_namespaces: bool) -> None:
    """The ebpf mode's leftovers. Before the namespaces go: the lab's cgroups (their socket
    programs detached, processes still in them moved out). After: its bpffs (every pinned map
    with it; the tc programs went with the namespaces' devices)."""
    if lab_name_problem(lab):
        return
    if before_namespaces:
        cgroup.remove_lab(lab)
        return
    for path in bpffs.mounted_under(state_dir(lab)):
        bpffs.unmount(path)
    _wait_objects_freed(os.path.join(state_dir(lab), bpf_record.RECORD))


def _wait_objects_freed(record: str, timeout: float = 10.0) -> None:
    """The kernel frees a namespace's devices (and the tc programs on them) on a work queue
    after the namespace is gone, and the maps those programs held after them: wait, briefly,
    until the programs and maps the lab recorded (netlab/proxy/ebpf/record.py) are no more."""
    try:
        recorded = bpf_record.read(record)
    except OSError:
        return
    ids: list[tuple[Callable[[int], int], int]] = [
        (bpf.map_fd_by_id if kind == bpf_record.MAP else bpf.prog_fd_by_id, object_id)
        for kind, object_id in recorded
    ]
    deadline = time.monotonic() + timeout
    while ids and time.monotonic() < deadline:
        alive: list[tuple[Callable[[int], int], int]] = []
        for by_id, object_id in ids:
            try:
                os.close(by_id(object_id))
                alive.append((by_id, object_id))
            except OSError:
                pass
        ids = alive
        if ids:
            time.sleep(0.02)


def _bpffs_labs() -> list[str]:
    """Labs with a bpffs still mounted in their state directory."""
    root = os.path.realpath(STATE_ROOT) + "/"
    out = []
    for path in bpffs.mounts():
        real = os.path.realpath(path)
        if real.startswith(root):
            name = real[len(root) :].split("/", 1)[0]
            if not lab_name_problem(name):
                out.append(name)
    return out


def tidy_roots() -> None:
    """Once no lab remains, remove /etc/netns (if a lab made it) and /run/netlab (if empty)."""
    # Entries that are not lab names (etcnetns.MARKER) are netlab's own bookkeeping, not labs.
    labs = [e for e in _listdir(STATE_ROOT) if not lab_name_problem(e)]
    if any(os.path.isdir(state_dir(e)) for e in labs):
        return
    etcnetns.remove_dir_if_ours_and_empty()
    with contextlib.suppress(OSError):
        os.rmdir(STATE_ROOT)


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except FileNotFoundError:
        return []
