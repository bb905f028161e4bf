"""Privileged, no lab: the ebpf mode's programs run on crafted packets (BPF_PROG_TEST_RUN).

One node's three objects are loaded as a lab loads them (its configuration in ``.rodata``, its
maps pinned in a bpffs of the test's own), the maps are filled by the same rendering, encoding
and ordered bulk writes a sync uses, and each program is run by the kernel on packets scapy
builds. The results are read back with scapy, checksums recomputed: DNAT and reverse NAT,
the ICMP port unreachable for a Service without backends, NodePort SNAT and its reverse,
loadBalancerSourceRanges, ClientIP affinity, externalTrafficPolicy Local and hairpin.

The programs' FIB lookups need routes and neighbours, so they run inside a namespace of the
test's own: ``eth0`` (192.168.56.11/24, as node-1), node-2 and the router as static neighbours.
"""

from __future__ import annotations

import os
import struct
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from pyroute2 import IPRoute
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.layers.l2 import Ether

from netlab.kernel import bpf, bpffs, netns, threads
from netlab.proxy.ebpf import datapath, entries, render
from netlab.proxy.naming import ServicePortName
from netlab.proxy.servicemap import EndpointInfo, ProxiedService, ServicePortInfo

NODE = render.NodeInfo("node-1", "192.168.56.11")
NODE2_IP = "192.168.56.12"
ROUTER_IP = "192.168.56.100"
NODE2_MAC = "02:00:00:00:00:12"
ROUTER_MAC = "02:00:00:00:01:00"
POD_MAC = "02:00:0a:f4:01:05"
GW_MAC = "02:00:0a:f4:01:01"

TC_ACT_OK, TC_ACT_SHOT, TC_ACT_REDIRECT = 0, 2, 7
SKB_CTX_SIZE = 192  # sizeof(struct __sk_buff) is larger; the kernel takes a prefix
SKB_IFINDEX_OFF = 40


def ep(ip: str, node: str, port: int = 8080, pod: str = "") -> EndpointInfo:
    return EndpointInfo(ip, port, node, pod or f"default/{ip}", node == NODE.name)


def svc(name: str, cip: str, eps: tuple[EndpointInfo, ...], **fields: Any) -> ProxiedService:
    proto = fields.pop("protocol", "TCP")
    info = ServicePortInfo(ServicePortName("default", name, "p", proto), cip, 80, **fields)
    return ProxiedService(info, eps)


LOCAL = ep("10.244.1.7", "node-1")
REMOTE = ep("10.244.2.8", "node-2")
SERVICES = [
    svc("web", "10.96.0.10", (LOCAL, REMOTE), node_port=30080),
    svc("web-udp", "10.96.0.10", (LOCAL, REMOTE), protocol="UDP"),
    svc("nobody", "10.96.0.20", (), node_port=30081),
    svc("remote-only", "10.96.0.30", (REMOTE,), node_port=30082),
    svc("local-policy", "10.96.0.31", (LOCAL, REMOTE), node_port=30083, external_policy_local=True),
    svc(
        "restricted",
        "10.96.0.40",
        (REMOTE,),
        load_balancer_vips=("192.0.2.10",),
        load_balancer_source_ranges=("203.0.113.0/24",),
    ),
    svc(
        "sticky",
        "10.96.0.50",
        (LOCAL, REMOTE, ep("10.244.2.9", "node-2")),
        session_affinity_client_ip=True,
        sticky_max_age_seconds=60,
    ),
]


@dataclass
class Node:
    netns: str
    loaded: datapath.Loaded
    maps: datapath.Maps
    eth0: int
    pod_dev: int
    frontends: dict[str, render.Frontend]

    def run(self, program: str, packet: Any, ifindex: int) -> tuple[int, Any]:
        obj = self.loaded.host if program == "cil_from_netdev" else self.loaded.lxc
        fd = obj.programs[program]
        ctx = bytearray(SKB_CTX_SIZE)
        struct.pack_into("=I", ctx, SKB_IFINDEX_OFF, ifindex)

        def job() -> bpf.TestRun:
            return bpf.prog_test_run(fd, bytes(packet), bytes(ctx))

        result = threads.call(job, netns_name=self.netns)
        return result.retval, Ether(result.data)


def _scratch_network(name: str) -> tuple[int, int]:
    def job() -> tuple[int, int]:
        with IPRoute() as ipr:
            ipr.link("add", ifname="eth0", kind="veth", peer={"ifname": "pod0"})
            eth0 = ipr.link_lookup(ifname="eth0")[0]
            pod0 = ipr.link_lookup(ifname="pod0")[0]
            for idx in (1, eth0, pod0):
                ipr.link("set", index=idx, state="up")
            ipr.addr("add", index=eth0, address=NODE.ip, prefixlen=24)
            for ip, mac in ((NODE2_IP, NODE2_MAC), (ROUTER_IP, ROUTER_MAC)):
                ipr.neigh("add", dst=ip, lladdr=mac, ifindex=eth0, state=0x80)  # permanent
            ipr.route("add", dst="10.244.2.0/24", gateway=NODE2_IP)
            ipr.route("add", dst="0.0.0.0/0", gateway=ROUTER_IP)
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write("1")
        return eth0, pod0

    return threads.call(job, netns_name=name)


@pytest.fixture(scope="module")
def node() -> Iterator[Node]:
    name = f"labtest-{os.getpid()}-ebpfprog"
    root = tempfile.mkdtemp(prefix="netlab-bpffs-")
    loaded = None
    maps = None
    try:
        threads.call(netns.create_and_enter, name)
        eth0, pod0 = _scratch_network(name)
        bpffs.mount(root)
        cfg = datapath.NodeConfig(NODE.name, NODE.ip, "10.244.1.0/24")
        loaded = datapath.load(root, cfg)
        maps = datapath.Maps(datapath.pin_dir(root, NODE.name))
        rendered = render.render_node(SERVICES, NODE)
        contents = entries.Encoder(datapath.layouts()).all(rendered)
        maps.apply(entries.plan(entries.Contents(), contents))
        frontends = {f"{f.service}/{f.type}/{f.address}": f for r in rendered for f in r.frontends}
        yield Node(name, loaded, maps, eth0, pod0, frontends)
    finally:
        objects: list[tuple[Any, int]] = []
        if loaded is not None:
            objs = (loaded.lxc, loaded.host, loaded.sock)
            objects += [
                (bpf.prog_fd_by_id, bpf.prog_info(fd).id)
                for o in objs
                for fd in o.programs.values()
            ]
            objects += [
                (bpf.map_fd_by_id, bpf.map_info(fd).id) for o in objs for fd in o.maps.values()
            ]
        if maps is not None:
            maps.close()
        if loaded is not None:
            loaded.close()
        netns.remove(name)
        bpffs.unmount(root)
        if os.path.isdir(root):
            os.rmdir(root)
        # The kernel frees a namespace's devices (and the programs on them), then the maps
        # those programs held, on work queues after the last reference goes: wait for it, so
        # the next test's snapshot of the host does not see them go (and none stays behind).
        deadline = time.monotonic() + 30
        while objects and time.monotonic() < deadline:
            objects = [(by_id, i) for by_id, i in objects if _alive(by_id, i)]
            time.sleep(0.05)
        assert not objects, f"BPF objects still loaded 30 s after the test: {objects}"


def _alive(by_id: Any, object_id: int) -> bool:
    try:
        os.close(by_id(object_id))
    except OSError:
        return False
    return True


def from_pod(
    dst: str, dport: int, sport: int = 40000, src: str = "10.244.1.5", udp: bool = False
) -> Any:
    l4 = UDP(sport=sport, dport=dport) if udp else TCP(sport=sport, dport=dport, flags="S")
    return Ether(src=POD_MAC, dst=GW_MAC) / IP(src=src, dst=dst, ttl=64) / l4 / b"hello"


def from_outside(dst: str, dport: int, src: str = ROUTER_IP, sport: int = 5555) -> Any:
    return (
        Ether(src=ROUTER_MAC, dst="02:00:c0:a8:38:0b")
        / IP(src=src, dst=dst, ttl=64)
        / TCP(sport=sport, dport=dport, flags="S")
    )


def assert_checksums(pkt: Any) -> None:
    """The IP and L4 checksums are what a fresh computation gives."""
    ip = pkt[IP]
    fresh = IP(bytes(ip))
    del fresh.chksum
    for layer in (TCP, UDP, ICMP):
        if fresh.haslayer(layer):
            del fresh[layer].chksum
    fresh = IP(bytes(fresh))
    assert ip.chksum == fresh.chksum, "IP checksum"
    for layer in (TCP, UDP, ICMP):
        if ip.haslayer(layer):
            assert ip[layer].chksum == fresh[layer].chksum, f"{layer.__name__} checksum"


def test_clusterip_dnat_reaches_every_backend_with_correct_checksums(node: Node) -> None:
    seen = set()
    for sport in range(41000, 41040):
        ret, out = node.run("cil_from_container", from_pod("10.96.0.10", 80, sport), node.pod_dev)
        assert ret == TC_ACT_OK
        assert (out[IP].dst, out[TCP].dport) in {("10.244.1.7", 8080), ("10.244.2.8", 8080)}
        assert out[IP].src == "10.244.1.5" and out[TCP].sport == sport
        assert bytes(out[TCP].payload) == b"hello"
        assert_checksums(out)
        seen.add(out[IP].dst)
    assert seen == {"10.244.1.7", "10.244.2.8"}


def test_the_same_connection_keeps_its_backend(node: Node) -> None:
    first = node.run("cil_from_container", from_pod("10.96.0.10", 80, 42000), node.pod_dev)[1]
    for _ in range(10):
        again = node.run("cil_from_container", from_pod("10.96.0.10", 80, 42000), node.pod_dev)[1]
        assert again[IP].dst == first[IP].dst


def test_udp_is_its_own_service_port(node: Node) -> None:
    ret, out = node.run("cil_from_container", from_pod("10.96.0.10", 80, udp=True), node.pod_dev)
    assert ret == TC_ACT_OK and out.haslayer(UDP)
    assert out[UDP].dport == 8080 and out[IP].dst in ("10.244.1.7", "10.244.2.8")
    assert_checksums(out)


def test_reply_is_reverse_natted_on_its_way_into_the_client(node: Node) -> None:
    _, out = node.run("cil_from_container", from_pod("10.96.0.10", 80, 43000), node.pod_dev)
    backend = out[IP].dst
    reply = (
        Ether(src=GW_MAC, dst=POD_MAC)
        / IP(src=backend, dst="10.244.1.5")
        / TCP(sport=8080, dport=43000, flags="SA")
    )
    ret, back = node.run("cil_to_container", reply, node.pod_dev)
    assert ret == TC_ACT_OK
    assert (back[IP].src, back[TCP].sport) == ("10.96.0.10", 80)
    assert (back[IP].dst, back[TCP].dport) == ("10.244.1.5", 43000)
    assert_checksums(back)


def test_service_without_backends_answers_icmp_port_unreachable(node: Node) -> None:
    request = from_pod("10.96.0.20", 80, 44000)
    ret, out = node.run("cil_from_container", request, node.pod_dev)
    assert ret == TC_ACT_REDIRECT  # back out of the device it came in on
    assert out.haslayer(ICMP)
    assert (out[ICMP].type, out[ICMP].code) == (3, 3)
    assert (out[IP].src, out[IP].dst) == ("10.96.0.20", "10.244.1.5")
    assert (out[Ether].src, out[Ether].dst) == (GW_MAC, POD_MAC)
    # The start of the original datagram (Cilium quotes up to 64 bytes): enough for the
    # client's kernel to find the socket, and its TCP checksum field included.
    quoted = bytes(out[ICMP].payload)
    sent = bytes(request[IP])
    assert len(quoted) == 40 and quoted == sent[:40]  # a 45-byte SYN with 5 bytes of data
    assert struct.unpack("!HH", quoted[20:24]) == (44000, 80)
    assert_checksums(out)


def test_nodeport_to_a_remote_backend_is_snatted_and_forwarded(node: Node) -> None:
    ret, out = node.run("cil_from_netdev", from_outside(NODE.ip, 30082), node.eth0)
    assert ret == TC_ACT_REDIRECT
    assert (out[IP].dst, out[TCP].dport) == ("10.244.2.8", 8080)
    assert out[IP].src == NODE.ip and out[TCP].sport >= 32768
    assert out[Ether].dst == NODE2_MAC and out[IP].ttl == 63
    assert_checksums(out)
    # The backend's reply comes back to node:port: reverse SNAT, reverse DNAT, out to the client.
    reply = (
        Ether(src=NODE2_MAC, dst="02:00:c0:a8:38:0b")
        / IP(src="10.244.2.8", dst=NODE.ip)
        / TCP(sport=8080, dport=out[TCP].sport, flags="SA")
    )
    ret, back = node.run("cil_from_netdev", reply, node.eth0)
    assert ret == TC_ACT_REDIRECT
    assert (back[IP].src, back[TCP].sport) == (NODE.ip, 30082)
    assert (back[IP].dst, back[TCP].dport) == (ROUTER_IP, 5555)
    assert back[Ether].dst == ROUTER_MAC
    assert_checksums(back)


def test_nodeport_to_a_local_backend_keeps_the_client_address(node: Node) -> None:
    local = {"10.244.1.7"}
    for sport in range(46000, 46030):
        ret, out = node.run("cil_from_netdev", from_outside(NODE.ip, 30080, sport=sport), node.eth0)
        if out[IP].dst in local:
            assert ret == TC_ACT_OK  # through the stack to the pod
            assert (out[IP].src, out[TCP].sport) == (ROUTER_IP, sport)
            assert_checksums(out)
            break
    else:
        pytest.fail("the local backend was never chosen")
    # Its reply leaves from the NodePort, straight out of the node.
    reply = (
        Ether(src=POD_MAC, dst=GW_MAC)
        / IP(src="10.244.1.7", dst=ROUTER_IP)
        / TCP(sport=8080, dport=sport, flags="SA")
    )
    ret, back = node.run("cil_from_container", reply, node.pod_dev)
    assert ret == TC_ACT_REDIRECT
    assert (back[IP].src, back[TCP].sport) == (NODE.ip, 30080)
    assert_checksums(back)


def test_clusterip_from_outside_is_dropped(node: Node) -> None:
    ret, _ = node.run("cil_from_netdev", from_outside("10.96.0.10", 80), node.eth0)
    assert ret == TC_ACT_SHOT


def test_source_ranges_let_only_listed_clients_in(node: Node) -> None:
    ret, out = node.run(
        "cil_from_netdev", from_outside("192.0.2.10", 80, "203.0.113.10"), node.eth0
    )
    assert ret == TC_ACT_REDIRECT and out[IP].dst == "10.244.2.8"
    ret, _ = node.run("cil_from_netdev", from_outside("192.0.2.10", 80, "198.51.100.99"), node.eth0)
    assert ret == TC_ACT_SHOT


def test_client_ip_affinity_sticks_to_one_backend(node: Node) -> None:
    chosen = {
        node.run("cil_from_container", from_pod("10.96.0.50", 80, s), node.pod_dev)[1][IP].dst
        for s in range(47000, 47040)
    }
    assert len(chosen) == 1
    sticky = node.frontends["default/sticky/ClusterIP/10.96.0.50"]
    key = datapath.layouts()[entries.AFFINITY].key
    found = [key.decode(k) for k in node.maps.dump(entries.AFFINITY)]
    assert any(k["rev_nat_id"] == sticky.id for k in found)


def test_external_policy_local_uses_only_this_nodes_endpoint(node: Node) -> None:
    for sport in range(48000, 48020):
        ret, out = node.run("cil_from_netdev", from_outside(NODE.ip, 30083, sport=sport), node.eth0)
        assert ret == TC_ACT_OK
        assert out[IP].dst == "10.244.1.7" and out[IP].src == ROUTER_IP
    # From a pod, the same NodePort reaches every endpoint (the frontend's second scope).
    seen = {
        node.run("cil_from_container", from_pod(NODE.ip, 30083, s), node.pod_dev)[1][IP].dst
        for s in range(48100, 48140)
    }
    assert seen == {"10.244.1.7", "10.244.2.8"}


def test_hairpin_is_sourced_from_the_loopback_address(node: Node) -> None:
    request = from_pod("10.96.0.10", 80, 49000, src="10.244.1.7")
    for sport in range(49000, 49040):
        request = from_pod("10.96.0.10", 80, sport, src="10.244.1.7")
        ret, out = node.run("cil_from_container", request, node.pod_dev)
        if out[IP].dst == "10.244.1.7":
            break
    else:
        pytest.fail("the pod itself was never chosen")
    assert ret == TC_ACT_OK and out[IP].src == "169.254.42.1"
    assert_checksums(out)
    reply = (
        Ether(src=POD_MAC, dst=GW_MAC)
        / IP(src="10.244.1.7", dst="169.254.42.1")
        / TCP(sport=8080, dport=sport, flags="SA")
    )
    ret, back = node.run("cil_from_container", reply, node.pod_dev)
    assert ret == TC_ACT_REDIRECT  # turned straight back into the pod
    assert (back[IP].src, back[TCP].sport) == ("10.96.0.10", 80)
    assert (back[IP].dst, back[TCP].dport) == ("10.244.1.7", sport)
    assert (back[Ether].src, back[Ether].dst) == (GW_MAC, POD_MAC)
    assert_checksums(back)


def test_conntrack_counts_the_connection(node: Node) -> None:
    node.run("cil_from_container", from_pod("10.96.0.10", 80, 50000), node.pod_dev)
    lay = datapath.layouts()[entries.CT_TCP]
    ct = {
        (k["flags"], k["sport"]): lay.value.decode(v)
        for k, v in ((lay.key.decode(kb), vb) for kb, vb in node.maps.dump(entries.CT_TCP).items())
    }
    out = ct[(0, 50000)]  # TUPLE_F_OUT
    svc_entry = ct[(4, 50000)]  # TUPLE_F_SERVICE
    web = node.frontends["default/web/ClusterIP/10.96.0.10"]
    assert out["rev_nat_index"] == web.id
    assert isinstance(out["packets"], int) and out["packets"] >= 1
    assert isinstance(out["bytes"], int) and out["bytes"] > 0
    assert svc_entry["backend_id"] == out["backend_id"]
