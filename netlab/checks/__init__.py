"""The check model: what a scenario expects of its Services, and the verdict on what real packets
did. Pure: no kernel, no packets.

The shape is that of kube-proxy's own packet-flow tests: a source (pod, node, external client), a
protocol and a destination (a Service's ClusterIP or NodePort, or a raw address), and the expected
outcome: which endpoints answer (all, a named set, none), or REJECT (refused) or DROP (timeout),
and whether the backends saw the client's own address or a masqueraded one.

- :mod:`~netlab.checks.resolve` makes a written check concrete against the cluster state;
- :mod:`~netlab.checks.reach` holds what Kubernetes promises a connection may reach;
- :mod:`~netlab.checks.derive` writes the checks of a scenario that wrote none;
- :mod:`~netlab.checks.judge` compares observations with the expectation;
- :mod:`~netlab.checks.validate` validates a whole scenario, checks included.
"""

from netlab.checks.derive import derive
from netlab.checks.judge import evaluate, evaluate_dns, evaluate_http
from netlab.checks.model import (
    Backend,
    CheckResult,
    ResolvedCheck,
    ResolvedConnect,
    ResolvedDns,
    ResolvedHttp,
    ResolveError,
)
from netlab.checks.reach import find_pod
from netlab.checks.resolve import default_connections, resolve, resolve_all

__all__ = [
    "Backend",
    "CheckResult",
    "ResolveError",
    "ResolvedCheck",
    "ResolvedConnect",
    "ResolvedDns",
    "ResolvedHttp",
    "default_connections",
    "derive",
    "evaluate",
    "evaluate_dns",
    "evaluate_http",
    "find_pod",
    "resolve",
    "resolve_all",
]
