"""iptables mode, explained from the renderer's own output (:class:`RenderedIptables`): the
Service's rules in the order kube-proxy writes them, the jumps that lead to them, and the
shared rules they rely on."""

from __future__ import annotations

from collections.abc import Iterable

from netlab.explain.rules import xtables
from netlab.explain.rules.lang import TITLES, say
from netlab.explain.rules.model import Explanation, Item, Section
from netlab.proxy import naming
from netlab.proxy.iptables.restore import RenderedIptables

TOP_NAT = ("KUBE-SERVICES", "KUBE-NODEPORTS")
SHARED_NAT = ("KUBE-MARK-MASQ", "KUBE-POSTROUTING")
SHARED_FILTER = ("KUBE-FORWARD", "KUBE-FIREWALL")


def names_service(comment: str, key: str) -> bool:
    """Whether a kube-proxy comment is about Service ``key`` (namespace/name)."""
    return comment == key or comment.startswith((f"{key}:", f"{key} "))


def service_rules(lines: Iterable[str], key: str) -> list[xtables.Rule]:
    """The rules of one table that belong to Service ``key``: rules naming it in the top-level
    chains, and every rule of the per-Service chains reached from them."""
    rules = [xtables.parse(ln) for ln in lines if ln.startswith("-A ")]
    chains: list[str] = []
    for r in rules:
        if names_service(r.comment, key) and naming.is_service_chain(r.target):
            chains.append(r.target)
    seen: set[str] = set()
    while chains:
        c = chains.pop()
        if c in seen:
            continue
        seen.add(c)
        chains += [r.target for r in rules if r.chain == c and naming.is_service_chain(r.target)]
    return [
        r
        for r in rules
        if r.chain in seen
        or (not naming.is_service_chain(r.chain) and names_service(r.comment, key))
    ]


def _items(rules: list[xtables.Rule], table: str, lang: str) -> list[Item]:
    out = []
    for r in rules:
        n = sum(
            1
            for o in rules
            if o.chain == r.chain and o.target.startswith("KUBE-SEP-") and not o.has("--rcheck")
        )
        out.append(Item(f"{table} {r.chain}", r.line, xtables.explain(r, lang, table, n)))
    return out


def explain(
    rendered: RenderedIptables,
    namespace: str,
    name: str,
    node: str,
    lang: str,
    mode: str = "iptables",
) -> Explanation:
    key = f"{namespace}/{name}"
    exp = Explanation(
        key, node, mode, lang, say(lang, TITLES["title"], service=key, node=node, mode=mode)
    )
    entry = Section(say(lang, TITLES["entry"]))
    for table in ("nat", "filter"):
        for line in rendered.bootstrap.get(table, []):
            if line.startswith("-I "):
                r = xtables.parse(line)
                entry.items.append(
                    Item(f"{table} {r.chain}", line, xtables.explain(r, lang, table))
                )
    mine = Section(say(lang, TITLES["service"]))
    nat = service_rules(rendered.nat_rules, key)
    top = [r for r in nat if r.chain in TOP_NAT]
    rest = [r for r in nat if r.chain not in TOP_NAT]
    mine.items += _items(top + rest, "nat", lang)
    mine.items += _items(service_rules(rendered.filter_rules, key), "filter", lang)
    shared = Section(say(lang, TITLES["shared"]))
    for table, lines, chains in (
        ("nat", rendered.nat_rules, SHARED_NAT),
        ("filter", rendered.filter_rules, SHARED_FILTER),
    ):
        for line in lines:
            r = xtables.parse(line)
            last = table == "nat" and r.chain == "KUBE-SERVICES" and r.target == "KUBE-NODEPORTS"
            if r.chain in chains or last:
                shared.items.append(
                    Item(f"{table} {r.chain}", line, xtables.explain(r, lang, table))
                )
    exp.sections = [entry, mine, shared]
    return exp
