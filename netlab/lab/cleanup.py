"""Removing labs: ``down``'s helpers and ``cleanup``, which finds whatever any lab left by its
state file and its tags (never by a pattern) and removes exactly that."""

from __future__ import annotations

import contextlib
import os
import shutil
from dataclasses import dataclass, field

from netlab.cluster import topology
from netlab.kernel import build as kbuild
from netlab.kernel import etcnetns, netns, process
from netlab.lab.record import STATE_ROOT, list_labs, shielded, state_dir
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
        names = list(dict.fromkeys(names))
        inodes = {i for n in names if (i := netns.inode(n)) is not None}
        for record in records:
            for d in record.daemons:
                if process.stop(d, record.name):
                    report.processes.append(d.pid)
        for pid in process.find_tagged(lab, inodes):
            process.kill_pid(pid)
            report.processes.append(pid)
        for name in names:
            etcnetns.remove(name)
            if netns.remove(name):
                report.namespaces.append(name)
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
