"""What a lab must not change on the host, captured so a test can compare before and after."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field

from netlab.kernel import process

NETLAB = [sys.executable, "-m", "netlab.cli"]
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HOST_SYSCTLS = (
    # Every sysctl a lab writes in its own namespaces (topology, proxiers), read on the host,
    # and the global one a real kube-proxy would raise but a lab must not.
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/route_localnet",
    "net/ipv4/fib_multipath_hash_policy",
    "net/bridge/bridge-nf-call-iptables",
    "net/netfilter/nf_conntrack_max",
    "net/ipv4/vs/conntrack",
    "net/ipv4/vs/expire_nodest_conn",
    "net/ipv4/vs/expire_quiescent_template",
    "net/ipv4/vs/conn_reuse_mode",
)
# Mount points a lab may create (namespace files, state, per-pod /etc/netns files).
WATCHED_MOUNTS = ("/run/netns/", "/run/netlab", "/etc/netns")


def _run(argv: list[str]) -> str:
    """A tool's output on the host; a tool that fails would make two snapshots equal by accident."""
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except FileNotFoundError:
        return f"<{argv[0]} missing>"
    assert out.returncode == 0, f"{' '.join(argv)} exited {out.returncode}: {out.stderr}"
    # Dates and counters in save output change without anyone touching the rules.
    lines = [ln for ln in out.stdout.splitlines() if not ln.startswith("#")]
    return "\n".join(lines)


def _mounts() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [ln.split()[4] for ln in f]
    return sorted(p for p in points if p.startswith(WATCHED_MOUNTS))


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return "<absent>"


def _listdir(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except FileNotFoundError:
        return []


@dataclass
class HostSnapshot:
    netns: list[str] = field(default_factory=list)
    links: str = ""
    addresses: str = ""
    routes: str = ""
    rules: str = ""
    mounts: list[str] = field(default_factory=list)
    ipsets: str = ""
    ipvs: str = ""
    iptables_nft: str = ""
    iptables_legacy: str = ""
    nft: str = ""
    sysctls: dict[str, str] = field(default_factory=dict)
    netlab_state: list[str] = field(default_factory=list)
    etc_netns: list[str] = field(default_factory=list)
    tagged_processes: list[int] = field(default_factory=list)

    def diff(self, other: HostSnapshot) -> str:
        a, b = asdict(self), asdict(other)
        return "host changed: " + "; ".join(f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if a[k] != b[k])


def snapshot() -> HostSnapshot:
    return HostSnapshot(
        netns=_listdir("/run/netns"),
        links=_run(["ip", "-o", "link", "show"]),
        addresses=_run(["ip", "-o", "addr", "show"]),
        routes=_run(["ip", "route", "show", "table", "all"]),
        rules=_run(["ip", "rule", "show"]) + _run(["ip", "-6", "rule", "show"]),
        mounts=_mounts(),
        ipsets=_run(["ipset", "list"]),
        ipvs=_run(["ipvsadm", "-Ln"]) if os.path.exists("/proc/net/ip_vs") else "<no ip_vs>",
        iptables_nft=_run(["iptables-nft-save"]),
        iptables_legacy=_run(["iptables-legacy-save"]),
        nft=_run(["nft", "list", "ruleset"]),
        sysctls={k: _read("/proc/sys/" + k) for k in HOST_SYSCTLS},
        netlab_state=_listdir("/run/netlab") if os.path.isdir("/run/netlab") else ["<absent>"],
        etc_netns=_listdir("/etc/netns") if os.path.isdir("/etc/netns") else ["<absent>"],
        tagged_processes=process.find_tagged(None),
    )


def netlab(
    *args: str, timeout: float = 300, check: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the netlab CLI as a user would, from the repository root."""
    proc = subprocess.run(
        [*NETLAB, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"netlab {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def scenario(name: str) -> str:
    return os.path.join(REPO, "scenarios", name)
