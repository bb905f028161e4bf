"""Packet tracing inside a node namespace: switched on for one flow, read, switched off.

Two ways, as the node's rules are written:

- ``xtables``: iptables ``TRACE`` rules in the raw table (nft back end of iptables: the target
  sets the packet's nftrace bit) and ``xtables-monitor --trace``, which prints every rule the
  packet met in iptables' own syntax;
- ``nft``: a table of netlab's own (``ip netlab-trace``) whose rules ``meta nftrace set 1``, and
  ``nft monitor trace``.

The rules are rendered by :mod:`netlab.explain.trace.select`; here they are applied and removed,
and the monitor runs as a process tagged with the lab, started before the traced connection and
stopped after it. A monitor is ready once its netlink socket has joined the kernel's trace group,
which :func:`_subscribed` reads from ``/proc``, so no event is missed by starting too late.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from netlab.errors import LabError, PrerequisiteError
from netlab.explain.trace.select import NFT_TABLE, FlowSelect
from netlab.kernel import netns, process

NETLINK_NETFILTER = 12
NFNLGRP_NFTRACE = 9  # its bit in /proc/net/netlink's Groups column is 1 << (9 - 1)
MONITORS = {"xtables": ["xtables-monitor", "--trace"], "nft": ["nft", "monitor", "trace"]}


def _socket_inodes(pid: int) -> set[int]:
    out: set[int] = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    out.add(int(link[8:-1]))
    return out


def _subscribed(pid: int) -> bool:
    """Whether process ``pid`` holds a netfilter netlink socket in the trace group."""
    inodes = _socket_inodes(pid)
    try:
        with open(f"/proc/{pid}/net/netlink") as f:
            lines = f.read().splitlines()[1:]
    except OSError:
        return False
    for line in lines:
        cols = line.split()
        if len(cols) < 10 or int(cols[1]) != NETLINK_NETFILTER:
            continue
        if int(cols[3], 16) & (1 << (NFNLGRP_NFTRACE - 1)) and int(cols[9]) in inodes:
            return True
    return False


@dataclass
class Monitor:
    """A trace monitor running in one namespace, tagged with its lab."""

    lab: str
    netns_name: str
    kind: str  # "xtables" | "nft"
    proc: subprocess.Popen[str] | None = field(default=None, repr=False)

    def start(self, timeout: float = 10.0) -> None:
        argv = ["nsenter", f"--net={netns.path(self.netns_name)}", "--", *MONITORS[self.kind]]
        try:
            self.proc = subprocess.Popen(
                argv,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
                env={**os.environ, process.LAB_ENV: self.lab},
            )
        except FileNotFoundError as exc:
            raise PrerequisiteError(
                "nsenter is not installed", hint="apt-get install -y util-linux"
            ) from exc
        deadline = time.monotonic() + timeout
        while not _subscribed(self.proc.pid):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                tool = MONITORS[self.kind][0]
                if "No such file" in err or "not found" in err:
                    raise PrerequisiteError(
                        f"{tool} is not installed", hint="run netlab doctor to see what to install"
                    )
                raise LabError(f"{tool} stopped in {self.netns_name}", detail=err.strip())
            if time.monotonic() > deadline:
                self.close()
                raise LabError(f"the trace monitor did not start in {self.netns_name}")
            time.sleep(0.005)

    def stop(self) -> str:
        """End the monitor (it flushes each event as it prints it) and return its output."""
        if self.proc is None:
            return ""
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.close()
            raise
        return out

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
        if self.proc is not None:
            self.proc.communicate()


def _raw_table_exists(netns_name: str) -> bool:
    return (
        process.run(netns_name, ["nft", "list", "table", "ip", "raw"], check=False).returncode == 0
    )


@contextlib.contextmanager
def switched_on(netns_name: str, kind: str, select: FlowSelect) -> Iterator[None]:
    """Tracing on for ``select``'s flows in ``netns_name`` for the ``with`` block, then off
    again: the rules removed, and a raw table the rules needed removed too."""
    if kind == "nft":
        process.run(netns_name, ["nft", "-f", "-"], input=select.nft_table())
        try:
            yield
        finally:
            process.run(netns_name, ["nft", "delete", "table", "ip", NFT_TABLE], check=False)
        return
    had_raw = _raw_table_exists(netns_name)
    restore = ["iptables-nft-restore", "--noflush", "-w"]
    process.run(netns_name, restore, input=select.iptables_restore("-I"))
    try:
        yield
    finally:
        process.run(netns_name, restore, input=select.iptables_restore("-D"), check=False)
        if not had_raw:
            process.run(netns_name, ["nft", "delete", "table", "ip", "raw"], check=False)


def ipvs_connections(netns_name: str) -> str:
    """IPVS's connection table (``ipvsadm -Lnc``)."""
    return process.run(netns_name, ["ipvsadm", "-Lnc"], check=False).stdout
