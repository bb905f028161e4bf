"""iptables mode: the ``iptables-restore`` input, full or partial, from each Service port's share.

syncProxyRules (kubernetes/kubernetes ``pkg/proxy/iptables/proxier.go``, v1.33) writes four
buffers: the top-level chains and the rules before and after the Services' (the same on every
sync), and, per Service port, filter rules, its own nat chains and nat rules, some of which are
in the top-level chains KUBE-SERVICES and KUBE-NODEPORTS. :mod:`.render` renders those pieces
(:class:`Frame`, :class:`ServiceRules`); this module lays them out in upstream's order.

A partial sync (``tryPartialSync``) writes the whole filter table and the top-level nat chains,
but a Service port whose Service and endpoints did not change has its own chains left out: its
rules go to ``skippedNatChains``/``skippedNatRules``, so the kernel keeps them (and their
counters). :mod:`.partial` keeps each port's share between syncs, so that a partial sync renders
only the changed Services.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from dataclasses import dataclass, field

from netlab.proxy import naming
from netlab.proxy.changes import PortKey

LARGE_CLUSTER_ENDPOINTS_THRESHOLD = 1000
TOP_LEVEL_NAT = ("-A KUBE-SERVICES ", "-A KUBE-NODEPORTS ")


def make_chain_line(chain: str) -> str:
    """utiliptables.MakeChainLine: the ``:CHAIN - [0:0]`` line that creates (or flushes) it."""
    return f":{chain} - [0:0]"


@dataclass(frozen=True)
class Frame:
    """What a sync writes whatever the Services are (a function of the options): the top-level
    chains, and the rules syncProxyRules writes before and after its loop over Services."""

    filter_chains: tuple[str, ...]
    filter_head: tuple[str, ...]
    filter_tail: tuple[str, ...]
    nat_chains: tuple[str, ...]
    nat_head: tuple[str, ...]
    nat_tail: tuple[str, ...]
    bootstrap: Mapping[str, tuple[str, ...]]  # table -> lines only a node's first sync writes


@dataclass(frozen=True)
class ServiceRules:
    """One Service port's share: what the body of "Build rules for each service-port" wrote."""

    filter_rules: tuple[str, ...]
    nat_chains: tuple[str, ...]  # its own chains (KUBE-SVC/SVL/EXT/FW/SEP)
    nat_rules: tuple[str, ...]  # every nat rule it wrote, in order
    endpoints: int  # len(endpoints): what large-cluster mode counts
    # Of nat_rules, those in the top-level chains, which every sync rewrites.
    nat_jumps: tuple[str, ...] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        jumps = tuple(ln for ln in self.nat_rules if ln.startswith(TOP_LEVEL_NAT))
        object.__setattr__(self, "nat_jumps", jumps)

    @property
    def chains(self) -> set[str]:
        return {_chain_of(line) for line in self.nat_chains}


@dataclass
class RenderedIptables:
    frame: Frame
    services: Iterable[tuple[PortKey, ServiceRules]]  # in node_view order (iterated again)
    large_cluster: bool

    @property
    def bootstrap(self) -> Mapping[str, tuple[str, ...]]:
        return self.frame.bootstrap

    @property
    def filter_chains(self) -> list[str]:
        return list(self.frame.filter_chains)

    @property
    def filter_rules(self) -> list[str]:
        f = self.frame
        return [
            *f.filter_head,
            *(ln for _, s in self.services for ln in s.filter_rules),
            *f.filter_tail,
        ]

    @property
    def nat_chains(self) -> list[str]:
        return [*self.frame.nat_chains, *(ln for _, s in self.services for ln in s.nat_chains)]

    @property
    def nat_rules(self) -> list[str]:
        f = self.frame
        return [*f.nat_head, *(ln for _, s in self.services for ln in s.nat_rules), *f.nat_tail]

    def active_nat_chains(self) -> set[str]:
        return {_chain_of(line) for line in self.nat_chains}

    def restore_text(self, *, bootstrap: bool, existing_nat_chains: Iterable[str] = ()) -> str:
        """The ``iptables-restore --noflush`` input; with the first-sync jumps if ``bootstrap``.

        Service chains in ``existing_nat_chains`` (what ``iptables-save -t nat`` listed) that
        this sync no longer writes are flushed and deleted, as syncProxyRules deletes them.
        """
        active = self.active_nat_chains()
        stale = sorted(
            c for c in existing_nat_chains if naming.is_service_chain(c) and c not in active
        )
        return self.text(bootstrap=bootstrap, stale=stale)

    def partial_text(self, previous: RenderedIptables) -> str:
        """A partial sync from ``previous`` (what the node holds), comparing every Service
        port's share: those that differ are written, the Service chains ``previous`` had that
        are gone are deleted. (:mod:`.partial` knows what changed without comparing.)"""
        before = dict(previous.services)
        changed = {k for k, s in self.services if before.get(k) != s}
        stale = sorted(previous.active_nat_chains() - self.active_nat_chains())
        return self.text(bootstrap=False, stale=stale, changed=changed)

    def text(
        self, *, bootstrap: bool, stale: list[str], changed: Container[PortKey] | None = None
    ) -> str:
        """The restore input: every Service port's own chains, or (a partial sync) only those of
        the ports in ``changed``; ``stale`` chains are flushed and deleted."""
        f = self.frame
        filter_rules: list[str] = []
        nat_chains: list[str] = []
        nat_rules: list[str] = []
        for k, s in self.services:  # one pass: a partial sync at 10k walks 10k ports
            if s.filter_rules:
                filter_rules += s.filter_rules
            if changed is None or k in changed:
                nat_chains += s.nat_chains
                nat_rules += s.nat_rules
            else:
                nat_rules += s.nat_jumps
        out: list[str] = []
        if bootstrap and f.bootstrap.get("mangle"):
            out += ["*mangle", *f.bootstrap["mangle"], "COMMIT"]
        out.append("*filter")
        out += f.filter_chains
        if bootstrap:
            out += f.bootstrap.get("filter", ())
        out += f.filter_head
        out += filter_rules
        out += f.filter_tail
        out.append("COMMIT")
        out.append("*nat")
        out += f.nat_chains
        out += nat_chains
        out += [make_chain_line(c) for c in stale]
        if bootstrap:
            out += f.bootstrap.get("nat", ())
        out += f.nat_head
        out += nat_rules
        out += f.nat_tail
        out += [f"-X {c}" for c in stale]
        out.append("COMMIT")
        return "\n".join(out) + "\n"


def _chain_of(line: str) -> str:
    """The chain a ``:CHAIN - [0:0]`` or ``-A CHAIN ...`` line is about."""
    return line[1:].split(" ", 1)[0] if line.startswith(":") else line.split(" ", 2)[1]
