"""Changes to a live cluster, as they are asked for: by a command (``netlab scale``...) or by a
step of a scenario's timeline. One type per kind of change.

What a change *does* to the desired state (controllers, grace periods, a rolling replacement) is
:mod:`netlab.cluster.changes`; applying the result to the kernel is :mod:`netlab.lab`. This module
only holds what was asked, typed, and where it was written.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netlab.scenario.checkspec import Origin
from netlab.scenario.k8s import Deployment, Namespace, Pod, Service

DELETABLE = ("pod", "service", "deployment")


@dataclass(frozen=True, kw_only=True)
class ApplyChange:
    """``kubectl apply`` of manifests: create what is new, update what exists; with ``prune``,
    also delete the scenario's own objects the manifests no longer list."""

    kind: str = "apply"
    namespaces: tuple[Namespace, ...] = ()
    pods: tuple[Pod, ...] = ()
    deployments: tuple[Deployment, ...] = ()
    services: tuple[Service, ...] = ()
    prune: bool = False
    source: str = ""  # the file the manifests came from
    # "Kind/namespace/name" -> where the manifest was written, for errors found when applying
    origins: dict[str, Origin] = field(default_factory=dict)
    origin: Origin | None = None

    def describe(self) -> str:
        n = len(self.namespaces) + len(self.pods) + len(self.deployments) + len(self.services)
        what = f"{n} object{'s' if n != 1 else ''}"
        return f"apply {what}" + (f" from {self.source}" if self.source else "")


@dataclass(frozen=True, kw_only=True)
class ScaleChange:
    """``kubectl scale deployment/NAME --replicas=N``."""

    kind: str = "scale"
    namespace: str = ""  # "" = default
    name: str
    replicas: int
    origin: Origin | None = None

    def describe(self) -> str:
        return f"scale deployment/{_ref(self.namespace, self.name)} to {self.replicas}"


@dataclass(frozen=True, kw_only=True)
class DeleteChange:
    """``kubectl delete RESOURCE/NAME [--grace-period=S]``. ``grace`` None: the pod's own
    terminationGracePeriodSeconds; 0: at once, as ``--grace-period=0 --force``."""

    kind: str = "delete"
    resource: str  # one of DELETABLE
    namespace: str = ""  # "" = default (for a pod: its only namespace if not in default)
    name: str
    grace: int | None = None
    origin: Origin | None = None

    def describe(self) -> str:
        grace = "" if self.grace is None else f" (grace {self.grace}s)"
        return f"delete {self.resource}/{_ref(self.namespace, self.name)}{grace}"


@dataclass(frozen=True, kw_only=True)
class NodeChange:
    """A node goes away (``down``: cut off from the node network, its kubelet silent) or comes
    back (``up``)."""

    kind: str = "node"
    node: str
    up: bool
    origin: Origin | None = None

    def describe(self) -> str:
        return f"node {self.node} {'up' if self.up else 'down'}"


@dataclass(frozen=True, kw_only=True)
class ReadyChange:
    """A pod's readiness probe starts passing or failing (``netlab ready``)."""

    kind: str = "ready"
    namespace: str = ""
    name: str
    ready: bool
    origin: Origin | None = None

    def describe(self) -> str:
        return f"pod/{_ref(self.namespace, self.name)} {'ready' if self.ready else 'not ready'}"


@dataclass(frozen=True, kw_only=True)
class ProxyChange:
    """kube-proxy restarted with another configuration (only the fields given change)."""

    kind: str = "proxy"
    conntrack_cleanup: bool | None = None
    origin: Origin | None = None

    def describe(self) -> str:
        parts = []
        if self.conntrack_cleanup is not None:
            parts.append(f"conntrackCleanup {str(self.conntrack_cleanup).lower()}")
        return "restart kube-proxy" + (f" with {', '.join(parts)}" if parts else "")


@dataclass(frozen=True, kw_only=True)
class WaitChange:
    """Time passes: grace periods end, the node lifecycle controller acts."""

    kind: str = "wait"
    seconds: float
    origin: Origin | None = None

    def describe(self) -> str:
        return f"wait {self.seconds:g}s"


Change = (
    ApplyChange | ScaleChange | DeleteChange | NodeChange | ReadyChange | ProxyChange | WaitChange
)
CHANGE_KINDS = ("apply", "scale", "delete", "node", "ready", "proxy", "wait")


def _ref(namespace: str, name: str) -> str:
    return f"{namespace}/{name}" if namespace else name


def parse_ref(text: str) -> tuple[str, str]:
    """``NAME`` or ``NAMESPACE/NAME`` -> (namespace or "", name)."""
    ns, _, name = text.rpartition("/")
    return ns, name
