"""What changed in the cluster since a node was last synced: kube-proxy's change trackers.

kube-proxy hears of every change from its informers and records it in two trackers
(kubernetes/kubernetes ``pkg/proxy/servicechangetracker.go``, ``endpointschangetracker.go`` and
``endpointslicecache.go``, v1.33): ``ServiceChangeTracker.Update(previous, current)`` keeps, per
Service, its ServicePortMap before the first unsynced change and after the last one, and forgets
the Service again when the two are equal; ``EndpointsChangeTracker.EndpointSliceUpdate`` keeps
the EndpointSlices not yet applied, unless one equals what is applied. Each sync starts with
``svcPortMap.Update`` and ``endpointsMap.Update``, which apply them and return
``UpdatedServices``; the iptables proxier then leaves every other Service's chains out of the
restore (``tryPartialSync``) and the nftables proxier skips their objects (``skipServiceUpdate``).

netlab's proxier reads the lab's :class:`ClusterState` instead of an API server, so
:class:`ChangeTracker` plays the informer as well: it keeps the Service and EndpointSlice objects
it saw, by identity, and at each sync looks only for objects that are new or gone (about a
millisecond per 10k objects); only those are compared by value, as the trackers compare. That
holds the state to the API server's rule: a changed object is a new object (a new
resourceVersion), never one edited in place.

One proxier syncs every node and each node takes the changes at its own sync, so the tracker keeps
what is pending per node (:meth:`ChangeTracker.checkout`). :class:`PortTable` is what a node's
proxier remembers between syncs: each Service port's rendered share, in the node's view order.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping
from typing import Generic, TypeVar

from netlab.cluster.state import ClusterState, EndpointSlice, Node
from netlab.proxy.servicemap import (
    ProxiedService,
    is_proxied,
    port_key,
    service_key,
    service_ports,
    service_view,
)
from netlab.scenario.k8s import Service

PortKey = tuple[str, str, str, str]  # servicemap.port_key: namespace, name, port, protocol
T = TypeVar("T")


class ChangeTracker:
    """The Services whose ports or endpoints changed, pending per node."""

    def __init__(self) -> None:
        # The lists as seen at the last look (holding the objects keeps their ids unique).
        self._seen_services: list[Service] = []
        self._seen_slices: list[EndpointSlice] = []
        # The cache the proxier renders from: the Service and the slices of each Service.
        self.services: dict[str, Service] = {}
        self.slices: dict[str, dict[str, EndpointSlice]] = {}
        self._pending: dict[str, set[str]] = {}  # node -> Services changed since it synced

    def observe(self, state: ClusterState) -> set[str]:
        """Look at ``state``: the Services that changed since the last look (also added to what
        every node has pending). The first look sees every Service as new."""
        changed = self._observe_services(state.services) | self._observe_slices(state.slices)
        for pending in self._pending.values():
            pending |= changed
        return changed

    def checkout(self, node: str) -> set[str] | None:
        """The Services changed since ``node`` last synced, forgotten as they are handed out
        (svcPortMap.Update); None when the node has no sync through this tracker to build on,
        so a full sync is due."""
        pending = self._pending.get(node)
        if pending is None:
            return None
        self._pending[node] = set()
        return pending

    def synced_in_full(self, node: str) -> None:
        """``node`` now holds the whole state as last observed: nothing is pending for it."""
        self._pending[node] = set()

    def forget(self, node: str) -> None:
        """A sync of ``node`` failed: what it holds is unknown, so its next sync is full
        (upstream sets needFullSync)."""
        self._pending.pop(node, None)

    def view(self, key: str, node: str, zone: str = "") -> list[ProxiedService]:
        """One Service's share of ``node``'s view (``zone``: the node's zone label), from the
        cache (as :func:`node_view` gives it from the whole state)."""
        svc = self.services.get(key)
        if svc is None:
            return []
        return service_view(svc, self.slices.get(key, {}).values(), node, zone)

    def _observe_services(self, services: list[Service]) -> set[str]:
        gone, new = _new_and_gone(self._seen_services, services)
        if not gone and not new:
            return set()
        self._seen_services = list(services)
        touched: dict[str, Service | None] = {}
        for svc in gone:
            touched.setdefault(service_key(svc), None)
        for svc in new:
            touched[service_key(svc)] = svc
        changed: set[str] = set()
        for key, current in touched.items():
            old = self.services.pop(key, None)
            if current is not None:
                self.services[key] = current
            # ServiceChangeTracker.Update: a change only if the ServicePortMap changed.
            if _port_map(old) != _port_map(current):
                changed.add(key)
        return changed

    def _observe_slices(self, slices: list[EndpointSlice]) -> set[str]:
        gone, new = _new_and_gone(self._seen_slices, slices)
        if not gone and not new:
            return set()
        self._seen_slices = list(slices)
        touched: dict[tuple[str, str], EndpointSlice | None] = {}
        for sl in gone:
            touched.setdefault((sl.service, sl.name), None)
        for sl in new:
            touched[(sl.service, sl.name)] = sl
        changed: set[str] = set()
        for (key, name), current in touched.items():
            cached = self.slices.setdefault(key, {})
            old = cached.pop(name, None)
            if current is not None:
                cached[name] = current
            elif not cached:
                del self.slices[key]
            # endpointSliceCache.esDataChanged: an equal slice is no change.
            if old != current:
                changed.add(key)
        return changed


def _new_and_gone(seen: list[T], now: list[T]) -> tuple[list[T], list[T]]:
    """The objects of ``seen`` no longer in ``now`` and those of ``now`` not in ``seen``, by
    identity. The common head and tail are skipped first, so an object appended, removed or
    replaced costs one walk of the list; the rest is compared by id."""
    n = min(len(seen), len(now))
    head = next((i for i, (a, b) in enumerate(zip(seen, now, strict=False)) if a is not b), n)
    if head == len(seen) == len(now):
        return [], []
    tail = 0
    while tail < n - head and seen[-1 - tail] is now[-1 - tail]:
        tail += 1
    old_mid = seen[head : len(seen) - tail]
    new_mid = now[head : len(now) - tail]
    old_ids = {id(o) for o in old_mid}
    new_ids = {id(o) for o in new_mid}
    return [o for o in old_mid if id(o) not in new_ids], [
        o for o in new_mid if id(o) not in old_ids
    ]


def _port_map(svc: Service | None) -> tuple[object, ...]:
    """serviceToServiceMap: what the proxier programs for ``svc`` (nothing if it is skipped)."""
    if svc is None or not is_proxied(svc):
        return ()
    return tuple(service_ports(svc))


class PortTable(Generic[T]):
    """A node's Service ports in view order (:func:`port_key`), each with what the mode
    rendered for it, replaced one Service at a time."""

    def __init__(self, items: Iterable[tuple[ProxiedService, T]] = ()) -> None:
        self.items: dict[PortKey, tuple[ProxiedService, T]] = {}
        self.order: list[PortKey] = []
        self._by_service: dict[str, list[PortKey]] = {}
        for svc, value in items:
            self._put(svc, value)
        self.order.sort()

    def _put(self, svc: ProxiedService, value: T) -> PortKey:
        key = port_key(svc.info.spn)
        if key in self.items:
            raise ValueError(f"{svc.info.spn} is in the view twice")
        self.items[key] = (svc, value)
        spn = svc.info.spn
        self._by_service.setdefault(f"{spn.namespace}/{spn.name}", []).append(key)
        self.order.append(key)
        return key

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[tuple[PortKey, ProxiedService, T]]:
        items = self.items
        for key in self.order:
            svc, value = items[key]
            yield key, svc, value

    def ports_of(self, service: str) -> list[tuple[PortKey, ProxiedService, T]]:
        return [(k, *self.items[k]) for k in self._by_service.get(service, ())]

    def replace(
        self, service: str, new: Iterable[tuple[ProxiedService, T]]
    ) -> list[tuple[PortKey, ProxiedService, T]]:
        """Put ``new`` in place of ``service``'s ports; return the ports it had."""
        old = self.ports_of(service)
        for key, _, _ in old:
            del self.items[key]
            del self.order[bisect.bisect_left(self.order, key)]
        self._by_service.pop(service, None)
        for svc, value in new:
            key = self._put(svc, value)
            self.order.pop()
            bisect.insort(self.order, key)
        return old


def changed_views(
    tracker: ChangeTracker, keys: Iterable[str], node: Node
) -> Mapping[str, list[ProxiedService]]:
    """Each changed Service's share of ``node``'s view, in a fixed order."""
    return {key: tracker.view(key, node.name, node.zone) for key in sorted(keys)}
