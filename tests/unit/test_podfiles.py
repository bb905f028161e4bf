"""What kubelet writes into a pod: resolv.conf for each dnsPolicy (GetPodDNS in
kubernetes/kubernetes pkg/kubelet/network/dns/dns.go) and the managed hosts file, and what a
pod's libc makes of the hosts file."""

from __future__ import annotations

import textwrap

from netlab.cluster.build import build_cluster
from netlab.cluster.podfiles import pod_hosts, pod_resolver, source_hosts
from netlab.cluster.resolvconf import ResolvConf, for_pod_policy, pod_dns_type
from netlab.cluster.topology import plan
from netlab.scenario.k8s import PodDNSConfig, PodDNSConfigOption
from netlab.scenario.load import parse_scenario

SCENARIO = textwrap.dedent(
    """\
    apiVersion: netlab.dev/v1alpha1
    kind: Lab
    metadata: {name: pf}
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: first}
    spec:
      containers: [{name: c, image: x}]
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: host}
    spec:
      dnsPolicy: Default
      containers: [{name: c, image: x}]
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: own}
    spec:
      dnsPolicy: None
      dnsConfig:
        nameservers: [10.96.0.10, 192.0.2.53]
        searches: [default.svc.cluster.local, example.com]
        options: [{name: ndots, value: "2"}, {name: edns0}]
      containers: [{name: c, image: x}]
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: extra, namespace: kube-public}
    spec:
      dnsConfig:
        searches: [example.com]
        options: [{name: ndots, value: "1"}, {name: timeout, value: "2"}]
      containers: [{name: c, image: x}]
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: hostnet}
    spec:
      hostNetwork: true
      dnsPolicy: ClusterFirstWithHostNet
      containers: [{name: c, image: x}]
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: hostnet-default}
    spec:
      hostNetwork: true
      containers: [{name: c, image: x}]
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: db-0}
    spec:
      hostname: db-0
      subdomain: db
      containers: [{name: c, image: x}]
    ---
    apiVersion: v1
    kind: Pod
    metadata: {name: named}
    spec:
      subdomain: db
      containers: [{name: c, image: x}]
    """
)
STATE = build_cluster(parse_scenario(SCENARIO, "pf.yaml"))
ROUTER = STATE.external.router_ip


def resolv_of(name: str, namespace: str = "default") -> str:
    return pod_resolver(STATE, STATE.pod(namespace, name)).render()


def test_cluster_first_is_the_cluster_dns_with_three_searches() -> None:
    assert resolv_of("first") == (
        "search default.svc.cluster.local svc.cluster.local cluster.local\n"
        "nameserver 10.96.0.10\n"
        "options ndots:5\n"
    )


def test_default_is_the_node_resolver() -> None:
    assert resolv_of("host") == f"nameserver {ROUTER}\n"


def test_none_takes_only_dns_config() -> None:
    assert resolv_of("own") == (
        "search default.svc.cluster.local example.com\n"
        "nameserver 10.96.0.10\n"
        "nameserver 192.0.2.53\n"
        "options ndots:2 edns0\n"
    )
    assert pod_resolver(STATE, STATE.pod("default", "own")).ndots == 2


def test_dns_config_is_merged_into_cluster_first() -> None:
    """Searches and servers are appended; an option of the same name replaces kubelet's."""
    assert resolv_of("extra", "kube-public") == (
        "search kube-public.svc.cluster.local svc.cluster.local cluster.local example.com\n"
        "nameserver 10.96.0.10\n"
        "options ndots:1 timeout:2\n"
    )


def test_host_network_pods() -> None:
    """ClusterFirst falls back to Default on the host network; ClusterFirstWithHostNet does not."""
    assert resolv_of("hostnet-default") == f"nameserver {ROUTER}\n"
    assert resolv_of("hostnet").startswith("search default.svc.cluster.local ")
    assert pod_dns_type("ClusterFirst", host_network=True) == "host"
    assert pod_dns_type("ClusterFirstWithHostNet", host_network=False) == "cluster"
    assert pod_dns_type("None", host_network=True) == "none"


def test_the_dns_pods_use_default_as_kubeadm_installs_them() -> None:
    coredns = [p for p in STATE.pods if p.runs == "coredns"]
    assert coredns and all(p.dns_policy == "Default" for p in coredns)
    assert {pod_resolver(STATE, p).render() for p in coredns} == {f"nameserver {ROUTER}\n"}


def test_without_cluster_dns_cluster_first_falls_back_to_the_node() -> None:
    host = ResolvConf(("192.168.56.100",))
    rc = for_pod_policy(
        "default", "ClusterFirst", False, None, host=host, cluster_dns="", zone="cluster.local"
    )
    assert rc == host


def test_kubelet_limits() -> None:
    config = PodDNSConfig(
        nameservers=["10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"],
        searches=[f"d{i}.example" for i in range(40)],
        options=[PodDNSConfigOption("ndots", "3")],
    )
    rc = for_pod_policy(
        "ns", "None", False, config, host=ResolvConf(()), cluster_dns="", zone="cluster.local"
    )
    assert rc.nameservers == ("10.0.0.1", "10.0.0.2", "10.0.0.3")
    assert len(rc.search) == 32
    assert rc.ndots == 3


def test_resolv_conf_options_round_trip() -> None:
    rc = ResolvConf(("10.96.0.10",), ("a",), options=("ndots:2", "edns0", "rotate"))
    assert ResolvConf.parse(rc.render()) == rc
    assert rc.ndots == 2
    assert ResolvConf(("1.1.1.1",), ndots=5).options == ("ndots:5",)


def test_topology_writes_each_pods_files() -> None:
    files = {(f.netns, f.name): f.content for f in plan(STATE).files}
    assert files[("pf-own", "resolv.conf")] == resolv_of("own")
    assert files[("pf-host", "resolv.conf")] == f"nameserver {ROUTER}\n"
    coredns = next(p for p in STATE.pods if p.runs == "coredns")
    assert files[(coredns.netns, "resolv.conf")] == f"nameserver {ROUTER}\n"
    assert ("pf-hostnet", "resolv.conf") not in files  # host network: the node's files


def test_managed_hosts_file() -> None:
    db0 = STATE.pod("default", "db-0")
    text = pod_hosts(STATE, db0).render()
    assert text == (
        "# Kubernetes-managed hosts file.\n"
        "127.0.0.1\tlocalhost\n"
        "::1\tlocalhost ip6-localhost ip6-loopback\n"
        "fe00::0\tip6-localnet\n"
        "fe00::0\tip6-mcastprefix\n"
        "fe00::1\tip6-allnodes\n"
        "fe00::2\tip6-allrouters\n"
        f"{db0.ip}\tdb-0.db.default.svc.cluster.local\tdb-0\n"
    )
    # A subdomain without a hostname: the pod's name is its hostname.
    named = STATE.pod("default", "named")
    assert pod_hosts(STATE, named).entries[-1] == (
        named.ip,
        "named.db.default.svc.cluster.local\tnamed",
    )


def test_hosts_lookup_is_exact_and_case_insensitive() -> None:
    db0 = STATE.pod("default", "db-0")
    hosts = pod_hosts(STATE, db0)
    assert hosts.lookup("db-0") == db0.ip
    assert hosts.lookup("DB-0.db.default.svc.cluster.local") == db0.ip
    assert hosts.lookup("localhost") == "127.0.0.1"  # the IPv4 line, not ::1
    assert hosts.lookup("db-0.db") is None  # no search list in a hosts file
    assert hosts.lookup("db-0.db.default.svc.cluster.local.") is None
    assert hosts.lookup("first") is None
    assert source_hosts(STATE, None).lookup("localhost") == "127.0.0.1"
    assert source_hosts(STATE, STATE.pod("default", "hostnet")).lookup("hostnet") is None
