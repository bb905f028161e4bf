"""kube-proxy's names for per-Service and per-endpoint state, computed as upstream computes them.

iptables: ``portProtoHash`` = base32(sha256(servicePortName + protocol))[:16]; nftables:
``hashAndTruncate`` = base32(sha256(name))[:8] + "-" + name. A learner who sees
``KUBE-SVC-TCOU7JCQXEZGVUNU`` here sees the same chain on a real node.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class ServicePortName:
    """proxy.ServicePortName: namespace/name plus the port's name, and its protocol."""

    namespace: str
    name: str
    port: str
    protocol: str  # "TCP" | "UDP" | "SCTP"

    def __str__(self) -> str:
        """``ns/name:port``, or ``ns/name`` for an unnamed port (ServicePortName.String)."""
        base = f"{self.namespace}/{self.name}"
        return f"{base}:{self.port}" if self.port else base

    @property
    def proto(self) -> str:
        return self.protocol.lower()


def _b32sha(text: str) -> str:
    return base64.b32encode(hashlib.sha256(text.encode()).digest()).decode()


def port_proto_hash(spn: ServicePortName) -> str:
    return _b32sha(str(spn) + spn.proto)[:16]


def svc_chain(spn: ServicePortName) -> str:
    return "KUBE-SVC-" + port_proto_hash(spn)


def svl_chain(spn: ServicePortName) -> str:
    return "KUBE-SVL-" + port_proto_hash(spn)


def ext_chain(spn: ServicePortName) -> str:
    return "KUBE-EXT-" + port_proto_hash(spn)


def fw_chain(spn: ServicePortName) -> str:
    return "KUBE-FW-" + port_proto_hash(spn)


def sep_chain(spn: ServicePortName, endpoint: str) -> str:
    """``endpoint`` is ``IP:port`` (net.JoinHostPort form)."""
    return "KUBE-SEP-" + _b32sha(str(spn) + spn.proto + endpoint)[:16]


SERVICE_CHAIN_PREFIXES = ("KUBE-SVC-", "KUBE-SVL-", "KUBE-EXT-", "KUBE-FW-", "KUBE-SEP-")


def is_service_chain(name: str) -> bool:
    return name.startswith(SERVICE_CHAIN_PREFIXES)


# nftables names (pkg/proxy/nftables/proxier.go)

NFT_NAME_LENGTH_MAX = 256  # knftables.NameLengthMax


def hash_and_truncate(name: str) -> str:
    """``base32(sha256(name))[:8] + "-" + name``, truncated with "..." to stay within limits."""
    full = _b32sha(name)[:8] + "-" + name
    limit = NFT_NAME_LENGTH_MAX - 16
    if len(full) > limit:
        full = full[: limit - 3] + "..."
    return full


def nft_service_name(spn: ServicePortName) -> str:
    """``<ns>/<svc>/<proto>/<portName>`` (servicePortChainNameBase)."""
    return f"{spn.namespace}/{spn.name}/{spn.proto}/{spn.port}"


def nft_endpoint_name(spn: ServicePortName, ip: str, port: int) -> str:
    """``<ns>/<svc>/<proto>/<portName>__<ip>/<port>`` (servicePortEndpointChainNameBase)."""
    return f"{nft_service_name(spn)}__{ip.replace(':', '.')}/{port}"
