"""Probe what this host's kernel can do, inside a throwaway namespace (never the host's)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

from pyroute2 import IPRoute

from netlab.cluster.topology import tag
from netlab.kernel import netns, process, threads


@dataclass(frozen=True)
class Feature:
    name: str
    ok: bool
    detail: str = ""


def _scratch_name() -> str:
    return f"netlab-doctor-{os.getpid()}"


@contextlib.contextmanager
def scratch() -> Iterator[str | None]:
    """A tagged throwaway namespace for probes (None if none can be made), removed after."""
    name = _scratch_name()

    def create() -> None:
        netns.create_and_enter(name)
        with IPRoute() as ipr:
            ipr.link("set", index=1, state="up", ifalias=tag("netlab-doctor", "scratch"))

    try:
        threads.call(create)
    except OSError:
        netns.remove(name)
        yield None
        return
    try:
        yield name
    finally:
        netns.remove(name)


def ipvs_ready() -> list[Feature]:
    """What IPVS mode needs beyond the basics: ip_vs and dummy devices."""
    with scratch() as name:
        if name is None:
            return [Feature("network namespaces", False)]
        return [_ipvs_feature(name), _link_feature(name, "dummy")]


def probe_all() -> list[Feature]:
    """Try each feature in a scratch namespace."""
    results: list[Feature] = []
    with scratch() as name:
        if name is None:
            return [Feature("network namespaces", False, "cannot create a network namespace")]
        results.append(Feature("network namespaces", True))
        for kind in ("veth", "bridge", "dummy"):
            results.append(_link_feature(name, kind))
        results.append(_sysctl_feature(name, "br_netfilter", "net/bridge/bridge-nf-call-iptables"))
        results.append(
            _command_feature(
                name,
                "iptables (nft back end)",
                ["iptables-nft-restore", "--noflush"],
                "*nat\n:NETLAB-PROBE - [0:0]\n-A NETLAB-PROBE -p tcp -j DNAT --to-destination "
                "10.0.0.1:80\n-A NETLAB-PROBE -m statistic --mode random --probability 0.5 -j "
                "RETURN\nCOMMIT\n",
            )
        )
        results.append(
            _command_feature(
                name,
                "iptables (legacy back end)",
                ["iptables-legacy-restore", "--noflush", "--wait=5"],
                "*nat\n:NETLAB-PROBE - [0:0]\n-A NETLAB-PROBE -p tcp -j DNAT --to-destination "
                "10.0.0.1:80\nCOMMIT\n",
            )
        )
        results.append(
            _command_feature(
                name,
                "nftables",
                ["nft", "-f", "-"],
                # Multi-line: nft 1.0.6 rejects the one-line form of a vmap chain.
                "table ip netlab_probe {\n  chain c {\n"
                "    numgen random mod 2 vmap { 0 : accept, 1 : accept }\n  }\n}\n",
            )
        )
        results.append(_ipvs_feature(name))
    return results


def _link_feature(name: str, kind: str) -> Feature:
    def job() -> None:
        with IPRoute() as ipr:
            extra = {"peer": {"ifname": "probe1"}} if kind == "veth" else {}
            ipr.link("add", ifname="probe0", kind=kind, **extra)
            ipr.link("del", ifname="probe0")

    try:
        threads.call(job, netns_name=name)
        return Feature(f"{kind} devices", True)
    except Exception as exc:
        return Feature(f"{kind} devices", False, str(exc))


def _sysctl_feature(name: str, label: str, key: str) -> Feature:
    def job() -> bool:
        return os.path.exists("/proc/sys/" + key)

    ok = threads.call(job, netns_name=name)
    return Feature(label, ok, "" if ok else f"/proc/sys/{key} is missing in a new namespace")


def _command_feature(name: str, label: str, argv: list[str], text: str) -> Feature:
    try:
        proc = process.run(name, argv, input=text, check=False, timeout=30)
    except Exception as exc:
        return Feature(label, False, str(exc))
    detail = (proc.stderr or proc.stdout).strip().splitlines()
    return Feature(label, proc.returncode == 0, detail[0] if detail and proc.returncode else "")


def _ipvs_feature(name: str) -> Feature:
    def job() -> bool:
        # /proc/net is the thread-group leader's (the host's) namespace; this thread's is here.
        return os.path.exists("/proc/thread-self/net/ip_vs")

    ok = threads.call(job, netns_name=name)
    if ok:
        return Feature("IPVS (ip_vs)", True)
    detail = "the kernel has no ip_vs (/proc/net/ip_vs is missing)"
    with contextlib.suppress(Exception):
        proc = process.run(name, ["ipvsadm", "-Ln"], check=False, timeout=10)
        if proc.returncode:
            detail += f"; ipvsadm says: {(proc.stderr or proc.stdout).strip()}"
    return Feature("IPVS (ip_vs)", False, detail)


BTF_VMLINUX = "/sys/kernel/btf/vmlinux"


def ebpf_ready() -> list[Feature]:
    """What the ebpf mode needs of the kernel: the bpf syscall, BTF, tc BPF programs (clsact
    and cls_bpf in direct-action mode, tried in a scratch namespace) and cgroup v2."""
    from netlab.kernel import bpf, cgroup

    out = [Feature("bpf syscall", bpf.available(), "" if bpf.available() else "bpf(2) fails")]
    has_btf = os.path.exists(BTF_VMLINUX)
    out.append(Feature("BTF", has_btf, "" if has_btf else f"{BTF_VMLINUX} is missing"))
    with scratch() as name:
        if name is None:
            out.append(Feature("clsact/cls_bpf", False, "cannot create a network namespace"))
        else:
            out.append(_tc_bpf_feature(name))
    root = cgroup.root()
    out.append(Feature("cgroup v2", root is not None, f"at {root}" if root else "no cgroup2 mount"))
    return out


def _tc_bpf_feature(name: str) -> Feature:
    from netlab.kernel import bpf, tc

    def job() -> None:
        fd = bpf.prog_load_pass()
        try:
            with IPRoute() as ipr:
                ipr.link("add", ifname="probe0", kind="veth", peer={"ifname": "probe1"})
                index = ipr.link_lookup(ifname="probe0")[0]
                tc.attach(ipr, index, fd, "netlab_probe", tc.INGRESS)
                ipr.link("del", index=index)
        finally:
            os.close(fd)

    try:
        threads.call(job, netns_name=name)
        return Feature("clsact/cls_bpf", True)
    except Exception as exc:
        return Feature("clsact/cls_bpf", False, str(exc))
