"""The kube-proxy nftables table's names, and knftables' text for the objects put into it.

kube-proxy builds its transactions with kubernetes-sigs/knftables (v0.0.18): ``tx.Add(&Rule{Chain,
Rule: Concat(...), Comment})``, ``tx.Flush(&Chain{...})`` and so on, which knftables writes as
``nft -f`` lines (``objects.go``'s writeOperation, ``util.go``'s Concat). netlab writes the same
lines through :class:`Transaction`, so the renderers read like kube-proxy's calls. The names are
kube-proxy's constants in kubernetes/kubernetes ``pkg/proxy/nftables/proxier.go`` (v1.33).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

FAMILY = "ip"
TABLE = "kube-proxy"  # kubeProxyTable

# Base chains ("${type}-${hook}") and the regular chains and sets/maps the proxier owns.
FILTER_PREROUTING_PRE_DNAT = "filter-prerouting-pre-dnat"
FILTER_OUTPUT_PRE_DNAT = "filter-output-pre-dnat"
FILTER_INPUT = "filter-input"
FILTER_FORWARD = "filter-forward"
FILTER_OUTPUT = "filter-output"
NAT_PREROUTING = "nat-prerouting"
NAT_OUTPUT = "nat-output"
NAT_POSTROUTING = "nat-postrouting"

SERVICES = "services"
SERVICE_IPS = "service-ips"
SERVICE_NODEPORTS = "service-nodeports"
NODEPORT_IPS = "nodeport-ips"
CLUSTER_IPS = "cluster-ips"
SERVICE_ENDPOINTS_CHECK = "service-endpoints-check"
NODEPORT_ENDPOINTS_CHECK = "nodeport-endpoints-check"
NO_ENDPOINT_SERVICES = "no-endpoint-services"
NO_ENDPOINT_NODEPORTS = "no-endpoint-nodeports"
REJECT_CHAIN = "reject-chain"
CLUSTER_IPS_CHECK = "cluster-ips-check"
FIREWALL_IPS = "firewall-ips"
FIREWALL_CHECK = "firewall-check"
MARK_MASQ = "mark-for-masquerade"
MASQUERADING = "masquerading"

ADDR_PROTO_PORT = "ipv4_addr . inet_proto . inet_service"
PROTO_PORT = "inet_proto . inet_service"

# Per-Service-port prefixes (each at most 16 characters, chainNamePrefixLengthMax).
SERVICE_PREFIX = "service-"
LOCAL_PREFIX = "local-"
EXTERNAL_PREFIX = "external-"
FIREWALL_PREFIX = "firewall-"
ENDPOINT_PREFIX = "endpoint-"
AFFINITY_PREFIX = "affinity-"


Words = str | int | Sequence[str]


def concat(*args: Words) -> str:
    """knftables.Concat: the words (lists spliced, numbers in decimal) joined by single spaces,
    with nothing between "@" and the set name after it. Empty words are dropped."""
    text, glue = "", ""
    for arg in args:
        for word in [arg] if isinstance(arg, str | int) else arg:
            if word != "":
                text += glue + str(word)
                glue = "" if word == "@" else " "
    return text


def _props(*props: str | None) -> str:
    """An object's properties as knftables writes them: `` { P ; ... ; }``, or nothing."""
    given = [p for p in props if p]
    return f" {{ {' ; '.join(given)} ; }}" if given else ""


def _comment(text: str | None) -> str | None:
    return f'comment "{text}"' if text else None


class Transaction:
    """A knftables Transaction on table ``ip kube-proxy``, appended as ``nft -f`` lines."""

    def __init__(self, out: list[str]) -> None:
        self.out = out

    def _write(self, verb: str, kind: str, name: str, tail: str = "") -> None:
        self.out.append(f"{verb} {kind} {FAMILY} {TABLE} {name}{tail}")

    def add_table(self, comment: str) -> None:
        self.out.append(f"add table {FAMILY} {TABLE}{_props(_comment(comment))}")

    def add_chain(
        self, name: str, base: tuple[str, str, int] | None = None, comment: str | None = None
    ) -> None:
        """A regular chain, or a base chain with ``base`` = (type, hook, priority)."""
        hook = "type {} hook {} priority {}".format(*base) if base else None
        self._write("add", "chain", name, _props(hook, _comment(comment)))

    def add_set(
        self,
        name: str,
        type: str,
        *,
        flags: str | None = None,
        timeout: int | None = None,
        comment: str | None = None,
        kind: str = "set",
    ) -> None:
        expires = None if timeout is None else f"timeout {timeout}s"
        flagged = f"flags {flags}" if flags else None
        self._write("add", kind, name, _props(f"type {type}", flagged, expires, _comment(comment)))

    def add_map(self, name: str, type: str, *, comment: str) -> None:
        self.add_set(name, type, comment=comment, kind="map")

    def add_rule(self, chain: str, *words: Words, comment: str | None = None) -> None:
        self._write("add", "rule", chain, " " + rule_text(*words, comment=comment))

    def flush(self, kind: str, name: str) -> None:
        self._write("flush", kind, name)

    def delete(self, kind: str, name: str) -> None:
        self._write("delete", kind, name)

    def element(self, verb: str, e: Element) -> None:
        self._write(verb, "element", e.container, " " + e.body())


def rule_text(*words: Words, comment: str | None = None) -> str:
    """A knftables.Rule's text: its Concat'ed words, then ``comment "C"`` if it has one."""
    return concat(*words) + (f' comment "{comment}"' if comment else "")


@dataclass(frozen=True)
class Element:
    container: str
    key: tuple[str, ...]
    value: str = ""
    comment: str = ""

    def body(self) -> str:
        """``{ KEY [comment "C"] [: VALUE] }`` as knftables writes an element."""
        text = " . ".join(self.key)
        if self.comment:
            text += f' comment "{self.comment}"'
        if self.value:
            text += f" : {self.value}"
        return "{ " + text + " }"
