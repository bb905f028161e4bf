"""Reading kube-proxy's nftables table back from the kernel: the objects a sync must delete, and
one Service's part of ``nft list table`` (pure text functions, as iptables mode's
``chains_in_save``/``filter_save``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from netlab.proxy.nftables.objects import (
    AFFINITY_PREFIX,
    ENDPOINT_PREFIX,
    EXTERNAL_PREFIX,
    FAMILY,
    FIREWALL_PREFIX,
    LOCAL_PREFIX,
    SERVICE_PREFIX,
    TABLE,
)


@dataclass(frozen=True)
class Existing:
    """What ``nft list chains`` / ``nft list sets`` showed in the node's table before a sync."""

    chains: frozenset[str] = frozenset()
    sets: frozenset[str] = frozenset()


_TABLE_HEADER = re.compile(r"^table (\S+) (\S+) \{$")
_OBJECT_HEADER = re.compile(r"^\t(chain|set|map) (\S+) \{$")


def parse_existing(chains_text: str, sets_text: str = "") -> Existing:
    """The chains and sets of ``ip kube-proxy`` in ``nft -t list chains`` / ``list sets`` output
    (what knftables' ``List(ctx, "chains")`` / ``List(ctx, "sets")`` return upstream)."""

    def names(text: str, kinds: tuple[str, ...]) -> frozenset[str]:
        found: set[str] = set()
        ours = False
        for line in text.splitlines():
            head = _TABLE_HEADER.match(line)
            if head:
                ours = (head.group(1), head.group(2)) == (FAMILY, TABLE)
                continue
            obj = _OBJECT_HEADER.match(line)
            if ours and obj and obj.group(1) in kinds:
                found.add(obj.group(2))
        return frozenset(found)

    return Existing(names(chains_text, ("chain",)), names(sets_text, ("set", "map")))


def service_object_pattern(namespace: str, name: str) -> re.Pattern[str]:
    """Names of one Service's chains and affinity sets: ``<prefix>HASH8-ns/name/...``."""
    prefixes = "|".join(
        re.escape(p)
        for p in (
            SERVICE_PREFIX,
            LOCAL_PREFIX,
            EXTERNAL_PREFIX,
            FIREWALL_PREFIX,
            ENDPOINT_PREFIX,
            AFFINITY_PREFIX,
        )
    )
    return re.compile(rf"^(?:{prefixes})[A-Z2-7]{{8}}-{re.escape(namespace)}/{re.escape(name)}/")


def _split_elements(body: str) -> list[str]:
    """Split an ``elements = { ... }`` body on the commas between elements (not in quotes)."""
    items: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in body:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            items.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        items.append("".join(cur).strip())
    return items


def filter_listing(text: str, namespace: str, name: str, cluster_ips: Iterable[str] = ()) -> str:
    """Keep from ``nft list table ip kube-proxy`` only one Service: its chains and affinity sets,
    and the set/map elements that mention it (by chain, by comment, or its ClusterIP)."""
    own = service_object_pattern(namespace, name)
    chain_ref = re.compile(
        r"(?:goto|jump) ((?:service|local|external|firewall|endpoint)-\S+?)(?:,|\s|$)"
    )
    comments = (f'comment "{namespace}/{name}"', f'comment "{namespace}/{name}:')
    ips = set(cluster_ips)
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        obj = _OBJECT_HEADER.match(line)
        if not obj:
            if line.startswith("table ") or line == "}":
                out.append(line)
            i += 1
            continue
        end = i + 1
        while end < len(lines) and lines[end] != "\t}":
            end += 1
        block = lines[i : end + 1]
        i = end + 1
        if own.match(obj.group(2)):
            out.extend(block)
            continue
        if obj.group(1) == "chain":
            continue
        # A named set or map: keep the elements that belong to this Service.
        joined = "\n".join(block)
        start = joined.find("elements = {")
        if start < 0:
            continue
        stop = joined.find("}", start)
        kept = []
        for item in _split_elements(joined[start + len("elements = {") : stop]):
            ref = chain_ref.search(item)
            if (ref and own.match(ref.group(1))) or any(c in item for c in comments) or item in ips:
                kept.append(item)
        if not kept:
            continue
        head = [ln for ln in block[1:] if ln.startswith("\t\t") and "elements = {" not in ln]
        head = [
            ln for ln in head if ln.strip().startswith(("type ", "flags ", "comment ", "timeout "))
        ]
        out.append(block[0])
        out.extend(head)
        out.append("\t\telements = { " + ",\n\t\t\t     ".join(kept) + " }")
        out.append("\t}")
    return "\n".join(out) + "\n"
