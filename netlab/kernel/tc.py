"""tc BPF programs on a device: a ``clsact`` qdisc and ``cls_bpf`` filters in direct-action
mode, over netlink (pyroute2), as ``tc filter add dev D ingress bpf da fd N`` would add them.

Call these on a worker thread inside the device's namespace (:mod:`netlab.kernel.threads`).
"""

from __future__ import annotations

import errno
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from netlab.errors import LabError, PrerequisiteError
from netlab.kernel import netns

INGRESS = 0xFFFFFFF2  # TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)
EGRESS = 0xFFFFFFF3
PRIO = 1
HANDLE = 1


def ensure_clsact(ipr: Any, index: int) -> None:
    netns.assert_not_host()
    try:
        ipr.tc("add", "clsact", index)
    except NetlinkError as exc:
        if exc.code == errno.EEXIST:
            return
        if exc.code in (errno.ENOENT, errno.EOPNOTSUPP):
            raise PrerequisiteError(
                "the kernel has no clsact qdisc (sch_ingress) for tc BPF programs",
                hint="use a kernel with CONFIG_NET_SCH_INGRESS and CONFIG_NET_CLS_BPF",
            ) from exc
        raise


def attach(ipr: Any, index: int, prog_fd: int, name: str, parent: int) -> None:
    """Put program ``prog_fd`` on device ``index``'s ingress or egress hook (replacing the
    filter netlab put there before, if any)."""
    netns.assert_not_host()
    ensure_clsact(ipr, index)
    try:
        ipr.tc(
            "replace-filter",
            "bpf",
            index,
            HANDLE,
            fd=prog_fd,
            name=name,
            parent=parent,
            prio=PRIO,
            protocol=0x0003,  # ETH_P_ALL
            direct_action=True,
        )
    except NetlinkError as exc:
        if exc.code == errno.EOPNOTSUPP:
            raise PrerequisiteError(
                "the kernel has no cls_bpf classifier",
                hint="use a kernel with CONFIG_NET_CLS_BPF",
            ) from exc
        raise LabError(f"attaching {name} to device {index}: {exc}") from exc
