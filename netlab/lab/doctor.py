"""What this host has, what netlab needs, and which proxy modes can run here (and why not).

:func:`require` is the fast gate before building a lab (root and tools); :func:`diagnose` adds
kernel probes, run inside a throwaway namespace, for ``netlab doctor``.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass, field

from netlab.errors import PrerequisiteError

APT = "apt-get install -y"

# tool -> (Debian package, what it is for)
TOOLS: dict[str, tuple[str, str]] = {
    "nsenter": ("util-linux", "running tools inside lab namespaces"),
    "ip": ("iproute2", "netlab exec (ip netns exec)"),
    "iptables-nft-restore": ("iptables", "iptables mode (nft back end)"),
    "iptables-legacy-restore": ("iptables", "iptables mode (legacy back end, large rule sets)"),
    "nft": ("nftables", "nftables mode"),
    "ipset": ("ipset", "ipvs mode"),
    "ipvsadm": ("ipvsadm", "ipvs mode (inspection)"),
    "conntrack": ("conntrack", "inspecting connection tracking"),
    "tcpdump": ("tcpdump", "captures (BPF filters for scapy)"),
    "dig": ("dnsutils", "DNS queries from pods"),
}

MODE_TOOLS: dict[str, list[str]] = {
    "iptables": ["nsenter", "iptables-nft-restore", "iptables-legacy-restore"],
    "nftables": ["nsenter", "nft", "iptables-nft-restore"],  # the CNI's masquerade rules
    "ipvs": ["nsenter", "ipset", "iptables-nft-restore", "iptables-legacy-restore"],
    "userspace": ["nsenter", "iptables-nft-restore", "iptables-legacy-restore"],
}

MODE_FEATURES: dict[str, list[str]] = {
    "iptables": [
        "network namespaces",
        "veth devices",
        "bridge devices",
        "br_netfilter",
        "iptables (nft back end)",
    ],
    "nftables": [
        "network namespaces",
        "veth devices",
        "bridge devices",
        "br_netfilter",
        "nftables",
    ],
    "ipvs": [
        "network namespaces",
        "veth devices",
        "bridge devices",
        "br_netfilter",
        "IPVS (ip_vs)",
        "dummy devices",
    ],
    "userspace": [
        "network namespaces",
        "veth devices",
        "bridge devices",
        "iptables (nft back end)",
    ],
}

PYTHON_PACKAGES = ["pyroute2", "scapy", "rich", "yaml", "dnslib", "jsonschema"]

IPVS_HINT = (
    "use a kernel with ip_vs, or, from a netlab checkout, run IPVS mode in a throwaway VM "
    "with a stock kernel: sudo .venv/bin/python -m tests.tooling.vm -- .venv/bin/netlab run "
    "FILE --mode ipvs (the ipvs tests: nox -s ipvs_vm; see docs/ipvs-vm.md)"
)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    hint: str = ""


@dataclass
class ModeVerdict:
    mode: str
    ok: bool
    reasons: list[str] = field(default_factory=list)
    hint: str = ""


@dataclass
class Diagnosis:
    checks: list[Check]
    modes: list[ModeVerdict]


def is_root() -> bool:
    return os.geteuid() == 0


BR_NETFILTER_SYSCTL = "/proc/sys/net/bridge/bridge-nf-call-iptables"


def require_root(what: str = "build labs (network namespaces, rules)") -> None:
    if not is_root():
        raise PrerequisiteError(
            f"netlab needs root to {what}", hint="run it with sudo, e.g. sudo .venv/bin/netlab ..."
        )


def require(mode: str) -> None:
    """Refuse early (exit 3) when the basics for ``mode`` are missing."""
    require_root()
    if not os.path.exists(BR_NETFILTER_SYSCTL):
        # Every mode: bridged pod-to-pod replies must cross iptables to be un-DNATed.
        raise PrerequisiteError(
            "the br_netfilter module is not loaded (bridged pod traffic would skip the rules)",
            hint="sudo modprobe br_netfilter (netlab does not load kernel modules itself)",
        )
    missing = [t for t in MODE_TOOLS.get(mode, []) if shutil.which(t) is None]
    if missing:
        pkgs = sorted({TOOLS[t][0] for t in missing})
        raise PrerequisiteError(
            f"{', '.join(missing)} not found (needed for {mode} mode)",
            hint=f"{APT} {' '.join(pkgs)}",
        )
    if mode == "ipvs":
        from netlab.kernel.features import ipvs_ready

        lacking = [f for f in ipvs_ready() if not f.ok]
        if lacking:
            raise PrerequisiteError(
                "IPVS mode needs a kernel with ip_vs and dummy devices; this one lacks "
                + " and ".join(f.name for f in lacking),
                hint=IPVS_HINT,
            )


def diagnose() -> Diagnosis:
    checks = [Check("root", is_root(), "" if is_root() else "not running as root", "run with sudo")]
    for tool, (pkg, why) in TOOLS.items():
        ok = shutil.which(tool) is not None
        checks.append(Check(f"tool {tool}", ok, why, "" if ok else f"{APT} {pkg}"))
    for mod in PYTHON_PACKAGES:
        ok = importlib.util.find_spec(mod) is not None
        checks.append(Check(f"python {mod}", ok, "", "" if ok else "pip install -e ."))
    features: dict[str, bool] = {}
    if is_root():
        from netlab.kernel.features import probe_all

        for f in probe_all():
            features[f.name] = f.ok
            checks.append(
                Check(f"kernel: {f.name}", f.ok, f.detail, "" if f.ok else _feature_hint(f.name))
            )
    modes = []
    for mode, tools in MODE_TOOLS.items():
        reasons = [f"{t} not found" for t in tools if shutil.which(t) is None]
        if not is_root():
            reasons.append("not root (kernel features not probed)")
        reasons += [f"kernel lacks {f}" for f in MODE_FEATURES[mode] if not features.get(f, True)]
        own = {f"tool {t}" for t in tools} | {f"kernel: {f}" for f in MODE_FEATURES[mode]}
        own.add("root")
        hint = IPVS_HINT if mode == "ipvs" and reasons else ""
        if reasons and not hint:
            # Only this mode's own failures: another mode's fix is noise here.
            hint = "; ".join(c.hint for c in checks if not c.ok and c.hint and c.name in own)
        modes.append(ModeVerdict(mode, not reasons, reasons, hint))
    return Diagnosis(checks, modes)


def _feature_hint(name: str) -> str:
    if name.startswith("IPVS") or name.startswith("dummy"):
        return IPVS_HINT
    if name == "br_netfilter":
        return "load br_netfilter (modprobe br_netfilter) or use a kernel that has it"
    return "this kernel lacks the feature; see docs/environment.md"
