"""Privileged: netlab's IPVS mode applied to a real namespace, and read back with the real tools.

The tests marked ``ipvs`` need IPVS and dummy devices: on this project's own machines they are
deselected and run inside the throwaway VM (tests/conftest.py, tests/lab/test_vm.py). Each makes a
fresh node-like namespace with netlab's kernel layer, syncs a small rendered ruleset into it with
:func:`netlab.proxy.ipvs.proxier.apply_ruleset` (exactly what ``IpvsProxier.sync`` runs), syncs
again with one Service removed, and checks ``ipvsadm -Ln``, ``ipset list`` and
``ip addr show kube-ipvs0`` inside the namespace after each sync.

One test is not marked ``ipvs`` and runs on any privileged host: the ipset and iptables halves
of a sync (everything but kube-ipvs0 and the IPVS table), so that the kernel's acceptance of the
rendered text is checked even where IPVS is missing.

The host's own namespace is never touched: every command runs inside the test's namespace, and
``clean_host`` checks that the host is exactly as it was.
"""

from __future__ import annotations

import re

import pytest

from netlab.kernel import process, rules
from netlab.proxy.ipvs.proxier import APPLY_PATHS, apply_ruleset
from netlab.proxy.ipvs.render import (
    IpvsOptions,
    IpvsRuleSet,
    ipvsadm_restore_text,
    parse_ipset_save,
    render,
)
from netlab.proxy.naming import ServicePortName
from netlab.proxy.servicemap import EndpointInfo, ProxiedService, ServicePortInfo
from tests.lab.host import HostSnapshot

NODE = "node-1"
NODE_IP = "192.168.56.11"
OPTS = IpvsOptions(node_ip=NODE_IP, cluster_cidr="10.244.0.0/16", node_ips=(NODE_IP,))
BACKEND = "nft"
CLUSTER_IP_MASQ = (
    r"^-A KUBE-SERVICES ! -s 10\.244\.0\.0/16 -m comment --comment "
    r'"Kubernetes service cluster ip \+ port for masquerade purpose" '
    r"-m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ$"
)

# A ClusterIP DNS Service (UDP) with one local endpoint, and a NodePort web Service (TCP) with
# one local and one remote endpoint.
DNS = ProxiedService(
    ServicePortInfo(ServicePortName("kube-system", "dns", "dns", "UDP"), "10.96.0.10", 53),
    (EndpointInfo("10.244.1.5", 53, NODE, "kube-system/dns-0", is_local=True),),
)
WEB = ProxiedService(
    ServicePortInfo(ServicePortName("default", "web", "http", "TCP"), "10.96.0.20", 80, 30080),
    (
        EndpointInfo("10.244.1.6", 8080, NODE, "default/web-0", is_local=True),
        EndpointInfo("10.244.2.7", 8080, "node-2", "default/web-1", is_local=False),
    ),
)


def ipvs_table(name: str) -> dict[str, dict[str, tuple[str, int]]]:
    """``ipvsadm -Ln`` as {"PROTO VIP:PORT": {"RIP:PORT": (forward, weight)}}."""
    table: dict[str, dict[str, tuple[str, int]]] = {}
    current: dict[str, tuple[str, int]] | None = None
    for line in process.run(name, ["ipvsadm", "-Ln"]).stdout.splitlines():
        vs = re.match(r"^(TCP|UDP|SCTP)\s+(\S+)\s+rr\b", line)
        rs = re.match(r"^\s+->\s+(\d\S+)\s+(\w+)\s+(\d+)\s", line)
        if vs:
            current = table.setdefault(f"{vs.group(1)} {vs.group(2)}", {})
        elif rs and current is not None:
            current[rs.group(1)] = (rs.group(2), int(rs.group(3)))
    return table


def members(name: str, ipset: str) -> set[str]:
    """The entries under ``Members:`` in ``ipset list NAME``."""
    text = process.run(name, ["ipset", "list", ipset]).stdout
    return {ln.strip() for ln in text.split("Members:", 1)[1].splitlines() if ln.strip()}


def kube_ipvs0(name: str) -> tuple[set[str], str]:
    """kube-ipvs0's IPv4 addresses and its ``ip link`` line."""
    addrs = process.run(name, ["ip", "-4", "-o", "addr", "show", "dev", "kube-ipvs0"]).stdout
    link = process.run(name, ["ip", "-o", "link", "show", "dev", "kube-ipvs0"]).stdout
    return set(re.findall(r"inet (\S+)", addrs)), link


def expected_table(ruleset: IpvsRuleSet) -> dict[str, dict[str, tuple[str, int]]]:
    return {
        f"{vs.protocol} {vs.address}:{vs.port}": {str(d): ("Masq", 1) for d in vs.real_servers}
        for vs in ruleset.virtual_servers
    }


@pytest.mark.ipvs
@pytest.mark.parametrize("ipvs_apply", APPLY_PATHS)
def test_sync_twice_then_read_back(
    scratch_ns: str, ipvs_apply: str, clean_host: HostSnapshot
) -> None:
    first = render([DNS, WEB], OPTS)
    apply_ruleset(scratch_ns, first, first=True, backend=BACKEND, ipvs_apply=ipvs_apply)

    assert ipvs_table(scratch_ns) == {
        "UDP 10.96.0.10:53": {"10.244.1.5:53": ("Masq", 1)},
        "TCP 10.96.0.20:80": {"10.244.1.6:8080": ("Masq", 1), "10.244.2.7:8080": ("Masq", 1)},
        f"TCP {NODE_IP}:30080": {"10.244.1.6:8080": ("Masq", 1), "10.244.2.7:8080": ("Masq", 1)},
    }
    assert members(scratch_ns, "KUBE-CLUSTER-IP") == {"10.96.0.10,udp:53", "10.96.0.20,tcp:80"}
    assert members(scratch_ns, "KUBE-NODE-PORT-TCP") == {"30080"}
    assert members(scratch_ns, "KUBE-LOOP-BACK") == {
        "10.244.1.5,udp:53,10.244.1.5",
        "10.244.1.6,tcp:8080,10.244.1.6",
    }
    assert members(scratch_ns, "KUBE-IPVS-IPS") == {"10.96.0.10", "10.96.0.20"}
    addrs, link = kube_ipvs0(scratch_ns)
    assert addrs == {"10.96.0.10/32", "10.96.0.20/32"}
    assert "state DOWN" in link  # a dummy left down, as kube-proxy leaves it

    # The DNS Service is deleted: its virtual server, set entries and address go.
    second = render([WEB], OPTS)
    apply_ruleset(scratch_ns, second, first=False, backend=BACKEND, ipvs_apply=ipvs_apply)

    assert ipvs_table(scratch_ns) == expected_table(second)
    assert "UDP 10.96.0.10:53" not in ipvs_table(scratch_ns)
    assert members(scratch_ns, "KUBE-CLUSTER-IP") == {"10.96.0.20,tcp:80"}
    assert members(scratch_ns, "KUBE-LOOP-BACK") == {"10.244.1.6,tcp:8080,10.244.1.6"}
    assert members(scratch_ns, "KUBE-IPVS-IPS") == {"10.96.0.20"}
    assert kube_ipvs0(scratch_ns)[0] == {"10.96.0.20/32"}

    # The jumps from the built-in chains were added once, by the first sync only.
    nat = rules.iptables_save(scratch_ns, BACKEND, "nat")
    assert len(re.findall(r"^-A PREROUTING .*-j KUBE-SERVICES$", nat, re.M)) == 1, nat


def live_state(name: str) -> dict[str, object]:
    """Everything a sync programs: the IPVS table, every set's members, kube-ipvs0's addresses
    and the iptables nat and filter tables."""
    sets = parse_ipset_save(process.run(name, ["ipset", "save"]).stdout)
    return {
        "ipvs": ipvs_table(name),
        "ipsets": {set_name: members(name, set_name) for set_name in sorted(sets)},
        "addresses": kube_ipvs0(name)[0],
        "nat": _without_comments(rules.iptables_save(name, BACKEND, "nat")),
        "filter": _without_comments(rules.iptables_save(name, BACKEND, "filter")),
    }


def _without_comments(save: str) -> list[str]:
    """iptables-save output without its dated ``# Generated``/``# Completed`` lines."""
    return [ln for ln in save.splitlines() if not ln.startswith("#")]


@pytest.mark.ipvs
@pytest.mark.parametrize("ipvs_apply", APPLY_PATHS)
def test_resync_is_idempotent(clean_host: HostSnapshot, scratch_ns: str, ipvs_apply: str) -> None:
    ruleset = render([DNS, WEB], OPTS)
    apply_ruleset(scratch_ns, ruleset, first=True, backend=BACKEND, ipvs_apply=ipvs_apply)
    before = live_state(scratch_ns)
    again = apply_ruleset(scratch_ns, ruleset, first=False, backend=BACKEND, ipvs_apply=ipvs_apply)
    # netlink reconciles and finds nothing to change; ipvsadm cannot diff: it flushes and
    # restores the whole table, one line per virtual and real server, every sync.
    restored = ipvsadm_restore_text(ruleset).count("\n")
    assert restored == sum(1 + len(vs.real_servers) for vs in ruleset.virtual_servers) == 8
    expected_changes = {"netlink": 0, "ipvsadm": restored}[ipvs_apply]
    assert (again.ipvs_changes, again.bound, again.unbound) == (expected_changes, 0, 0)
    assert ipvs_table(scratch_ns) == expected_table(ruleset)
    # Nothing the second sync touched looks any different afterwards.
    assert live_state(scratch_ns) == before


def test_ipsets_and_iptables_load_without_ipvs(clean_host: HostSnapshot, scratch_ns: str) -> None:
    """The two text transactions of a sync, on any host: the kernel takes the ipset restore
    (fresh, then as a diff that removes a deleted Service's entries) and the iptables rules."""
    both = render([DNS, WEB], OPTS)
    process.run(scratch_ns, ["ipset", "restore"], input=both.ipset_restore_text())
    rules.iptables_restore(scratch_ns, both.iptables_restore_text(bootstrap=True), BACKEND)

    web = render([WEB], OPTS)
    existing = parse_ipset_save(process.run(scratch_ns, ["ipset", "save"]).stdout)
    process.run(scratch_ns, ["ipset", "restore"], input=web.ipset_restore_text(existing))
    rules.iptables_restore(scratch_ns, web.iptables_restore_text(bootstrap=False), BACKEND)

    live = parse_ipset_save(process.run(scratch_ns, ["ipset", "save"]).stdout)
    assert {s.name: set(s.entries) for s in web.ipsets} == live
    nat = rules.iptables_save(scratch_ns, BACKEND, "nat")
    # kube-proxy's "masquerade off-cluster traffic to a ClusterIP" rule, one whole line (as
    # iptables-save prints it: the source match first).
    assert re.search(CLUSTER_IP_MASQ, nat, re.M), nat
    flt = rules.iptables_save(scratch_ns, BACKEND, "filter")
    assert (
        '-A INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER' in flt
    )
