# ruff: noqa: E501
# (The expected dumps below are upstream's, copied verbatim; their lines are as long as kube-proxy's.)
"""netlab.proxy.nftables.render against upstream kube-proxy's own nftables unit tests.

Expected dumps and packet-flow tables are copied from ``kubernetes/kubernetes``
``pkg/proxy/nftables/proxier_test.go`` (Kubernetes v1.33: the newer layout, with
``filter-prerouting-pre-dnat`` at priority -110, ``sigs.k8s.io/knftables``, ``intstr.FromInt32``),
and the comparison, the sort and the packet tracer are ports of its ``helpers_test.go``
(same release: ``sortNFTablesTransaction``, ``assertNFTablesTransactionEqual``, ``nftablesTracer``).

What was adapted, each in exactly one place:

* ``knftables.Fake``: upstream compares ``nft.Dump()``, the table's *state* after the sync, not the
  transaction. :class:`FakeNft` applies netlab's transaction text (add / flush / delete of tables,
  chains, rules, sets, maps, elements) to an in-memory table, refusing what the kernel refuses
  (rules or elements naming missing chains or sets, deleting what is still referenced, map keys
  added twice with another value), and dumps it in knftables' ``Dump()`` syntax.
* The mark: netlab writes kube-proxy's real ``fmt.Sprintf("%#08x", 1<<14)`` = ``0x00004000``;
  ``NewFakeProxier`` injects the literal ``0x4000``. :func:`dump` substitutes it.
* ``NewFakeProxier`` sets ``nodePortAddresses`` to the node IP, so its dumps carry a
  ``nodeport-ips`` set; :data:`FAKE` passes ``nodeport_ips=("192.168.0.2",)`` for that. netlab's
  labs use the default (every local address: ``fib daddr type local``), tested separately.
* Stale chains: upstream flushes them and deletes them a second later in another transaction
  (a workaround for kernels before 6.2); netlab deletes them in the same transaction. So in the
  ported ``TestSyncProxyRulesRepeated`` the "flushed but not yet deleted" states are replaced by
  the states upstream reaches once the chains have aged, and the operation counts (partial syncs)
  are not compared: every netlab sync is a full sync.
* The tracer runs ``filter-input`` only for packets whose (post-DNAT) destination is a node IP,
  as the kernel does; upstream's runs it for every packet, which only matters with the default
  NodePort rule (``nodeport-endpoints-check`` has no address match there).
* The tracer also understands the ``fast`` layout's cascade (``numgen random mod K == 0 goto``)
  and the affinity rules, so every packet-flow test runs against both layouts.
"""

from __future__ import annotations

import functools
import ipaddress
import random
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from netlab.proxy.nftables.render import (
    LAYOUTS,
    Existing,
    NftablesOptions,
    build,
    filter_listing,
    parse_existing,
    render,
)
from netlab.proxy.servicemap import EndpointInfo, ProxiedService
from tests.unit.servicemaps import TEST_NODE_NAME, ep, svc

# ---------------------------------------------------------------------------------------------
# NewFakeProxier and the test conventions

TEST_NODE_IP = "192.168.0.2"
TEST_NODE_IP_ALT = "192.168.1.2"
TEST_EXTERNAL_IP = "192.168.99.11"
TEST_NODE_IPS = (TEST_NODE_IP, TEST_NODE_IP_ALT, TEST_EXTERNAL_IP)  # (IPv6 ones dropped: IPv4 only)
TEST_EXTERNAL_CLIENT = "203.0.113.2"
TEST_EXTERNAL_CLIENT_BLOCKED = "203.0.113.130"
FAKE_MASQUERADE_MARK = "0x4000"

FAKE = NftablesOptions(
    node_ip=TEST_NODE_IP,  # nodeIP: testNodeIP
    cluster_cidr="10.0.0.0/8",  # localDetector: NewDetectLocalByCIDR("10.0.0.0/8")
    service_cidr="172.30.0.0/16",  # serviceCIDRs: "172.30.0.0/16"
    nodeport_ips=(TEST_NODE_IP,),  # nodePortAddresses: testNodeIP/32
)


# ---------------------------------------------------------------------------------------------
# A fake nft: apply a transaction, dump the state (knftables.Fake)

_REF = re.compile(r"(?:jump|goto) (\S+)")
_SETREF = re.compile(r"@(\S+)")


class NftError(Exception):
    """What ``nft -f`` would refuse (the whole transaction fails)."""


@dataclass
class _Chain:
    spec: str = ""
    rules: list[str] = field(default_factory=list)


@dataclass
class _Container:
    kind: str  # "set" | "map"
    spec: str
    elements: dict[tuple[str, ...], tuple[str, str]] = field(
        default_factory=dict
    )  # key->(comment, value)


class FakeNft:
    """The table ``ip kube-proxy`` in memory. Transactions are atomic, as ``nft -f`` is."""

    def __init__(self) -> None:
        self.table: str | None = None
        self.chains: dict[str, _Chain] = {}
        self.containers: dict[str, _Container] = {}

    def run(self, tx: str) -> None:
        saved = (
            self.table,
            {k: _Chain(v.spec, list(v.rules)) for k, v in self.chains.items()},
            {k: _Container(v.kind, v.spec, dict(v.elements)) for k, v in self.containers.items()},
        )
        try:
            for line in tx.splitlines():
                if line.strip():
                    self._op(line)
        except NftError:
            self.table, self.chains, self.containers = saved
            raise

    def _op(self, line: str) -> None:
        p = "ip kube-proxy"
        if m := re.fullmatch(rf"add table {p}(?: \{{ (.*) \}})?", line):
            self.table = self.table or (m[1] or "")
        elif m := re.fullmatch(rf"add chain {p} (\S+)(?: \{{ (.*) \}})?", line):
            spec = m[2] or ""
            ch = self.chains.setdefault(m[1], _Chain(spec))
            if spec and ch.spec != spec:
                raise NftError(f"chain {m[1]} exists with other properties: {line}")
        elif m := re.fullmatch(rf"flush chain {p} (\S+)", line):
            self._chain(m[1]).rules.clear()
        elif m := re.fullmatch(rf"delete chain {p} (\S+)", line):
            self._chain(m[1])
            if self._chain_referenced(m[1]):
                raise NftError(f"chain {m[1]} is still referenced: {line}")
            del self.chains[m[1]]
        elif m := re.fullmatch(rf"add rule {p} (\S+) (.*)", line):
            for ref in _REF.findall(m[2]):
                self._chain(ref)
            for ref in _SETREF.findall(m[2]):
                self._container(ref)
            self._chain(m[1]).rules.append(m[2])
        elif m := re.fullmatch(rf"add (set|map) {p} (\S+) \{{ (.*) \}}", line):
            c = self.containers.setdefault(m[2], _Container(m[1], m[3]))
            if c.kind != m[1] or c.spec != m[3]:
                raise NftError(f"{m[2]} exists with other properties: {line}")
        elif m := re.fullmatch(rf"flush (set|map) {p} (\S+)", line):
            self._container(m[2]).elements.clear()
        elif m := re.fullmatch(rf"delete (set|map) {p} (\S+)", line):
            self._container(m[2])
            if any(
                f"@{m[2]}" in r.split() or f"@{m[2]} " in r
                for c in self.chains.values()
                for r in c.rules
            ):
                raise NftError(f"set {m[2]} is still referenced: {line}")
            del self.containers[m[2]]
        elif m := re.fullmatch(rf"add element {p} (\S+) \{{ (.*) \}}", line):
            c = self._container(m[1])
            key_text, _, value = m[2].partition(" : ")
            comment = ""
            if cm := re.search(r' comment "([^"]*)"$', key_text):
                comment, key_text = cm[1], key_text[: cm.start()]
            for ref in _REF.findall(value):
                self._chain(ref)
            key = tuple(key_text.split(" . "))
            old = c.elements.get(key)
            if old is not None and old[1] != value:
                raise NftError(f"element {key} exists with another value: {line}")
            c.elements[key] = (comment, value)
        elif m := re.fullmatch(rf"delete element {p} (\S+) \{{ (.*) \}}", line):
            key = tuple(m[2].split(" . "))
            if key not in self._container(m[1]).elements:
                raise NftError(f"no such element {key}: {line}")
            del self._container(m[1]).elements[key]
        else:
            raise AssertionError(f"FakeNft does not understand: {line}")

    def _chain(self, name: str) -> _Chain:
        if name not in self.chains:
            raise NftError(f"no such chain {name}")
        return self.chains[name]

    def _container(self, name: str) -> _Container:
        if name not in self.containers:
            raise NftError(f"no such set/map {name}")
        return self.containers[name]

    def _chain_referenced(self, name: str) -> bool:
        for cname, ch in self.chains.items():
            if cname != name and any(name in _REF.findall(r) for r in ch.rules):
                return True
        return any(
            name in _REF.findall(v)
            for c in self.containers.values()
            for _, v in c.elements.values()
        )

    def dump(self) -> str:
        """knftables Fake.Dump(): the table as ``add`` commands."""
        p = "ip kube-proxy"
        out = [f"add table {p}" + (f" {{ {self.table} }}" if self.table else "")]
        for name, ch in sorted(self.chains.items()):
            out.append(f"add chain {p} {name}" + (f" {{ {ch.spec} }}" if ch.spec else ""))
        for name, c in sorted(self.containers.items()):
            out.append(f"add {c.kind} {p} {name} {{ {c.spec} }}")
        for name, ch in sorted(self.chains.items()):
            out.extend(f"add rule {p} {name} {r}" for r in ch.rules)
        for name, c in sorted(self.containers.items()):
            for key, (comment, value) in c.elements.items():
                body = " . ".join(key) + (f' comment "{comment}"' if comment else "")
                body += f" : {value}" if value else ""
                out.append(f"add element {p} {name} {{ {body} }}")
        return "\n".join(out) + "\n"


def sync(
    fake: FakeNft,
    services: Iterable[ProxiedService],
    opts: NftablesOptions = FAKE,
    layout: str = "kube-proxy",
    *,
    first: bool = False,
) -> str:
    """One netlab sync against ``fake``: list what exists (as the proxier does), render, apply."""
    existing = Existing(frozenset(fake.chains), frozenset(fake.containers))
    fake.run(render(list(services), opts, layout, first=first, existing=existing))
    return dump(fake, opts)


def dump(fake: FakeNft, opts: NftablesOptions = FAKE) -> str:
    """The fake's dump in NewFakeProxier's dialect (mark ``0x4000``)."""
    return fake.dump().replace(opts.masquerade_mark, FAKE_MASQUERADE_MARK)


# ---------------------------------------------------------------------------------------------
# sortNFTablesTransaction / assertNFTablesTransactionEqual (helpers_test.go)

_OBJECT_ORDER = {"table": 10, "chain": 9, "rule": 8, "set": 7, "map": 6, "element": 5}


def sort_nftables_transaction(tx: str) -> str:
    """Blank and ``#`` lines dropped; lines sorted by object type, then object name (word 5),
    then the whole line -- except rules, which keep their order within a chain."""
    lines = [ln.strip() for ln in tx.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("#")]

    def less(li: str, lj: str) -> bool:
        wi, wj = li.split(" "), lj.split(" ")
        if len(wi) < 5 or len(wj) < 5:
            return False
        if wi[1] != wj[1]:
            return _OBJECT_ORDER.get(wi[1], 0) >= _OBJECT_ORDER.get(wj[1], 0)
        if wi[4] != wj[4]:
            return wi[4] < wj[4]
        if wi[1] == "rule":
            return False
        return li < lj

    def cmp(a: str, b: str) -> int:
        return -1 if less(a, b) else (1 if less(b, a) else 0)

    # sort.SliceStable with Go's less: a stable sort on the derived comparison.
    return "\n".join(sorted(lines, key=functools.cmp_to_key(cmp)))


def assert_nftables_equal(expected: str, result: str) -> None:
    exp = sort_nftables_transaction(expected).splitlines()
    got = sort_nftables_transaction(result).splitlines()
    assert got == exp, "\n".join(
        [f"- {x}" for x in exp if x not in got] + [f"+ {x}" for x in got if x not in exp]
    )


def test_sort_matches_upstream_helper_test() -> None:
    """Test_sortNFTablesTransaction's own input: rules keep their order, the rest sorts."""
    tx = """
        add table ip testing { comment "rules for kube-proxy" ; }
        add chain ip testing mark-for-masquerade
        add rule ip testing mark-for-masquerade mark set mark or 0x4000
        add chain ip testing masquerading
        add rule ip testing masquerading mark and 0x4000 == 0 return
        add rule ip testing masquerading mark set mark xor 0x4000
        add rule ip testing masquerading masquerade fully-random
        add element ip testing service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }
        # svc2
        add element ip testing service-ips { 1.2.3.4 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
    """
    assert sort_nftables_transaction(tx).splitlines() == [
        'add table ip testing { comment "rules for kube-proxy" ; }',
        "add chain ip testing mark-for-masquerade",
        "add chain ip testing masquerading",
        "add rule ip testing mark-for-masquerade mark set mark or 0x4000",
        "add rule ip testing masquerading mark and 0x4000 == 0 return",
        "add rule ip testing masquerading mark set mark xor 0x4000",
        "add rule ip testing masquerading masquerade fully-random",
        "add element ip testing service-ips { 1.2.3.4 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }",
        "add element ip testing service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }",
    ]


# ---------------------------------------------------------------------------------------------
# baseRules and TestOverallNFTablesRules (proxier_test.go, verbatim)

BASE_RULES = """
    add table ip kube-proxy { comment "rules for kube-proxy" ; }

    add set ip kube-proxy cluster-ips { type ipv4_addr ; comment "Active ClusterIPs" ; }
    add set ip kube-proxy nodeport-ips { type ipv4_addr ; comment "IPs that accept NodePort traffic" ; }

    add map ip kube-proxy firewall-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "destinations that are subject to LoadBalancerSourceRanges" ; }
    add map ip kube-proxy no-endpoint-nodeports { type inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to service nodeports with no endpoints" ; }
    add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment "vmap to drop or reject packets to services with no endpoints" ; }
    add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment "ClusterIP, ExternalIP and LoadBalancer IP traffic" ; }
    add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment "NodePort traffic" ; }

    add chain ip kube-proxy cluster-ips-check
    add chain ip kube-proxy filter-prerouting-pre-dnat { type filter hook prerouting priority -110 ; }
    add chain ip kube-proxy filter-output-pre-dnat { type filter hook output priority -110 ; }
    add chain ip kube-proxy filter-forward { type filter hook forward priority 0 ; }
    add chain ip kube-proxy filter-input { type filter hook input priority 0 ; }
    add chain ip kube-proxy filter-output { type filter hook output priority 0 ; }
    add chain ip kube-proxy firewall-check
    add chain ip kube-proxy mark-for-masquerade
    add chain ip kube-proxy masquerading
    add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }
    add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority 100 ; }
    add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority -100 ; }
    add chain ip kube-proxy nodeport-endpoints-check
    add chain ip kube-proxy reject-chain { comment "helper for @no-endpoint-services / @no-endpoint-nodeports" ; }
    add chain ip kube-proxy services
    add chain ip kube-proxy service-endpoints-check

    add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment "Reject traffic to invalid ports of ClusterIPs"
    add rule ip kube-proxy cluster-ips-check ip daddr { 172.30.0.0/16 } drop comment "Drop traffic to unallocated ClusterIPs"
    add rule ip kube-proxy filter-prerouting-pre-dnat ct state new jump firewall-check
    add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check
    add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check
    add rule ip kube-proxy filter-input ct state new jump nodeport-endpoints-check
    add rule ip kube-proxy filter-input ct state new jump service-endpoints-check
    add rule ip kube-proxy filter-output ct state new jump service-endpoints-check
    add rule ip kube-proxy filter-output-pre-dnat ct state new jump firewall-check
    add rule ip kube-proxy filter-output ct state new jump cluster-ips-check
    add rule ip kube-proxy firewall-check ip daddr . meta l4proto . th dport vmap @firewall-ips
    add rule ip kube-proxy mark-for-masquerade mark set mark or 0x4000
    add rule ip kube-proxy masquerading mark and 0x4000 == 0 return
    add rule ip kube-proxy masquerading mark set mark xor 0x4000
    add rule ip kube-proxy masquerading masquerade fully-random
    add rule ip kube-proxy nat-output jump services
    add rule ip kube-proxy nat-postrouting jump masquerading
    add rule ip kube-proxy nat-prerouting jump services
    add rule ip kube-proxy nodeport-endpoints-check ip daddr @nodeport-ips meta l4proto . th dport vmap @no-endpoint-nodeports
    add rule ip kube-proxy reject-chain reject
    add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips
    add rule ip kube-proxy services ip daddr @nodeport-ips meta l4proto . th dport vmap @service-nodeports

    add element ip kube-proxy nodeport-ips { 192.168.0.2 }
    add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services
"""


def overall_services() -> list[ProxiedService]:
    """TestOverallNFTablesRules' makeServiceMap + populateEndpointSlices."""
    return [
        # create ClusterIP service
        svc("ns1", "svc1", "172.30.0.41", ep("10.180.0.1")),
        # create LoadBalancer service with Local traffic policy; its endpoint has no NodeName,
        # so it is non-local and ignored for external traffic
        svc(
            "ns2",
            "svc2",
            "172.30.0.42",
            ep("10.180.0.2"),
            node_port=3001,
            load_balancer_vips=("1.2.3.4",),
            external_ips=("192.168.99.22",),
            external_policy_local=True,
            health_check_node_port=30000,
        ),
        # create NodePort service
        svc("ns3", "svc3", "172.30.0.43", ep("10.180.0.3"), node_port=3003),
        # create ExternalIP service (type NodePort, but its port has no NodePort)
        svc(
            "ns4",
            "svc4",
            "172.30.0.44",
            ep("10.180.0.4"),
            ep("10.180.0.5", node=TEST_NODE_NAME),
            external_ips=("192.168.99.33",),
        ),
        # create LoadBalancer service with Cluster traffic policy, source ranges (with the
        # extra whitespace upstream keeps as a regression test), and session affinity
        svc(
            "ns5",
            "svc5",
            "172.30.0.45",
            ep("10.180.0.3"),
            node_port=3002,
            load_balancer_vips=("5.6.7.8",),
            load_balancer_source_ranges=(" 203.0.113.0/25",),
            health_check_node_port=30000,
            session_affinity_client_ip=True,
            sticky_max_age_seconds=10800,
        ),
        # create ClusterIP service with no endpoints
        svc("ns6", "svc6", "172.30.0.46"),
    ]


OVERALL_EXPECTED = """
    # svc1
    add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }

    add chain ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80
    add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 ip saddr 10.180.0.1 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 meta l4proto tcp dnat to 10.180.0.1:80

    add element ip kube-proxy cluster-ips { 172.30.0.41 }
    add element ip kube-proxy service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }

    # svc2
    add chain ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80
    add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 ip daddr 172.30.0.42 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-42NFTM6N-ns2/svc2/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 }
    add chain ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80
    add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 ip saddr 10.0.0.0/8 goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit pod traffic"
    add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local jump mark-for-masquerade comment "masquerade local traffic"
    add rule ip kube-proxy external-42NFTM6N-ns2/svc2/tcp/p80 fib saddr type local goto service-42NFTM6N-ns2/svc2/tcp/p80 comment "short-circuit local traffic"
    add chain ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80
    add rule ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 ip saddr 10.180.0.2 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80 meta l4proto tcp dnat to 10.180.0.2:80

    add element ip kube-proxy cluster-ips { 172.30.0.42 }
    add element ip kube-proxy service-ips { 172.30.0.42 . tcp . 80 : goto service-42NFTM6N-ns2/svc2/tcp/p80 }
    add element ip kube-proxy service-ips { 192.168.99.22 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
    add element ip kube-proxy service-ips { 1.2.3.4 . tcp . 80 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }
    add element ip kube-proxy service-nodeports { tcp . 3001 : goto external-42NFTM6N-ns2/svc2/tcp/p80 }

    add element ip kube-proxy no-endpoint-nodeports { tcp . 3001 comment "ns2/svc2:p80" : drop }
    add element ip kube-proxy no-endpoint-services { 1.2.3.4 . tcp . 80 comment "ns2/svc2:p80" : drop }
    add element ip kube-proxy no-endpoint-services { 192.168.99.22 . tcp . 80 comment "ns2/svc2:p80" : drop }

    # svc3
    add chain ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80
    add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 ip daddr 172.30.0.43 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 }
    add chain ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80
    add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 jump mark-for-masquerade
    add rule ip kube-proxy external-4AT6LBPK-ns3/svc3/tcp/p80 goto service-4AT6LBPK-ns3/svc3/tcp/p80
    add chain ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80
    add rule ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-UEIP74TE-ns3/svc3/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80

    add element ip kube-proxy cluster-ips { 172.30.0.43 }
    add element ip kube-proxy service-ips { 172.30.0.43 . tcp . 80 : goto service-4AT6LBPK-ns3/svc3/tcp/p80 }
    add element ip kube-proxy service-nodeports { tcp . 3003 : goto external-4AT6LBPK-ns3/svc3/tcp/p80 }

    # svc4
    add chain ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80
    add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 ip daddr 172.30.0.44 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 , 1 : goto endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 }
    add chain ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80
    add rule ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80 jump mark-for-masquerade
    add rule ip kube-proxy external-LAUZTJTB-ns4/svc4/tcp/p80 goto service-LAUZTJTB-ns4/svc4/tcp/p80
    add chain ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80
    add rule ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 ip saddr 10.180.0.5 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-5RFCDDV7-ns4/svc4/tcp/p80__10.180.0.5/80 meta l4proto tcp dnat to 10.180.0.5:80
    add chain ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80
    add rule ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 ip saddr 10.180.0.4 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-UNZV3OEC-ns4/svc4/tcp/p80__10.180.0.4/80 meta l4proto tcp dnat to 10.180.0.4:80

    add element ip kube-proxy cluster-ips { 172.30.0.44 }
    add element ip kube-proxy service-ips { 172.30.0.44 . tcp . 80 : goto service-LAUZTJTB-ns4/svc4/tcp/p80 }
    add element ip kube-proxy service-ips { 192.168.99.33 . tcp . 80 : goto external-LAUZTJTB-ns4/svc4/tcp/p80 }

    # svc5
    add set ip kube-proxy affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { type ipv4_addr ; flags dynamic,timeout ; timeout 10800s ; }
    add chain ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80
    add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip daddr 172.30.0.45 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
    add rule ip kube-proxy service-HVFWP5L3-ns5/svc5/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 }
    add chain ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80
    add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 jump mark-for-masquerade
    add rule ip kube-proxy external-HVFWP5L3-ns5/svc5/tcp/p80 goto service-HVFWP5L3-ns5/svc5/tcp/p80

    add chain ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80
    add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 ip saddr 10.180.0.3 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 update @affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 { ip saddr }
    add rule ip kube-proxy endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 meta l4proto tcp dnat to 10.180.0.3:80

    add chain ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80
    add rule ip kube-proxy firewall-HVFWP5L3-ns5/svc5/tcp/p80 ip saddr != { 203.0.113.0/25 } drop

    add element ip kube-proxy cluster-ips { 172.30.0.45 }
    add element ip kube-proxy service-ips { 172.30.0.45 . tcp . 80 : goto service-HVFWP5L3-ns5/svc5/tcp/p80 }
    add element ip kube-proxy service-ips { 5.6.7.8 . tcp . 80 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
    add element ip kube-proxy service-nodeports { tcp . 3002 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
    add element ip kube-proxy firewall-ips { 5.6.7.8 . tcp . 80 : goto firewall-HVFWP5L3-ns5/svc5/tcp/p80 }

    # svc6
    add element ip kube-proxy cluster-ips { 172.30.0.46 }
    add element ip kube-proxy no-endpoint-services { 172.30.0.46 . tcp . 80 comment "ns6/svc6:p80" : goto reject-chain }
"""


def test_overall_nftables_rules() -> None:
    """TestOverallNFTablesRules: the whole table, object for object and rule for rule."""
    fake = FakeNft()
    assert_nftables_equal(BASE_RULES + OVERALL_EXPECTED, sync(fake, overall_services(), first=True))


def test_first_sync_is_idempotent() -> None:
    """A second full sync of the same state leaves the same table (and the kernel-side checks
    of FakeNft accept a re-sync over existing objects)."""
    for layout in LAYOUTS:
        fake = FakeNft()
        first = sync(fake, overall_services(), layout=layout, first=True)
        assert sync(fake, overall_services(), layout=layout) == first
        assert sync(fake, overall_services(), layout=layout, first=True) == first


def test_bad_ips() -> None:
    """TestBadIPs, the part netlab's input can carry: source ranges are parsed and rewritten
    (" 203.0.113.000/025"-style zero-padding is rejected earlier, by manifest validation)."""
    text = render(
        [
            svc(
                "ns1",
                "svc1",
                "172.30.0.41",
                ep("10.180.0.1"),
                node_port=3001,
                load_balancer_vips=("1.2.3.4",),
                external_ips=("192.168.99.22",),
                load_balancer_source_ranges=("203.0.113.7/25",),
            )
        ],
        FAKE,
    )
    assert (
        "add rule ip kube-proxy firewall-ULMVA6XW-ns1/svc1/tcp/p80 ip saddr != { 203.0.113.0/25 } drop"
        in text
    )


# ---------------------------------------------------------------------------------------------
# TestSyncProxyRulesRepeated (adapted: stale chains go in the same transaction)

SVC1 = """
    add chain ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 ip daddr 172.30.0.41 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-ULMVA6XW-ns1/svc1/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-5TPGNJF2-ns1/svc1/tcp/p80__10.0.1.1/80 }
    add chain ip kube-proxy endpoint-5TPGNJF2-ns1/svc1/tcp/p80__10.0.1.1/80
    add rule ip kube-proxy endpoint-5TPGNJF2-ns1/svc1/tcp/p80__10.0.1.1/80 ip saddr 10.0.1.1 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-5TPGNJF2-ns1/svc1/tcp/p80__10.0.1.1/80 meta l4proto tcp dnat to 10.0.1.1:80
"""
SVC2 = """
    add chain ip kube-proxy service-MHHHYRWA-ns2/svc2/tcp/p8080
    add rule ip kube-proxy service-MHHHYRWA-ns2/svc2/tcp/p8080 ip daddr 172.30.0.42 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-MHHHYRWA-ns2/svc2/tcp/p8080 numgen random mod 1 vmap { 0 : goto endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080 }
    add chain ip kube-proxy endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080
    add rule ip kube-proxy endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080 ip saddr 10.0.2.1 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-7RVP4LUQ-ns2/svc2/tcp/p8080__10.0.2.1/8080 meta l4proto tcp dnat to 10.0.2.1:8080
"""
SVC3 = """
    add chain ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80
    add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 ip daddr 172.30.0.43 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-2OCDJSZQ-ns3/svc3/tcp/p80__10.0.3.1/80 }
    add chain ip kube-proxy endpoint-2OCDJSZQ-ns3/svc3/tcp/p80__10.0.3.1/80
    add rule ip kube-proxy endpoint-2OCDJSZQ-ns3/svc3/tcp/p80__10.0.3.1/80 ip saddr 10.0.3.1 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-2OCDJSZQ-ns3/svc3/tcp/p80__10.0.3.1/80 meta l4proto tcp dnat to 10.0.3.1:80
"""
SVC3_UPDATED = """
    add chain ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80
    add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 ip daddr 172.30.0.43 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-SWWHDC7X-ns3/svc3/tcp/p80__10.0.3.2/80 }
    add chain ip kube-proxy endpoint-SWWHDC7X-ns3/svc3/tcp/p80__10.0.3.2/80
    add rule ip kube-proxy endpoint-SWWHDC7X-ns3/svc3/tcp/p80__10.0.3.2/80 ip saddr 10.0.3.2 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-SWWHDC7X-ns3/svc3/tcp/p80__10.0.3.2/80 meta l4proto tcp dnat to 10.0.3.2:80
"""
SVC3_TWO = """
    add chain ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80
    add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 ip daddr 172.30.0.43 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-4AT6LBPK-ns3/svc3/tcp/p80 numgen random mod 2 vmap { 0 : goto endpoint-SWWHDC7X-ns3/svc3/tcp/p80__10.0.3.2/80 , 1 : goto endpoint-TQ2QKHCZ-ns3/svc3/tcp/p80__10.0.3.3/80 }
    add chain ip kube-proxy endpoint-SWWHDC7X-ns3/svc3/tcp/p80__10.0.3.2/80
    add rule ip kube-proxy endpoint-SWWHDC7X-ns3/svc3/tcp/p80__10.0.3.2/80 ip saddr 10.0.3.2 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-SWWHDC7X-ns3/svc3/tcp/p80__10.0.3.2/80 meta l4proto tcp dnat to 10.0.3.2:80
    add chain ip kube-proxy endpoint-TQ2QKHCZ-ns3/svc3/tcp/p80__10.0.3.3/80
    add rule ip kube-proxy endpoint-TQ2QKHCZ-ns3/svc3/tcp/p80__10.0.3.3/80 ip saddr 10.0.3.3 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-TQ2QKHCZ-ns3/svc3/tcp/p80__10.0.3.3/80 meta l4proto tcp dnat to 10.0.3.3:80
"""
SVC4 = """
    add chain ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80
    add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 ip daddr 172.30.0.44 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
    add rule ip kube-proxy service-LAUZTJTB-ns4/svc4/tcp/p80 numgen random mod 1 vmap { 0 : goto endpoint-WAHRBT2B-ns4/svc4/tcp/p80__10.0.4.1/80 }
    add chain ip kube-proxy endpoint-WAHRBT2B-ns4/svc4/tcp/p80__10.0.4.1/80
    add rule ip kube-proxy endpoint-WAHRBT2B-ns4/svc4/tcp/p80__10.0.4.1/80 ip saddr 10.0.4.1 jump mark-for-masquerade
    add rule ip kube-proxy endpoint-WAHRBT2B-ns4/svc4/tcp/p80__10.0.4.1/80 meta l4proto tcp dnat to 10.0.4.1:80
"""


def _elements(*lines: str) -> str:
    return "\n".join(f"add element ip kube-proxy {ln}" for ln in lines) + "\n"


def test_sync_proxy_rules_repeated() -> None:
    """TestSyncProxyRulesRepeated: add, delete and change Services and endpoints across syncs."""
    s1 = svc("ns1", "svc1", "172.30.0.41", ep("10.0.1.1"))
    s2 = svc("ns2", "svc2", "172.30.0.42", ep("10.0.2.1", 8080), port_name="p8080", port=8080)
    s3 = svc("ns3", "svc3", "172.30.0.43", ep("10.0.3.1"))
    fake = FakeNft()

    got = sync(fake, [s1, s2], first=True)
    assert_nftables_equal(
        BASE_RULES
        + _elements(
            "cluster-ips { 172.30.0.41 }",
            "cluster-ips { 172.30.0.42 }",
            "service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }",
            "service-ips { 172.30.0.42 . tcp . 8080 : goto service-MHHHYRWA-ns2/svc2/tcp/p8080 }",
        )
        + SVC1
        + SVC2,
        got,
    )

    # Add a new service and its endpoints.
    got = sync(fake, [s1, s2, s3])
    assert_nftables_equal(
        BASE_RULES
        + _elements(
            "cluster-ips { 172.30.0.41 }",
            "cluster-ips { 172.30.0.42 }",
            "cluster-ips { 172.30.0.43 }",
            "service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }",
            "service-ips { 172.30.0.42 . tcp . 8080 : goto service-MHHHYRWA-ns2/svc2/tcp/p8080 }",
            "service-ips { 172.30.0.43 . tcp . 80 : goto service-4AT6LBPK-ns3/svc3/tcp/p80 }",
        )
        + SVC1
        + SVC2
        + SVC3,
        got,
    )

    # Delete a service. Upstream flushes its chains now and deletes them a second later; netlab
    # deletes them at once, so this is upstream's state after "ageStaleChains".
    got = sync(fake, [s1, s3])
    one_three = _elements(
        "cluster-ips { 172.30.0.41 }",
        "cluster-ips { 172.30.0.43 }",
        "service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }",
        "service-ips { 172.30.0.43 . tcp . 80 : goto service-4AT6LBPK-ns3/svc3/tcp/p80 }",
    )
    assert_nftables_equal(BASE_RULES + one_three + SVC1 + SVC3, got)

    # Add a service, sync, then add its endpoints.
    s4_empty = svc("ns4", "svc4", "172.30.0.44")
    got = sync(fake, [s1, s3, s4_empty])
    assert_nftables_equal(
        BASE_RULES
        + one_three
        + _elements(
            "cluster-ips { 172.30.0.44 }",
            'no-endpoint-services { 172.30.0.44 . tcp . 80 comment "ns4/svc4:p80" : goto reject-chain }',
        )
        + SVC1
        + SVC3,
        got,
    )
    s4 = svc("ns4", "svc4", "172.30.0.44", ep("10.0.4.1"))
    got = sync(fake, [s1, s3, s4])
    all_four = one_three + _elements(
        "cluster-ips { 172.30.0.44 }",
        "service-ips { 172.30.0.44 . tcp . 80 : goto service-LAUZTJTB-ns4/svc4/tcp/p80 }",
    )
    assert_nftables_equal(BASE_RULES + all_four + SVC1 + SVC3 + SVC4, got)

    # Change an endpoint of an existing service (the old endpoint chain goes at once).
    s3_updated = svc("ns3", "svc3", "172.30.0.43", ep("10.0.3.2"))
    got = sync(fake, [s1, s3_updated, s4])
    assert_nftables_equal(BASE_RULES + all_four + SVC1 + SVC3_UPDATED + SVC4, got)

    # Add an endpoint to a service.
    s3_two = svc("ns3", "svc3", "172.30.0.43", ep("10.0.3.2"), ep("10.0.3.3"))
    got = sync(fake, [s1, s3_two, s4])
    assert_nftables_equal(BASE_RULES + all_four + SVC1 + SVC3_TWO + SVC4, got)

    # Empty a service's endpoints: no-endpoint element, its chains gone.
    got = sync(fake, [s1, svc("ns3", "svc3", "172.30.0.43"), s4])
    assert_nftables_equal(
        BASE_RULES
        + _elements(
            "cluster-ips { 172.30.0.41 }",
            "cluster-ips { 172.30.0.43 }",
            "cluster-ips { 172.30.0.44 }",
            "service-ips { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80 }",
            'no-endpoint-services { 172.30.0.43 . tcp . 80 comment "ns3/svc3:p80" : goto reject-chain }',
            "service-ips { 172.30.0.44 . tcp . 80 : goto service-LAUZTJTB-ns4/svc4/tcp/p80 }",
        )
        + SVC1
        + SVC4,
        got,
    )

    # Restore them; then sync with no changes: same table.
    expected = BASE_RULES + all_four + SVC1 + SVC3_TWO + SVC4
    assert_nftables_equal(expected, sync(fake, [s1, s3_two, s4]))
    assert_nftables_equal(expected, sync(fake, [s1, s3_two, s4]))


def test_stale_affinity_sets_are_deleted() -> None:
    """Stale affinity sets go immediately (upstream too), after the chains that update them."""
    fake = FakeNft()
    sticky = svc("ns5", "svc5", "172.30.0.45", ep("10.180.0.3"), session_affinity_client_ip=True)
    sync(fake, [sticky], first=True)
    assert "affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80" in fake.containers
    sync(fake, [replace(sticky, info=replace(sticky.info, session_affinity_client_ip=False))])
    assert not [c for c in fake.containers if c.startswith("affinity-")]
    assert "endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80" in fake.chains
    sync(fake, [])
    assert not [c for c in fake.chains if "/" in c]


def test_default_nodeport_addresses() -> None:
    """netlab's labs leave --nodeport-addresses unset: NodePorts on every local address, via
    ``fib daddr type local`` (no localhost), and no nodeport-ips set."""
    opts = replace(FAKE, nodeport_ips=())
    fake = FakeNft()
    got = sync(fake, overall_services(), opts, first=True)
    assert "nodeport-ips" not in fake.containers
    assert (
        "add rule ip kube-proxy services fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports"
        in got
    )
    assert (
        "add rule ip kube-proxy nodeport-endpoints-check ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports"
        in got
    )
    trace = Tracer(fake, TEST_NODE_IPS).trace(TEST_EXTERNAL_CLIENT, "tcp", TEST_NODE_IP_ALT, 3003)
    assert trace[1:] == ("10.180.0.3:80", True)
    trace = Tracer(fake, TEST_NODE_IPS).trace(TEST_EXTERNAL_CLIENT, "tcp", TEST_NODE_IP, 3001)
    assert trace[1] == "DROP"


def test_elements_are_written_once_per_key() -> None:
    """ensureElem: a multi-port Service's ClusterIP goes into cluster-ips once, and two Services
    claiming one external IP:port do not fail the sync (the later one wins, as upstream)."""
    ports = [
        svc("ns1", "dns", "172.30.0.10", ep("10.1.0.1", 53), port_name=n, protocol=p, port=53)
        for n, p in (("dns", "UDP"), ("dns-tcp", "TCP"))
    ]
    clash = [
        svc(f"ns{i}", "web", f"172.30.0.2{i}", ep(f"10.2.0.{i}"), external_ips=("192.168.99.9",))
        for i in (1, 2)
    ]
    text = render(ports + clash, FAKE)
    assert text.count("add element ip kube-proxy cluster-ips { 172.30.0.10 }") == 1
    fake = FakeNft()
    fake.run(text)
    value = fake.containers["service-ips"].elements[("192.168.99.9", "tcp", "80")][1]
    assert re.fullmatch(r"goto external-[A-Z2-7]{8}-ns2/web/tcp/p80", value)


def test_masquerade_mark_is_gos_format() -> None:
    assert FAKE.masquerade_mark == "0x00004000"
    assert replace(FAKE, masquerade_bit=0).masquerade_mark == "0x00000001"


def test_unknown_layout_is_refused() -> None:
    with pytest.raises(ValueError, match="layout"):
        render([], FAKE, "iptables")


# ---------------------------------------------------------------------------------------------
# nftablesTracer / tracePacket / runPacketFlowTests (helpers_test.go)

_DEST_ADDR = re.compile(r"^ip6* daddr (!= )?(\S+)")
_DEST_ADDR_LOOKUP = re.compile(r"^ip6* daddr (!= )?\{([^}]*)\}")
_DEST_ADDR_LOCAL = re.compile(r"^fib daddr type local")
_DEST_PORT = re.compile(r"^(tcp|udp|sctp) dport (\d+)")
_DEST_IP_ONLY_LOOKUP = re.compile(r"^ip6* daddr @(\S+)")
_DEST_LOOKUP = re.compile(r"^ip6* daddr \. meta l4proto \. th dport @(\S+)")
_DEST_PORT_LOOKUP = re.compile(r"^meta l4proto \. th dport @(\S+)")
_DEST_DISPATCH = re.compile(r"^ip6* daddr \. meta l4proto \. th dport vmap @(\S+)$")
_DEST_PORT_DISPATCH = re.compile(r"^meta l4proto \. th dport vmap @(\S+)$")
_SOURCE_ADDR = re.compile(r"^ip6* saddr (!= )?(\S+)")
_SOURCE_ADDR_LOOKUP = re.compile(r"^ip6* saddr (!= )?\{([^}]*)\}")
_SOURCE_ADDR_LOCAL = re.compile(r"^fib saddr type local")
_ENDPOINT_VMAP = re.compile(r"^numgen random mod \d+ vmap \{(.*)\}$")
_ENDPOINT_VMAP_ENTRY = re.compile(r"\d+ : goto (\S+)")
_MASQUERADE = re.compile(r"^jump mark-for-masquerade$")
_JUMP = re.compile(r"^(jump|goto) (\S+)$")
_RETURN = re.compile(r"^return$")
_VERDICT = re.compile(r"^(drop|reject)$")
_DNAT = re.compile(r"^meta l4proto (tcp|udp|sctp) dnat to (\S+)$")
_IGNORED = re.compile(r' *comment "[^"]*"$|^ct state new')
# netlab additions: the affinity look-up and update (affinity sets start empty, so the look-up
# never matches a fresh trace), and the fast layout's cascade step.
_SOURCE_IP_ONLY_LOOKUP = re.compile(r"^ip6* saddr @(\S+)")
_AFFINITY_UPDATE = re.compile(r"^update @\S+ \{ ip6* saddr \}")
_CASCADE = re.compile(r"^numgen random mod \d+ == 0 goto (\S+)$")


def _address_matches(ip: str, want: bool, rule_address: str) -> bool:
    addr = ipaddress.ip_address(ip)
    if "/" in rule_address:
        match = addr in ipaddress.ip_network(rule_address, strict=False)
    else:
        match = addr == ipaddress.ip_address(rule_address)
    return match == want


def _address_matches_set(ip: str, want: bool, rule_addresses: str) -> bool:
    """addressMatchesSet, as upstream wrote it (each address must give ``want``)."""
    for address in rule_addresses.replace(" ", "").split(","):
        if _address_matches(ip, True, address) != want:
            return False
    return True


class Tracer:
    """A packet through the table, as upstream's tracer walks knftables.Fake: it recognises the
    pieces of rule kube-proxy writes (anything else is an error), follows every endpoint of a
    random choice, and records masquerading as the jump to mark-for-masquerade."""

    def __init__(self, fake: FakeNft, node_ips: Iterable[str]) -> None:
        self.fake = fake
        self.node_ips = set(node_ips)
        self.matches: list[str] = []
        self.outputs: list[str] = []
        self.masq = False

    def _elements(self, name: str) -> dict[tuple[str, ...], tuple[str, str]]:
        return self.fake.containers[name].elements

    def run_chain(self, chname: str, src: str, proto: str, dst: str, dport: str) -> bool:
        ch = self.fake.chains.get(chname)
        assert ch is not None, f"unknown chain {chname!r}"
        for rule_obj in ch.rules:
            rule = _IGNORED.sub("", rule_obj)
            while rule:
                rule = rule.lstrip(" ")
                if m := _DEST_IP_ONLY_LOOKUP.match(rule):
                    rule = rule[m.end() :]
                    if not any(k[0] == dst for k in self._elements(m[1])):
                        rule = ""
                elif m := _DEST_LOOKUP.match(rule):
                    rule = rule[m.end() :]
                    if (dst, proto, dport) not in self._elements(m[1]):
                        rule = ""
                elif m := _DEST_PORT_LOOKUP.match(rule):
                    rule = rule[m.end() :]
                    if (proto, dport) not in self._elements(m[1]):
                        rule = ""
                elif m := _DEST_DISPATCH.match(rule):
                    found = self._elements(m[1]).get((dst, proto, dport))
                    rule = found[1] if found else ""
                elif m := _DEST_PORT_DISPATCH.match(rule):
                    found = self._elements(m[1]).get((proto, dport))
                    rule = found[1] if found else ""
                elif m := _DEST_ADDR_LOOKUP.match(rule):
                    rule = rule[m.end() :]
                    if not _address_matches_set(dst, m[1] != "!= ", m[2]):
                        rule = ""
                elif m := _DEST_ADDR.match(rule):
                    rule = rule[m.end() :]
                    if not _address_matches(dst, m[1] != "!= ", m[2]):
                        rule = ""
                elif m := _DEST_ADDR_LOCAL.match(rule):
                    rule = rule[m.end() :]
                    if dst not in self.node_ips:
                        rule = ""
                elif m := _DEST_PORT.match(rule):
                    rule = rule[m.end() :]
                    if (proto, dport) != (m[1], m[2]):
                        rule = ""
                elif m := _SOURCE_ADDR_LOOKUP.match(rule):
                    rule = rule[m.end() :]
                    if not _address_matches_set(src, m[1] != "!= ", m[2]):
                        rule = ""
                elif m := _SOURCE_IP_ONLY_LOOKUP.match(rule):
                    rule = rule[m.end() :]
                    if not any(k[0] == src for k in self._elements(m[1])):
                        rule = ""
                elif m := _SOURCE_ADDR.match(rule):
                    rule = rule[m.end() :]
                    if not _address_matches(src, m[1] != "!= ", m[2]):
                        rule = ""
                elif m := _SOURCE_ADDR_LOCAL.match(rule):
                    rule = rule[m.end() :]
                    if src not in self.node_ips:
                        rule = ""
                elif m := _AFFINITY_UPDATE.match(rule):
                    rule = rule[m.end() :]
                elif _MASQUERADE.match(rule):
                    self.matches.append(rule_obj)
                    self.masq = True
                    rule = ""
                elif m := _JUMP.match(rule):
                    self.matches.append(rule_obj)
                    if self.run_chain(m[2], src, proto, dst, dport):
                        return True
                    if m[1] == "goto":
                        return False
                    rule = ""
                elif m := _VERDICT.match(rule):
                    self.matches.append(rule_obj)
                    self.outputs.append(m[1].upper())
                    return True
                elif _RETURN.match(rule):
                    self.matches.append(rule_obj)
                    return False
                elif m := _DNAT.match(rule):
                    self.matches.append(rule_obj)
                    self.outputs.append(m[2])
                    return True
                elif m := _ENDPOINT_VMAP.match(rule):
                    # Follow *every* endpoint: the output lists them all.
                    for dest_chain in _ENDPOINT_VMAP_ENTRY.findall(m[1]):
                        self.matches.append(rule_obj)
                        self.run_chain(dest_chain, src, proto, dst, dport)
                    return True
                elif m := _CASCADE.match(rule):
                    # One step of the fast layout's choice: this endpoint, and on to the next.
                    self.matches.append(rule_obj)
                    self.run_chain(m[1], src, proto, dst, dport)
                    rule = ""
                else:
                    raise AssertionError(f"unmatched rule: {rule_obj}")
        return False

    def trace(self, src: str, proto: str, dst: str, dport: int) -> tuple[list[str], str, bool]:
        """tracePacket: (matched rules, "IP:port, ..." or DROP/REJECT or "", masqueraded)."""
        port = str(dport)
        if not self.run_chain("filter-prerouting-pre-dnat", src, proto, dst, port):
            self.run_chain("nat-prerouting", src, proto, dst, port)
            # Pending DNATs apply before the filter hooks after routing.
            final = self.outputs[0].rsplit(":", 1)[0] if self.outputs else dst
            forwarded = self.run_chain("filter-forward", src, proto, final, port)
            if not forwarded and final in self.node_ips:
                self.run_chain("filter-input", src, proto, final, port)
        return self.matches, ", ".join(self.outputs), self.masq


@dataclass(frozen=True)
class Flow:
    """packetFlowTest."""

    name: str
    source_ip: str
    dest_ip: str
    dest_port: int
    output: str
    masq: bool = False
    protocol: str = "tcp"


def run_packet_flow_tests(
    services: list[ProxiedService],
    flows: Iterable[Flow],
    layout: str,
    opts: NftablesOptions = FAKE,
    node_ips: Iterable[str] = TEST_NODE_IPS,
) -> None:
    fake = FakeNft()
    sync(fake, services, opts, layout, first=True)
    errors = []
    for f in flows:
        matches, output, masq = Tracer(fake, node_ips).trace(
            f.source_ip, f.protocol, f.dest_ip, f.dest_port
        )
        if (output, masq) != (f.output, f.masq):
            errors.append(
                f"{f.name}: {f.source_ip} -> {f.dest_ip}:{f.dest_port}: expected "
                f"{f.output!r} masq={f.masq}, got {output!r} masq={masq}\n  by: "
                + "\n      ".join(matches)
            )
    assert not errors, "\n".join(errors)


layouts = pytest.mark.parametrize("layout", LAYOUTS)


@layouts
def test_overall_rules_packet_flows(layout: str) -> None:
    """Traces over TestOverallNFTablesRules' services, in both layouts."""
    run_packet_flow_tests(
        overall_services(),
        [
            Flow("pod to svc1", "10.0.0.2", "172.30.0.41", 80, "10.180.0.1:80"),
            Flow("hairpin svc1", "10.180.0.1", "172.30.0.41", 80, "10.180.0.1:80", True),
            Flow(
                "external to svc2 LB, no local endpoints",
                TEST_EXTERNAL_CLIENT,
                "1.2.3.4",
                80,
                "DROP",
            ),
            Flow("pod to svc2 LB, short-circuit", "10.0.0.2", "1.2.3.4", 80, "10.180.0.2:80"),
            Flow("external to svc2 NodePort", TEST_EXTERNAL_CLIENT, TEST_NODE_IP, 3001, "DROP"),
            Flow("node to svc2 NodePort", TEST_NODE_IP, TEST_NODE_IP, 3001, "10.180.0.2:80", True),
            Flow(
                "external to svc3 NodePort",
                TEST_EXTERNAL_CLIENT,
                TEST_NODE_IP,
                3003,
                "10.180.0.3:80",
                True,
            ),
            Flow("pod to svc4", "10.0.0.2", "172.30.0.44", 80, "10.180.0.4:80, 10.180.0.5:80"),
            Flow(
                "external to svc4 external IP",
                TEST_EXTERNAL_CLIENT,
                "192.168.99.33",
                80,
                "10.180.0.4:80, 10.180.0.5:80",
                True,
            ),
            Flow("allowed to svc5 LB", TEST_EXTERNAL_CLIENT, "5.6.7.8", 80, "10.180.0.3:80", True),
            Flow("blocked to svc5 LB", TEST_EXTERNAL_CLIENT_BLOCKED, "5.6.7.8", 80, "DROP"),
            Flow(
                "svc5 NodePort ignores source ranges",
                TEST_EXTERNAL_CLIENT_BLOCKED,
                TEST_NODE_IP,
                3002,
                "10.180.0.3:80",
                True,
            ),
            Flow("pod to svc6, no endpoints", "10.0.0.2", "172.30.0.46", 80, "REJECT"),
            Flow("wrong port of a ClusterIP", "10.0.0.2", "172.30.0.41", 81, "REJECT"),
            Flow("unallocated ClusterIP", "10.0.0.2", "172.30.0.99", 80, "DROP"),
        ],
        layout,
    )


@layouts
def test_no_endpoints_reject(layout: str) -> None:
    """TestNoEndpointsReject."""
    s = svc(
        "ns1",
        "svc1",
        "172.30.0.41",
        node_port=3001,
        external_ips=("192.168.99.11",),
        load_balancer_vips=("1.2.3.4",),
    )
    run_packet_flow_tests(
        [s],
        [
            Flow("pod to cluster IP with no endpoints", "10.0.0.2", "172.30.0.41", 80, "REJECT"),
            Flow(
                "external to external IP with no endpoints",
                TEST_EXTERNAL_CLIENT,
                "192.168.99.11",
                80,
                "REJECT",
            ),
            Flow("pod to NodePort with no endpoints", "10.0.0.2", TEST_NODE_IP, 3001, "REJECT"),
            Flow(
                "external to NodePort with no endpoints",
                TEST_EXTERNAL_CLIENT,
                TEST_NODE_IP,
                3001,
                "REJECT",
            ),
            Flow("pod to LoadBalancer IP with no endpoints", "10.0.0.2", "1.2.3.4", 80, "REJECT"),
            Flow(
                "external to LoadBalancer IP with no endpoints",
                TEST_EXTERNAL_CLIENT,
                "1.2.3.4",
                80,
                "REJECT",
            ),
        ],
        layout,
    )


@layouts
def test_cluster_ip_general(layout: str) -> None:
    """TestClusterIPGeneral."""
    local, remote = TEST_NODE_NAME, "node2"
    eps2 = (ep("10.180.0.1", node=local), ep("10.180.2.1", node=remote))

    def port(name: str, proto: str, number: int, target: int) -> ProxiedService:
        return svc(
            "ns2",
            "svc2",
            "172.30.0.42",
            *(replace(e, port=target) for e in eps2),
            port_name=name,
            protocol=proto,
            port=number,
        )

    services = [
        svc("ns1", "svc1", "172.30.0.41", ep("10.180.0.1", node=local), port_name="http"),
        port("http", "TCP", 80, 80),
        port("https", "TCP", 443, 8443),
        port("dns-udp", "UDP", 53, 53),
        port("dns-tcp", "TCP", 53, 5353),
        port("dns-sctp", "SCTP", 53, 53),
    ]
    run_packet_flow_tests(
        services,
        [
            Flow("simple clusterIP", "10.180.0.2", "172.30.0.41", 80, "10.180.0.1:80"),
            Flow("hairpin to cluster IP", "10.180.0.1", "172.30.0.41", 80, "10.180.0.1:80", True),
            Flow(
                "clusterIP with multiple endpoints",
                "10.180.0.2",
                "172.30.0.42",
                80,
                "10.180.0.1:80, 10.180.2.1:80",
            ),
            Flow(
                "clusterIP with TargetPort",
                "10.180.0.2",
                "172.30.0.42",
                443,
                "10.180.0.1:8443, 10.180.2.1:8443",
            ),
            Flow(
                "clusterIP with TCP, UDP, and SCTP on same port (TCP)",
                "10.180.0.2",
                "172.30.0.42",
                53,
                "10.180.0.1:5353, 10.180.2.1:5353",
            ),
            Flow(
                "clusterIP with TCP, UDP, and SCTP on same port (UDP)",
                "10.180.0.2",
                "172.30.0.42",
                53,
                "10.180.0.1:53, 10.180.2.1:53",
                protocol="udp",
            ),
            Flow(
                "clusterIP with TCP, UDP, and SCTP on same port (SCTP)",
                "10.180.0.2",
                "172.30.0.42",
                53,
                "10.180.0.1:53, 10.180.2.1:53",
                protocol="sctp",
            ),
            Flow(
                "TCP-only port does not match UDP traffic",
                "10.180.0.2",
                "172.30.0.42",
                80,
                "REJECT",
                protocol="udp",
            ),
            Flow("svc1 does not accept svc2's ports", "10.180.0.2", "172.30.0.41", 443, "REJECT"),
            Flow("packet to unallocated cluster ip", "10.180.0.2", "172.30.0.50", 80, "DROP"),
        ],
        layout,
    )


@layouts
def test_load_balancer(layout: str) -> None:
    """TestLoadBalancer: LoadBalancerSourceRanges through the firewall chain."""
    s = svc(
        "ns1",
        "svc1",
        "172.30.0.41",
        ep("10.180.0.1"),
        node_port=3001,
        load_balancer_vips=("1.2.3.4", "5.6.7.8"),
        # Regression test that excess whitespace gets ignored
        load_balancer_source_ranges=("192.168.0.0/24", " 203.0.113.0/25"),
    )
    out = "10.180.0.1:80"
    run_packet_flow_tests(
        [s],
        [
            Flow("pod to cluster IP", "10.0.0.2", "172.30.0.41", 80, out),
            Flow("external to nodePort", TEST_EXTERNAL_CLIENT, TEST_NODE_IP, 3001, out, True),
            Flow(
                "nodePort bypasses LoadBalancerSourceRanges",
                TEST_EXTERNAL_CLIENT_BLOCKED,
                TEST_NODE_IP,
                3001,
                out,
                True,
            ),
            Flow("accepted external to LB1", TEST_EXTERNAL_CLIENT, "1.2.3.4", 80, out, True),
            Flow("accepted external to LB2", TEST_EXTERNAL_CLIENT, "5.6.7.8", 80, out, True),
            Flow("blocked external to LB1", TEST_EXTERNAL_CLIENT_BLOCKED, "1.2.3.4", 80, "DROP"),
            Flow("blocked external to LB2", TEST_EXTERNAL_CLIENT_BLOCKED, "5.6.7.8", 80, "DROP"),
            Flow(
                "pod to LB1 (blocked by LoadBalancerSourceRanges)",
                "10.0.0.2",
                "1.2.3.4",
                80,
                "DROP",
            ),
            Flow(
                "pod to LB2 (blocked by LoadBalancerSourceRanges)",
                "10.0.0.2",
                "5.6.7.8",
                80,
                "DROP",
            ),
            Flow(
                "node to LB1 (allowed by LoadBalancerSourceRanges)",
                TEST_NODE_IP,
                "1.2.3.4",
                80,
                out,
                True,
            ),
            Flow(
                "node to LB2 (allowed by LoadBalancerSourceRanges)",
                TEST_NODE_IP,
                "5.6.7.8",
                80,
                out,
                True,
            ),
            Flow(
                "same node to LB1, SNATted to LB1 (implicitly allowed)",
                "1.2.3.4",
                "1.2.3.4",
                80,
                out,
                True,
            ),
            Flow(
                "same node to LB2, SNATted to LB2 (implicitly allowed)",
                "5.6.7.8",
                "5.6.7.8",
                80,
                out,
                True,
            ),
        ],
        layout,
    )


@layouts
@pytest.mark.parametrize(
    ("nodeport_ips", "allow_alt_node_ip"),
    [((TEST_NODE_IP,), False), ((TEST_NODE_IP, TEST_NODE_IP_ALT), True)],
    ids=["ipv4", "ipv4, multiple nodeport-addresses"],
)
def test_node_ports(layout: str, nodeport_ips: tuple[str, ...], allow_alt_node_ip: bool) -> None:
    """TestNodePorts (the IPv4 cases; netlab is IPv4-only)."""
    s = svc(
        "ns1",
        "svc1",
        "172.30.0.41",
        ep("10.180.0.1"),
        ep("10.180.2.1", node=TEST_NODE_NAME),
        node_port=3001,
    )
    out = "10.180.0.1:80, 10.180.2.1:80"
    alt = (
        Flow(
            "external to nodePort on secondary IP",
            TEST_EXTERNAL_CLIENT,
            TEST_NODE_IP_ALT,
            3001,
            out,
            True,
        )
        if allow_alt_node_ip
        else Flow(
            "secondary nodeIP ignores NodePorts", TEST_EXTERNAL_CLIENT, TEST_NODE_IP_ALT, 3001, ""
        )
    )
    run_packet_flow_tests(
        [s],
        [
            Flow("pod to cluster IP", "10.0.0.2", "172.30.0.41", 80, out),
            Flow("external to nodePort", TEST_EXTERNAL_CLIENT, TEST_NODE_IP, 3001, out, True),
            Flow("node to nodePort", TEST_NODE_IP, TEST_NODE_IP, 3001, out, True),
            alt,
        ],
        layout,
        replace(FAKE, nodeport_ips=nodeport_ips),
    )


def _etp_service(local: bool) -> ProxiedService:
    return svc(
        "ns1",
        "svc1",
        "172.30.0.41",
        ep("10.180.0.1"),
        ep("10.180.2.1", node=TEST_NODE_NAME),
        node_port=3001,
        external_ips=("192.168.99.11",),
        load_balancer_vips=("1.2.3.4",),
        external_policy_local=local,
        health_check_node_port=30000 if local else 0,
    )


@layouts
def test_external_traffic_policy_local(layout: str) -> None:
    """TestExternalTrafficPolicyLocal."""
    both, local = "10.180.0.1:80, 10.180.2.1:80", "10.180.2.1:80"
    run_packet_flow_tests(
        [_etp_service(True)],
        [
            Flow(
                "pod to cluster IP hits both endpoints, unmasqueraded",
                "10.0.0.2",
                "172.30.0.41",
                80,
                both,
            ),
            Flow(
                "pod to external IP hits both endpoints, unmasqueraded",
                "10.0.0.2",
                "192.168.99.11",
                80,
                both,
            ),
            Flow(
                "external to external IP hits only local endpoint, unmasqueraded",
                TEST_EXTERNAL_CLIENT,
                "192.168.99.11",
                80,
                local,
            ),
            Flow(
                "pod to LB IP hits only both endpoints, unmasqueraded",
                "10.0.0.2",
                "1.2.3.4",
                80,
                both,
            ),
            Flow(
                "external to LB IP hits only local endpoint, unmasqueraded",
                TEST_EXTERNAL_CLIENT,
                "1.2.3.4",
                80,
                local,
            ),
            Flow(
                "pod to NodePort hits both endpoints, unmasqueraded",
                "10.0.0.2",
                TEST_NODE_IP,
                3001,
                both,
            ),
            Flow(
                "external to NodePort hits only local endpoint, unmasqueraded",
                TEST_EXTERNAL_CLIENT,
                TEST_NODE_IP,
                3001,
                local,
            ),
        ],
        layout,
    )


@layouts
def test_external_traffic_policy_cluster(layout: str) -> None:
    """TestExternalTrafficPolicyCluster."""
    both = "10.180.0.1:80, 10.180.2.1:80"
    run_packet_flow_tests(
        [_etp_service(False)],
        [
            Flow(
                "pod to cluster IP hits both endpoints, unmasqueraded",
                "10.0.0.2",
                "172.30.0.41",
                80,
                both,
            ),
            Flow(
                "pod to external IP hits both endpoints, masqueraded",
                "10.0.0.2",
                "192.168.99.11",
                80,
                both,
                True,
            ),
            Flow(
                "external to external IP hits both endpoints, masqueraded",
                TEST_EXTERNAL_CLIENT,
                "192.168.99.11",
                80,
                both,
                True,
            ),
            Flow(
                "pod to LB IP hits both endpoints, masqueraded",
                "10.0.0.2",
                "1.2.3.4",
                80,
                both,
                True,
            ),
            Flow(
                "external to LB IP hits both endpoints, masqueraded",
                TEST_EXTERNAL_CLIENT,
                "1.2.3.4",
                80,
                both,
                True,
            ),
            Flow(
                "pod to NodePort hits both endpoints, masqueraded",
                "10.0.0.2",
                TEST_NODE_IP,
                3001,
                both,
                True,
            ),
            Flow(
                "external to NodePort hits both endpoints, masqueraded",
                TEST_EXTERNAL_CLIENT,
                TEST_NODE_IP,
                3001,
                both,
                True,
            ),
        ],
        layout,
    )


def _masq_services() -> list[ProxiedService]:
    """TestInternalExternalMasquerade's setupTest."""

    def one(n: int, **fields: Any) -> ProxiedService:
        return svc(
            f"ns{n}",
            f"svc{n}",
            f"172.30.0.4{n}",
            ep(f"10.180.0.{n}", node=TEST_NODE_NAME),
            ep(f"10.180.1.{n}", node="remote"),
            node_port=3000 + n,
            health_check_node_port=30000 + n,
            **fields,
        )

    return [
        one(1, load_balancer_vips=("1.2.3.4",)),
        one(2, load_balancer_vips=("5.6.7.8",), external_policy_local=True),
        one(3, load_balancer_vips=("9.10.11.12",), internal_policy_local=True),
    ]


_MASQ_FLOWS = [
    Flow("pod to ClusterIP", "10.0.0.2", "172.30.0.41", 80, "10.180.0.1:80, 10.180.1.1:80"),
    Flow("pod to NodePort", "10.0.0.2", TEST_NODE_IP, 3001, "10.180.0.1:80, 10.180.1.1:80", True),
    Flow("pod to LB", "10.0.0.2", "1.2.3.4", 80, "10.180.0.1:80, 10.180.1.1:80", True),
    Flow(
        "node to ClusterIP", TEST_NODE_IP, "172.30.0.41", 80, "10.180.0.1:80, 10.180.1.1:80", True
    ),
    Flow(
        "node to NodePort", TEST_NODE_IP, TEST_NODE_IP, 3001, "10.180.0.1:80, 10.180.1.1:80", True
    ),
    Flow("node to LB", TEST_NODE_IP, "1.2.3.4", 80, "10.180.0.1:80, 10.180.1.1:80", True),
    Flow(
        "external to ClusterIP",
        TEST_EXTERNAL_CLIENT,
        "172.30.0.41",
        80,
        "10.180.0.1:80, 10.180.1.1:80",
        True,
    ),
    Flow(
        "external to NodePort",
        TEST_EXTERNAL_CLIENT,
        TEST_NODE_IP,
        3001,
        "10.180.0.1:80, 10.180.1.1:80",
        True,
    ),
    Flow(
        "external to LB", TEST_EXTERNAL_CLIENT, "1.2.3.4", 80, "10.180.0.1:80, 10.180.1.1:80", True
    ),
    Flow(
        "pod to ClusterIP with eTP:Local",
        "10.0.0.2",
        "172.30.0.42",
        80,
        "10.180.0.2:80, 10.180.1.2:80",
    ),
    Flow(
        "pod to NodePort with eTP:Local",
        "10.0.0.2",
        TEST_NODE_IP,
        3002,
        "10.180.0.2:80, 10.180.1.2:80",
    ),
    Flow("pod to LB with eTP:Local", "10.0.0.2", "5.6.7.8", 80, "10.180.0.2:80, 10.180.1.2:80"),
    Flow(
        "node to ClusterIP with eTP:Local",
        TEST_NODE_IP,
        "172.30.0.42",
        80,
        "10.180.0.2:80, 10.180.1.2:80",
        True,
    ),
    # upstream's case: "node to NodePort with eTP:Local" really uses svc1's port 3001
    Flow(
        "node to NodePort with eTP:Local",
        TEST_NODE_IP,
        TEST_NODE_IP,
        3001,
        "10.180.0.1:80, 10.180.1.1:80",
        True,
    ),
    Flow(
        "node to LB with eTP:Local",
        TEST_NODE_IP,
        "5.6.7.8",
        80,
        "10.180.0.2:80, 10.180.1.2:80",
        True,
    ),
    Flow(
        "external to ClusterIP with eTP:Local",
        TEST_EXTERNAL_CLIENT,
        "172.30.0.42",
        80,
        "10.180.0.2:80, 10.180.1.2:80",
        True,
    ),
    Flow(
        "external to NodePort with eTP:Local",
        TEST_EXTERNAL_CLIENT,
        TEST_NODE_IP,
        3002,
        "10.180.0.2:80",
    ),
    Flow("external to LB with eTP:Local", TEST_EXTERNAL_CLIENT, "5.6.7.8", 80, "10.180.0.2:80"),
    Flow("pod to ClusterIP with iTP:Local", "10.0.0.2", "172.30.0.43", 80, "10.180.0.3:80"),
    Flow(
        "pod to NodePort with iTP:Local",
        "10.0.0.2",
        TEST_NODE_IP,
        3003,
        "10.180.0.3:80, 10.180.1.3:80",
        True,
    ),
    Flow(
        "pod to LB with iTP:Local",
        "10.0.0.2",
        "9.10.11.12",
        80,
        "10.180.0.3:80, 10.180.1.3:80",
        True,
    ),
    Flow(
        "node to ClusterIP with iTP:Local", TEST_NODE_IP, "172.30.0.43", 80, "10.180.0.3:80", True
    ),
    Flow(
        "node to NodePort with iTP:Local",
        TEST_NODE_IP,
        TEST_NODE_IP,
        3003,
        "10.180.0.3:80, 10.180.1.3:80",
        True,
    ),
    Flow(
        "node to LB with iTP:Local",
        TEST_NODE_IP,
        "9.10.11.12",
        80,
        "10.180.0.3:80, 10.180.1.3:80",
        True,
    ),
    Flow(
        "external to ClusterIP with iTP:Local",
        TEST_EXTERNAL_CLIENT,
        "172.30.0.43",
        80,
        "10.180.0.3:80",
        True,
    ),
    Flow(
        "external to NodePort with iTP:Local",
        TEST_EXTERNAL_CLIENT,
        TEST_NODE_IP,
        3003,
        "10.180.0.3:80, 10.180.1.3:80",
        True,
    ),
    Flow(
        "external to LB with iTP:Local",
        TEST_EXTERNAL_CLIENT,
        "9.10.11.12",
        80,
        "10.180.0.3:80, 10.180.1.3:80",
        True,
    ),
]

# testCases' overrides: (masquerade_all, local detector) -> {flow name: (output, masq)}
_MASQ_OVERRIDES: dict[str, tuple[bool, bool, dict[str, tuple[str | None, bool | None]]]] = {
    "base": (False, True, {}),
    "no LocalTrafficDetector": (
        False,
        False,
        {
            # With no LocalTrafficDetector, all traffic to a ClusterIP is assumed to be from a
            # pod, and thus to not require masquerading.
            "node to ClusterIP": (None, False),
            "node to ClusterIP with eTP:Local": (None, False),
            "node to ClusterIP with iTP:Local": (None, False),
            "external to ClusterIP": (None, False),
            "external to ClusterIP with eTP:Local": (None, False),
            "external to ClusterIP with iTP:Local": (None, False),
            # And there's no eTP:Local short-circuit for pod traffic, so pods get only the
            # local endpoints.
            "pod to NodePort with eTP:Local": ("10.180.0.2:80", None),
            "pod to LB with eTP:Local": ("10.180.0.2:80", None),
        },
    ),
    "masqueradeAll": (
        True,
        True,
        {
            # All "to ClusterIP" traffic gets masqueraded when using --masquerade-all.
            "pod to ClusterIP": (None, True),
            "pod to ClusterIP with eTP:Local": (None, True),
            "pod to ClusterIP with iTP:Local": (None, True),
        },
    ),
    "masqueradeAll, no LocalTrafficDetector": (
        True,
        False,
        {
            "pod to ClusterIP": (None, True),
            "pod to ClusterIP with eTP:Local": (None, True),
            "pod to ClusterIP with iTP:Local": (None, True),
            "pod to NodePort with eTP:Local": ("10.180.0.2:80", None),
            "pod to LB with eTP:Local": ("10.180.0.2:80", None),
        },
    ),
}


@layouts
@pytest.mark.parametrize("case", list(_MASQ_OVERRIDES))
def test_internal_external_masquerade(layout: str, case: str) -> None:
    """TestInternalExternalMasquerade, all four variants."""
    masquerade_all, detector, overrides = _MASQ_OVERRIDES[case]
    flows = []
    for f in _MASQ_FLOWS:
        output, masq = overrides.get(f.name, (None, None))
        flows.append(
            replace(
                f,
                output=f.output if output is None else output,
                masq=f.masq if masq is None else masq,
            )
        )
    assert all(any(f.name == n for f in _MASQ_FLOWS) for n in overrides)
    opts = replace(
        FAKE, masquerade_all=masquerade_all, cluster_cidr=FAKE.cluster_cidr if detector else ""
    )
    run_packet_flow_tests(_masq_services(), flows, layout, opts)


@layouts
@pytest.mark.parametrize(
    ("policy_local", "nodes", "output"),
    [
        (False, (TEST_NODE_NAME, "node1", "node2"), "10.0.1.1:80, 10.0.1.2:80, 10.0.1.3:80"),
        (True, (TEST_NODE_NAME, "node1", "node2"), "10.0.1.1:80"),
        (True, (TEST_NODE_NAME, TEST_NODE_NAME, "node2"), "10.0.1.1:80, 10.0.1.2:80"),
        (True, ("node0", "node1", "node2"), "DROP"),
    ],
    ids=["cluster", "local, one local endpoint", "local, two local", "local, none local"],
)
def test_internal_traffic_policy(
    layout: str, policy_local: bool, nodes: tuple[str, ...], output: str
) -> None:
    """TestInternalTrafficPolicy, and its "endpoints deleted" follow-up (REJECT)."""
    eps = [ep(f"10.0.1.{i + 1}", node=n) for i, n in enumerate(nodes)]
    s = svc("ns1", "svc1", "172.30.1.1", *eps, port_name="", internal_policy_local=policy_local)
    flow = Flow("pod to ClusterIP", "10.0.0.2", "172.30.1.1", 80, output)
    run_packet_flow_tests([s], [flow], layout)
    gone = replace(s, endpoints=())
    run_packet_flow_tests([gone], [replace(flow, output="REJECT")], layout)


def _terminating_service(local: bool, *endpoints: EndpointInfo) -> ProxiedService:
    return svc(
        "ns1",
        "svc1",
        "172.30.1.1",
        *endpoints,
        port_name="",
        load_balancer_vips=("1.2.3.4",),
        external_policy_local=local,
        health_check_node_port=30000,
    )


_TERMINATING = {
    "ready endpoints exist": (
        ep("10.0.1.1", node=TEST_NODE_NAME),
        ep("10.0.1.2", node=TEST_NODE_NAME),
        ep("10.0.1.3", node=TEST_NODE_NAME, ready=False, terminating=True),
        ep("10.0.1.4", node=TEST_NODE_NAME, ready=False, serving=False, terminating=True),
        ep("10.0.1.5", node="node-1"),
    ),
    "only terminating endpoints exist": (
        ep("10.0.1.2", node=TEST_NODE_NAME, ready=False, terminating=True),
        ep("10.0.1.3", node=TEST_NODE_NAME, ready=False, terminating=True),
        ep("10.0.1.4", node=TEST_NODE_NAME, ready=False, serving=False, terminating=True),
        ep("10.0.1.5", node="node-1"),
    ),
    "terminating endpoints on remote node": (
        ep("10.0.1.5", node="node-1", ready=False, terminating=True),
    ),
    "no usable endpoints on any node": (
        ep("10.0.1.5", node=TEST_NODE_NAME, ready=False, serving=False, terminating=True),
        ep("10.0.1.5", node="node-1", ready=False, serving=False, terminating=True),
    ),
}


@layouts
@pytest.mark.parametrize(
    ("case", "cluster_ip_out", "lb_out"),
    [
        (
            "ready endpoints exist",
            "10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80",
            "10.0.1.1:80, 10.0.1.2:80",
        ),
        ("only terminating endpoints exist", "10.0.1.5:80", "10.0.1.2:80, 10.0.1.3:80"),
        ("terminating endpoints on remote node", "10.0.1.5:80", "DROP"),
        ("no usable endpoints on any node", "REJECT", "REJECT"),
    ],
)
def test_terminating_endpoints_traffic_policy_local(
    layout: str, case: str, cluster_ip_out: str, lb_out: str
) -> None:
    """TestTerminatingEndpointsTrafficPolicyLocal."""
    run_packet_flow_tests(
        [_terminating_service(True, *_TERMINATING[case])],
        [
            Flow("pod to clusterIP", "10.0.0.2", "172.30.1.1", 80, cluster_ip_out),
            Flow("external to LB", TEST_EXTERNAL_CLIENT, "1.2.3.4", 80, lb_out),
        ],
        layout,
    )


@layouts
@pytest.mark.parametrize(
    ("case", "out"),
    [
        ("ready endpoints exist", "10.0.1.1:80, 10.0.1.2:80, 10.0.1.5:80"),
        ("only terminating endpoints exist", "10.0.1.2:80, 10.0.1.3:80, 10.0.1.5:80"),
        ("terminating endpoints on remote node", "10.0.1.5:80"),
        ("no usable endpoints on any node", "REJECT"),
    ],
)
def test_terminating_endpoints_traffic_policy_cluster(layout: str, case: str, out: str) -> None:
    """TestTerminatingEndpointsTrafficPolicyCluster (its endpoints: upstream's, with the
    "only terminating" case's remote endpoint serving-terminating as upstream has it)."""
    eps = _TERMINATING[case]
    if case == "ready endpoints exist":
        eps = (
            ep("10.0.1.1", node=TEST_NODE_NAME),
            ep("10.0.1.2", node=TEST_NODE_NAME),
            ep("10.0.1.3", node="another-node", ready=False, terminating=True),
            ep("10.0.1.4", node="another-node", ready=False, serving=False, terminating=True),
            ep("10.0.1.5", node="another-node"),
        )
    elif case == "only terminating endpoints exist":
        eps = (
            ep("10.0.1.2", node=TEST_NODE_NAME, ready=False, terminating=True),
            ep("10.0.1.3", node=TEST_NODE_NAME, ready=False, terminating=True),
            ep("10.0.1.4", node="another-node", ready=False, serving=False, terminating=True),
            ep("10.0.1.5", node="another-node", ready=False, terminating=True),
        )
    masq = out != "REJECT"
    run_packet_flow_tests(
        [_terminating_service(False, *eps)],
        [
            Flow("pod to clusterIP", "10.0.0.2", "172.30.1.1", 80, out),
            Flow("external to LB", TEST_EXTERNAL_CLIENT, "1.2.3.4", 80, out, masq),
        ],
        layout,
    )


# ---------------------------------------------------------------------------------------------
# The fast layout: same names, same elements, same verdicts for every packet


def _random_services(rng: random.Random, count: int) -> list[ProxiedService]:
    out = []
    for i in range(count):
        eps = []
        for j in range(rng.choice([0, 1, 2, 3, 5])):
            eps.append(
                ep(
                    f"10.{100 + i}.0.{j + 1}",
                    8080,
                    node=rng.choice([TEST_NODE_NAME, "node-b", "node-c"]),
                    ready=rng.random() > 0.2,
                    serving=rng.random() > 0.1,
                    terminating=rng.random() > 0.7,
                )
            )
        lb = (f"1.2.{i}.4",) if rng.random() > 0.5 else ()
        out.append(
            svc(
                "ns",
                f"svc{i}",
                f"172.30.1.{i + 1}",
                *eps,
                node_port=30000 + i if rng.random() > 0.4 else 0,
                external_ips=(f"192.168.99.{100 + i}",) if rng.random() > 0.6 else (),
                load_balancer_vips=lb,
                load_balancer_source_ranges=rng.choice(
                    [(), ("203.0.113.0/25",), ("192.168.0.0/24", "203.0.113.0/25")]
                )
                if lb
                else (),
                session_affinity_client_ip=rng.random() > 0.7,
                external_policy_local=rng.random() > 0.5,
                internal_policy_local=rng.random() > 0.7,
            )
        )
    return out


def _sources() -> list[str]:
    return ["10.0.0.2", TEST_NODE_IP, TEST_EXTERNAL_CLIENT, TEST_EXTERNAL_CLIENT_BLOCKED]


@pytest.mark.parametrize("seed", range(6))
def test_fast_layout_gives_the_same_verdicts(seed: int) -> None:
    """For random Services (every policy, affinity, source ranges, terminating and missing
    endpoints), both layouts give every packet the same endpoints/verdict and masquerading, and
    have the same chains, sets and map elements; only the rules choosing endpoints and the
    firewall rules differ, and only as the module docstring says."""
    rng = random.Random(seed)
    services = _random_services(rng, 12)
    fakes = {}
    for layout in LAYOUTS:
        fakes[layout] = FakeNft()
        sync(fakes[layout], services, layout=layout, first=True)
    a, b = fakes["kube-proxy"], fakes["fast"]
    assert set(a.chains) == set(b.chains)
    assert {k: v.elements for k, v in a.containers.items()} == {
        k: v.elements for k, v in b.containers.items()
    }
    differing = {c for c in a.chains if a.chains[c].rules != b.chains[c].rules}
    assert all(c.startswith(("service-", "local-", "firewall-")) for c in differing)
    for c in differing:
        assert not any(
            "vmap {" in r or "{ " in r.replace("{ ip saddr }", "") for r in b.chains[c].rules
        )

    checked = 0
    for s in services:
        info = s.info
        dests = [(info.cluster_ip, info.port), (info.cluster_ip, info.port + 1)]
        dests += [(ip, info.port) for ip in (*info.external_ips, *info.load_balancer_vips)]
        if info.node_port:
            dests += [(TEST_NODE_IP, info.node_port), (TEST_NODE_IP_ALT, info.node_port)]
        for src in [*_sources(), s.endpoints[0].ip if s.endpoints else "10.0.0.3"]:
            for dst, port in dests:
                for proto in ("tcp", "udp"):
                    ra = Tracer(a, TEST_NODE_IPS).trace(src, proto, dst, port)
                    rb = Tracer(b, TEST_NODE_IPS).trace(src, proto, dst, port)
                    assert ra[1:] == rb[1:], (src, proto, dst, port, ra, rb)
                    checked += 1
    assert checked > 100


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("seed", range(4))
def test_partial_sync_reaches_the_full_sync_state(layout: str, seed: int) -> None:
    """Ruleset.delta (upstream's partial sync) from one random state to another leaves the same
    table as a full sync of the new state, and is empty when nothing changed."""
    rng = random.Random(seed)
    before = _random_services(rng, 10)
    after = [s for s in _random_services(rng, 10) if rng.random() > 0.3] + before[:3]
    after = list({s.info.spn: s for s in after}.values())
    old, new = build(before, FAKE, layout), build(after, FAKE, layout)
    partial, full = FakeNft(), FakeNft()
    partial.run(old.transaction())
    partial.run(new.delta(old))
    full.run(new.transaction())
    assert_nftables_equal(full.dump(), partial.dump())
    assert new.delta(new) == ""
    with pytest.raises(ValueError, match="full sync"):
        build(after, replace(FAKE, masquerade_all=True), layout).delta(old)


def test_fast_cascade_is_uniform() -> None:
    """P(endpoint i) = 1/N for the cascade ``numgen random mod (N-i) == 0 goto e_i``."""
    from fractions import Fraction

    for n in range(1, 9):
        left = Fraction(1)
        for i in range(n):
            p = left * (Fraction(1, n - i) if i < n - 1 else 1)
            assert p == Fraction(1, n)
            left -= p
        assert left == 0
    ruleset = build(
        [svc("ns", "s", "172.30.0.9", *(ep(f"10.1.0.{i}") for i in range(1, 4)))], FAKE, "fast"
    )
    chains = ruleset.services[0].chains
    (service_chain,) = (c for c in chains if c.startswith("service-"))
    choice = chains[service_chain][1:]  # after the masquerade rule
    assert [r.split("goto ")[0] for r in choice] == [
        "numgen random mod 3 == 0 ",
        "numgen random mod 2 == 0 ",
        "",
    ]
    assert [r.split("goto ")[1] for r in choice] == [c for c in chains if c.startswith("endpoint-")]


# ---------------------------------------------------------------------------------------------
# Reading the kernel back: existing objects, one Service's view

LISTING = """table ip kube-proxy {
\tcomment "rules for kube-proxy"
\tset cluster-ips {
\t\ttype ipv4_addr
\t\tcomment "Active ClusterIPs"
\t\telements = { 172.30.0.41, 172.30.0.45,
\t\t\t     172.30.0.46 }
\t}

\tset affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 {
\t\ttype ipv4_addr
\t\tsize 65535
\t\tflags dynamic,timeout
\t\ttimeout 3h
\t}

\tmap service-ips {
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t\tcomment "ClusterIP, ExternalIP and LoadBalancer IP traffic"
\t\telements = { 172.30.0.41 . tcp . 80 : goto service-ULMVA6XW-ns1/svc1/tcp/p80,
\t\t\t     172.30.0.45 . tcp . 80 : goto service-HVFWP5L3-ns5/svc5/tcp/p80,
\t\t\t     5.6.7.8 . tcp . 80 : goto external-HVFWP5L3-ns5/svc5/tcp/p80 }
\t}

\tmap no-endpoint-services {
\t\ttype ipv4_addr . inet_proto . inet_service : verdict
\t\tcomment "vmap to drop or reject packets to services with no endpoints"
\t\telements = { 172.30.0.46 . tcp . 80 comment "ns6/svc6:p80" : goto reject-chain }
\t}

\tchain services {
\t\tip daddr . meta l4proto . th dport vmap @service-ips
\t}

\tchain service-HVFWP5L3-ns5/svc5/tcp/p80 {
\t\tip daddr 172.30.0.45 ip saddr != 10.0.0.0/8 jump mark-for-masquerade
\t\tnumgen random mod 1 vmap { 0 : goto endpoint-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 }
\t}

\tchain service-ULMVA6XW-ns1/svc1/tcp/p80 {
\t\tnumgen random mod 1 vmap { 0 : goto endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80 }
\t}
}
"""


def test_parse_existing() -> None:
    other = "table ip other {\n\tchain service-x/y {\n\t}\n}\n"
    got = parse_existing(LISTING + other, LISTING)
    assert got.chains == {
        "services",
        "service-HVFWP5L3-ns5/svc5/tcp/p80",
        "service-ULMVA6XW-ns1/svc1/tcp/p80",
    }
    assert "affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80" in got.sets
    assert "service-ips" in got.sets


def test_filter_listing_keeps_one_service() -> None:
    got = filter_listing(LISTING, "ns5", "svc5", ["172.30.0.45"])
    assert "chain service-HVFWP5L3-ns5/svc5/tcp/p80 {" in got
    assert "set affinity-GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80 {" in got
    assert "5.6.7.8 . tcp . 80 : goto external-HVFWP5L3-ns5/svc5/tcp/p80" in got
    assert "172.30.0.45 . tcp . 80 : goto service-HVFWP5L3-ns5/svc5/tcp/p80" in got
    assert "elements = { 172.30.0.45 }" in got
    assert "ns1/svc1" not in got and "ns6" not in got and "chain services" not in got
    none = filter_listing(LISTING, "ns6", "svc6", ["172.30.0.46"])
    assert 'comment "ns6/svc6:p80" : goto reject-chain' in none
    assert got.startswith("table ip kube-proxy {") and got.rstrip().endswith("}")
