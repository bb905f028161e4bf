"""What a lab must not change on the host, captured so a test can compare before and after."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field

from netlab.kernel import cgroup, process

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
    # The ebpf mode's objects: every loaded program and map (by name: IDs change), every bpffs
    # mount and what is pinned in it, the host's own tc/XDP attachments, the BPF tc filters of
    # every named namespace, and every cgroup of the cgroup v2 tree with programs attached or
    # named for a lab.
    bpf_programs: list[str] = field(default_factory=list)
    bpf_maps: list[str] = field(default_factory=list)
    bpffs: list[str] = field(default_factory=list)
    host_bpf_attachments: str = ""
    tc_filters: list[str] = field(default_factory=list)
    cgroups: list[str] = field(default_factory=list)

    def diff(self, other: HostSnapshot) -> str:
        a, b = asdict(self), asdict(other)
        return "host changed: " + "; ".join(f"{k}: {a[k]!r} -> {b[k]!r}" for k in a if a[k] != b[k])


def _bpf_names(kind: str) -> list[str]:
    """Names (and types) of every loaded BPF program or map, from bpftool's JSON."""
    out = subprocess.run(
        ["bpftool", "-j", kind, "show"], capture_output=True, text=True, timeout=60, check=False
    )
    if out.returncode != 0:
        return [f"<bpftool {kind} show failed: {out.stderr.strip()}>"]
    return sorted(f"{o.get('type')}:{o.get('name', '')}" for o in json.loads(out.stdout or "[]"))


def _bpffs() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [ln.split()[4] for ln in f if " - bpf " in ln]
    found = []
    for point in points:
        found.append(point)
        for root, dirs, files in os.walk(point):
            found += [os.path.join(root, n) for n in dirs + files]
    return sorted(found)


def _tc_filters() -> list[str]:
    """Every BPF program attached with tc in a named namespace (a lab's node namespaces carry
    them; a snapshot taken while a lab is up therefore lists them), as NETNS DEVICE/HOOK NAME."""
    found = []
    for ns in _listdir("/run/netns"):
        if not os.path.ismount(f"/run/netns/{ns}"):
            # A bare file: a run killed between creating the name and mounting the namespace
            # on it (cleanup removes it); nothing to enter. netns lists it as a leftover.
            continue
        text = _run(["ip", "netns", "exec", ns, "bpftool", "-j", "net", "show"])
        try:
            data = json.loads(text or "[]")
        except json.JSONDecodeError:
            found.append(f"{ns}: <bpftool net show failed>")
            continue
        for section in data:
            for f in section.get("tc", []):
                found.append(f"{ns} {f.get('devname')}/{f.get('kind')} {f.get('name', '')}")
    return sorted(found)


def _cgroups() -> list[str]:
    """cgroup v2 directories named for a lab, and every program attached anywhere in the tree."""
    root = cgroup.root()
    if root is None:
        return ["<no cgroup2>"]
    labs = [e for e in _listdir(root) if e.startswith(cgroup.PREFIX)]
    tree = _run(["bpftool", "cgroup", "tree", root]).splitlines()
    headers = ("CgroupPath", "ID ")
    return sorted(labs) + [ln for ln in tree if ln.strip() and not ln.startswith(headers)]


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
        bpf_programs=_bpf_names("prog"),
        bpf_maps=_bpf_names("map"),
        bpffs=_bpffs(),
        host_bpf_attachments=_run(["bpftool", "net", "show"]),
        tc_filters=_tc_filters(),
        cgroups=_cgroups(),
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


def start_netlab(*args: str) -> subprocess.Popen[str]:
    """The netlab CLI in the background, in a session of its own (so a test can signal it as
    a terminal would, alone), its output line-buffered on one pipe."""
    return subprocess.Popen(
        [*NETLAB, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        start_new_session=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_for_line(proc: subprocess.Popen[str], marker: str, timeout: float = 120) -> list[str]:
    """Read the process's output until a line holds ``marker``; the lines read."""
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if marker in line:
            return seen
    raise AssertionError(f"{marker!r} never appeared: {''.join(seen)}")
