"""IPVS mode: apply the rendered state to a node, through :mod:`netlab.kernel` and pyroute2.

A node's first sync (or the first through a new proxier) is a full one, which runs kube-proxy's
steps in kube-proxy's order, each one a single operation, reading back what the node holds:

1. ``kube-ipvs0`` (a dummy device, left down as upstream leaves it) is ensured and the missing
   addresses are bound to it, all in one send;
2. one ``ipset restore`` creates the sets and brings their entries up to date;
3. the kernel's IPVS table is read (a dump of the services, then one per service) and
   reconciled with the rendered one, every change sent in bulk over one generic netlink socket;
4. one ``iptables-restore --noflush --counters`` loads the companion rules;
5. addresses no longer wanted are removed from ``kube-ipvs0`` (after the rules, as upstream).

Netlink steps run on a worker thread inside the node netns, through
:mod:`netlab.kernel.netlink` with the messages laid out by :mod:`netlab.proxy.ipvs.wire`;
pyroute2 only looks up the device and the IPVS family (its one-request-per-round-trip sockets
made a 10k-Service sync take minutes). The IPVS generic netlink family has no transactions, so
"one batch" means one ordered pass, not atomicity.

Why netlink for step 3 and not ``ipvsadm --restore``: ipvsadm can only restore into an empty
table, so it needs ``ipvsadm -C`` first, which drops every service (and the connections through
them) for a moment on every sync; reconciling changes only what changed, as kube-proxy does.
``ipvs_apply="ipvsadm"`` selects the ipvsadm path instead (flush, then restore; every sync full).

Later syncs are partial (:mod:`netlab.proxy.ipvs.partial`): the same steps, but only for what
changed, from what the proxier remembers writing, with nothing read back but the real servers of
the virtual servers being changed (for their connection counts); a step with nothing to do is
skipped, so adding one Service is an address, a few ipset entries and a virtual server.
"""

from __future__ import annotations

import errno
import platform
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pyroute2 import IPVS, IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from netlab.cluster.state import ClusterState, Node
from netlab.errors import PrerequisiteError
from netlab.kernel import netlink, netns, process, rules, threads
from netlab.proxy import nodeports
from netlab.proxy.base import Applied, PartialProxier
from netlab.proxy.changes import changed_views
from netlab.proxy.iptables.proxier import pick_backend
from netlab.proxy.ipvs import wire
from netlab.proxy.ipvs.ipset import canonical_entry, parse_ipset_save
from netlab.proxy.ipvs.partial import IpvsChanges, NodeIpvs, VsKey
from netlab.proxy.ipvs.render import (
    DUMMY_DEVICE,
    IpvsOptions,
    IpvsRuleSet,
    assemble,
    bind_changes,
    ipvs_sysctls,
    ipvsadm_restore_text,
    render,
    render_service,
)
from netlab.proxy.ipvs.servers import (
    DEFAULT_SCHEDULER,
    IpvsOp,
    VirtualServer,
    draining,
    filter_ipvsadm_list,
    reconcile,
)
from netlab.proxy.servicemap import ProxiedService, node_view

APPLY_PATHS = ("netlink", "ipvsadm")
# The ipset tool on 10k Services' sets takes a minute on a slow machine (docs/performance.md):
# as long as iptables-restore and nft get.
IPSET_TIMEOUT = 600


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


def read_ipvs_table(sock: netlink.BulkSocket, family: int) -> list[VirtualServer]:
    """The kernel's IPVS services with their real servers (one dump of the services, then one
    per service, as upstream's GetVirtualServers and GetRealServers)."""
    out: list[VirtualServer] = []
    for payload in sock.dump(family, wire.dump_services()):
        vs = wire.parse_service(payload)
        if vs is None:
            continue
        dests = [wire.parse_dest(p) for p in sock.dump(family, wire.dump_dests(vs))]
        out.append(replace(vs, real_servers=tuple(d for d in dests if d is not None)))
    return out


@dataclass(frozen=True)
class TableSync:
    family: int  # the IPVS generic netlink family's id
    ops: list[IpvsOp]
    draining: set[VsKey]  # services left with a draining real server


def ipvs_family() -> int:
    ipvs = _open_ipvs()  # says clearly when the kernel has no IPVS; knows the family's id
    family = int(ipvs.prid)
    ipvs.close()
    return family


def sync_ipvs_table(desired: tuple[VirtualServer, ...]) -> TableSync:
    """Read the table, reconcile it with ``desired``, send the changes in bulk."""
    netns.assert_not_host()
    family = ipvs_family()
    with netlink.BulkSocket(netlink.NETLINK_GENERIC) as sock:
        current = read_ipvs_table(sock, family)
        ops = reconcile(current, desired)
        sock.requests(family, [wire.op_request(op) for op in ops])
        return TableSync(family, ops, draining(current, desired))


def update_ipvs_table(
    family: int, services: Mapping[VsKey, tuple[VirtualServer | None, VirtualServer | None]]
) -> TableSync:
    """A partial sync's changes to the table: for each key (held, wanted), read the real
    servers of what is held (their connection counts decide how they go), reconcile, send."""
    netns.assert_not_host()
    with netlink.BulkSocket(netlink.NETLINK_GENERIC) as sock:
        current = []
        for held, _ in services.values():
            if held is not None:
                dests = [wire.parse_dest(p) for p in sock.dump(family, wire.dump_dests(held))]
                current.append(replace(held, real_servers=tuple(d for d in dests if d)))
        desired = [want for _, want in services.values() if want is not None]
        ops = reconcile(current, desired)
        sock.requests(family, [wire.op_request(op) for op in ops])
        return TableSync(family, ops, draining(current, desired))


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


def bind_addresses(addresses: tuple[str, ...]) -> tuple[list[str], list[str], int]:
    """Ensure kube-ipvs0 and bind the missing addresses; return (added, superfluous, the
    device's index)."""
    netns.assert_not_host()
    with IPRoute() as ipr:
        index = _dummy_index(ipr)
    with netlink.BulkSocket(netlink.NETLINK_ROUTE) as sock:
        add, stale = bind_changes(netlink.addresses_on(sock, index), addresses)
    add_addresses(index, add)
    return add, stale, index


def add_addresses(index: int, addresses: list[str]) -> None:
    """Bind ``addresses`` to kube-ipvs0 (interface ``index``), in one send."""
    netns.assert_not_host()
    with netlink.BulkSocket(netlink.NETLINK_ROUTE) as sock:
        sock.requests(
            netlink.RTM_NEWADDR,
            [netlink.address_request(index, ip) for ip in addresses],
            flags=netlink.NLM_F_CREATE | netlink.NLM_F_EXCL,
            tolerate=(errno.EEXIST,),
        )


def unbind_addresses(addresses: list[str], index: int | None = None) -> None:
    netns.assert_not_host()
    if index is None:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=DUMMY_DEVICE)
        if not found:
            return
        index = int(found[0])
    with netlink.BulkSocket(netlink.NETLINK_ROUTE) as sock:
        sock.requests(
            netlink.RTM_DELADDR,
            [netlink.address_request(index, ip) for ip in addresses],
            tolerate=(errno.EADDRNOTAVAIL,),
        )


@dataclass(frozen=True)
class ApplyStats:
    seconds: float
    lines: int  # ipset + iptables lines + IPVS changes + address changes
    ipvs_changes: int
    bound: int
    unbound: int
    family: int = 0  # the IPVS generic netlink family's id (0: not looked up)
    device: int = 0  # kube-ipvs0's interface index (0: not looked up)
    draining: frozenset[VsKey] = frozenset()


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
    added, stale, device = threads.call(bind_addresses, ruleset.addresses, netns_name=netns_name)

    existing = None
    if not first:
        saved = process.run(netns_name, ["ipset", "save"], timeout=IPSET_TIMEOUT).stdout
        existing = parse_ipset_save(saved)
    ipset_text = ruleset.ipset_restore_text(existing)
    process.run(netns_name, ["ipset", "restore"], input=ipset_text, timeout=IPSET_TIMEOUT)

    family, left = 0, frozenset[VsKey]()
    if ipvs_apply == "netlink":
        table = threads.call(sync_ipvs_table, ruleset.virtual_servers, netns_name=netns_name)
        family, changes, left = table.family, len(table.ops), frozenset(table.draining)
    else:
        text = ipvsadm_restore_text(ruleset)
        process.run(netns_name, ["ipvsadm", "-C"])
        process.run(netns_name, ["ipvsadm", "-R"], input=text)
        changes = text.count("\n")

    ipt_text = ruleset.iptables_restore_text(bootstrap=first)
    rules.iptables_restore(netns_name, ipt_text, backend)

    if stale:
        threads.call(unbind_addresses, stale, device, netns_name=netns_name)
    lines = ipset_text.count("\n") + ipt_text.count("\n") + changes + len(added) + len(stale)
    seconds = time.perf_counter() - t0
    return ApplyStats(
        seconds, lines, changes, len(added), len(stale), family, device, frozenset(left)
    )


def apply_changes(
    netns_name: str, changes: IpvsChanges, *, family: int, device: int, backend: str
) -> ApplyStats:
    """A partial sync: the full sync's steps, in its order, each only for what changed and
    skipped when nothing did."""
    t0 = time.perf_counter()
    if changes.bind:
        threads.call(add_addresses, device, list(changes.bind), netns_name=netns_name)
    if changes.ipset_text:
        process.run(
            netns_name, ["ipset", "restore"], input=changes.ipset_text, timeout=IPSET_TIMEOUT
        )
    ops = 0
    left: set[VsKey] = set()
    if changes.services:
        table = threads.call(update_ipvs_table, family, changes.services, netns_name=netns_name)
        ops, left = len(table.ops), table.draining
    if changes.iptables_text:
        rules.iptables_restore(netns_name, changes.iptables_text, backend)
    if changes.unbind:
        threads.call(unbind_addresses, list(changes.unbind), device, netns_name=netns_name)
    lines = (
        changes.ipset_text.count("\n")
        + changes.iptables_text.count("\n")
        + ops
        + len(changes.bind)
        + len(changes.unbind)
    )
    seconds = time.perf_counter() - t0
    return ApplyStats(
        seconds, lines, ops, len(changes.bind), len(changes.unbind), family, device, frozenset(left)
    )


# ---------------------------------------------------------------------------------------------


class IpvsProxier(PartialProxier[NodeIpvs]):
    mode = "ipvs"
    cleans_stale_udp = True

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
        self._kernel_ids: dict[str, tuple[int, int]] = {}  # node -> (IPVS family, kube-ipvs0)

    def options(self, node: Node) -> IpvsOptions:
        return IpvsOptions(
            node_ip=node.ip,
            cluster_cidr=self.state.lab.network.pod_cidr,
            # The node's addresses outside kube-ipvs0 that nodePortAddresses lets serve
            # NodePorts (by default eth0 and cni0), loopback excluded as upstream does.
            node_ips=self._node_port_ips(node),
            masquerade_all=self.state.lab.proxy.masquerade_all,
            scheduler=self.scheduler,
        )

    def _node_port_ips(self, node: Node) -> tuple[str, ...]:
        addresses = nodeports.configured(self.state.lab.proxy.node_port_addresses, self.mode)
        ips = nodeports.node_port_ips(node, addresses)
        found = nodeports.local_addresses(node) if ips is None else ips
        return tuple(ip for ip in found if ip != nodeports.LOOPBACK)

    def node_sysctls(self) -> dict[str, str]:
        return ipvs_sysctls(platform.release())

    def ruleset(self, node: Node, services: list[ProxiedService] | None = None) -> IpvsRuleSet:
        view = node_view(self.state, node.name) if services is None else services
        return render(view, self.options(node))

    def can_build_on(self, node: Node, held: NodeIpvs) -> bool:
        # The ipvsadm path flushes and restores the whole table: it has no partial sync.
        return self.ipvs_apply == "netlink" and held.opts == self.options(node)

    def sync_full(self, node: Node, *, first: bool) -> tuple[Applied, NodeIpvs]:
        opts = self.options(node)
        view = node_view(self.state, node.name)
        shares = [(svc, render_service(svc, opts)) for svc in view]
        ruleset = assemble((share for _, share in shares), opts)
        stats = apply_ruleset(
            node.netns, ruleset, first=first, backend=self.backend, ipvs_apply=self.ipvs_apply
        )
        self._kernel_ids[node.name] = (stats.family, stats.device)
        held = NodeIpvs(opts, shares, ruleset, stats.draining)
        return Applied(stats.seconds, stats.lines, self._note(stats, "full")), held

    def sync_partial(self, node: Node, held: NodeIpvs, changed: set[str]) -> Applied:
        changes = held.update(changed_views(self.changes, changed, node))
        family, device = self._kernel_ids[node.name]
        stats = apply_changes(
            node.netns, changes, family=family, device=device, backend=self.backend
        )
        held.draining = set(stats.draining)
        return Applied(stats.seconds, stats.lines, self._note(stats, "partial"))

    def _note(self, stats: ApplyStats, kind: str) -> str:
        return (
            f"{stats.ipvs_changes} IPVS changes via {self.ipvs_apply}, "
            f"+{stats.bound}/-{stats.unbound} addresses, iptables {self.backend} back end, {kind}"
        )

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
