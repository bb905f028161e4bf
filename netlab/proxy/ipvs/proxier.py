"""IPVS mode: apply the rendered state to a node, through :mod:`netlab.kernel` and pyroute2.

A sync runs kube-proxy's steps in kube-proxy's order, each one a single operation:

1. ``kube-ipvs0`` (a dummy device, left down as upstream leaves it) is ensured and the missing
   addresses are bound to it: pyroute2 ``IPRoute`` from a worker thread inside the node netns;
2. one ``ipset restore`` creates the sets and brings their entries up to date;
3. the kernel's IPVS table is read and reconciled with the rendered one over one generic
   netlink socket (pyroute2 ``IPVS``, opened inside the node netns by a worker thread);
4. one ``iptables-restore --noflush --counters`` loads the companion rules;
5. addresses no longer wanted are removed from ``kube-ipvs0`` (after the rules, as upstream).

Why netlink for step 3 and not ``ipvsadm --restore``: ipvsadm can only restore into an empty
table, so it needs ``ipvsadm -C`` first, which drops every service (and the connections through
them) for a moment on every sync; reconciling changes only what changed, as kube-proxy does.
pyroute2 0.9's IPVS API is usable with three workarounds, all in this module: its
``IPVSDest`` defaults to direct routing (``fwd_method`` 3) where kube-proxy uses masquerading
(0); its ``"update"`` command is mapped to the kernel's *delete* command, so edits use ``"set"``;
and ``IPVSService.from_message`` does not carry flags or timeouts over, so listings are read
from the raw attributes. The IPVS generic netlink family has no transactions, so "one batch"
means one socket and one ordered pass, not atomicity. ``ipvs_apply="ipvsadm"`` selects the
ipvsadm path instead (flush, then restore).
"""

from __future__ import annotations

import errno
import platform
import socket
import struct
import time
from dataclasses import dataclass
from typing import Any

from pyroute2 import IPVS, IPRoute, IPVSDest, IPVSService
from pyroute2.netlink.exceptions import NetlinkError

from netlab.cluster.state import ClusterState, Node
from netlab.errors import PrerequisiteError
from netlab.kernel import netns, process, rules, threads
from netlab.proxy.base import Proxier, SyncResult
from netlab.proxy.iptables.proxier import pick_backend
from netlab.proxy.ipvs.render import (
    DEFAULT_SCHEDULER,
    DUMMY_DEVICE,
    IpvsOp,
    IpvsOptions,
    IpvsRuleSet,
    RealServer,
    VirtualServer,
    bind_changes,
    canonical_entry,
    filter_ipvsadm_list,
    ipvs_sysctls,
    ipvsadm_restore_text,
    parse_ipset_save,
    reconcile,
    render,
)
from netlab.proxy.servicemap import ProxiedService, node_view

PROTOCOL_NUMBERS = {"TCP": socket.IPPROTO_TCP, "UDP": socket.IPPROTO_UDP, "SCTP": 132}
PROTOCOL_NAMES = {n: name for name, n in PROTOCOL_NUMBERS.items()}
IP_VS_CONN_F_MASQ = 0  # IPVS_DEST_ATTR_FWD_METHOD for masquerading (ipvsadm -m)
ALL_FLAGS = 0xFFFFFFFF  # ip_vs_flags.mask: set the flags exactly as given
APPLY_PATHS = ("netlink", "ipvsadm")


# ---------------------------------------------------------------------------------------------
# pyroute2 messages <-> netlab's VirtualServer / RealServer (no kernel needed; unit-tested)


def service_request(vs: VirtualServer) -> Any:
    """The pyroute2 service record for ``vs`` (a full one: add and set need every field)."""
    return IPVSService(
        addr=vs.address,
        port=vs.port,
        protocol=PROTOCOL_NUMBERS[vs.protocol],
        sched_name=vs.scheduler,
        flags={"flags": vs.flags, "mask": ALL_FLAGS},
        timeout=vs.timeout,
    )


def dest_request(rs: RealServer) -> Any:
    """The pyroute2 real server record: masquerading, as kube-proxy's (not pyroute2's DR)."""
    return IPVSDest(addr=rs.ip, port=rs.port, weight=rs.weight, fwd_method=IP_VS_CONN_F_MASQ)


NF_INET_ADDR_LEN = 16  # union nf_inet_addr
NLA_HEADER_LEN = 4


def _address(value: Any) -> str | None:
    """An address attribute: pyroute2 decodes it to text when it knows the family; the kernel
    sends 16 bytes (union nf_inet_addr), of which an IPv4 address is the first 4.

    Without the family attribute (older kernels), pyroute2's first lookup of the raw value
    still carries the attribute's own 4-byte header (length, type); it is recognised by its
    length field and skipped.
    """
    if isinstance(value, str):
        return value
    if not isinstance(value, bytes | bytearray):
        return None
    raw = bytes(value)
    if len(raw) == NLA_HEADER_LEN + NF_INET_ADDR_LEN and struct.unpack("=H", raw[:2])[0] == len(
        raw
    ):
        raw = raw[NLA_HEADER_LEN:]
    if len(raw) < 4:
        return None
    return socket.inet_ntop(socket.AF_INET, raw[:4])


def parse_service(msg: Any) -> VirtualServer | None:
    """A listed IPVS service, or None for one netlab never makes (IPv6, fwmark, other protocol):
    those are left alone, as kube-proxy leaves the other family's services alone."""
    attrs = msg.get("IPVS_CMD_ATTR_SERVICE")
    if attrs is None or attrs.get("IPVS_SVC_ATTR_AF") != socket.AF_INET:
        return None
    if attrs.get("IPVS_SVC_ATTR_FWMARK"):
        return None
    protocol = PROTOCOL_NAMES.get(attrs.get("IPVS_SVC_ATTR_PROTOCOL"))
    address = _address(attrs.get("IPVS_SVC_ATTR_ADDR"))
    if protocol is None or address is None:
        return None
    flags = attrs.get("IPVS_SVC_ATTR_FLAGS")
    return VirtualServer(
        address=address,
        port=int(attrs.get("IPVS_SVC_ATTR_PORT") or 0),
        protocol=protocol,
        scheduler=str(attrs.get("IPVS_SVC_ATTR_SCHED_NAME") or ""),
        flags=int(flags["flags"]) if flags is not None else 0,
        timeout=int(attrs.get("IPVS_SVC_ATTR_TIMEOUT") or 0),
    )


def parse_dest(msg: Any) -> RealServer | None:
    attrs = msg.get("IPVS_CMD_ATTR_DEST")
    if attrs is None:
        return None
    address = _address(attrs.get("IPVS_DEST_ATTR_ADDR"))
    if address is None:
        return None
    return RealServer(
        ip=address,
        port=int(attrs.get("IPVS_DEST_ATTR_PORT") or 0),
        weight=int(attrs.get("IPVS_DEST_ATTR_WEIGHT") or 0),
        active_conns=int(attrs.get("IPVS_DEST_ATTR_ACTIVE_CONNS") or 0),
        inactive_conns=int(attrs.get("IPVS_DEST_ATTR_INACT_CONNS") or 0),
    )


# ---------------------------------------------------------------------------------------------
# Kernel-facing steps: each runs on a worker thread inside the node namespace.


def _open_ipvs() -> Any:
    try:
        return IPVS()
    except NetlinkError as exc:
        raise PrerequisiteError(
            "the kernel has no IPVS (the generic netlink family IPVS is missing)",
            hint="modprobe ip_vs ip_vs_rr (or run the IPVS tests in the VM runner)",
        ) from exc


def read_ipvs_table(ipvs: Any) -> list[VirtualServer]:
    """The kernel's IPVS services with their real servers."""
    out: list[VirtualServer] = []
    for msg in ipvs.service("dump"):
        vs = parse_service(msg)
        if vs is None:
            continue
        key = IPVSService(addr=vs.address, port=vs.port, protocol=PROTOCOL_NUMBERS[vs.protocol])
        dests = [d for d in map(parse_dest, ipvs.dest("dump", service=key)) if d is not None]
        out.append(
            VirtualServer(
                vs.address, vs.port, vs.protocol, vs.scheduler, vs.flags, vs.timeout, tuple(dests)
            )
        )
    return out


def apply_ipvs_op(ipvs: Any, op: IpvsOp) -> None:
    svc = service_request(op.service)
    if op.action == "add-service":
        ipvs.service("add", service=svc)
    elif op.action == "set-service":
        ipvs.service("set", service=svc)  # not "update": pyroute2 maps that to DEL_SERVICE
    elif op.action == "del-service":
        ipvs.service("del", service=svc)
    elif op.dest is not None:
        verb = {"add-dest": "add", "set-dest": "set", "del-dest": "del"}[op.action]
        ipvs.dest(verb, service=svc, dest=dest_request(op.dest))


def sync_ipvs_table(desired: tuple[VirtualServer, ...]) -> list[IpvsOp]:
    """Read the table, reconcile it with ``desired``, apply the changes; return them."""
    netns.assert_not_host()
    ipvs = _open_ipvs()
    try:
        ops = reconcile(read_ipvs_table(ipvs), desired)
        for op in ops:
            apply_ipvs_op(ipvs, op)
        return ops
    finally:
        ipvs.close()


def _dummy_index(ipr: Any) -> int:
    found = ipr.link_lookup(ifname=DUMMY_DEVICE)
    if not found:
        try:
            # Created and left down: its addresses still get local routes, and a down device
            # answers no ARP for them (upstream's EnsureDummyDevice never sets it up).
            ipr.link("add", ifname=DUMMY_DEVICE, kind="dummy")
        except NetlinkError as exc:
            if exc.code == errno.EOPNOTSUPP:
                raise PrerequisiteError(
                    "the kernel has no dummy devices (kube-ipvs0 is one)",
                    hint="modprobe dummy (or run the IPVS tests in the VM runner)",
                ) from exc
            if exc.code != errno.EEXIST:
                raise
        found = ipr.link_lookup(ifname=DUMMY_DEVICE)
    return int(found[0])


def _bound(ipr: Any, index: int) -> list[str]:
    return [
        str(a.get_attr("IFA_ADDRESS"))
        for a in ipr.addr("dump", index=index, family=socket.AF_INET)
        if a["index"] == index
    ]


def bind_addresses(addresses: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """Ensure kube-ipvs0 and bind the missing addresses; return (added, superfluous)."""
    netns.assert_not_host()
    with IPRoute() as ipr:
        index = _dummy_index(ipr)
        add, stale = bind_changes(_bound(ipr, index), addresses)
        for ip in add:
            try:
                ipr.addr("add", index=index, address=ip, prefixlen=32)
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise
        return add, stale


def unbind_addresses(addresses: list[str]) -> None:
    netns.assert_not_host()
    with IPRoute() as ipr:
        found = ipr.link_lookup(ifname=DUMMY_DEVICE)
        if not found:
            return
        for ip in addresses:
            try:
                ipr.addr("del", index=found[0], address=ip, prefixlen=32)
            except NetlinkError as exc:
                if exc.code != errno.EADDRNOTAVAIL:
                    raise


@dataclass(frozen=True)
class ApplyStats:
    seconds: float
    lines: int  # ipset + iptables lines + IPVS changes + address changes
    ipvs_changes: int
    bound: int
    unbound: int


def apply_ruleset(
    netns_name: str,
    ruleset: IpvsRuleSet,
    *,
    first: bool,
    backend: str,
    ipvs_apply: str = "netlink",
) -> ApplyStats:
    """Program one node namespace with ``ruleset`` (steps 1-5 of the module docstring).

    On ``first`` the ipsets are flushed and refilled and the built-in chain jumps are added;
    later syncs read ``ipset save`` and change only the entries that differ.
    """
    if ipvs_apply not in APPLY_PATHS:
        raise ValueError(f"ipvs_apply must be one of {APPLY_PATHS}, not {ipvs_apply!r}")
    t0 = time.perf_counter()
    added, stale = threads.call(bind_addresses, ruleset.addresses, netns_name=netns_name)

    existing = None
    if not first:
        existing = parse_ipset_save(process.run(netns_name, ["ipset", "save"]).stdout)
    ipset_text = ruleset.ipset_restore_text(existing)
    process.run(netns_name, ["ipset", "restore"], input=ipset_text)

    if ipvs_apply == "netlink":
        changes = len(threads.call(sync_ipvs_table, ruleset.virtual_servers, netns_name=netns_name))
    else:
        text = ipvsadm_restore_text(ruleset)
        process.run(netns_name, ["ipvsadm", "-C"])
        process.run(netns_name, ["ipvsadm", "-R"], input=text)
        changes = text.count("\n")

    ipt_text = ruleset.iptables_restore_text(bootstrap=first)
    rules.iptables_restore(netns_name, ipt_text, backend)

    if stale:
        threads.call(unbind_addresses, stale, netns_name=netns_name)
    lines = ipset_text.count("\n") + ipt_text.count("\n") + changes + len(added) + len(stale)
    return ApplyStats(time.perf_counter() - t0, lines, changes, len(added), len(stale))


# ---------------------------------------------------------------------------------------------


class IpvsProxier(Proxier):
    mode = "ipvs"

    def __init__(
        self, state: ClusterState, backend: str | None = None, *, ipvs_apply: str = "netlink"
    ):
        super().__init__(state)
        if ipvs_apply not in APPLY_PATHS:
            raise ValueError(f"ipvs_apply must be one of {APPLY_PATHS}, not {ipvs_apply!r}")
        # IPVS mode's iptables rules are a fixed handful whatever the Service count (the
        # Services live in ipsets), so "auto" never needs the legacy back end's speed.
        self.backend = backend or pick_backend(state.lab.proxy.iptables_backend, 0)
        self.ipvs_apply = ipvs_apply
        self.scheduler = DEFAULT_SCHEDULER

    def options(self, node: Node) -> IpvsOptions:
        return IpvsOptions(
            node_ip=node.ip,
            cluster_cidr=self.state.lab.network.pod_cidr,
            # The node's addresses outside kube-ipvs0: eth0 and cni0 (upstream's default
            # NodePort addresses, loopback excluded).
            node_ips=tuple(dict.fromkeys(ip for ip in (node.ip, node.gateway) if ip)),
            masquerade_all=self.state.lab.proxy.masquerade_all,
            scheduler=self.scheduler,
        )

    def node_sysctls(self) -> dict[str, str]:
        return ipvs_sysctls(platform.release())

    def ruleset(self, node: Node, services: list[ProxiedService] | None = None) -> IpvsRuleSet:
        view = node_view(self.state, node.name) if services is None else services
        return render(view, self.options(node))

    def sync(self, node: Node, *, first: bool) -> SyncResult:
        stats = apply_ruleset(
            node.netns,
            self.ruleset(node),
            first=first,
            backend=self.backend,
            ipvs_apply=self.ipvs_apply,
        )
        note = (
            f"{stats.ipvs_changes} IPVS changes via {self.ipvs_apply}, "
            f"+{stats.bound}/-{stats.unbound} addresses, iptables {self.backend} back end"
        )
        return SyncResult(node.name, stats.seconds, stats.lines, note)

    def live_rules(
        self, node: Node, service: tuple[str, str] | None = None, *, counters: bool = False
    ) -> str:
        listing = process.run(
            node.netns, ["ipvsadm", "-Ln", *(["--stats"] if counters else [])]
        ).stdout
        if service is None:
            sets = process.run(node.netns, ["ipset", "list"]).stdout
            ipt = rules.iptables_save(node.netns, self.backend)
            return _sections(("ipvsadm -Ln", listing), ("ipset list", sets), ("iptables-save", ipt))
        svc = self.state.service(*service)
        key = (svc.meta.namespace, svc.meta.name)
        mine = [
            s
            for s in node_view(self.state, node.name)
            if (s.info.spn.namespace, s.info.spn.name) == key
        ]
        wanted = self.ruleset(node, mine)
        live = parse_ipset_save(process.run(node.netns, ["ipset", "save"]).stdout)
        entries = [
            f"{s.name} {e}"
            for s in wanted.ipsets
            for e in s.entries
            if canonical_entry(e) in live.get(s.name, set())
        ]
        return _sections(
            ("ipvsadm -Ln", filter_ipvsadm_list(listing, {v.key for v in wanted.virtual_servers})),
            ("ipset entries", "\n".join(entries) + ("\n" if entries else "")),
        )

    def describe(self) -> str:
        return f"ipvs ({self.scheduler}, iptables {self.backend} back end)"


def _sections(*parts: tuple[str, str]) -> str:
    """Several tools' outputs, each under a ``# <command>`` heading."""
    return "".join(f"# {title}\n{body.rstrip()}\n" for title, body in parts)
