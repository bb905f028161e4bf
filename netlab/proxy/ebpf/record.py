"""The record of the BPF objects a lab loaded: ``/run/netlab/<lab>/bpf-objects``.

One object per line, ``prog <ID>`` or ``map <ID>``, appended as the ebpf mode loads them (a
node's first sync, a new pod's programs). The kernel frees a namespace's devices, the tc
programs on them and then the maps those programs held on work queues after the namespace is
gone; ``down`` and ``cleanup`` read the record to wait until the lab's objects are no more, so
that what follows (the next lab, a test's host snapshot) does not see them vanish. IDs are only
waited on, never used to act on an object.
"""

from __future__ import annotations

from collections.abc import Iterable

RECORD = "bpf-objects"  # in the lab's state directory
PROG, MAP = "prog", "map"


def append(path: str, programs: Iterable[int], maps: Iterable[int]) -> None:
    lines = [f"{PROG} {i}\n" for i in programs] + [f"{MAP} {i}\n" for i in maps]
    with open(path, "a") as f:
        f.write("".join(lines))


def read(path: str) -> list[tuple[str, int]]:
    """The (kind, ID) pairs recorded; lines that are not a record's are skipped. OSError when
    the file cannot be read (no ebpf lab, or one that loaded nothing)."""
    out: list[tuple[str, int]] = []
    with open(path) as f:
        for line in f:
            kind, _, value = line.strip().partition(" ")
            if kind in (PROG, MAP) and value.isdigit():
                out.append((kind, int(value)))
    return out
