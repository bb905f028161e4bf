"""Privileged: a chain of partial syncs leaves a real node as one full sync of the final state.

For each mode, node-1 of a randomly changing cluster (tests/unit/churn.py) is synced into a
namespace of its own after every change, partially as a lab does; a second namespace gets one
full sync of the state from a fresh proxier; what the kernel holds in both is read back with the
mode's own tools and must be the same. The unit tests (tests/unit/test_partial_sync.py) check
every step against fakes; these check that the kernel takes the partial transactions (``-D`` and
``-I N`` in ``iptables-restore``, ``nft -f`` deltas, ``ipset restore`` and IPVS netlink deltas)
and ends where a full sync does.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from netlab.kernel import netns, process, rules, threads
from netlab.proxy.base import Proxier
from netlab.proxy.iptables.proxier import IptablesProxier
from netlab.proxy.ipvs.proxier import IpvsProxier
from netlab.proxy.nftables.proxier import NftablesProxier
from netlab.proxy.userspace.proxier import UserspaceProxier
from tests.lab.host import HostSnapshot
from tests.unit.churn import Churn, base_state

STEPS = 12
CASES = [
    ("iptables", "nft"),
    ("iptables", "legacy"),
    ("nftables", "kube-proxy"),
    ("nftables", "fast"),
    ("userspace", "nft"),
    ("userspace", "legacy"),
]


@pytest.fixture
def second_ns(scratch_ns: str) -> Iterator[str]:
    name = f"{scratch_ns[:40]}-full"
    assert not netns.exists(name)
    try:
        threads.call(netns.create_and_enter, name)
        yield name
    finally:
        netns.remove(name)


def make(mode: str, variant: str, state: Any) -> Proxier:
    if mode == "iptables":
        return IptablesProxier(state, variant)
    if mode == "nftables":
        return NftablesProxier(state, variant)
    if mode == "userspace":
        return UserspaceProxier(state, variant)
    return IpvsProxier(state, variant)


def iptables_tables(name: str, backend: str) -> dict[str, dict[str, list[str]]]:
    """``iptables-save`` as table -> chain -> rules (in order); chain order and counters aside."""
    tables: dict[str, dict[str, list[str]]] = {}
    table: dict[str, list[str]] = {}
    for line in rules.iptables_save(name, backend).splitlines():
        if line.startswith("*"):
            table = tables.setdefault(line[1:], {})
        elif line.startswith(":"):
            table.setdefault(line[1:].split(" ", 1)[0], [])
        elif line.startswith("-A "):
            _, chain, rule = line.split(" ", 2)
            table.setdefault(chain, []).append(rule)
    return tables


def nft_table(name: str) -> tuple[list[str], dict[str, list[str]]]:
    """``nft -j list table ip kube-proxy`` as sorted objects (handles aside, set elements
    sorted) and each chain's rules in order."""
    data = json.loads(process.run(name, ["nft", "-j", "list", "table", "ip", "kube-proxy"]).stdout)
    objects: list[str] = []
    chains: dict[str, list[str]] = {}
    for item in data["nftables"]:
        kind, body = next(iter(item.items()))
        if not isinstance(body, dict):
            continue
        body = {k: v for k, v in body.items() if k != "handle"}
        if kind == "rule":
            chains.setdefault(body["chain"], []).append(json.dumps(body, sort_keys=True))
            continue
        if "elem" in body:
            body["elem"] = sorted(json.dumps(e, sort_keys=True) for e in body["elem"])
        objects.append(json.dumps({kind: body}, sort_keys=True))
    return sorted(objects), chains


def ipvs_node(name: str, backend: str) -> tuple[object, ...]:
    """The IPVS table (``ipvsadm -Sn``), the ipsets, kube-ipvs0's addresses, the rules."""
    table = sorted(process.run(name, ["ipvsadm", "-Sn"]).stdout.splitlines())
    # A set's create line carries a random hash seed (initval): name and type only.
    sets = sorted(
        " ".join(ln.split()[:3]) if ln.startswith("create ") else ln
        for ln in process.run(name, ["ipset", "save"]).stdout.splitlines()
    )
    addrs = process.run(name, ["ip", "-4", "-o", "addr", "show", "dev", "kube-ipvs0"]).stdout
    return table, sets, sorted(re.findall(r"inet (\S+)", addrs)), iptables_tables(name, backend)


def held(mode: str, variant: str, name: str) -> object:
    if mode == "nftables":
        return nft_table(name)
    if mode == "ipvs":
        return ipvs_node(name, "nft")
    return iptables_tables(name, variant)


def churn_and_compare(
    mode: str, variant: str, partial_ns: str, full_ns: str, seed: int, steps: int = STEPS
) -> None:
    state = base_state(f"pc{os.getpid() % 1000}")
    node = replace(state.nodes[0], netns=partial_ns)
    state.nodes[0] = node
    churn = Churn(state, seed)
    for _ in range(6):
        churn.add()
    proxier = make(mode, variant, state)
    assert proxier.sync(node, first=True).note.endswith("full")
    written = 0
    for step in range(steps):
        what = churn.step()
        result = proxier.sync(node, first=False)
        assert result.note.endswith("partial"), (step, what, result.note)
        written += result.lines
    assert written > 0
    make(mode, variant, state).sync(replace(node, netns=full_ns), first=True)
    assert held(mode, variant, partial_ns) == held(mode, variant, full_ns)


@pytest.mark.parametrize(("mode", "variant"), CASES)
def test_partial_syncs_leave_what_a_full_sync_leaves(
    clean_host: HostSnapshot, scratch_ns: str, second_ns: str, mode: str, variant: str
) -> None:
    churn_and_compare(mode, variant, scratch_ns, second_ns, seed=CASES.index((mode, variant)))


@pytest.mark.ipvs
def test_ipvs_partial_syncs_leave_what_a_full_sync_leaves(
    clean_host: HostSnapshot, scratch_ns: str, second_ns: str
) -> None:
    # Fewer steps: the VM's CPU is emulated, about 20 times slower.
    churn_and_compare("ipvs", "nft", scratch_ns, second_ns, seed=7, steps=8)
