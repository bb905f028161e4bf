"""The files kubelet writes for a pod: its resolv.conf (``GetPodDNS``) and its managed hosts file
(kubernetes/kubernetes ``pkg/kubelet/kubelet_pods.go``, ``managedHostsFileContent``).

Pure: the topology plan writes them under ``/etc/netns/<pod>/`` (which ``ip netns exec`` binds
over ``/etc``), and the checks resolve names from a pod the way its libc does: the hosts file
first, then DNS (nsswitch ``hosts: files dns``).
"""

from __future__ import annotations

from dataclasses import dataclass

from netlab.cluster.resolvconf import ResolvConf, for_pod_policy
from netlab.cluster.state import ClusterState, PodInfo

MANAGED_HOSTS_HEADER = "# Kubernetes-managed hosts file.\n"
KUBE_DNS = ("kube-system", "kube-dns")


def cluster_dns_ip(state: ClusterState) -> str:
    """kubelet's ``--cluster-dns``: the kube-dns Service's ClusterIP ("" without cluster DNS)."""
    return next(
        (s.cluster_ip for s in state.services if (s.meta.namespace, s.meta.name) == KUBE_DNS),
        "",
    )


def node_resolver(state: ClusterState) -> ResolvConf:
    """A lab node's own /etc/resolv.conf: the outside world's DNS server, no search list."""
    return ResolvConf((state.external.router_ip,))


def pod_resolver(state: ClusterState, pod: PodInfo) -> ResolvConf:
    """The resolv.conf kubelet gives ``pod`` for its dnsPolicy and dnsConfig."""
    return for_pod_policy(
        pod.namespace,
        pod.dns_policy,
        pod.host_network,
        pod.dns_config,
        host=node_resolver(state),
        cluster_dns=cluster_dns_ip(state),
        zone=state.lab.dns.domain,
    )


@dataclass(frozen=True)
class HostsFile:
    """/etc/hosts: each line's address and its names as written (kubelet separates the pod's
    names with a tab, the localhost ones with spaces), in file order."""

    entries: tuple[tuple[str, str], ...]

    def lookup(self, name: str) -> str | None:
        """glibc's files lookup (IPv4): the first line naming ``name`` (any case), or None.

        Names are compared as written: a hosts file knows no search list, and a trailing dot
        makes a different name.
        """
        want = name.lower()
        for address, names in self.entries:
            if ":" in address:
                continue
            if any(n.lower() == want for n in names.split()):
                return address
        return None

    def render(self) -> str:
        return MANAGED_HOSTS_HEADER + "".join(
            f"{address}\t{names}\n" for address, names in self.entries
        )


def pod_hosts(state: ClusterState, pod: PodInfo) -> HostsFile:
    """managedHostsFileContent: localhost lines, then the pod's IP with its hostname (and its
    FQDN first when it has a subdomain: ``<hostname>.<subdomain>.<ns>.svc.<zone>``)."""
    hostname = pod.hostname or pod.name
    names = hostname
    if pod.subdomain:
        domain = f"{pod.subdomain}.{pod.namespace}.svc.{state.lab.dns.domain}"
        names = f"{hostname}.{domain}\t{hostname}"
    return HostsFile(
        (
            ("127.0.0.1", "localhost"),
            ("::1", "localhost ip6-localhost ip6-loopback"),
            ("fe00::0", "ip6-localnet"),
            ("fe00::0", "ip6-mcastprefix"),
            ("fe00::1", "ip6-allnodes"),
            ("fe00::2", "ip6-allrouters"),
            (pod.ip, names),
        )
    )


def source_hosts(state: ClusterState, pod: PodInfo | None) -> HostsFile:
    """The hosts file a client sees: a pod's managed one; a node or the outside world get only
    localhost (their /etc/hosts is the machine's own, which the lab does not write)."""
    if pod is not None and not pod.host_network:
        return pod_hosts(state, pod)
    return HostsFile((("127.0.0.1", "localhost"),))
