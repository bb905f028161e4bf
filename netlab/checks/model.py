"""The check model: a check resolved against a cluster, and the verdict on it.

One resolved type per kind of check (a connect or capture check dials; a dns check looks a name
up), and one result type that reports, CI tools and the API all read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from netlab.cluster.podfiles import HostsFile
from netlab.cluster.resolvconf import ResolvConf
from netlab.scenario.checkspec import FAILED, ConnectCheck, DnsCheck

MISS_PROBABILITY = 1e-6  # chance that "all endpoints" misses one by bad luck, per check
DEFAULT_FAILURE_CONNECTIONS = 3


class ResolveError(Exception):
    """A check names something the lab does not have; ``field_name`` is where, inside the check
    (``from``, ``to.port``, ``expect.endpoints[1]``)."""

    def __init__(self, message: str, field_name: str = "", hint: str = ""):
        self.field_name = field_name
        self.hint = hint
        super().__init__(message)

    @property
    def errors(self) -> list[ResolveError]:
        return [self]


class ResolveErrors(ResolveError):
    """Several things a check names that the lab lacks, all reported at once."""

    def __init__(self, errors: list[ResolveError]):
        self._errors = errors
        super().__init__(str(errors[0]), errors[0].field_name, errors[0].hint)

    @property
    def errors(self) -> list[ResolveError]:
        return list(self._errors)


@dataclass(frozen=True)
class Backend:
    pod: str  # the pod's name, which is what it answers with
    namespace: str
    ip: str
    port: int
    netns: str
    node: str


@dataclass(frozen=True)
class ResolvedConnect:
    """A connect (or capture) check made concrete: where the probe runs, what it dials, how
    often, and which endpoints must answer."""

    spec: ConnectCheck
    source_netns: str
    source_ip: str  # the client's own address
    bind: str | None  # source address to bind (external clients)
    dest_ip: str
    dest_port: int
    protocol: str
    connections: int
    backends: tuple[Backend, ...]  # every endpoint of the Service (for reports and captures)
    expected: tuple[Backend, ...] | None  # who must answer; None = not checked
    summary: str
    dial_name: str = ""  # a DNS name resolved (as the source's resolver would) per connection
    resolv: ResolvConf | None = None  # the source's resolver configuration
    hosts: HostsFile | None = None  # the source's hosts file, read before DNS
    conntrack_netns: str = ""  # where the source's connections are tracked (its node)
    entry_node: str = ""  # the node a NodePort (or nodeIP:port) connection was dialled on
    node_ips: tuple[tuple[str, str], ...] = ()  # every node's name and address
    # Session affinity: every connection reaches one endpoint (sticky); or, through several
    # nodes that each remember the client on their own, at most ``max_endpoints`` of them.
    # Otherwise the connections must spread over every expected endpoint.
    sticky: bool = False
    max_endpoints: int | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def captures(self) -> bool:
        """A capture check: the backends capture the SYNs they receive."""
        return self.spec.kind == "capture"


@dataclass(frozen=True)
class ResolvedHttp(ResolvedConnect):
    """An http check made concrete: a connect check's source and destination, a path to GET,
    and the status and body every answer must have."""

    path: str = "/"
    status: int = 200
    body: str | None = None


@dataclass(frozen=True)
class DnsPlan:
    """A dns check's question and what must come back (answers resolved to addresses)."""

    name: str
    qtype: str
    search: bool
    rcode: str
    answers: frozenset[str] | None
    cname: str | None


@dataclass(frozen=True)
class ResolvedDns:
    """A dns check made concrete: the source's namespace and resolver, and the question."""

    spec: DnsCheck
    source_netns: str
    source_ip: str
    resolv: ResolvConf
    plan: DnsPlan
    summary: str

    @property
    def name(self) -> str:
        return self.spec.name


ResolvedCheck = ResolvedConnect | ResolvedHttp | ResolvedDns


@dataclass
class CheckResult:
    name: str
    passed: bool
    summary: str
    source: str
    destination: str
    protocol: str
    connections: int
    expected: dict[str, Any]
    observed: dict[str, Any]
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    derived: bool = False
    kind: str = "connect"
    description: str = ""

    @property
    def reached(self) -> dict[str, int]:
        """The endpoints (pod names) that answered, with how many connections each."""
        endpoints: dict[str, int] = self.observed.get("endpoints", {})
        return endpoints


def outcome_matches(outcome: str, result: str) -> bool:
    """An observed outcome against an expected result: ``failed`` takes any failure."""
    return outcome == result or (result == FAILED and outcome != "connected")


def norm(text: str) -> str:
    """Answers compare case-insensitively and without the final dot of a name."""
    return text.strip().rstrip(".").lower()
