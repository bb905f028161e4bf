"""Read connection tracking inside a namespace, to see whether a connection was NATed."""

from __future__ import annotations

import re

from netlab.checks.observations import ConntrackEntry as Entry
from netlab.kernel import process

_TUPLE = re.compile(r"src=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)")


def entries(netns_name: str, proto: str, src: str) -> list[Entry]:
    """The table's entries for ``proto`` from ``src`` (``conntrack -L``, as a learner would)."""
    out = process.run(
        netns_name, ["conntrack", "-L", "-p", proto.lower(), "-s", src], check=False
    ).stdout
    found = []
    for line in out.splitlines():
        tuples = _TUPLE.findall(line)
        if len(tuples) >= 2:
            o, r = tuples[0], tuples[1]
            found.append(
                Entry(proto, (o[0], o[1], int(o[2]), int(o[3])), (r[0], r[1], int(r[2]), int(r[3])))
            )
    return found


def listing(netns_name: str, proto: str | None = None) -> str:
    """The namespace's whole conntrack table as ``conntrack -L`` prints it."""
    argv = ["conntrack", "-L", *(["-p", proto.lower()] if proto else [])]
    return process.run(netns_name, argv, check=False).stdout
