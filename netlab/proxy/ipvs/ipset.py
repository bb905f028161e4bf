"""IPVS mode's ipsets: names, types, comments, and the ``ipset restore`` text that fills them.

This follows kubernetes/kubernetes ``pkg/proxy/ipvs/ipset.go`` (the set names, ``createSet``'s
options, ``getComment``, ``syncIPSetEntries``) and ``ipsetInfo`` in ``pkg/proxy/ipvs/proxier.go``
(v1.33). Which entries go into which set is decided by :mod:`netlab.proxy.ipvs.render`; the
iptables rules that match the sets are written there too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

# ipset names (ipset.go). IPv6 would prefix "KUBE-6-"; netlab is IPv4-only.
LOOP_BACK = "KUBE-LOOP-BACK"
CLUSTER_IP = "KUBE-CLUSTER-IP"
EXTERNAL_IP = "KUBE-EXTERNAL-IP"
EXTERNAL_IP_LOCAL = "KUBE-EXTERNAL-IP-LOCAL"
LOAD_BALANCER = "KUBE-LOAD-BALANCER"
LOAD_BALANCER_FW = "KUBE-LOAD-BALANCER-FW"
LOAD_BALANCER_LOCAL = "KUBE-LOAD-BALANCER-LOCAL"
LOAD_BALANCER_SOURCE_IP = "KUBE-LOAD-BALANCER-SOURCE-IP"
LOAD_BALANCER_SOURCE_CIDR = "KUBE-LOAD-BALANCER-SOURCE-CIDR"
NODE_PORT_TCP = "KUBE-NODE-PORT-TCP"
NODE_PORT_LOCAL_TCP = "KUBE-NODE-PORT-LOCAL-TCP"
NODE_PORT_UDP = "KUBE-NODE-PORT-UDP"
NODE_PORT_LOCAL_UDP = "KUBE-NODE-PORT-LOCAL-UDP"
NODE_PORT_SCTP = "KUBE-NODE-PORT-SCTP-HASH"
NODE_PORT_LOCAL_SCTP = "KUBE-NODE-PORT-LOCAL-SCTP-HASH"
HEALTH_CHECK_NODE_PORT = "KUBE-HEALTH-CHECK-NODE-PORT"
IPVS_IPS = "KUBE-IPVS-IPS"

HASH_IP = "hash:ip"
HASH_IP_PORT = "hash:ip,port"
HASH_IP_PORT_IP = "hash:ip,port,ip"
HASH_IP_PORT_NET = "hash:ip,port,net"
BITMAP_PORT = "bitmap:port"

# ipsetInfo (proxier.go), in upstream order: (name, type, comment).
# fmt: off
IPSET_INFO: tuple[tuple[str, str, str], ...] = (
    (LOOP_BACK, HASH_IP_PORT_IP,
     "Kubernetes endpoints dst ip:port, source ip for solving hairpin purpose"),
    (CLUSTER_IP, HASH_IP_PORT, "Kubernetes service cluster ip + port for masquerade purpose"),
    (EXTERNAL_IP, HASH_IP_PORT,
     "Kubernetes service external ip + port for masquerade and filter purpose"),
    (EXTERNAL_IP_LOCAL, HASH_IP_PORT,
     "Kubernetes service external ip + port with externalTrafficPolicy=local"),
    (LOAD_BALANCER, HASH_IP_PORT, "Kubernetes service lb portal"),
    (LOAD_BALANCER_FW, HASH_IP_PORT,
     "Kubernetes service load balancer ip + port for load balancer with sourceRange"),
    (LOAD_BALANCER_LOCAL, HASH_IP_PORT,
     "Kubernetes service load balancer ip + port with externalTrafficPolicy=local"),
    (LOAD_BALANCER_SOURCE_IP, HASH_IP_PORT_IP,
     "Kubernetes service load balancer ip + port + source IP for packet filter purpose"),
    (LOAD_BALANCER_SOURCE_CIDR, HASH_IP_PORT_NET,
     "Kubernetes service load balancer ip + port + source cidr for packet filter purpose"),
    (NODE_PORT_TCP, BITMAP_PORT, "Kubernetes nodeport TCP port for masquerade purpose"),
    (NODE_PORT_LOCAL_TCP, BITMAP_PORT,
     "Kubernetes nodeport TCP port with externalTrafficPolicy=local"),
    (NODE_PORT_UDP, BITMAP_PORT, "Kubernetes nodeport UDP port for masquerade purpose"),
    (NODE_PORT_LOCAL_UDP, BITMAP_PORT,
     "Kubernetes nodeport UDP port with externalTrafficPolicy=local"),
    (NODE_PORT_SCTP, HASH_IP_PORT,
     "Kubernetes nodeport SCTP port for masquerade purpose with type 'hash ip:port'"),
    (NODE_PORT_LOCAL_SCTP, HASH_IP_PORT,
     "Kubernetes nodeport SCTP port with externalTrafficPolicy=local with type 'hash ip:port'"),
    (HEALTH_CHECK_NODE_PORT, BITMAP_PORT, "Kubernetes health check node port"),
    (IPVS_IPS, HASH_IP, "Addresses on the ipvs interface"),
)
# fmt: on
IPSET_TYPES = {name: kind for name, kind, _ in IPSET_INFO}
IPSET_COMMENTS = {name: comment for name, _, comment in IPSET_INFO}

# ipset.go createSet defaults (setIPSetDefaults): hash sets and the bitmap:port range.
HASH_SIZE = 1024
MAX_ELEM = 65536
PORT_RANGE = "0-65535"


@dataclass(frozen=True)
class IpSet:
    name: str
    type: str
    comment: str  # used in the iptables rules that match the set (getComment)
    entries: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        """IPSet.isEmpty: no active entries."""
        return not self.entries

    def get_comment(self) -> str:
        """IPSet.getComment: the comment, quoted for an iptables ``--comment``."""
        return f'"{self.comment}"'

    def create_line(self) -> str:
        """ipset.go createSet: ``create NAME TYPE <options> -exist``."""
        if self.type == BITMAP_PORT:
            opts = f"range {PORT_RANGE}"
        else:
            opts = f"family inet hashsize {HASH_SIZE} maxelem {MAX_ELEM}"
        return f"create {self.name} {self.type} {opts} -exist"


def restore_text(
    ipsets: Iterable[IpSet], existing: Mapping[str, Iterable[str]] | None = None
) -> str:
    """The ``ipset restore`` input that leaves every set holding exactly its entries.

    Every set is created with ``-exist`` (ensureIPSet), so repeated syncs are harmless.
    With ``existing`` (set name -> entries, from :func:`parse_ipset_save`) this is
    upstream's syncIPSetEntries: ``del`` the stale entries, ``add`` the missing ones, and
    nothing is ever briefly missing from a set. Without it (a fresh node) each set is
    flushed and filled, which also removes whatever a set held before.
    """
    out: list[str] = []
    for s in ipsets:
        out.append(s.create_line())
        if existing is None:
            out.append(f"flush {s.name}")
            out += [f"add {s.name} {e} -exist" for e in s.entries]
            continue
        have = {canonical_entry(e) for e in existing.get(s.name, ())}
        want = {canonical_entry(e): e for e in s.entries}
        out += [f"del {s.name} {e} -exist" for e in sorted(have - set(want))]
        out += [f"add {s.name} {want[e]} -exist" for e in sorted(set(want) - have)]
    return "\n".join(out) + "\n"


def canonical_entry(entry: str) -> str:
    """An entry as ``ipset save`` prints it: first word only, and no ``/32`` on a host net."""
    word = entry.split()[0] if entry.strip() else ""
    return word[:-3] if word.endswith("/32") else word


def parse_ipset_save(text: str) -> dict[str, set[str]]:
    """``ipset save`` output -> set name -> entries (canonical), for every listed set."""
    out: dict[str, set[str]] = {}
    for line in text.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "create":
            out.setdefault(words[1], set())
        elif len(words) >= 3 and words[0] == "add":
            out.setdefault(words[1], set()).add(canonical_entry(words[2]))
    return out
