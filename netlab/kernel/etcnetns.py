"""Per-namespace /etc files: what `ip netns exec NAME` binds over /etc (resolv.conf, hosts).

This is how a pod's resolver configuration reaches `netlab exec LAB pod/x -- dig web`, exactly as
iproute2 documents it for any named namespace. Only /etc/netns/<name> directories of namespaces
a lab owns are ever written or removed; /etc/netns itself only if this lab created it.
"""

from __future__ import annotations

import contextlib
import os
import shutil

ETC_NETNS = "/etc/netns"
# Present while /etc/netns exists because a netlab lab created it (any lab may remove it last).
MARKER = "/run/netlab/.created-etc-netns"


def write(files: list[tuple[str, str, str]]) -> None:
    """Write ``(netns, name, content)`` files, creating /etc/netns (and noting it) if needed."""
    if files and not os.path.isdir(ETC_NETNS):
        os.makedirs(ETC_NETNS, exist_ok=True)
        os.makedirs(os.path.dirname(MARKER), exist_ok=True)
        with open(MARKER, "w"):
            pass
    made: set[str] = set()
    for netns_name, name, content in files:
        d = os.path.join(ETC_NETNS, netns_name)
        if d not in made:
            os.makedirs(d, exist_ok=True)
            made.add(d)
        with open(os.path.join(d, name), "w") as f:
            f.write(content)


def remove(netns_name: str) -> bool:
    d = os.path.join(ETC_NETNS, netns_name)
    if not os.path.isdir(d):
        return False
    shutil.rmtree(d, ignore_errors=True)
    return True


def remove_dir_if_ours_and_empty() -> None:
    """Remove /etc/netns when a netlab lab created it and no namespace files remain in it."""
    if not os.path.exists(MARKER):
        return
    with contextlib.suppress(OSError):
        os.rmdir(ETC_NETNS)
    if not os.path.exists(ETC_NETNS):
        with contextlib.suppress(OSError):
            os.unlink(MARKER)
