"""ebpf mode: Services load-balanced by eBPF programs, after Cilium's kube-proxy replacement.

A node's first sync mounts the lab's bpffs (once per lab), loads the node's three objects
with its configuration, fills its maps in bulk, then attaches the programs: tc on ``eth0``
and every pod's veth, the socket programs on the node's cgroup. Later syncs only write what
changed, in Cilium's order (:func:`entries.plan`). As kube-proxy's proxiers remember what
they applied, this one keeps, per node, the maps' contents and each Service's rendered
entries, so a sync renders only the Services whose objects changed; a new ``netlab`` process
reads the maps back instead (and Cilium's IDs with them), as a restarted Cilium agent does.
"""

from __future__ import annotations

import contextlib
import gc
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

from netlab.checks.observations import ConntrackEntry
from netlab.cluster.state import ClusterState, EndpointSlice, Node
from netlab.cluster.topology import veth_name
from netlab.kernel import bpf, bpffs, cgroup, threads
from netlab.proxy import nodeports
from netlab.proxy.base import Proxier, SyncResult
from netlab.proxy.ebpf import datapath, entries, record, render, view
from netlab.proxy.ebpf import live as live_mod
from netlab.proxy.servicemap import is_proxied, service_view, slices_by_service
from netlab.scenario.k8s import Service

RUN_ROOT = "/run/netlab"  # a lab's own directory is RUN_ROOT/<lab> (netlab.lab.paths.STATE_ROOT)
LB_MAPS_MIN = 65536


def bpffs_root(lab: str) -> str:
    return os.path.join(RUN_ROOT, lab, "bpffs")


@dataclass
class _Cached:
    """One Service as last rendered: which objects it came from, and its entries."""

    fingerprint: tuple[int, ...]
    contents: entries.Contents  # backends apart: they are shared
    frontends: frozenset[render.FrontendKey]
    backends: dict[render.BackendKey, tuple[bytes, bytes]]  # -> backend map key, value


@dataclass
class _NodeState:
    """What this process knows a node's maps hold, and how each Service rendered."""

    applied: entries.Contents
    service_ids: render.IdAllocator
    backend_ids: render.IdAllocator
    cache: dict[str, _Cached] = field(default_factory=dict)
    backend_refs: dict[render.BackendKey, int] = field(default_factory=dict)
    # The pod devices carrying the programs (None: not known to this process, so every pod
    # device of the node gets them again; attaching replaces netlab's filter in place).
    devices: set[str] | None = None


NON_BACKEND_PARTS = tuple(p for p in entries.PARTS if p != "backends")


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """Rendering 10k Services allocates a burst of small objects that all stay alive; the
    cyclic collector would walk them again and again for nothing (a fifth of the time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class EbpfProxier(Proxier):
    mode = "ebpf"

    def __init__(self, state: ClusterState, root: str | None = None):
        """``root``: the bpffs to use (default: the lab's own, in its state directory, where
        the IDs of the programs loaded are recorded too, so ``down`` can wait them out)."""
        super().__init__(state)
        self.root = root or bpffs_root(state.lab.name)
        self.record = None if root else os.path.join(RUN_ROOT, state.lab.name, record.RECORD)
        self._nodes: dict[str, _NodeState] = {}
        self._encoder: entries.Encoder | None = None

    @property
    def encoder(self) -> entries.Encoder:
        if self._encoder is None:
            self._encoder = entries.Encoder(datapath.layouts())
        return self._encoder

    def node_sysctls(self) -> dict[str, str]:
        # Cilium's agent turns reverse-path filtering off: replies arrive from the Service's
        # address, and hairpin traffic from 169.254.42.1, on devices without a route back.
        return {"net.ipv4.conf.all.rp_filter": "0", "net.ipv4.conf.default.rp_filter": "0"}

    def cgroup_dir(self, node: Node) -> str:
        return cgroup.node_dir(self.state.lab.name, node.name)

    # rendering ---------------------------------------------------------------------------

    def _render(
        self,
        svc: Service,
        slices: list[EndpointSlice],
        info: render.NodeInfo,
        ns: _NodeState,
        fingerprint: tuple[int, ...],
    ) -> _Cached:
        contents = entries.Contents()
        frontends = []
        backends: dict[render.BackendKey, tuple[bytes, bytes]] = {}
        frontend, backend = self.encoder.frontend, self.encoder.backend
        for ps in service_view(svc, slices, info.name, info.zone):
            rendered = render.render_service_port(ps, info, ns.service_ids, ns.backend_ids)
            for f in rendered.frontends:
                frontend(f, contents)
                frontends.append(f.key)
            for b in rendered.backends:
                backends[b.key] = backend(b)
        return _Cached(fingerprint, contents, frozenset(frontends), backends)

    def _node_info(self, node: Node) -> render.NodeInfo:
        """The node as rendering needs it. ``spec.proxy.nodePortAddresses`` is read as Cilium's
        --nodeport-addresses: the node's device addresses inside the CIDRs get NodePort frontends
        (its device is eth0, whose address is the node IP; the pods' gateway and 127.0.0.1 are
        no device's), unset or ``primary`` the node IP (cilium/cilium
        pkg/datapath/tables/node_address.go, NodePort)."""
        setting = nodeports.configured(self.state.lab.proxy.node_port_addresses, self.mode)
        ips = nodeports.node_port_ips(node, setting)
        served = None if ips is None or node.ip in ips else ()
        return render.NodeInfo(node.name, node.ip, node.zone, served)

    def _changes(self, node: Node, ns: _NodeState) -> entries.Delta:
        """What to write so the node's maps match the cluster state. Services whose objects
        are the ones rendered last time are skipped (the cluster state replaces an object when
        it changes, never edits it); the others are rendered and compared with what they were.
        A process that did not write the maps compares everything with what they hold."""
        by_service = slices_by_service(self.state)
        recovered = not ns.cache and ns.applied.size() > 0
        delta = entries.Delta()
        refs = ns.backend_refs
        backend_writes: dict[render.BackendKey, tuple[bytes, bytes]] = {}
        gone_frontends: list[render.FrontendKey] = []
        seen: set[str] = set()
        services = sorted(
            (s for s in self.state.services if is_proxied(s)),
            key=lambda s: (s.meta.namespace, s.meta.name),
        )
        fresh = not ns.cache and not recovered
        info = self._node_info(node)
        for svc in services:
            key = f"{svc.meta.namespace}/{svc.meta.name}"
            seen.add(key)
            slices = by_service.get(key, [])
            fingerprint = (id(svc), *map(id, slices))
            old = ns.cache.get(key)
            if old is not None and old.fingerprint == fingerprint:
                continue
            new = self._render(svc, slices, info, ns, fingerprint)
            ns.cache[key] = new
            if fresh:  # a node's first sync: everything is new, nothing to compare
                delta.merge_new(new.contents)
                for bkey, kv in new.backends.items():
                    refs[bkey] = refs.get(bkey, 0) + 1
                    backend_writes[bkey] = kv
                continue
            self._swap(delta, refs, backend_writes, gone_frontends, old, new)
        for key in [k for k in ns.cache if k not in seen]:
            self._swap(delta, refs, backend_writes, gone_frontends, ns.cache.pop(key), None)
        for bkey, (k, v) in backend_writes.items():
            if refs.get(bkey, 0) > 0:
                delta.updates["backends"][k] = v
            else:
                delta.deletes["backends"][k] = None
                refs.pop(bkey, None)
                ns.backend_ids.release(bkey)
        for fkey in gone_frontends:  # released only now: an ID is never reused within a sync
            ns.service_ids.release(fkey)
        if recovered:
            desired = entries.Contents()
            for cached in ns.cache.values():
                desired.merge(cached.contents)
                desired.backends.update(v for v in cached.backends.values())
            delta = entries.Delta()
            delta.diff(ns.applied, desired)
        return delta

    @staticmethod
    def _swap(
        delta: entries.Delta,
        refs: dict[render.BackendKey, int],
        backend_writes: dict[render.BackendKey, tuple[bytes, bytes]],
        gone_frontends: list[render.FrontendKey],
        old: _Cached | None,
        new: _Cached | None,
    ) -> None:
        """Account one Service changing from ``old`` to ``new`` (either may be None)."""
        delta.diff(
            old.contents if old else entries.Contents(),
            new.contents if new else entries.Contents(),
            NON_BACKEND_PARTS,
        )
        if new is not None:
            for bkey, kv in new.backends.items():
                refs[bkey] = refs.get(bkey, 0) + 1
                if old is None or old.backends.get(bkey) != kv:
                    backend_writes[bkey] = kv
        if old is not None:
            for bkey, kv in old.backends.items():
                refs[bkey] = refs.get(bkey, 0) - 1
                if refs[bkey] <= 0:
                    backend_writes[bkey] = kv
            gone_frontends += [f for f in old.frontends if new is None or f not in new.frontends]

    def _max_entries(self) -> dict[str, int]:
        """Room in the load-balancing maps for this lab (they are allocated as they fill)."""
        ports = sum(len(s.ports) for s in self.state.services)
        endpoints = sum(len(sl.endpoints) for sl in self.state.slices)
        need = 8 * (ports + endpoints)
        size = max(LB_MAPS_MIN, 1 << (need - 1).bit_length())
        return {
            name: size
            for name in (entries.SERVICES, entries.BACKENDS, entries.REVNAT, entries.AFFINITY_MATCH)
        }

    # syncing -----------------------------------------------------------------------------

    def sync(self, node: Node, *, first: bool) -> SyncResult:
        with _no_gc():
            return self._sync(node, first=first)

    def _sync(self, node: Node, *, first: bool) -> SyncResult:
        pins = datapath.pin_dir(self.root, node.name)
        fresh = first or not os.path.exists(os.path.join(pins, entries.SERVICES))
        if fresh:
            return self._first_sync(node)
        ns = self._nodes.get(node.name)
        with datapath.Maps(pins) as maps:
            kind = "partial"
            if ns is None:
                ns = self._recover(maps)
                self._nodes[node.name] = ns
                kind = "full (read back)"
            delta = self._changes(node, ns)
            t0 = time.perf_counter()
            written = maps.apply(delta.ops())
            attached = self._attach_new_pods(node, ns, maps)
            seconds = time.perf_counter() - t0
        delta.apply_to(ns.applied)
        note = f"{written} map entries, {kind}"
        if attached:
            note += f", programs on {len(attached)} new pod devices"
        return SyncResult(node.name, seconds, written, note)

    def _pod_devices(self, node: Node) -> list[str]:
        return [
            veth_name(p.netns)
            for p in self.state.pods
            if p.node == node.name and not p.host_network
        ]

    def _attach_new_pods(self, node: Node, ns: _NodeState, maps: datapath.Maps) -> list[str]:
        """Pods created since the node's first sync get cil_from_container/cil_to_container on
        their veth, as Cilium's agent attaches them when the CNI plugin adds an endpoint."""
        pods = self._pod_devices(node)
        new = [d for d in pods if ns.devices is None or d not in ns.devices]
        if not new:
            ns.devices = set(pods)
            return []
        cfg = datapath.NodeConfig(
            node.name, node.ip, node.pod_cidr, datapath.netns_cookie(node.netns)
        )
        lxc = datapath.load_lxc(self.root, cfg, maps)
        try:
            if self.record:
                record.append(
                    self.record,
                    (bpf.prog_info(fd).id for fd in lxc.programs.values()),
                    (bpf.map_info(fd).id for fd in lxc.maps.values()),
                )
            attached = datapath.attach_pods(node.netns, lxc, new)
        finally:
            lxc.close()
        ns.devices = set(pods)
        return attached

    def _first_sync(self, node: Node) -> SyncResult:
        """Mount, load (on a thread, while the maps' contents render), write, attach."""
        bpffs.mount(self.root)
        cgroup.ensure(self.state.lab.name, [node.name])
        cfg = datapath.NodeConfig(
            node.name, node.ip, node.pod_cidr, datapath.netns_cookie(node.netns)
        )
        loaded: list[datapath.Loaded] = []
        failed: list[BaseException] = []
        sizes = self._max_entries()
        datapath.prepare()  # build or find the objects, read their BTF: before the threads

        done = threading.Event()

        def load() -> None:
            try:
                loaded.append(datapath.load(self.root, cfg, sizes))
            except BaseException as exc:  # re-raised below
                failed.append(exc)
            finally:
                done.set()

        loader = threading.Thread(target=load, name="netlab-bpf-load", daemon=True)
        loader.start()
        ns = _NodeState(
            entries.Contents(),
            render.IdAllocator(render.MAX_SERVICE_ID),
            render.IdAllocator(render.MAX_BACKEND_ID),
        )
        try:
            delta = self._changes(node, ns)
            ops = delta.ops()
        finally:
            # Even on Ctrl-C: teardown must not race a loader still pinning into the bpffs.
            threads.wait_out(done)
        if failed:
            raise failed[0]
        objs = loaded[0]
        if self.record:
            record.append(self.record, objs.program_ids(), objs.map_ids())
        try:
            t0 = time.perf_counter()
            with datapath.Maps(datapath.pin_dir(self.root, node.name)) as maps:
                written = maps.apply(ops)
            pods = self._pod_devices(node)
            devices = datapath.attach_devices(node.netns, objs, pods)
            datapath.attach_cgroup(self.cgroup_dir(node), objs)
            seconds = time.perf_counter() - t0
        finally:
            objs.close()
        delta.apply_to(ns.applied)
        ns.devices = set(pods)
        self._nodes[node.name] = ns
        note = f"{written} map entries, programs on {len(devices)} devices and the node's cgroup"
        return SyncResult(node.name, seconds, written, note)

    def _recover(self, maps: datapath.Maps) -> _NodeState:
        """What a node's maps hold, and Cilium's IDs in them, for a process that did not write
        them (as Cilium's agent restores its IDs from the maps on restart)."""
        lay = datapath.layouts()
        applied = entries.split_services(maps.dump(entries.SERVICES), lay)
        applied.backends = maps.dump(entries.BACKENDS)
        applied.revnat = maps.dump(entries.REVNAT)
        applied.affinity_match = maps.dump(entries.AFFINITY_MATCH)
        applied.source_range = maps.dump(entries.SOURCE_RANGE)
        sids, bids = entries.recover_ids(applied, lay)
        return _NodeState(
            applied,
            render.IdAllocator(render.MAX_SERVICE_ID, sids),
            render.IdAllocator(render.MAX_BACKEND_ID, bids),
        )

    # looking -----------------------------------------------------------------------------

    def rendered(self, node: Node) -> list[render.Rendered]:
        """Every Service port's frontends and backends on ``node``, with the IDs its maps use:
        this process's, else read back from the pinned maps, else as a first sync would
        allocate them. Nothing is written, and this process's IDs are left as they are."""
        ns = self._nodes.get(node.name)
        pins = datapath.pin_dir(self.root, node.name)
        if ns is None and os.path.exists(os.path.join(pins, entries.SERVICES)):
            with datapath.Maps(pins) as maps:
                ns = self._recover(maps)
        sids = render.IdAllocator(render.MAX_SERVICE_ID, dict(ns.service_ids.ids) if ns else {})
        bids = render.IdAllocator(render.MAX_BACKEND_ID, dict(ns.backend_ids.ids) if ns else {})
        info = self._node_info(node)
        by_service = slices_by_service(self.state)
        out = []
        for svc in sorted(
            (s for s in self.state.services if is_proxied(s)),
            key=lambda s: (s.meta.namespace, s.meta.name),
        ):
            slices = by_service.get(f"{svc.meta.namespace}/{svc.meta.name}", [])
            for ps in service_view(svc, slices, node.name, node.zone):
                out.append(render.render_service_port(ps, info, sids, bids))
        return out

    def live_rules(
        self, node: Node, service: tuple[str, str] | None = None, *, counters: bool = False
    ) -> str:
        """The node's maps as ``cilium-dbg`` shows them (service list, bpf lb list, conntrack,
        NAT), one Service's part of them, the conntrack entries' counters with ``counters``."""
        pins = datapath.pin_dir(self.root, node.name)
        return live_mod.cilium_view(self.state, node, pins, service, counters=counters)

    def live_raw(self, node: Node) -> str:
        """``bpftool map dump`` of every pinned map, the tc and cgroup attachments."""
        return live_mod.raw(node, datapath.pin_dir(self.root, node.name), self.cgroup_dir(node))

    def node_cgroup(self, node: Node) -> str:
        return self.cgroup_dir(node)

    def tracked_connections(
        self, node: Node, protocol: str, source_ip: str
    ) -> list[ConntrackEntry]:
        """A client's connections on its node as Cilium's conntrack knows them: one per
        load-balanced connection, from the client's packet to the frontend and the backend's
        reply (so a DNAT shows as in netfilter's table), the others from netfilter's."""
        pins = datapath.pin_dir(self.root, node.name)
        return live_mod.tracked(pins, node.netns, protocol, source_ip)

    def lb_connections(
        self, node: Node
    ) -> list[tuple[str, view.Endpoint, view.Endpoint, view.Endpoint]]:
        """The connections the node's programs load-balanced, from Cilium's conntrack map:
        (protocol, client, frontend, backend) each (``netlab conntrack``)."""
        pins = datapath.pin_dir(self.root, node.name)
        if not os.path.exists(os.path.join(pins, entries.SERVICES)):
            return []
        return view.service_connections(live_mod.decoded(pins))

    def maps_consulted(
        self, node: Node, client: tuple[str, int], dialled: tuple[str, int], protocol: str
    ) -> list[str]:
        """One connection's entries in the node's maps (``netlab trace``): the frontend
        dialled, and the conntrack and NAT entries of the client's address and port."""
        pins = datapath.pin_dir(self.root, node.name)
        return live_mod.consulted(self.state, node, pins, client, dialled, protocol)

    def describe(self) -> str:
        return "ebpf (Cilium's kube-proxy replacement: tc and socket LB, maps in bpffs)"
