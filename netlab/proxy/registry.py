"""Proxy modes by name."""

from __future__ import annotations

from netlab.cluster.state import ClusterState
from netlab.errors import UsageError
from netlab.proxy.base import Proxier

MODES = ("iptables", "nftables", "ipvs", "userspace", "ebpf")


def make_proxier(mode: str, state: ClusterState, backend: str | None = None) -> Proxier:
    if mode == "iptables":
        from netlab.proxy.iptables.proxier import IptablesProxier

        return IptablesProxier(state, backend)
    if mode == "nftables":
        from netlab.proxy.nftables.proxier import NftablesProxier, pick_layout

        return NftablesProxier(state, pick_layout(state))
    if mode == "userspace":
        from netlab.proxy.userspace.proxier import UserspaceProxier

        return UserspaceProxier(state, backend)
    if mode == "ipvs":
        from netlab.proxy.ipvs.proxier import IpvsProxier

        return IpvsProxier(state, backend)
    if mode == "ebpf":
        from netlab.proxy.ebpf.proxier import EbpfProxier

        return EbpfProxier(state)
    if mode in MODES:
        raise UsageError(
            f"proxy mode {mode} is not available in this version of netlab",
            hint="use --mode iptables",
        )
    raise UsageError(f"unknown proxy mode {mode!r}", hint=f"modes: {', '.join(MODES)}")
