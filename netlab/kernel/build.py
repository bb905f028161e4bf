"""Build a :class:`~netlab.cluster.topology.TopologyPlan` in the kernel, in-process (pyroute2).

One worker thread does it all: it creates each namespace and enters it, opens one rtnetlink
socket there (pyroute2's ``IPRoute()`` opened inside the namespace, instead of
``IPRoute(netns=...)`` which forks a helper process per namespace), and keeps the node, fabric
and external sockets open while it streams through the pods. Per pod that is one namespace and
five netlink requests.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pyroute2 import IPRoute

from netlab.cluster.topology import (
    NODE_BRIDGE,
    RoutePlan,
    SysctlPlan,
    TopologyPlan,
    VethPlan,
    tag,
)
from netlab.kernel import etcnetns, netns, threads

Progress = Callable[[str, int, int], None]
FIRST_INDEX = 1000  # pods' host-side veths are numbered from here in their node
INNER_INDEX = 2  # a pod's eth0: the first interface after lo in a fresh namespace


@dataclass
class BuildStats:
    seconds: float = 0.0
    namespaces: int = 0
    phases: dict[str, float] = field(default_factory=dict)


class _Builder:
    def __init__(
        self,
        plan: TopologyPlan,
        progress: Progress | None,
        created: list[str],
        live: bool = False,
    ):
        self.plan = plan
        self.progress = progress
        self.sockets: dict[str, IPRoute] = {}
        self.fds: dict[str, int] = {}
        self.created = created
        self.stats = BuildStats()
        self.next_index: dict[str, int] = {}  # per outer namespace, for pods' host-side veths
        # Adding pods to a running lab: the nodes' interface numbers are taken already, so the
        # kernel picks the host-side veths' indexes.
        self.live = live

    def close(self) -> None:
        for ipr in self.sockets.values():
            with contextlib.suppress(Exception):
                ipr.close()
        for fd in self.fds.values():
            with contextlib.suppress(OSError):
                os.close(fd)

    def _namespace(self, name: str, role: str, keep: bool = True) -> IPRoute:
        """Create ``name``, enter it, tag it, bring ``lo`` up; return its rtnetlink socket."""
        netns.create_and_enter(name)
        self.created.append(name)
        ipr = IPRoute()
        ipr.link("set", index=1, state="up", ifalias=tag(self.plan.lab, role))
        if keep:
            self.sockets[name] = ipr
            self.fds[name] = netns.open_fd(name)
        return ipr

    def run(self) -> BuildStats:
        t0 = time.perf_counter()
        plan = self.plan
        roles = {n.name: n.role for n in plan.namespaces}
        infra = [n for n in plan.namespaces if n.role != "pod"]
        for n in infra:
            self._namespace(n.name, n.role)
        for b in plan.bridges:
            ipr = self.sockets[b.netns]
            ipr.link("add", ifname=b.name, kind="bridge")
            idx = ipr.link_lookup(ifname=b.name)[0]
            # The bridge's MAC set to itself, as the CNI bridge plugin does (containernetworking/
            # plugins plugins/main/bridge/bridge.go, ensureAddr, v1.5): otherwise the bridge takes
            # the lowest MAC of its ports and changes when that pod goes, and every pod's cached
            # neighbour entry for its gateway points nowhere until it is probed again (seconds).
            mac = ipr.link("get", index=idx)[0].get_attr("IFLA_ADDRESS")
            ipr.link("set", index=idx, address=mac)
            if b.alias:
                ipr.link("set", index=idx, ifalias=b.alias)
            if b.address:
                ip, plen = b.address.split("/")
                ipr.addr("add", index=idx, address=ip, prefixlen=int(plen))
            ipr.link("set", index=idx, state="up")
        masters: dict[tuple[str, str], int] = {
            (b.netns, b.name): self.sockets[b.netns].link_lookup(ifname=b.name)[0]
            for b in plan.bridges
        }
        routes: dict[str, list[RoutePlan]] = {}
        for r in plan.routes:
            routes.setdefault(r.netns, []).append(r)
        for v in plan.veths:
            if roles[v.netns] != "pod":
                self._veth(v, self.sockets[v.netns], masters)
        for a in plan.addresses:
            ipr = self.sockets[a.netns]
            ip, plen = a.address.split("/")
            ipr.addr("add", index=ipr.link_lookup(ifname=a.dev)[0], address=ip, prefixlen=int(plen))
        for name in self.sockets:
            for r in routes.get(name, []):
                _route(self.sockets[name], r)
        self._sysctls(plan.sysctls)
        self.stats.phases["infrastructure"] = time.perf_counter() - t0

        t1 = time.perf_counter()
        pod_veths = {v.netns: v for v in plan.veths if roles[v.netns] == "pod"}
        pods = plan.pods()
        for i, n in enumerate(pods):
            if threads.cancelled.is_set():
                raise InterruptedError("build cancelled")
            ipr = self._namespace(n.name, "pod", keep=False)
            try:
                self._veth(pod_veths[n.name], ipr, masters, fresh=True)
                for r in routes.get(n.name, []):
                    _route(ipr, r)
            finally:
                ipr.close()
            if self.progress and (i % 50 == 0 or i == len(pods) - 1):
                self.progress("pods", i + 1, len(pods))
        self.stats.phases["pods"] = time.perf_counter() - t1
        netns.enter_host()
        t2 = time.perf_counter()
        etcnetns.write([(f.netns, f.name, f.content) for f in plan.files])
        self.stats.phases["files"] = time.perf_counter() - t2
        self.stats.namespaces = len(self.created)
        self.stats.seconds = time.perf_counter() - t0
        return self.stats

    def _veth(
        self,
        v: VethPlan,
        inner: IPRoute,
        masters: dict[tuple[str, str], int],
        fresh: bool = False,
    ) -> None:
        """Create the pair from the outer side (joined to its bridge, up), the inner end placed
        straight into its namespace; then address the inner end and bring it up.

        ``fresh``: the inner namespace has only ``lo``, so its end can be given index 2, and the
        outer end an index of our choosing: no lookups, alias and hairpin in one request. That
        is six netlink requests per pod instead of nine.
        """
        outer = self.sockets[v.peer_netns]
        fd = self.fds.get(v.netns)
        own_fd = fd is None
        if own_fd:
            fd = netns.open_fd(v.netns)
        peer: dict[str, object] = {"ifname": v.name, "net_ns_fd": fd}
        kwargs: dict[str, object] = {}
        if v.peer_master:
            kwargs["master"] = masters[(v.peer_netns, v.peer_master)]
        if fresh:
            if not self.live:
                self.next_index[v.peer_netns] = self.next_index.get(v.peer_netns, FIRST_INDEX) + 1
                kwargs["index"] = self.next_index[v.peer_netns]
            peer["index"] = INNER_INDEX
        try:
            outer.link("add", ifname=v.peer, kind="veth", state="up", peer=peer, **kwargs)
        finally:
            if own_fd and fd is not None:
                os.close(fd)
        index = kwargs.get("index") or outer.link("get", ifname=v.peer)[0]["index"]
        attrs: dict[str, object] = {}
        if v.peer_alias:
            attrs["ifalias"] = v.peer_alias
        if v.peer_hairpin:  # bridge_slave hairpin on, in the same request as the alias
            attrs["IFLA_LINKINFO"] = {
                "attrs": [
                    ["IFLA_INFO_SLAVE_KIND", "bridge"],
                    ["IFLA_INFO_SLAVE_DATA", {"attrs": [["IFLA_BRPORT_MODE", 1]]}],
                ]
            }
        if attrs:
            outer.link("set", index=index, **attrs)
        idx = INNER_INDEX if fresh else inner.link_lookup(ifname=v.name)[0]
        if v.address:
            ip, plen = v.address.split("/")
            inner.addr("add", index=idx, address=ip, prefixlen=int(plen))
        inner.link("set", index=idx, state="up")

    def run_pods(self) -> BuildStats:
        """Add the plan's pods to nodes that exist: their namespaces, veths on the nodes'
        bridges, routes and files (the CNI ADD of each new pod)."""
        t0 = time.perf_counter()
        plan = self.plan
        pods = plan.pods()
        veths = {v.netns: v for v in plan.veths}
        nodes = sorted({veths[n.name].peer_netns for n in pods})
        masters: dict[tuple[str, str], int] = {}
        for name in nodes:
            netns.enter(name)
            ipr = IPRoute()
            self.sockets[name] = ipr
            self.fds[name] = netns.open_fd(name)
            masters[(name, NODE_BRIDGE)] = ipr.link_lookup(ifname=NODE_BRIDGE)[0]
        routes: dict[str, list[RoutePlan]] = {}
        for r in plan.routes:
            routes.setdefault(r.netns, []).append(r)
        for n in pods:
            if threads.cancelled.is_set():
                raise InterruptedError("build cancelled")
            ipr = self._namespace(n.name, "pod", keep=False)
            try:
                self._veth(veths[n.name], ipr, masters, fresh=True)
                for r in routes.get(n.name, []):
                    _route(ipr, r)
            finally:
                ipr.close()
        netns.enter_host()
        etcnetns.write([(f.netns, f.name, f.content) for f in plan.files])
        self.stats.namespaces = len(self.created)
        self.stats.seconds = time.perf_counter() - t0
        return self.stats

    def _sysctls(self, sysctls: list[SysctlPlan]) -> None:
        by_ns: dict[str, list[SysctlPlan]] = {}
        for s in sysctls:
            by_ns.setdefault(s.netns, []).append(s)
        for name, items in by_ns.items():
            with netns.inside(name):
                for s in items:
                    write_sysctl(s.key, s.value)


def _route(ipr: IPRoute, r: RoutePlan) -> None:
    dst = "0.0.0.0/0" if r.dst == "default" else r.dst
    ipr.route("add", dst=dst, gateway=r.gateway, proto="boot")


def write_sysctl(key: str, value: str) -> None:
    """Write a sysctl of the calling thread's namespace; never of the host's."""
    netns.assert_not_host()
    with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
        f.write(value)


def build(
    plan: TopologyPlan, progress: Progress | None = None, created: list[str] | None = None
) -> BuildStats:
    """Build ``plan``. On failure what was made is left for the caller's teardown; ``created``
    gets each namespace's name as soon as it exists, so the caller knows exactly which."""
    builder = _Builder(plan, progress, created if created is not None else [])
    threads.cancelled.clear()

    def job() -> BuildStats:
        try:
            return builder.run()
        finally:
            builder.close()

    return threads.call(job)


def add_pods(plan: TopologyPlan, created: list[str]) -> BuildStats:
    """Add the pods of ``plan`` (only pods: their nodes exist) to a running lab. ``created``
    gets each namespace's name as soon as it exists, as for :func:`build`."""
    builder = _Builder(plan, None, created, live=True)
    threads.cancelled.clear()

    def job() -> BuildStats:
        try:
            return builder.run_pods()
        finally:
            builder.close()

    return threads.call(job)


def set_link_state(netns_name: str, ifname: str, up: bool) -> None:
    """Bring an interface of a lab namespace up or down."""

    def job() -> None:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=ifname)
            if found:
                ipr.link("set", index=found[0], state="up" if up else "down")

    threads.call(job, netns_name=netns_name)


def delete_link(netns_name: str, ifname: str) -> None:
    """Delete an interface of a lab namespace (a veth takes its peer with it); gone already is
    no error."""

    def job() -> None:
        with IPRoute() as ipr:
            found = ipr.link_lookup(ifname=ifname)
            if found:
                ipr.link("del", index=found[0])

    threads.call(job, netns_name=netns_name)


def read_tag(name: str) -> str | None:
    """The ownership tag of namespace ``name`` (``lo``'s alias), or None."""

    def job() -> str | None:
        with IPRoute() as ipr:
            links = ipr.link("get", index=1)
            alias = links[0].get_attr("IFLA_IFALIAS") if links else None
            return str(alias) if alias else None

    try:
        return threads.call(job, netns_name=name)
    except OSError:
        return None
