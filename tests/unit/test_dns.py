"""Cluster DNS (netlab.workloads.dns) and the stub resolver (netlab.traffic.dnsquery).

Expected answers are CoreDNS's with kubeadm's Corefile (kubernetes plugin, pods insecure, ttl 30,
fallthrough for the reverse zones, forward to the upstream); see the module docstrings.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
import textwrap
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import dnslib
import pytest

from netlab.checks.observations import DNSResult
from netlab.cluster.build import build_cluster
from netlab.cluster.resolvconf import ResolvConf
from netlab.cluster.state import ClusterState
from netlab.scenario import parse_scenario
from netlab.traffic import dnsquery
from netlab.traffic.dnsquery import resolve, result_from_reply, try_order
from netlab.workloads.dns import (
    Answer,
    ClusterDNS,
    ClusterDNSHandler,
    Handler,
    Lookup,
    UpstreamDNS,
    fit,
    reverse_zones,
    serve_tcp,
    serve_udp,
)

SCENARIO = """\
apiVersion: netlab.dev/v1alpha1
kind: Lab
metadata: {name: t}
spec: {nodes: 2}
---
apiVersion: v1
kind: Namespace
metadata: {name: other}
---
apiVersion: v1
kind: Namespace
metadata: {name: quiet}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: x, ports: [{name: http, containerPort: 8080}]}]}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports:
  - {name: http, port: 80, targetPort: 8080}
  - {name: dns, port: 53, protocol: UDP, targetPort: 8080}
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: other}
spec:
  selector: {app: nothing}
  ports: [{name: https, port: 443}]
---
apiVersion: v1
kind: Service
metadata: {name: solo}
spec:
  selector: {app: web}
  ports: [{port: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: hl}
spec:
  clusterIP: None
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Pod
metadata: {name: pet-0, labels: {app: pet}}
spec:
  hostname: pet-0
  subdomain: pets
  containers: [{name: c, image: x, ports: [{name: http, containerPort: 80}]}]
---
apiVersion: v1
kind: Pod
metadata:
  name: pet-1
  labels: {app: pet}
  annotations: {netlab.dev/ready: "false"}
spec:
  hostname: pet-1
  subdomain: pets
  containers: [{name: c, image: x, ports: [{name: http, containerPort: 80}]}]
---
apiVersion: v1
kind: Service
metadata: {name: pets}
spec:
  clusterIP: None
  selector: {app: pet}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: pets-all}
spec:
  clusterIP: None
  publishNotReadyAddresses: true
  selector: {app: pet}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: empty}
spec:
  clusterIP: None
  selector: {app: nothing}
  ports: [{name: http, port: 80}]
---
apiVersion: v1
kind: Service
metadata: {name: db}
spec: {type: ExternalName, externalName: db.example.com}
---
apiVersion: v1
kind: Service
metadata: {name: ipname}
spec: {type: ExternalName, externalName: 10.0.0.5}
---
apiVersion: v1
kind: Service
metadata: {name: alias}
spec: {type: ExternalName, externalName: web.default.svc.cluster.local}
---
apiVersion: v1
kind: Service
metadata: {name: dangling}
spec: {type: ExternalName, externalName: nope.default.svc.cluster.local}
"""

SOA = "ns.dns.cluster.local. hostmaster.cluster.local. 7 7200 1800 86400 30"
OUTSIDE = {
    "db.example.com": ["198.51.100.20"],
    "big.example.com": [f"198.51.100.{i}" for i in range(1, 41)],
}


@pytest.fixture(scope="module")
def state() -> ClusterState:
    return build_cluster(parse_scenario(SCENARIO, "t.yaml"))


@pytest.fixture(scope="module")
def dns(state: ClusterState) -> ClusterDNS:
    return ClusterDNS(state, serial=7)


def ip_of(state: ClusterState, namespace: str, name: str) -> str:
    return state.service(namespace, name).cluster_ip


def pod_ips(state: ClusterState, label: str) -> list[str]:
    return [p.ip for p in state.pods if p.labels.get("app") == label]


def ask(dns: ClusterDNS, name: str, qtype: str = "A", **edns: int) -> DNSResult:
    """Ask ``dns`` directly; the answer must be the cluster's own (not forwarded)."""
    request = dnslib.DNSRecord.question(name, qtype)
    if edns:
        request.add_ar(dnslib.EDNS0(udp_len=edns["udp"]))
    answer = dns.answer(request)
    assert answer.reply is not None, f"{name} {qtype} was forwarded"
    assert answer.reply.header.id == request.header.id
    return result_from_reply(
        "cluster", name if name.endswith(".") else name + ".", qtype, answer.reply
    )


def data(result: DNSResult, rtype: str | None = None) -> list[str]:
    want = rtype or result.qtype
    return [d for _, t, _, d in result.answers if t == want]


def forwarded(dns: ClusterDNS, name: str, qtype: str = "A") -> bool:
    return dns.answer(dnslib.DNSRecord.question(name, qtype)).forward


# Services with a ClusterIP --------------------------------------------------------------------


def test_clusterip_a(dns: ClusterDNS, state: ClusterState) -> None:
    r = ask(dns, "web.default.svc.cluster.local")
    assert r.rcode == "NOERROR"
    assert r.answers == (
        ("web.default.svc.cluster.local.", "A", 30, ip_of(state, "default", "web")),
    )
    # CoreDNS's flags: authoritative, recursion desired echoed, recursion not available.
    assert r.flags == {"qr", "aa", "rd"}
    assert r.authority == ()


def test_kubernetes_default(dns: ClusterDNS) -> None:
    assert data(ask(dns, "kubernetes.default.svc.cluster.local")) == ["10.96.0.1"]
    srv = ask(dns, "_https._tcp.kubernetes.default.svc.cluster.local", "SRV")
    assert data(srv) == ["0 100 443 kubernetes.default.svc.cluster.local."]


def test_case_insensitive_and_owner_case_kept(dns: ClusterDNS, state: ClusterState) -> None:
    r = ask(dns, "WEB.Default.SVC.Cluster.LOCAL")
    assert r.answers == (
        ("WEB.Default.SVC.Cluster.LOCAL.", "A", 30, ip_of(state, "default", "web")),
    )


def test_other_namespace(dns: ClusterDNS, state: ClusterState) -> None:
    # A ClusterIP Service without endpoints still has its A record (no "ignore empty_service").
    assert data(ask(dns, "api.other.svc.cluster.local")) == [ip_of(state, "other", "api")]
    assert ask(dns, "api.default.svc.cluster.local").rcode == "NXDOMAIN"


def test_nodata_for_another_type(dns: ClusterDNS) -> None:
    for qtype in ("AAAA", "MX", "TXT", "CNAME", "PTR", "NS", "SOA", "CAA"):
        r = ask(dns, "web.default.svc.cluster.local", qtype)
        assert (r.rcode, r.answers) == ("NOERROR", ()), qtype
        assert r.authority == (("cluster.local.", "SOA", 30, SOA),), qtype
        assert "aa" in r.flags


def test_nxdomain(dns: ClusterDNS) -> None:
    for name in (
        "nope.default.svc.cluster.local",  # unknown Service
        "web.nosuchns.svc.cluster.local",  # unknown namespace
        "nosuchns.svc.cluster.local",
        "foo.cluster.local",  # neither svc nor pod
        "a.b.c.web.default.svc.cluster.local",  # too many labels
        "x.web.default.svc.cluster.local",  # no endpoint with that hostname
        "dns-version.cluster.local",  # only a TXT lives there
    ):
        r = ask(dns, name)
        assert r.rcode == "NXDOMAIN", name
        assert r.answers == ()
        assert r.authority == (("cluster.local.", "SOA", 30, SOA),)
        assert r.flags == {"qr", "aa", "rd"}
    # The fake A lookup decides NXDOMAIN for types that have no lookup of their own.
    assert ask(dns, "nope.default.svc.cluster.local", "AAAA").rcode == "NXDOMAIN"
    assert ask(dns, "nope.default.svc.cluster.local", "CAA").rcode == "NXDOMAIN"


def test_nodata_for_names_that_only_hold_others(dns: ClusterDNS) -> None:
    for name in ("cluster.local", "svc.cluster.local", "default.svc.cluster.local"):
        r = ask(dns, name)
        assert (r.rcode, r.answers) == ("NOERROR", ()), name
        assert r.authority == (("cluster.local.", "SOA", 30, SOA),)
    # A CoreDNS quirk kept: SOA below the apex is NODATA whether or not the name exists.
    assert ask(dns, "nope.default.svc.cluster.local", "SOA").rcode == "NOERROR"


def test_txt_is_nxdomain_for_a_name_that_does_not_exist(dns: ClusterDNS) -> None:
    """Kubernetes.Services for TXT: NODATA only where records of another type exist."""
    for name in (
        "nope.default.svc.cluster.local",
        "web.nosuchns.svc.cluster.local",
        "cluster.local",  # the apex and <ns>.svc hold no records themselves
        "default.svc.cluster.local",
    ):
        r = ask(dns, name, "TXT")
        assert (r.rcode, r.answers) == ("NXDOMAIN", ()), name
        assert r.authority == (("cluster.local.", "SOA", 30, SOA),)
    for name in ("web.default.svc.cluster.local", "_http._tcp.web.default.svc.cluster.local"):
        assert ask(dns, name, "TXT").rcode == "NOERROR", name


def test_a_declared_namespace_with_nothing_in_it_exists(dns: ClusterDNS) -> None:
    r = ask(dns, "quiet.svc.cluster.local")
    assert (r.rcode, r.answers) == ("NOERROR", ())
    assert ask(dns, "nothing.quiet.svc.cluster.local").rcode == "NXDOMAIN"
    assert ask(dns, "undeclared.svc.cluster.local").rcode == "NXDOMAIN"


def test_srv_named_port(dns: ClusterDNS, state: ClusterState) -> None:
    r = ask(dns, "_http._tcp.web.default.svc.cluster.local", "SRV")
    assert r.answers == (
        (
            "_http._tcp.web.default.svc.cluster.local.",
            "SRV",
            30,
            "0 100 80 web.default.svc.cluster.local.",
        ),
    )
    assert r.additional == (
        ("web.default.svc.cluster.local.", "A", 30, ip_of(state, "default", "web")),
    )
    udp = ask(dns, "_DNS._UDP.web.default.svc.cluster.local", "SRV")
    assert data(udp) == ["0 100 53 web.default.svc.cluster.local."]
    # The protocol must match too; the underscores are optional.
    assert ask(dns, "_dns._tcp.web.default.svc.cluster.local", "SRV").rcode == "NXDOMAIN"
    assert data(ask(dns, "http.tcp.web.default.svc.cluster.local", "SRV")) == [
        "0 100 80 web.default.svc.cluster.local."
    ]
    # An A query for the SRV name answers the ClusterIP, as CoreDNS does.
    assert data(ask(dns, "_http._tcp.web.default.svc.cluster.local")) == [
        ip_of(state, "default", "web")
    ]


def test_srv_without_port_labels_lists_every_port(dns: ClusterDNS) -> None:
    # Weights split 100 between the records (CoreDNS: 100 / n each, priority 0).
    r = ask(dns, "web.default.svc.cluster.local", "SRV")
    assert data(r) == [
        "0 50 80 web.default.svc.cluster.local.",
        "0 50 53 web.default.svc.cluster.local.",
    ]


def test_unnamed_port_has_no_srv_name(dns: ClusterDNS) -> None:
    assert ask(dns, "_http._tcp.solo.default.svc.cluster.local", "SRV").rcode == "NXDOMAIN"
    # ... but the Service's own name lists it (empty port labels match any port).
    assert data(ask(dns, "solo.default.svc.cluster.local", "SRV")) == [
        "0 100 8080 solo.default.svc.cluster.local."
    ]


def test_ptr_for_clusterip(dns: ClusterDNS, state: ClusterState) -> None:
    a, b, c, d = ip_of(state, "default", "web").split(".")
    r = ask(dns, f"{d}.{c}.{b}.{a}.in-addr.arpa", "PTR")
    assert r.answers == (
        (f"{d}.{c}.{b}.{a}.in-addr.arpa.", "PTR", 30, "web.default.svc.cluster.local."),
    )
    assert "aa" in r.flags
    assert data(ask(dns, "1.0.96.10.in-addr.arpa", "PTR")) == [
        "kubernetes.default.svc.cluster.local."
    ]


# Headless Services ----------------------------------------------------------------------------


def test_headless_a_one_per_ready_endpoint(dns: ClusterDNS, state: ClusterState) -> None:
    r = ask(dns, "hl.default.svc.cluster.local")
    assert sorted(data(r)) == sorted(pod_ips(state, "web"))
    assert all(ttl == 30 for _, _, ttl, _ in r.answers)


def test_headless_not_ready_and_publish_not_ready(dns: ClusterDNS, state: ClusterState) -> None:
    pet0, pet1 = state.pod("default", "pet-0").ip, state.pod("default", "pet-1").ip
    assert data(ask(dns, "pets.default.svc.cluster.local")) == [pet0]
    assert ask(dns, "pet-1.pets.default.svc.cluster.local").rcode == "NXDOMAIN"
    # publishNotReadyAddresses: the controller marks both ready, so both are published.
    assert sorted(data(ask(dns, "pets-all.default.svc.cluster.local"))) == sorted([pet0, pet1])


def test_headless_without_ready_endpoints_is_nxdomain(dns: ClusterDNS) -> None:
    r = ask(dns, "empty.default.svc.cluster.local")
    assert r.rcode == "NXDOMAIN"
    assert r.authority == (("cluster.local.", "SOA", 30, SOA),)
    assert ask(dns, "_http._tcp.empty.default.svc.cluster.local", "SRV").rcode == "NXDOMAIN"


def test_endpoint_hostname_records(dns: ClusterDNS, state: ClusterState) -> None:
    pet0 = state.pod("default", "pet-0").ip
    r = ask(dns, "pet-0.pets.default.svc.cluster.local")
    assert r.answers == (("pet-0.pets.default.svc.cluster.local.", "A", 30, pet0),)
    # Without a hostname an endpoint is named by its dashed IP (CoreDNS's endpointHostname) ...
    web0 = pod_ips(state, "web")[0]
    dashed = web0.replace(".", "-")
    assert data(ask(dns, f"{dashed}.hl.default.svc.cluster.local")) == [web0]
    # ... also under a Service with a ClusterIP.
    assert data(ask(dns, f"{dashed}.web.default.svc.cluster.local")) == [web0]
    # pets-all's endpoints have no hostname (the pods' subdomain is "pets").
    pet1 = state.pod("default", "pet-1").ip
    assert data(ask(dns, f"{pet1.replace('.', '-')}.pets-all.default.svc.cluster.local")) == [pet1]


def test_headless_srv_per_endpoint(dns: ClusterDNS, state: ClusterState) -> None:
    r = ask(dns, "_http._tcp.hl.default.svc.cluster.local", "SRV")
    ips = pod_ips(state, "web")
    targets = {f"{ip.replace('.', '-')}.hl.default.svc.cluster.local.": ip for ip in ips}
    assert sorted(data(r)) == sorted(f"0 50 8080 {t}" for t in targets)
    assert sorted(r.additional) == sorted((t, "A", 30, ip) for t, ip in targets.items())
    pets = ask(dns, "_http._tcp.pets.default.svc.cluster.local", "SRV")
    assert data(pets) == ["0 100 80 pet-0.pets.default.svc.cluster.local."]


def test_ptr_for_endpoints(dns: ClusterDNS, state: ClusterState) -> None:
    pet0 = state.pod("default", "pet-0").ip
    a, b, c, d = pet0.split(".")
    # pet-0 is an endpoint of pets (hostname pet-0) and of pets-all (no hostname).
    assert data(ask(dns, f"{d}.{c}.{b}.{a}.in-addr.arpa", "PTR")) == [
        "pet-0.pets.default.svc.cluster.local.",
        f"{pet0.replace('.', '-')}.pets-all.default.svc.cluster.local.",
    ]


def test_reverse_fallthrough(dns: ClusterDNS, state: ClusterState) -> None:
    # kubeadm: "fallthrough in-addr.arpa ip6.arpa": what the cluster cannot answer is forwarded.
    client = next(p for p in state.pods if p.namespace == "netlab")
    a, b, c, d = client.ip.split(".")
    assert forwarded(dns, f"{d}.{c}.{b}.{a}.in-addr.arpa", "PTR")  # a pod that is no endpoint
    assert forwarded(dns, "250.255.96.10.in-addr.arpa", "PTR")  # an unallocated ClusterIP
    assert forwarded(dns, "1.0.96.10.in-addr.arpa", "A")
    assert forwarded(dns, "96.10.in-addr.arpa", "PTR")


def test_reverse_authoritative(state: ClusterState) -> None:
    dns = ClusterDNS(state, serial=7, reverse_fallthrough=False)
    client = next(p for p in state.pods if p.namespace == "netlab")
    a, b, c, d = client.ip.split(".")
    r = ask(dns, f"{d}.{c}.{b}.{a}.in-addr.arpa", "PTR")
    assert r.rcode == "NXDOMAIN"
    zone = "244.10.in-addr.arpa."
    assert r.authority == (
        (zone, "SOA", 30, f"ns.dns.{zone} hostmaster.{zone} 7 7200 1800 86400 30"),
    )
    assert data(ask(dns, "1.0.96.10.in-addr.arpa", "PTR")) == [
        "kubernetes.default.svc.cluster.local."
    ]
    assert forwarded(dns, "1.2.0.192.in-addr.arpa", "PTR")  # outside both CIDRs


def test_reverse_zones() -> None:
    assert reverse_zones("10.244.0.0/16") == ["244.10.in-addr.arpa"]
    zones = reverse_zones("10.96.0.0/12")
    assert len(zones) == 16
    assert (zones[0], zones[-1]) == ("96.10.in-addr.arpa", "111.10.in-addr.arpa")


# ExternalName --------------------------------------------------------------------------------


def test_externalname_cname_and_lookup(dns: ClusterDNS) -> None:
    request = dnslib.DNSRecord.question("db.default.svc.cluster.local", "A")
    answer = dns.answer(request)
    assert answer.reply is not None
    assert answer.lookup == Lookup("db.example.com.", dnslib.QTYPE.A)
    r = result_from_reply("c", "db.default.svc.cluster.local.", "A", answer.reply)
    assert r.answers == (("db.default.svc.cluster.local.", "CNAME", 30, "db.example.com."),)
    # Completed with the upstream's answer for the target.
    upstream = UpstreamDNS(OUTSIDE).answer(dnslib.DNSRecord.question("db.example.com", "A"))
    done = result_from_reply(
        "c", "db.default.svc.cluster.local.", "A", dns.complete(answer, upstream)
    )
    assert done.rcode == "NOERROR"
    assert done.answers == (
        ("db.default.svc.cluster.local.", "CNAME", 30, "db.example.com."),
        ("db.example.com.", "A", 300, "198.51.100.20"),
    )
    assert done.cname_chain == ("db.default.svc.cluster.local.", "db.example.com.")
    assert done.data() == ["198.51.100.20"]


def test_externalname_target_missing_upstream(dns: ClusterDNS) -> None:
    # CoreDNS keeps NOERROR and the CNAME when the target does not exist (or did not answer).
    answer = dns.answer(dnslib.DNSRecord.question("db.default.svc.cluster.local", "A"))
    nx = UpstreamDNS({}).answer(dnslib.DNSRecord.question("db.example.com", "A"))
    for upstream in (nx, None):
        r = result_from_reply(
            "c", "db.default.svc.cluster.local.", "A", dns.complete(answer, upstream)
        )
        assert r.rcode == "NOERROR"
        assert r.answers == (("db.default.svc.cluster.local.", "CNAME", 30, "db.example.com."),)


def test_externalname_other_types(dns: ClusterDNS) -> None:
    r = ask(dns, "db.default.svc.cluster.local", "CNAME")
    assert r.answers == (("db.default.svc.cluster.local.", "CNAME", 30, "db.example.com."),)
    cname = dns.answer(dnslib.DNSRecord.question("db.default.svc.cluster.local", "CNAME"))
    assert cname.lookup is None
    aaaa = dns.answer(dnslib.DNSRecord.question("db.default.svc.cluster.local", "AAAA"))
    assert aaaa.lookup == Lookup("db.example.com.", dnslib.QTYPE.AAAA)
    # SRV and TXT never follow an ExternalName: NODATA.
    for qtype in ("SRV", "TXT"):
        r = ask(dns, "db.default.svc.cluster.local", qtype)
        assert (r.rcode, r.answers) == ("NOERROR", ()), qtype


def test_nothing_lives_below_an_externalname(dns: ClusterDNS) -> None:
    """findServices skips an ExternalName when the name carries an endpoint, a port or a
    protocol: a.<svc>, a.b.<svc> and _p._tcp.<svc> do not exist."""
    for name in (
        "a.db.default.svc.cluster.local",
        "a.b.db.default.svc.cluster.local",
        "_http._tcp.db.default.svc.cluster.local",
    ):
        for qtype in ("A", "CNAME", "SRV"):
            r = ask(dns, name, qtype)
            assert (r.rcode, r.answers) == ("NXDOMAIN", ()), (name, qtype)


def test_externalname_ipv4_looking_is_nxdomain(dns: ClusterDNS) -> None:
    # CoreDNS publishes no CNAME for an ExternalName that parses as an IP (coredns#2324).
    for qtype in ("A", "CNAME"):
        r = ask(dns, "ipname.default.svc.cluster.local", qtype)
        assert (r.rcode, r.answers) == ("NXDOMAIN", ())
    # And as a name, 10.0.0.5. is outside the zone: forwarded, and the outside world has no such
    # name, however much it looks like an address.
    assert forwarded(dns, "10.0.0.5.")
    nx = UpstreamDNS(OUTSIDE).answer(dnslib.DNSRecord.question("10.0.0.5.", "A"))
    assert dnslib.RCODE[nx.header.rcode] == "NXDOMAIN"


def test_externalname_inside_the_zone_is_chased(dns: ClusterDNS, state: ClusterState) -> None:
    answer = dns.answer(dnslib.DNSRecord.question("alias.default.svc.cluster.local", "A"))
    assert answer.reply is not None and answer.lookup is None
    r = result_from_reply("c", "alias.default.svc.cluster.local.", "A", answer.reply)
    assert r.answers == (
        ("alias.default.svc.cluster.local.", "CNAME", 30, "web.default.svc.cluster.local."),
        ("web.default.svc.cluster.local.", "A", 30, ip_of(state, "default", "web")),
    )
    # A target in the zone that does not exist drops the CNAME: NODATA (coredns#6088).
    d = ask(dns, "dangling.default.svc.cluster.local")
    assert (d.rcode, d.answers) == ("NOERROR", ())


# Pods, schema version, apex ------------------------------------------------------------------


def test_pod_records_insecure(dns: ClusterDNS) -> None:
    r = ask(dns, "10-244-9-9.default.pod.cluster.local")  # any address: "pods insecure"
    assert r.answers == (("10-244-9-9.default.pod.cluster.local.", "A", 30, "10.244.9.9"),)
    assert data(ask(dns, "1-2-3-4.other.pod.cluster.local")) == ["1.2.3.4"]
    assert ask(dns, "1-2-3-4.nosuchns.pod.cluster.local").rcode == "NXDOMAIN"
    assert ask(dns, "not-an-ip.default.pod.cluster.local").rcode == "NXDOMAIN"
    assert ask(dns, "1-2-3-400.default.pod.cluster.local").rcode == "NXDOMAIN"
    aaaa = ask(dns, "10-244-9-9.default.pod.cluster.local", "AAAA")
    assert (aaaa.rcode, aaaa.answers) == ("NOERROR", ())
    assert ask(dns, "default.pod.cluster.local").rcode == "NOERROR"


def test_dns_version(dns: ClusterDNS) -> None:
    r = ask(dns, "DNS-Version.cluster.local", "TXT")
    assert r.answers == (("DNS-Version.cluster.local.", "TXT", 28800, '"1.1.0"'),)


def test_apex_soa_and_ns(dns: ClusterDNS, state: ClusterState) -> None:
    soa = ask(dns, "cluster.local", "SOA")
    assert soa.answers == (("cluster.local.", "SOA", 30, SOA),)
    ns = ask(dns, "cluster.local", "NS")
    if any(s.meta.name == "kube-dns" for s in state.services):
        name, ip = (
            "kube-dns.kube-system.svc.cluster.local.",
            ip_of(state, "kube-system", "kube-dns"),
        )
    else:
        name, ip = "ns.dns.cluster.local.", "10.96.0.10"
    assert ns.answers == (("cluster.local.", "NS", 30, name),)
    assert ns.additional == ((name, "A", 30, ip),)
    assert data(ask(dns, "ns.dns.cluster.local")) == [ip]


def test_zone_transfer_refused(dns: ClusterDNS) -> None:
    r = ask(dns, "cluster.local", "AXFR")
    assert r.rcode == "REFUSED"
    assert "aa" not in r.flags


def test_edns_echoed(dns: ClusterDNS) -> None:
    request = dnslib.DNSRecord.question("web.default.svc.cluster.local", "A")
    request.add_ar(dnslib.EDNS0(udp_len=1232))
    reply = dns.answer(request).reply
    assert reply is not None
    opt = [rr for rr in reply.ar if rr.rtype == dnslib.QTYPE.OPT]
    assert len(opt) == 1 and opt[0].rclass == 1232


def test_outside_the_zone_is_forwarded(dns: ClusterDNS) -> None:
    for name in ("example.com", "db.example.com", "cluster.local.example.com", "local"):
        assert forwarded(dns, name), name
    assert not forwarded(dns, "anything.cluster.local")


def test_answer_is_pure(dns: ClusterDNS) -> None:
    request = dnslib.DNSRecord.question("hl.default.svc.cluster.local", "SRV")
    first, second = dns.answer(request), dns.answer(request)
    assert first.reply is not None and second.reply is not None
    assert first.reply.pack() == second.reply.pack()
    assert Answer().forward


def test_fit_truncates() -> None:
    request = dnslib.DNSRecord.question("big.example.com", "A")
    full = UpstreamDNS(OUTSIDE).answer(request).pack()
    assert len(full) > 512
    cut = dnslib.DNSRecord.parse(fit(full, 512))
    assert cut.header.tc == 1
    assert 0 < len(cut.rr) < 40
    assert len(cut.pack()) <= 512


# The outside world ---------------------------------------------------------------------------


def test_upstream_dns() -> None:
    up = UpstreamDNS(OUTSIDE)

    def q(name: str, qtype: str = "A") -> DNSResult:
        reply = up.answer(dnslib.DNSRecord.question(name, qtype))
        return result_from_reply("up", name, qtype, reply)

    r = q("DB.Example.COM.")
    assert r.answers == (("DB.Example.COM.", "A", 300, "198.51.100.20"),)
    assert r.flags == {"qr", "rd", "ra"}
    nodata = q("db.example.com.", "AAAA")
    assert (nodata.rcode, nodata.answers) == ("NOERROR", ())
    assert nodata.authority[0][:2] == ("example.com.", "SOA")
    for name in ("nope.example.com.", "10.0.0.5.", "web.default.svc.cluster.local."):
        assert q(name).rcode == "NXDOMAIN", name
    assert q("10.0.0.5.").authority[0][:2] == (".", "SOA")


# resolv.conf and the search path ---------------------------------------------------------------


def test_resolv_conf_for_pod() -> None:
    rc = ResolvConf.for_pod("default")
    assert rc.render() == (
        "search default.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 10.96.0.10\n"
        "options ndots:5\n"
    )
    assert ResolvConf.parse(rc.render()) == rc
    assert ResolvConf.parse("nameserver 1.1.1.1\n").render() == "nameserver 1.1.1.1\n"


def fake(answers: dict[str, str], log: list[tuple[str, str]] | None = None) -> dnsquery.QueryFn:
    """A query function: name -> rcode ("NOERROR" answers with one A record, "NODATA" none)."""

    def query_fn(server: str, name: str, qtype: str) -> DNSResult:
        if log is not None:
            log.append((server, name))
        kind = answers.get(name, "NXDOMAIN")
        if kind in ("timeout", "connection refused"):
            return DNSResult(server, name, qtype, error=kind)
        if kind == "NOERROR":
            return DNSResult(
                server, name, qtype, rcode="NOERROR", answers=((name, "A", 30, "1.2.3.4"),)
            )
        return DNSResult(server, name, qtype, rcode="NOERROR" if kind == "NODATA" else kind)

    return query_fn


POD = ResolvConf.for_pod("default")
SEARCH = ["default.svc.cluster.local.", "svc.cluster.local.", "cluster.local."]


def test_search_short_name_tries_suffixes_first() -> None:
    r = resolve(POD, "web", "A", query_fn=fake({"web.default.svc.cluster.local.": "NOERROR"}))
    assert r.ok and r.herrno == ""
    assert r.tried == ("web.default.svc.cluster.local.",)
    r = resolve(POD, "api.other", "A", query_fn=fake({"api.other.svc.cluster.local.": "NOERROR"}))
    assert r.tried == ("api.other.default.svc.cluster.local.", "api.other.svc.cluster.local.")
    assert r.name == "api.other.svc.cluster.local."


def test_search_external_name_under_ndots_5() -> None:
    # 2 dots < ndots 5: three NXDOMAINs inside the cluster before the real name.
    r = resolve(POD, "db.example.com", "A", query_fn=fake({"db.example.com.": "NOERROR"}))
    assert r.tried == (*(f"db.example.com.{s}" for s in SEARCH), "db.example.com.")
    assert r.ok


def test_search_trailing_dot_is_absolute_only() -> None:
    r = resolve(POD, "db.example.com.", "A", query_fn=fake({}))
    assert r.tried == ("db.example.com.",)
    assert (r.rcode, r.herrno) == ("NXDOMAIN", "HOST_NOT_FOUND")


def test_search_enough_dots_tries_as_is_first() -> None:
    name = "web.default.svc.cluster.local"  # 4 dots: still under ndots:5
    assert try_order(POD, name) == [f"{name}.{s}" for s in SEARCH] + [f"{name}."]
    name = "a.b.c.d.e.f"  # 5 dots: as is first, then the search list
    assert try_order(POD, name) == [f"{name}."] + [f"{name}.{s}" for s in SEARCH]
    one = ResolvConf(("10.96.0.10",), ("example.com",), 1)
    assert try_order(one, "db.internal") == ["db.internal.", "db.internal.example.com."]
    assert try_order(one, "db") == ["db.example.com.", "db."]


def test_search_failure_reports_as_glibc() -> None:
    # As-is tried first: its error is the one reported.
    r = resolve(POD, "a.b.c.d.e.f", "A", query_fn=fake({"a.b.c.d.e.f.cluster.local.": "NODATA"}))
    assert (r.name, r.herrno) == ("a.b.c.d.e.f.", "HOST_NOT_FOUND")
    assert len(r.tried) == 4
    # Else a NODATA anywhere wins over NXDOMAIN, and the search goes on past it.
    r = resolve(POD, "web", "AAAA", query_fn=fake({"web.default.svc.cluster.local.": "NODATA"}))
    assert (r.name, r.herrno, r.nodata) == ("web.default.svc.cluster.local.", "NO_DATA", True)
    assert r.tried == (*(f"web.{s}" for s in SEARCH), "web.")
    r = resolve(POD, "web", "A", query_fn=fake({}))
    assert (r.name, r.herrno) == ("web.", "HOST_NOT_FOUND")


def test_search_servfail_goes_on_timeout_stops() -> None:
    r = resolve(
        POD,
        "web",
        "A",
        query_fn=fake(
            {"web.default.svc.cluster.local.": "SERVFAIL", "web.svc.cluster.local.": "NOERROR"}
        ),
    )
    assert r.ok and len(r.tried) == 2
    r = resolve(POD, "web", "A", query_fn=fake({"web.default.svc.cluster.local.": "SERVFAIL"}))
    assert (r.herrno, r.rcode, len(r.tried)) == ("TRY_AGAIN", "SERVFAIL", 4)
    # A timeout ends the search list, but the name is still tried as is.
    r = resolve(POD, "web", "A", query_fn=fake({"web.default.svc.cluster.local.": "timeout"}))
    assert r.tried == ("web.default.svc.cluster.local.", "web.")
    # A refused connection ends everything.
    r = resolve(
        POD, "web", "A", query_fn=fake({"web.default.svc.cluster.local.": "connection refused"})
    )
    assert (r.tried, r.herrno) == (("web.default.svc.cluster.local.",), "TRY_AGAIN")


def test_search_next_nameserver_after_servfail() -> None:
    rc = ResolvConf(("10.0.0.1", "10.0.0.2"), ("default.svc.cluster.local",), 5)
    log: list[tuple[str, str]] = []
    servfail = fake({"web.default.svc.cluster.local.": "SERVFAIL"}, log)
    good = fake({"web.default.svc.cluster.local.": "NOERROR"}, log)
    r = resolve(
        rc, "web", "A", query_fn=lambda s, n, t: (servfail if s == "10.0.0.1" else good)(s, n, t)
    )
    assert r.ok and r.server == "10.0.0.2"
    assert log == [
        ("10.0.0.1", "web.default.svc.cluster.local."),
        ("10.0.0.2", "web.default.svc.cluster.local."),
    ]


def in_process(dns: ClusterDNS, upstream: UpstreamDNS) -> dnsquery.QueryFn:
    """A query function answered by ClusterDNS (forwarding to ``upstream``), without sockets."""

    def query_fn(server: str, name: str, qtype: str) -> DNSResult:
        request = dnslib.DNSRecord.question(name, qtype)
        answer = dns.answer(request)
        if answer.reply is None:
            reply = upstream.answer(request)
        elif answer.lookup is not None:
            target = dnslib.DNSRecord.question(
                answer.lookup.name, dnslib.QTYPE[answer.lookup.qtype]
            )
            reply = dns.complete(answer, upstream.answer(target))
        else:
            reply = answer.reply
        return result_from_reply(server, name, qtype, reply)

    return query_fn


def test_resolve_against_cluster_dns(dns: ClusterDNS, state: ClusterState) -> None:
    ask = in_process(dns, UpstreamDNS(OUTSIDE))
    r = resolve(POD, "kubernetes.default", "A", query_fn=ask)
    assert r.tried == (
        "kubernetes.default.default.svc.cluster.local.",
        "kubernetes.default.svc.cluster.local.",
    )
    assert r.data() == ["10.96.0.1"]
    r = resolve(ResolvConf.for_pod("other"), "web.default", "A", query_fn=ask)
    assert r.data() == [ip_of(state, "default", "web")]
    r = resolve(POD, "db", "A", query_fn=ask)
    assert r.cname_chain == ("db.default.svc.cluster.local.", "db.example.com.")
    assert r.data() == ["198.51.100.20"]
    r = resolve(POD, "db.example.com", "A", query_fn=ask)
    assert len(r.tried) == 4 and r.data() == ["198.51.100.20"]
    r = resolve(POD, "ipname", "A", query_fn=ask)
    assert r.herrno == "HOST_NOT_FOUND"
    assert r.tried == (*(f"ipname.{s}" for s in SEARCH), "ipname.")


# Real sockets --------------------------------------------------------------------------------


class Loop:
    """An asyncio loop in a thread, as the lab agent runs one."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.closers: list[Callable[[], Any]] = []

    def run(self, coro: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)  # type: ignore[arg-type]

    def serve(self, udp_handler: Handler, tcp_handler: Handler | None = None) -> int:
        """Bind UDP and TCP on one free 127.0.0.1 port and serve them; returns the port."""
        for _ in range(50):
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            udp.bind(("127.0.0.1", 0))
            port = udp.getsockname()[1]
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                tcp.bind(("127.0.0.1", port))
            except OSError:
                udp.close()
                tcp.close()
                continue
            tcp.listen(16)
            udp.setblocking(False)
            tcp.setblocking(False)
            transport = self.run(serve_udp(udp, udp_handler))
            server = self.run(serve_tcp(tcp, tcp_handler or udp_handler))
            self.closers += [transport.close, server.close]
            return int(port)
        raise RuntimeError("no free port")

    def close(self) -> None:
        async def shutdown() -> None:
            for close in self.closers:
                close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(shutdown())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


@pytest.fixture
def loop() -> Iterator[Loop]:
    lp = Loop()
    yield lp
    lp.close()


def big_state() -> ClusterState:
    text = SCENARIO + textwrap.dedent("""\
        ---
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: many}
        spec:
          replicas: 40
          selector: {matchLabels: {app: many}}
          template:
            metadata: {labels: {app: many}}
            spec: {containers: [{name: c, image: x}]}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: many}
        spec:
          clusterIP: None
          selector: {app: many}
          ports: [{name: http, port: 80}]
        """)
    return build_cluster(parse_scenario(text, "t.yaml"))


def test_real_sockets(loop: Loop, dns: ClusterDNS, state: ClusterState) -> None:
    upstream = UpstreamDNS(OUTSIDE)
    up_port = loop.serve(upstream.udp, upstream.tcp)
    handler = ClusterDNSHandler(ClusterDNS(big_state(), serial=7), ("127.0.0.1", up_port))
    port = loop.serve(handler, handler.tcp)
    web = ip_of(state, "default", "web")

    r = dnsquery.query("127.0.0.1", "web.default.svc.cluster.local", "A", port=port)
    assert (r.rcode, r.data(), r.flags, r.tcp) == (
        "NOERROR",
        [web],
        frozenset({"qr", "aa", "rd"}),
        False,
    )
    # Forwarded: the upstream's own reply (ra, not aa).
    r = dnsquery.query("127.0.0.1", "db.example.com", "A", port=port)
    assert (r.rcode, r.data(), "ra" in r.flags, "aa" in r.flags) == (
        "NOERROR",
        ["198.51.100.20"],
        True,
        False,
    )
    assert dnsquery.query("127.0.0.1", "nope.example.com", "A", port=port).rcode == "NXDOMAIN"
    # ExternalName completed through the upstream.
    r = dnsquery.query("127.0.0.1", "db.default.svc.cluster.local", "A", port=port)
    assert r.cname_chain == ("db.default.svc.cluster.local.", "db.example.com.")
    assert r.data() == ["198.51.100.20"] and "aa" in r.flags
    # 40 A records do not fit 512 bytes: truncated over UDP, complete over TCP.
    r = dnsquery.query(
        "127.0.0.1", "many.default.svc.cluster.local", "A", port=port, retry_tcp=False
    )
    assert "tc" in r.flags and len(r.answers) < 40
    r = dnsquery.query("127.0.0.1", "many.default.svc.cluster.local", "A", port=port)
    assert r.tcp and len(r.answers) == 40 and "tc" not in r.flags
    r = dnsquery.query("127.0.0.1", "many.default.svc.cluster.local", "A", port=port, edns=4096)
    assert not r.tcp and len(r.answers) == 40
    # A forwarded reply too big for the client is cut and retried over TCP end to end.
    r = dnsquery.query("127.0.0.1", "big.example.com", "A", port=port)
    assert r.tcp and len(r.answers) == 40
    # Over TCP from the start.
    r = dnsquery.query("127.0.0.1", "web.default.svc.cluster.local", "A", port=port, tcp=True)
    assert r.tcp and r.data() == [web]
    # Through the search path, with real queries.
    rc = ResolvConf(("127.0.0.1",), POD.search, 5)
    r = resolve(rc, "web", "A", query_fn=lambda s, n, t: dnsquery.query(s, n, t, port=port))
    assert r.data() == [web] and r.tried == ("web.default.svc.cluster.local.",)

    if shutil.which("dig") is None:
        pytest.skip("dig is not installed")
    out = subprocess.run(
        [
            "dig",
            "@127.0.0.1",
            "-p",
            str(port),
            "+short",
            "+time=2",
            "+tries=1",
            "web.default.svc.cluster.local",
        ],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    assert out.split() == [web]
    out = subprocess.run(
        [
            "dig",
            "@127.0.0.1",
            "-p",
            str(port),
            "+time=2",
            "+tries=1",
            "nope.default.svc.cluster.local",
        ],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    assert "status: NXDOMAIN" in out and "flags: qr aa rd;" in out
    assert "cluster.local.\t\t30\tIN\tSOA\tns.dns.cluster.local. hostmaster.cluster.local. 7" in out


def test_forward_retries_over_tcp_when_truncated(loop: Loop, dns: ClusterDNS) -> None:
    upstream = UpstreamDNS(OUTSIDE)

    async def truncating(data: bytes) -> bytes:
        return fit(upstream.handle(data, tcp=True), 40)  # every UDP reply truncated

    up_port = loop.serve(truncating, upstream.tcp)
    kinds: list[int] = []

    async def open_upstream(kind: int) -> socket.socket:
        kinds.append(kind)  # a lab opens this inside the DNS pod's namespace
        return socket.socket(socket.AF_INET, kind)

    handler = ClusterDNSHandler(dns, ("127.0.0.1", up_port), open_upstream=open_upstream)
    port = loop.serve(handler, handler.tcp)
    r = dnsquery.query("127.0.0.1", "db.example.com", "A", port=port, retry_tcp=False)
    assert r.data() == ["198.51.100.20"] and "tc" not in r.flags
    assert kinds == [socket.SOCK_DGRAM, socket.SOCK_STREAM]


def test_servfail_when_upstream_is_silent(loop: Loop, dns: ClusterDNS) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # bound, never answers
    silent.bind(("127.0.0.1", 0))
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # nothing there: refused
    closed.bind(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    try:
        for target in (silent.getsockname(), ("127.0.0.1", closed_port)):
            handler = ClusterDNSHandler(dns, target, timeout=0.3)
            port = loop.serve(handler, handler.tcp)
            r = dnsquery.query("127.0.0.1", "example.com", "A", port=port)
            assert (r.rcode, "aa" in r.flags) == ("SERVFAIL", False), target
            # The cluster's own names do not need the upstream.
            assert dnsquery.query(
                "127.0.0.1", "kubernetes.default.svc.cluster.local", "A", port=port
            ).ok
    finally:
        silent.close()


def test_query_timeout_and_garbage(loop: Loop, dns: ClusterDNS) -> None:
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    try:
        r = dnsquery.query("127.0.0.1", "web", "A", port=silent.getsockname()[1], timeout=0.2)
        assert (r.rcode, r.error, r.ok) == ("", "timeout", False)
    finally:
        silent.close()
    handler = ClusterDNSHandler(dns, ("127.0.0.1", 9))
    assert loop.run(handler.udp(b"\x12\x34\x01\x00garbage-after-header"))[:4] == b"\x12\x34\x81\x01"
    assert loop.run(handler.udp(b"\x00")) == b""


def _raw_query(name_wire: bytes, qtype: int = 1, qclass: int = 1, flags: int = 0x0100) -> bytes:
    return (
        b"\xab\xcd"
        + flags.to_bytes(2, "big")
        + b"\x00\x01"
        + bytes(6)
        + name_wire
        + (qtype.to_bytes(2, "big") + qclass.to_bytes(2, "big"))
    )


def test_what_coredns_answers_before_any_plugin(loop: Loop, dns: ClusterDNS) -> None:
    """core/dnsserver ServeDNS and miekg/dns's serveDNS: REFUSED for a class other than IN,
    BADVERS for an EDNS version above 0, FORMERR (never silence) for what does not unpack."""
    handler = ClusterDNSHandler(dns, ("127.0.0.1", 9))

    def reply(data: bytes) -> bytes:
        out: bytes = loop.run(handler.udp(data))
        return out

    chaos = dnslib.DNSRecord(
        dnslib.DNSHeader(id=7, rd=1), q=dnslib.DNSQuestion("version.bind", 16, 3)
    )
    r = dnslib.DNSRecord.parse(reply(chaos.pack()))
    assert (dnslib.RCODE[r.header.rcode], r.header.aa, r.header.rd, r.q.qclass) == (
        "REFUSED",
        0,
        1,
        3,
    )
    for qclass in (4, 255):  # HS, ANY
        raw = _raw_query(b"\x03web\x07default\x03svc\x07cluster\x05local\x00", qclass=qclass)
        assert dnslib.DNSRecord.parse(reply(raw)).header.rcode == dnslib.RCODE.REFUSED

    v1 = dnslib.DNSRecord.question("web.default.svc.cluster.local", "A")
    v1.add_ar(dnslib.EDNS0(udp_len=1232, version=1))
    r = dnslib.DNSRecord.parse(reply(v1.pack()))
    opt = [rr for rr in r.ar if rr.rtype == dnslib.QTYPE.OPT]
    assert r.header.rcode == 0 and r.rr == [] and len(opt) == 1
    assert (opt[0].ttl >> 24, (opt[0].ttl >> 16) & 0xFF, opt[0].rclass) == (1, 0, 0)  # BADVERS
    assert str(r.q.qname) == "web.default.svc.cluster.local."
    v0 = dnslib.DNSRecord.question("web.default.svc.cluster.local", "A")
    v0.add_ar(dnslib.EDNS0(udp_len=1232))
    assert dnslib.DNSRecord.parse(reply(v0.pack())).rr  # version 0 is answered

    # A label of 64 octets: length byte 0x40, a reserved label type. FORMERR, header only.
    long_label = _raw_query(b"\x40" + b"a" * 64 + b"\x00")
    out = reply(long_label)
    assert out == b"\xab\xcd\x81\x01" + bytes(8)
    # A name over 255 octets, a pointer loop, a cut-off question: FORMERR too.
    too_long = _raw_query(b"".join(b"\x3f" + b"b" * 63 for _ in range(4)) + b"\x00")
    loop_ptr = _raw_query(b"\xc0\x0c")
    for bad in (too_long, loop_ptr, long_label[:20]):
        assert reply(bad)[:4] == b"\xab\xcd\x81\x01", bad
    # Two questions: FORMERR; an opcode other than QUERY/NOTIFY: NOTIMP with that opcode;
    # a response: ignored.
    two = bytearray(_raw_query(b"\x00"))
    two[5] = 2
    assert reply(bytes(two)) == b"\xab\xcd\x81\x01" + bytes(8)
    update = _raw_query(b"\x00", flags=(5 << 11) | 0x0100)
    assert reply(update) == b"\xab\xcd" + ((1 << 15) | (5 << 11) | 0x0100 | 4).to_bytes(
        2, "big"
    ) + (bytes(8))
    assert reply(_raw_query(b"\x00", flags=0x8100)) == b""
    # The upstream stand-in refuses the same malformed input the same way, and still answers.
    assert UpstreamDNS(OUTSIDE).handle(long_label) == b"\xab\xcd\x81\x01" + bytes(8)
    assert UpstreamDNS(OUTSIDE).handle(dnslib.DNSRecord.question("db.example.com", "A").pack())


def test_dig_sees_badvers_and_refused(loop: Loop, dns: ClusterDNS) -> None:
    if shutil.which("dig") is None:
        pytest.skip("dig is not installed")
    handler = ClusterDNSHandler(dns, ("127.0.0.1", 9))
    port = loop.serve(handler, handler.tcp)

    def dig(*args: str) -> str:
        return subprocess.run(
            ["dig", "@127.0.0.1", "-p", str(port), "+time=2", "+tries=1", *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout

    assert "status: BADVERS" in dig(
        "+edns=1", "+noednsnegotiation", "web.default.svc.cluster.local"
    )
    assert "status: REFUSED" in dig("-c", "CH", "TXT", "version.bind")
    assert "status: NXDOMAIN" in dig("TXT", "nope.default.svc.cluster.local")
