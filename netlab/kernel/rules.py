"""Apply and read rule sets inside a namespace: one transaction per node per sync."""

from __future__ import annotations

import shutil
import time

from netlab.kernel import process

IPTABLES_BACKENDS = {
    # back end -> (restore, save)
    "nft": ("iptables-nft-restore", "iptables-nft-save"),
    "legacy": ("iptables-legacy-restore", "iptables-legacy-save"),
}


def iptables_restore(netns_name: str, text: str, backend: str) -> float:
    """``iptables-restore --noflush --counters`` as kube-proxy runs it; returns seconds taken."""
    restore, _ = IPTABLES_BACKENDS[backend]
    argv = [restore, "--noflush", "--counters"]
    if backend == "legacy":
        argv.insert(1, "--wait=10")  # the legacy back end serialises on a host-wide lock
    t0 = time.perf_counter()
    process.run(netns_name, argv, input=text, timeout=600)
    return time.perf_counter() - t0


def iptables_save(
    netns_name: str, backend: str, table: str | None = None, *, counters: bool = False
) -> str:
    _, save = IPTABLES_BACKENDS[backend]
    argv = [save, *(["-c"] if counters else []), *(["-t", table] if table else [])]
    return process.run(netns_name, argv).stdout


def available(tool: str) -> bool:
    return shutil.which(tool) is not None
