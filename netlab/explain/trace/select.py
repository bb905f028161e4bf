"""Which packets to trace, written as the kernel takes it: iptables ``TRACE`` rules in the raw
table, or a table of its own that sets ``meta nftrace`` (pure text; :mod:`netlab.kernel.tracing`
applies and removes it).

Tracing is switched on for the traced connection only: packets from the client's own socket
(its address and the source port it was bound to) and to it, ICMP errors sent to it, and
packets to or from the Service's endpoints (after DNAT and masquerade the backend's node sees
the connection under another source, which is only known afterwards; the report keeps only the
packets of the connection itself). Both hook where a packet first enters the node's netfilter:
PREROUTING for packets that arrive, OUTPUT for packets the node sends itself.
"""

from __future__ import annotations

from dataclasses import dataclass

TRACE_COMMENT = "netlab trace"
NFT_TABLE = "netlab-trace"
NFT_PRIORITY = -350  # before conntrack (-200), kube-proxy's (-110/-100) and iptables' raw (-300)


@dataclass(frozen=True)
class FlowSelect:
    protocol: str  # "tcp" | "udp"
    client_ip: str
    client_port: int
    endpoints: tuple[tuple[str, int], ...] = ()  # (ip, port) of every backend

    def iptables_matches(self) -> list[list[str]]:
        """The match part of each TRACE rule (one list of words per rule)."""
        p = self.protocol
        out = [
            ["-p", p, "-s", self.client_ip, "--sport", str(self.client_port)],
            ["-p", p, "-d", self.client_ip, "--dport", str(self.client_port)],
            ["-p", "icmp", "-d", self.client_ip],
        ]
        for ip, port in self.endpoints:
            out.append(["-p", p, "-d", ip, "--dport", str(port)])
            out.append(["-p", p, "-s", ip, "--sport", str(port)])
        return out

    def iptables_restore(self, command: str) -> str:
        """``iptables-restore --noflush`` input that inserts (``-I``) or deletes (``-D``) the
        TRACE rules of PREROUTING and OUTPUT in the raw table."""
        lines = ["*raw"]
        for chain in ("PREROUTING", "OUTPUT"):
            for match in self.iptables_matches():
                where = [chain, "1"] if command == "-I" else [chain]
                words = [command, *where, *match, "-m", "comment", "--comment"]
                lines.append(" ".join(words) + f' "{TRACE_COMMENT}" -j TRACE')
        return "\n".join([*lines, "COMMIT"]) + "\n"

    def nft_matches(self) -> list[str]:
        p = self.protocol
        out = [
            f"ip saddr {self.client_ip} {p} sport {self.client_port}",
            f"ip daddr {self.client_ip} {p} dport {self.client_port}",
            f"ip daddr {self.client_ip} ip protocol icmp",
        ]
        for ip, port in self.endpoints:
            out.append(f"ip daddr {ip} {p} dport {port}")
            out.append(f"ip saddr {ip} {p} sport {port}")
        return out

    def nft_table(self) -> str:
        """``nft -f`` input creating a table of its own with the nftrace rules."""
        rules = "".join(f"\t\t{m} meta nftrace set 1\n" for m in self.nft_matches())
        chains = "".join(
            f"\tchain {hook} {{\n"
            f"\t\ttype filter hook {hook} priority {NFT_PRIORITY}; policy accept;\n"
            f"{rules}\t}}\n"
            for hook in ("prerouting", "output")
        )
        return f"table ip {NFT_TABLE} {{\n{chains}}}\n"
