"""netlab.proxy.naming: kube-proxy's chain and set names, pinned to upstream's own fixtures.

The iptables examples are hashes that appear verbatim in kubernetes/kubernetes
``pkg/proxy/iptables/proxier_test.go`` dumps (v1.33); the nftables examples appear in
``pkg/proxy/nftables/proxier_test.go`` (e.g. ``service-ULMVA6XW-ns1/svc1/
tcp/p80``, ``endpoint-5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80``).
"""

from __future__ import annotations

import pytest

from netlab.proxy.naming import (
    ServicePortName,
    ext_chain,
    fw_chain,
    hash_and_truncate,
    nft_endpoint_name,
    nft_service_name,
    port_proto_hash,
    sep_chain,
    svc_chain,
    svl_chain,
)


def spn(text: str, protocol: str) -> ServicePortName:
    """The ServicePortName for "ns/name:port" (or "ns/name", an unnamed port) and protocol."""
    ns, rest = text.split("/", 1)
    name, _, port = rest.partition(":")
    return ServicePortName(ns, name, port, protocol)


# Reference §1.2: portProtoHash(spn, proto) = base32(sha256(spn + proto))[:16].
PORT_PROTO_HASHES = [
    ("ns1/svc1:p80", "TCP", "XPGD46QRK7WJZT7O"),
    ("ns2/svc2:p80", "TCP", "GNZBNJ2PO5MGZ6GT"),
    ("ns3/svc3:p80", "TCP", "X27LE4BHSL4DOUIK"),
    ("ns4/svc4:p80", "TCP", "4SW47YFZTEDKD3PK"),
    ("ns5/svc5:p80", "TCP", "NUKIZ6OKUXPJNT4C"),
    ("ns2/svc2:p8080", "TCP", "2VJB64SDSIJUP5T6"),
    ("kube-system/kube-dns:dns", "UDP", "TCOU7JCQXEZGVUNU"),
    ("kube-system/kube-dns:dns-tcp", "TCP", "ERIFXISQEP7F7OF4"),
    ("kube-system/kube-dns:metrics", "TCP", "JD5MR3NA4I4DYORP"),
    ("default/kubernetes:https", "TCP", "NPX46M4PTMTKRN6Y"),
    # An unnamed port: ServicePortName.String() is just "ns1/svc1" (TestInternalTrafficPolicyE2E).
    ("ns1/svc1", "TCP", "AQI2S6QIMU7PVVRP"),
]


@pytest.mark.parametrize(("name", "protocol", "digest"), PORT_PROTO_HASHES)
def test_port_proto_hash(name: str, protocol: str, digest: str) -> None:
    assert port_proto_hash(spn(name, protocol)) == digest


def test_service_chain_names() -> None:
    """KUBE-SVC/SVL/EXT/FW share the hash; kube-dns's UDP chain is the familiar one."""
    dns = spn("kube-system/kube-dns:dns", "UDP")
    assert svc_chain(dns) == "KUBE-SVC-TCOU7JCQXEZGVUNU"
    p80 = spn("ns1/svc1:p80", "TCP")
    assert svc_chain(p80) == "KUBE-SVC-XPGD46QRK7WJZT7O"
    assert svl_chain(p80) == "KUBE-SVL-XPGD46QRK7WJZT7O"
    assert ext_chain(p80) == "KUBE-EXT-XPGD46QRK7WJZT7O"
    assert fw_chain(p80) == "KUBE-FW-XPGD46QRK7WJZT7O"
    assert fw_chain(spn("ns5/svc5:p80", "TCP")) == "KUBE-FW-NUKIZ6OKUXPJNT4C"


def test_protocol_is_part_of_the_hash() -> None:
    """The same name over another protocol is a different chain (lower-case proto suffix)."""
    assert svc_chain(spn("kube-system/kube-dns:dns", "TCP")) != "KUBE-SVC-TCOU7JCQXEZGVUNU"


# Reference §1.2: KUBE-SEP- + base32(sha256(spn + proto + "IP:port"))[:16], plus chains from the
# upstream iptables dumps ported in test_iptables_upstream.py.
SEP_CHAINS = [
    ("ns1/svc1:p80", "10.180.0.1:80", "KUBE-SEP-SXIVWICOYRO3J4NJ"),
    ("ns5/svc5:p80", "10.180.0.3:80", "KUBE-SEP-I77PXRDZVX7PMWMN"),
    ("ns3/svc3:p80", "10.180.0.3:80", "KUBE-SEP-OYPFS5VJICHGATKP"),
    ("ns2/svc2:p80", "10.180.0.2:80", "KUBE-SEP-RS4RBKLTHTF2IUXJ"),
    ("ns4/svc4:p80", "10.180.0.4:80", "KUBE-SEP-UKSFD7AGPMPPLUHC"),
    ("ns4/svc4:p80", "10.180.0.5:80", "KUBE-SEP-C6EBXVWJJZMIWKLZ"),
    ("ns1/svc1", "10.0.1.1:80", "KUBE-SEP-3JOIVZTXZZRGORX4"),
]


@pytest.mark.parametrize(("name", "endpoint", "chain"), SEP_CHAINS)
def test_sep_chain(name: str, endpoint: str, chain: str) -> None:
    assert sep_chain(spn(name, "TCP"), endpoint) == chain


def test_sep_chain_depends_on_the_service() -> None:
    """The same endpoint behind two services gets two chains (svc3 and svc5 share 10.180.0.3)."""
    a = sep_chain(spn("ns3/svc3:p80", "TCP"), "10.180.0.3:80")
    b = sep_chain(spn("ns5/svc5:p80", "TCP"), "10.180.0.3:80")
    assert a != b


# Reference §3.1: hashAndTruncate(name) = base32(sha256(name))[:8] + "-" + name.
NFT_SERVICE_NAMES = [
    ("ns1/svc1:p80", "TCP", "ns1/svc1/tcp/p80", "ULMVA6XW-ns1/svc1/tcp/p80"),
    ("ns2/svc2:p80", "TCP", "ns2/svc2/tcp/p80", "42NFTM6N-ns2/svc2/tcp/p80"),
]


@pytest.mark.parametrize(("name", "protocol", "base", "chain"), NFT_SERVICE_NAMES)
def test_nft_service_name(name: str, protocol: str, base: str, chain: str) -> None:
    assert nft_service_name(spn(name, protocol)) == base
    assert hash_and_truncate(nft_service_name(spn(name, protocol))) == chain


NFT_ENDPOINT_NAMES = [
    ("ns1/svc1:p80", "10.180.0.1", 80, "5OJB2KTY-ns1/svc1/tcp/p80__10.180.0.1/80"),
    ("ns5/svc5:p80", "10.180.0.3", 80, "GTK6MW7G-ns5/svc5/tcp/p80__10.180.0.3/80"),
    ("ns2/svc2:p80", "10.180.0.2", 80, "SGOXE6O3-ns2/svc2/tcp/p80__10.180.0.2/80"),
]


@pytest.mark.parametrize(("name", "ip", "port", "chain"), NFT_ENDPOINT_NAMES)
def test_nft_endpoint_name(name: str, ip: str, port: int, chain: str) -> None:
    assert hash_and_truncate(nft_endpoint_name(spn(name, "TCP"), ip, port)) == chain


def test_nft_endpoint_name_ipv6() -> None:
    """servicePortEndpointChainNameBase replaces ":" in an IPv6 address with "."."""
    name = nft_endpoint_name(spn("ns1/svc1:p80", "TCP"), "fd00:10:180::1", 80)
    assert name == "ns1/svc1/tcp/p80__fd00.10.180..1/80"


def test_hash_and_truncate_limit() -> None:
    """chainNameBaseLengthMax = NameLengthMax - 16 = 240: longer results keep 237 chars + "..."."""
    fits = "ns/" + "x" * (240 - 9 - 3)  # 8-char hash + "-" + name = exactly 240
    assert hash_and_truncate(fits) == hash_and_truncate(fits)[:9] + fits
    assert len(hash_and_truncate(fits)) == 240
    too_long = fits + "y"
    out = hash_and_truncate(too_long)
    assert len(out) == 240
    assert out == (out[:9] + too_long)[:237] + "..."
    assert out[:8] != hash_and_truncate(fits)[:8]  # the hash is of the full, untruncated name
