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
    """``iptables-restore --noflush`` input for one node, one rule per ``write`` with its
    flag/value pairs grouped as the kube-proxy renderers write theirs."""
    nat_rules: list[str] = []

    def write(*args: str) -> None:
        nat_rules.append(" ".join(args))

    # fmt: off
    write(
        "-A", "POSTROUTING",
        "-s", cluster_cidr,
        "-m", "comment", "--comment", '"netlab cni: pod traffic leaving the cluster"',
        "-j", CHAIN)
    write(
        "-A", CHAIN,
        "-d", cluster_cidr,
        "-m", "comment", "--comment", '"pod to pod: no masquerade"',
        "-j", "RETURN")
    write(
        "-A", CHAIN,
        "-m", "comment", "--comment", '"to the outside: masquerade"',
        "-j", "MASQUERADE", "--random-fully")
    # fmt: on
    return "\n".join(["*nat", f":{CHAIN} - [0:0]", *nat_rules, "COMMIT", ""])
