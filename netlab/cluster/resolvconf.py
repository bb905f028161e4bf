"""A pod's resolv.conf as kubelet decides it: the parts that choose which names a lookup tries.

Pure data: the topology plan writes it into each pod's ``/etc/netns/<pod>/resolv.conf``, the
checks know what a pod's resolver will try, and the stub resolver follows it.
"""

from __future__ import annotations

from dataclasses import dataclass

MAXNDOTS = 15  # glibc caps options ndots at RES_MAXNDOTS


@dataclass(frozen=True)
class ResolvConf:
    """The parts of resolv.conf that decide which names a lookup tries."""

    nameservers: tuple[str, ...]
    search: tuple[str, ...] = ()
    ndots: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "nameservers", tuple(self.nameservers))
        object.__setattr__(self, "search", tuple(self.search))
        object.__setattr__(self, "ndots", max(0, min(self.ndots, MAXNDOTS)))

    @classmethod
    def for_pod(
        cls, namespace: str, dns_ip: str = "10.96.0.10", zone: str = "cluster.local"
    ) -> ResolvConf:
        """Kubernetes' ``dnsPolicy: ClusterFirst``: the cluster DNS, three searches, ndots:5.

        (kubelet's generateSearchesForDNSClusterFirst; the node's own search domains would
        follow, and a lab node has none.)
        """
        search = (f"{namespace}.svc.{zone}", f"svc.{zone}", zone)
        return cls((dns_ip,), search, 5)

    @classmethod
    def parse(cls, text: str) -> ResolvConf:
        """Read resolv.conf text: the last search/domain line wins, as in glibc."""
        servers: list[str] = []
        search: list[str] = []
        ndots = 1
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
                for opt in args:
                    if opt.startswith("ndots:") and opt[6:].isdigit():
                        ndots = int(opt[6:])
        return cls(tuple(servers), tuple(search), ndots)

    def render(self) -> str:
        """resolv.conf as the container runtime writes it for kubelet's DNS config.

        containerd's parseDNSOptions (and CRI-O's): ``search``, then ``nameserver`` lines, then
        ``options``; kubelet passes ``ndots:5`` as the only option for ClusterFirst.
        """
        lines = []
        if self.search:
            lines.append("search " + " ".join(self.search))
        lines += [f"nameserver {s}" for s in self.nameservers]
        if self.ndots != 1:
            lines.append(f"options ndots:{self.ndots}")
        return "".join(line + "\n" for line in lines)
