"""The pod network's own iptables rules: masquerade pod traffic that leaves the cluster network.

Every CNI that routes pod CIDRs between nodes (flannel, kindnet, the bridge plugin with ipMasq)
masquerades traffic from pods to the outside world, or the outside could not answer pods.
netlab's CNI does the same with one honestly named chain, so on a node a learner sees
kube-proxy's chains and, apart, the CNI's:

    -A POSTROUTING -s <podCIDR> -m comment --comment "netlab cni: pod traffic leaving the
       cluster" -j NETLAB-CNI-MASQ
    -A NETLAB-CNI-MASQ -d <podCIDR> -m comment --comment "pod to pod: no masquerade" -j RETURN
    -A NETLAB-CNI-MASQ -m comment --comment "to the outside: masquerade" -j MASQUERADE
       --random-fully

Pure rendering; the lab applies it once per node before kube-proxy's first sync, so kube-proxy's
prepended KUBE-POSTROUTING jump ends up first, as on a real node.
"""

from __future__ import annotations

CHAIN = "NETLAB-CNI-MASQ"


def render(cluster_cidr: str) -> str:
    """``iptables-restore --noflush`` input for one node."""
    leaving = '"netlab cni: pod traffic leaving the cluster"'
    return "\n".join(
        [
            "*nat",
            f":{CHAIN} - [0:0]",
            f"-A POSTROUTING -s {cluster_cidr} -m comment --comment {leaving} -j {CHAIN}",
            f'-A {CHAIN} -d {cluster_cidr} -m comment --comment "pod to pod: no masquerade" '
            "-j RETURN",
            f'-A {CHAIN} -m comment --comment "to the outside: masquerade" -j MASQUERADE '
            "--random-fully",
            "COMMIT",
            "",
        ]
    )
