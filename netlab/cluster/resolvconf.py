"""A pod's resolv.conf as kubelet decides it (kubernetes/kubernetes
``pkg/kubelet/network/dns/dns.go``, ``GetPodDNS``), and the parts that choose which names a
lookup tries.

Pure data: the topology plan writes it into each pod's ``/etc/netns/<pod>/resolv.conf``, the
checks know what a pod's resolver will try, and the stub resolver follows it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from netlab.scenario.k8s import PodDNSConfig

MAXNDOTS = 15  # glibc caps options ndots at RES_MAXNDOTS
# kubelet's limits (pkg/apis/core/validation: MaxDNSNameservers, MaxDNSSearchPaths,
# MaxDNSSearchListChars): formDNSConfigFitsLimits cuts what goes beyond them.
MAX_NAMESERVERS = 3
MAX_SEARCH_PATHS = 32
MAX_SEARCH_CHARS = 2048
DEFAULT_DNS_OPTIONS = ("ndots:5",)  # kubelet's defaultDNSOptions for ClusterFirst


def _ndots(options: Iterable[str]) -> int | None:
    """The last ``ndots:N`` among ``options`` (glibc reads them in order), if any."""
    found = None
    for opt in options:
        if opt.startswith("ndots:") and opt[6:].isdigit():
            found = int(opt[6:])
    return found


@dataclass(frozen=True)
class ResolvConf:
    """resolv.conf: nameservers, search list and options, in the order they are written.

    ``ndots`` is the effective value; an ``ndots`` given apart from ``options`` is written
    first among them (how kubelet's ClusterFirst config reads).
    """

    nameservers: tuple[str, ...]
    search: tuple[str, ...] = ()
    ndots: int = 1
    options: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        options = tuple(self.options)
        given = _ndots(options)
        if given is None and self.ndots != 1:
            options = (f"ndots:{self.ndots}", *options)
        ndots = given if given is not None else self.ndots
        object.__setattr__(self, "nameservers", tuple(self.nameservers))
        object.__setattr__(self, "search", tuple(self.search))
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "ndots", max(0, min(ndots, MAXNDOTS)))

    @classmethod
    def for_pod(
        cls, namespace: str, dns_ip: str = "10.96.0.10", zone: str = "cluster.local"
    ) -> ResolvConf:
        """Kubernetes' ``dnsPolicy: ClusterFirst``: the cluster DNS, three searches, ndots:5.

        (kubelet's generateSearchesForDNSClusterFirst; the node's own search domains would
        follow, and a lab node has none.)
        """
        search = (f"{namespace}.svc.{zone}", f"svc.{zone}", zone)
        return cls((dns_ip,), search, options=DEFAULT_DNS_OPTIONS)

    @classmethod
    def parse(cls, text: str) -> ResolvConf:
        """Read resolv.conf text: the last search/domain line wins, as in glibc."""
        servers: list[str] = []
        search: list[str] = []
        options: list[str] = []
        for line in text.splitlines():
            words = line.split("#", 1)[0].split(";", 1)[0].split()
            if not words:
                continue
            key, args = words[0], words[1:]
            if key == "nameserver" and args:
                servers.append(args[0])
            elif key in ("search", "domain"):
                search = args if key == "search" else args[:1]
            elif key == "options":
                options += args
        return cls(tuple(servers), tuple(search), options=tuple(options))

    def render(self) -> str:
        """resolv.conf as the container runtime writes it for kubelet's DNS config.

        containerd's parseDNSOptions (and CRI-O's): ``search``, then ``nameserver`` lines, then
        ``options``.
        """
        lines = []
        if self.search:
            lines.append("search " + " ".join(self.search))
        lines += [f"nameserver {s}" for s in self.nameservers]
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "".join(line + "\n" for line in lines)


def _omit_duplicates(items: Iterable[str]) -> tuple[str, ...]:
    """omitDuplicates: first occurrence wins, order kept."""
    return tuple(dict.fromkeys(items))


def _merge_options(existing: Iterable[str], config: PodDNSConfig) -> tuple[str, ...]:
    """mergeDNSOptions: dnsConfig's options override existing ones of the same name.

    kubelet collects them in a Go map, so their order on a node is random; netlab keeps the
    existing ones first, in order, then the new ones, so files are stable.
    """
    merged: dict[str, str] = {}
    for op in existing:
        name, sep, value = op.partition(":")
        merged[name] = value if sep else ""
    for o in config.options:
        merged[o.name] = o.value or ""
    return tuple(f"{k}:{v}" if v else k for k, v in merged.items())


def _fit_search(search: tuple[str, ...]) -> tuple[str, ...]:
    """formDNSSearchFitsLimits: at most 32 domains and 2048 characters (joined by spaces)."""
    out: list[str] = []
    size = 0
    for domain in search[:MAX_SEARCH_PATHS]:
        size += len(domain) + (1 if out else 0)
        if size > MAX_SEARCH_CHARS:
            break
        out.append(domain)
    return tuple(out)


def pod_dns_type(policy: str, host_network: bool) -> str:
    """getPodDNSType: "cluster", "host" or "none". ClusterFirst on the host network falls back
    to the node's resolver (Default); ClusterFirstWithHostNet does not."""
    if policy == "None":
        return "none"
    if policy == "ClusterFirstWithHostNet":
        return "cluster"
    if policy == "Default" or (policy == "ClusterFirst" and host_network):
        return "host"
    return "cluster"


def for_pod_policy(
    namespace: str,
    policy: str,
    host_network: bool,
    config: PodDNSConfig | None,
    *,
    host: ResolvConf,
    cluster_dns: str,
    zone: str,
) -> ResolvConf:
    """GetPodDNS: the resolver configuration kubelet gives a pod.

    ``host`` is the node's own resolv.conf (kubelet's ``--resolv-conf``); ``cluster_dns`` the
    cluster DNS address ("" when the lab has none: ClusterFirst then falls back to Default, as
    kubelet does without ``--cluster-dns``).
    """
    kind = pod_dns_type(policy, host_network)
    if kind == "cluster" and not cluster_dns:
        kind = "host"
    if kind == "none":
        base = ResolvConf(())
    elif kind == "cluster":
        search = (f"{namespace}.svc.{zone}", f"svc.{zone}", zone, *host.search)
        base = ResolvConf((cluster_dns,), _omit_duplicates(search), options=DEFAULT_DNS_OPTIONS)
    else:
        base = host
    if config is None:
        servers, search, options = base.nameservers, base.search, base.options
    else:
        servers = _omit_duplicates((*base.nameservers, *config.nameservers))
        search = _omit_duplicates((*base.search, *config.searches))
        options = _merge_options(base.options, config)
    return ResolvConf(servers[:MAX_NAMESERVERS], _fit_search(tuple(search)), options=options)
