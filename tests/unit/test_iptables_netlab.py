"""What netlab adds around kube-proxy's rules: the first-sync jumps, stale-chain deletion, and
the per-Service view of iptables-save."""

from __future__ import annotations

from netlab.proxy import naming
from netlab.proxy.iptables.render import (
    IptablesOptions,
    chains_in_save,
    filter_save,
    render,
    service_chains,
)
from netlab.proxy.servicemap import EndpointInfo, ProxiedService, ServicePortInfo
from netlab.scenario.k8s import ObjectMeta, Service, ServicePort

OPTS = IptablesOptions(node_ip="192.168.56.11", cluster_cidr="10.244.0.0/16")
SPN = naming.ServicePortName("default", "web", "http", "TCP")


def _svc(endpoints: int = 2) -> ProxiedService:
    eps = tuple(
        EndpointInfo(f"10.244.1.{i + 2}", 8080, "node-1", f"default/web-{i}", True)
        for i in range(endpoints)
    )
    return ProxiedService(ServicePortInfo(SPN, "10.96.100.1", 80), eps)


def test_bootstrap_jumps_reproduce_kube_proxys_prepend_order() -> None:
    text = render([_svc()], OPTS).restore_text(bootstrap=True)
    lines = text.splitlines()
    assert lines[:3] == ["*mangle", ":KUBE-PROXY-CANARY - [0:0]", "COMMIT"]
    inserts = [ln for ln in lines if ln.startswith("-I INPUT 1 ")]
    # iptablesJumpChains order, each prepended: the last in the list ends up first.
    assert inserts == [
        '-I INPUT 1 -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-'
        'visible service portals" -j KUBE-EXTERNAL-SERVICES',
        '-I INPUT 1 -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS',
        '-I INPUT 1 -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer '
        'firewall" -j KUBE-PROXY-FIREWALL',
        "-I INPUT 1 -j KUBE-FIREWALL",
    ]
    assert (
        '-I PREROUTING 1 -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'
        in lines
    )
    assert "-I" not in render([_svc()], OPTS).restore_text(bootstrap=False)


def test_stale_service_chains_are_flushed_then_deleted() -> None:
    rendered = render([_svc(1)], OPTS)
    old_sep = naming.sep_chain(SPN, "10.244.1.3:8080")
    gone_svc = naming.svc_chain(naming.ServicePortName("default", "gone", "", "TCP"))
    existing = {*rendered.active_nat_chains(), old_sep, gone_svc, "KUBE-SERVICES", "OTHER-CHAIN"}
    text = rendered.restore_text(bootstrap=False, existing_nat_chains=existing)
    nat = text[text.index("*nat") :]
    assert f":{old_sep} - [0:0]" in nat
    assert f":{gone_svc} - [0:0]" in nat
    assert nat.rstrip().splitlines()[-3:] == [
        f"-X {min(old_sep, gone_svc)}",
        f"-X {max(old_sep, gone_svc)}",
        "COMMIT",
    ]
    assert "OTHER-CHAIN" not in text  # never touch chains that are not kube-proxy's
    assert "-X KUBE-SERVICES" not in text


def test_chains_in_save_and_service_filter() -> None:
    rendered = render([_svc()], OPTS)
    save = rendered.restore_text(bootstrap=False)
    assert naming.svc_chain(SPN) in chains_in_save(save)
    web = Service(ObjectMeta("web"), [ServicePort(80, name="http", target_port=8080)])
    chains = service_chains([_svc()], web)
    assert chains == {
        naming.svc_chain(SPN),
        naming.svl_chain(SPN),
        naming.ext_chain(SPN),
        naming.fw_chain(SPN),
        naming.sep_chain(SPN, "10.244.1.2:8080"),
        naming.sep_chain(SPN, "10.244.1.3:8080"),
    }
    only = filter_save(save, chains, "default/web")
    assert only.startswith("*nat\n")  # the filter table has nothing of web's: dropped
    assert "KUBE-POSTROUTING" not in only
    assert '-A KUBE-SERVICES -m comment --comment "default/web:http cluster IP"' in only
    assert only.count(":KUBE-SEP-") == 2


def test_service_filter_keeps_rules_with_counters() -> None:
    """iptables-save -c prefixes every rule with its [packets:bytes]."""
    save = (
        "*nat\n:KUBE-SVC-X - [0:0]\n[7:420] -A KUBE-SVC-X -j KUBE-SEP-Y\n[0:0] -A OTHER -j Z\n"
        "COMMIT\n"
    )
    assert filter_save(save, {"KUBE-SVC-X"}, "default/web") == (
        "*nat\n:KUBE-SVC-X - [0:0]\n[7:420] -A KUBE-SVC-X -j KUBE-SEP-Y\nCOMMIT\n"
    )


def _noflush(tables: dict[str, dict[str, list[str]]], text: str) -> None:
    """What ``iptables-restore --noflush`` does to a node's tables: a declared chain is made or
    flushed, ``-A`` appends, ``-I C 1`` prepends, ``-X`` deletes."""
    table: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.startswith("*"):
            table = tables.setdefault(line[1:], {})
        elif line.startswith(":"):
            table[line[1:].split(" ", 1)[0]] = []
        elif line.startswith("-A "):
            table[line.split(" ", 2)[1]].append(line.split(" ", 2)[2])
        elif line.startswith("-I "):
            chain, _, rule = line[3:].split(" ", 2)
            table.setdefault(chain, []).insert(0, rule)
        elif line.startswith("-X "):
            del table[line[3:]]


def _many() -> list[ProxiedService]:
    def one(name: str, cip: str, *ips: str) -> ProxiedService:
        spn = naming.ServicePortName("default", name, "http", "TCP")
        eps = tuple(EndpointInfo(ip, 8080, "node-2", "", False) for ip in ips)
        return ProxiedService(ServicePortInfo(spn, cip, 80, node_port=30080 + len(ips)), eps)

    return [
        one("web", "10.96.0.20", "10.244.2.2", "10.244.2.3"),
        one("api", "10.96.0.21", "10.244.2.4"),
        one("gone", "10.96.0.22", "10.244.2.5"),
    ]


def test_partial_sync_rewrites_only_changed_service_chains() -> None:
    old = render(_many(), OPTS)
    web, api, _gone = _many()
    api2 = ProxiedService(
        api.info, (*api.endpoints, EndpointInfo("10.244.2.9", 8080, "node-2", "", False))
    )
    new = render([web, api2], OPTS)
    text = new.partial_text(old)
    nat = text[text.index("*nat") :]
    declared = {ln[1:].split(" ", 1)[0] for ln in nat.splitlines() if ln.startswith(":")}
    web_chains = service_chains([web], Service(ObjectMeta(name="web"), [ServicePort(80)]))
    gone_chains = {c for c in old.active_nat_chains() if c not in new.active_nat_chains()}
    assert gone_chains and all(naming.is_service_chain(c) for c in gone_chains)
    # web did not change: none of its chains is written; api's are; gone's are deleted.
    assert not declared & web_chains
    assert naming.svc_chain(api.info.spn) in declared
    assert naming.sep_chain(api.info.spn, "10.244.2.9:8080") in declared
    assert gone_chains <= declared
    assert sorted(ln for ln in nat.splitlines() if ln.startswith("-X ")) == sorted(
        f"-X {c}" for c in gone_chains
    )
    assert {"KUBE-SERVICES", "KUBE-NODEPORTS", "KUBE-POSTROUTING", "KUBE-MARK-MASQ"} <= declared
    assert text[: text.index("*nat")] == new.restore_text(bootstrap=False)[: text.index("*nat")]
    # Nothing changed: no Service chain at all.
    same = new.partial_text(new)
    assert not [ln for ln in same.splitlines() if ln.startswith((":KUBE-SVC-", ":KUBE-SEP-"))]


def test_partial_sync_leaves_the_tables_a_full_sync_would() -> None:
    old, services = render(_many(), OPTS), _many()
    for changed in ([services[0]], services[1:], [], [services[2], services[0]]):
        new = render(changed, OPTS)
        partial: dict[str, dict[str, list[str]]] = {}
        full: dict[str, dict[str, list[str]]] = {}
        _noflush(partial, old.restore_text(bootstrap=True))
        _noflush(partial, new.partial_text(old))
        _noflush(full, new.restore_text(bootstrap=True))
        assert partial == full
