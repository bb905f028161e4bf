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
    "bpftool": ("bpftool", "ebpf mode: netlab rules --raw (the pinned maps, tc and cgroup)"),
}

MODE_TOOLS: dict[str, list[str]] = {
    "iptables": ["nsenter", "iptables-nft-restore", "iptables-legacy-restore"],
    "nftables": ["nsenter", "nft", "iptables-nft-restore"],  # the CNI's masquerade rules
    "ipvs": ["nsenter", "ipset", "iptables-nft-restore", "iptables-legacy-restore"],
    "userspace": ["nsenter", "iptables-nft-restore", "iptables-legacy-restore"],
    "ebpf": ["nsenter", "iptables-nft-restore", "bpftool"],  # the CNI's masquerade rules
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
    "ebpf": [
        "network namespaces",
        "veth devices",
        "bridge devices",
        "br_netfilter",
        "bpf syscall",
        "BTF",
        "clsact/cls_bpf",
        "cgroup v2",
        "clang and BPF headers",
        "libbpf",
    ],
}

EBPF_HINTS = {
    "bpf syscall": "use a kernel built with CONFIG_BPF_SYSCALL (and run as root)",
    "BTF": "use a kernel built with CONFIG_DEBUG_INFO_BTF (/sys/kernel/btf/vmlinux)",
    "clsact/cls_bpf": "use a kernel with CONFIG_NET_SCH_INGRESS and CONFIG_NET_CLS_BPF",
    "cgroup v2": "mount cgroup2 (e.g. mount -t cgroup2 none /sys/fs/cgroup/unified) or boot "
    "with systemd.unified_cgroup_hierarchy=1",
    "clang and BPF headers": "apt-get install -y clang llvm libbpf-dev (or ./scripts/setup)",
    "libbpf": "apt-get install -y libbpf1 (or ./scripts/setup)",
}

EBPF_USERLAND = ("clang and BPF headers", "libbpf")  # MODE_FEATURES of user space, not kernel

PYTHON_PACKAGES = ["pyroute2", "scapy", "rich", "yaml", "dnslib"]

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
    if mode == "ebpf":
        _require_ebpf()
    if mode == "ipvs":
        from netlab.kernel.features import ipvs_ready

        lacking = [f for f in ipvs_ready() if not f.ok]
        if lacking:
            raise PrerequisiteError(
                "IPVS mode needs a kernel with ip_vs and dummy devices; this one lacks "
                + " and ".join(f.name for f in lacking),
                hint=IPVS_HINT,
            )


def ebpf_userland() -> list[tuple[str, bool, str]]:
    """The ebpf mode's user-space needs: (name, ok, detail)."""
    from netlab.errors import NetlabError
    from netlab.kernel import libbpf
    from netlab.proxy.ebpf import objects

    out = []
    try:
        clang = objects.require_toolchain()
        out.append(("clang and BPF headers", True, clang))
    except NetlabError as exc:
        out.append(("clang and BPF headers", False, str(exc)))
    try:
        libbpf.library()
        out.append(("libbpf", True, "libbpf.so.1"))
    except NetlabError as exc:
        out.append(("libbpf", False, str(exc)))
    return out


def _require_ebpf() -> None:
    """Everything the ebpf mode needs, each named with its fix; the programs are built (or
    found in the cache) here, before anything of the lab exists."""
    from netlab.kernel.features import ebpf_ready
    from netlab.proxy.ebpf import objects

    lacking = [(n, d) for n, ok, d in ebpf_userland() if not ok]
    lacking += [(f.name, f.detail) for f in ebpf_ready() if not f.ok]
    if lacking:
        name, detail = lacking[0]
        raise PrerequisiteError(
            "the ebpf mode needs "
            + ", ".join(n for n, _ in lacking)
            + (f" ({detail})" if detail else ""),
            hint=EBPF_HINTS[name],
        )
    objects.build_dir()


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
        from netlab.kernel.features import ebpf_ready, probe_all

        for f in [*probe_all(), *ebpf_ready()]:
            features[f.name] = f.ok
            checks.append(
                Check(f"kernel: {f.name}", f.ok, f.detail, "" if f.ok else _feature_hint(f.name))
            )
    for name, ok, detail in ebpf_userland():
        features[name] = ok
        checks.append(Check(f"ebpf: {name}", ok, detail, "" if ok else EBPF_HINTS[name]))
    modes = []
    for mode, tools in MODE_TOOLS.items():
        reasons = [f"{t} not found" for t in tools if shutil.which(t) is None]
        if not is_root():
            reasons.append("not root (kernel features not probed)")
        reasons += [
            f"{f} missing" if f in EBPF_USERLAND else f"kernel lacks {f}"
            for f in MODE_FEATURES[mode]
            if not features.get(f, True)
        ]
        own = {f"tool {t}" for t in tools} | {f"kernel: {f}" for f in MODE_FEATURES[mode]}
        own |= {f"ebpf: {f}" for f in MODE_FEATURES[mode]}
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
    if name in EBPF_HINTS:
        return EBPF_HINTS[name]
    if name == "br_netfilter":
        return "load br_netfilter (modprobe br_netfilter) or use a kernel that has it"
    return "this kernel lacks the feature; see docs/environment.md"
