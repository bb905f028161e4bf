"""``lab.get("svc")``: the objects of one kind in a live lab, as ``kubectl get`` shows them
(a table, :mod:`netlab.cluster.printers`) or returns them (``-o json``,
:mod:`netlab.cluster.manifests`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from netlab.cluster import manifests, printers
from netlab.cluster.state import ClusterState
from netlab.errors import UsageError

RESOURCE_NAMES = ("pods", "services", "endpointslices")


def resource_kind(resource: str) -> str:
    """The canonical plural of a kubectl resource name (``svc`` -> ``services``)."""
    try:
        return printers.RESOURCES[resource.lower()]
    except KeyError:
        raise UsageError(
            f'the server doesn\'t have a resource type "{resource}"',
            hint="a lab has pods (po), services (svc) and endpointslices",
        ) from None


@dataclass
class Listing:
    """The objects of one kind, in one namespace or all of them."""

    resource: str  # pods | services | endpointslices
    namespace: str | None  # None: all namespaces
    items: list[Any]
    state: ClusterState
    created: float  # when the objects were made (the lab's creation)
    now: float = field(default_factory=time.time)

    def table(self, wide: bool = False) -> printers.Table:
        """kubectl's columns; with ``wide``, also those of priority 1 (see ``Table.header``)."""
        age = printers.human_duration(self.now - self.created)
        return printers.table(
            self.resource,
            self.items,
            lambda _obj: age,
            all_namespaces=self.namespace is None,
            wide=wide,
        )

    def manifests(self) -> list[dict[str, Any]]:
        return [manifests.manifest(self.state, o, self.created) for o in self.items]

    def to_data(self) -> dict[str, Any]:
        """``kubectl get -o json``: a ``v1`` List of the objects."""
        return manifests.object_list(self.manifests())

    def empty_message(self) -> str:
        """kubectl's words when nothing matched."""
        where = f" in {self.namespace} namespace" if self.namespace is not None else ""
        return f"No resources found{where}."


def listing(
    state: ClusterState,
    created: float,
    resource: str,
    namespace: str | None = "default",
) -> Listing:
    kind = resource_kind(resource)
    return Listing(kind, namespace, printers.objects(state, kind, namespace), state, created)
