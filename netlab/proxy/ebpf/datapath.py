"""One node's eBPF datapath: its programs loaded with the node's configuration, attached where
Cilium attaches them, and its pinned maps opened for writing and reading.

Layout of a lab's bpffs (``/run/netlab/<lab>/bpffs``), after Cilium's ``/sys/fs/bpf``::

    <node>/tc/globals/cilium_lb4_services_v2   (and every other map of maps.h)

Programs: ``bpf_lxc.o`` on every pod's node-side veth (``cil_from_container`` on tc ingress,
``cil_to_container`` on egress), ``bpf_host.o`` on the node's ``eth0`` (``cil_from_netdev``
on ingress), ``bpf_sock.o`` on the node's cgroup (connect4, sendmsg4, recvmsg4,
getpeername4). Everything here changes kernel state through :mod:`netlab.kernel`.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pyroute2 import IPRoute

from netlab.kernel import bpf, cgroup, libbpf, netns, tc, threads
from netlab.proxy.ebpf import btf as btfmod
from netlab.proxy.ebpf import objects
from netlab.proxy.ebpf.entries import ALL_MAPS, Op
from netlab.proxy.ebpf.layout import MapLayout, map_layouts

PIN_SUBDIR = os.path.join("tc", "globals")
LXC_PROGRAMS = ("cil_from_container", "cil_to_container")
HOST_PROGRAMS = ("cil_from_netdev",)
SOCK_PROGRAMS = {
    "cil_sock4_connect": bpf.BPF_CGROUP_INET4_CONNECT,
    "cil_sock4_sendmsg": bpf.BPF_CGROUP_UDP4_SENDMSG,
    "cil_sock4_recvmsg": bpf.BPF_CGROUP_UDP4_RECVMSG,
    "cil_sock4_getpeername": bpf.BPF_CGROUP_INET4_GETPEERNAME,
}
NATIVE_DEVICE = "eth0"
SO_NETNS_COOKIE = 71


@functools.cache
def layouts() -> dict[str, MapLayout]:
    """Every map's layout, from the BTF of the compiled objects (built if missing)."""
    return map_layouts(btfmod.read(objects.object_path("bpf_lxc")))


@functools.cache
def _rodata_offsets(program: str) -> dict[str, tuple[int, int]]:
    return btfmod.read(objects.object_path(program)).datasec(".rodata")


def prepare() -> None:
    """Build (or find) the objects and read their BTF once, up front."""
    layouts()
    for program in ("bpf_lxc", "bpf_host", "bpf_sock"):
        _rodata_offsets(program)


@dataclass(frozen=True)
class NodeConfig:
    """What a node's programs are loaded with (Cilium's per-node load-time configuration)."""

    name: str
    ip: str
    pod_cidr: str
    netns_cookie: int = 0


def rodata(program: str, cfg: NodeConfig) -> dict[int, bytes]:
    net = ipaddress.IPv4Network(cfg.pod_cidr)
    values = {
        "CONFIG_NODE_IPV4": socket.inet_aton(cfg.ip),
        "CONFIG_POD_CIDR_ADDR": net.network_address.packed,
        "CONFIG_POD_CIDR_MASK": net.netmask.packed,
        "CONFIG_NETNS_COOKIE": struct.pack("=Q", cfg.netns_cookie),
    }
    offsets = _rodata_offsets(program)
    return {offsets[k][0]: v for k, v in values.items() if k in offsets}


def pin_dir(bpffs_root: str, node: str) -> str:
    return os.path.join(bpffs_root, node, PIN_SUBDIR)


def netns_cookie(netns_name: str) -> int:
    """The namespace's cookie, as ``bpf_get_netns_cookie`` sees it (SO_NETNS_COOKIE)."""

    def job() -> int:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            return int(struct.unpack("=Q", s.getsockopt(socket.SOL_SOCKET, SO_NETNS_COOKIE, 8))[0])

    return threads.call(job, netns_name=netns_name)


@dataclass
class Loaded:
    """A node's three objects, open until :meth:`close` (attachments outlive it)."""

    lxc: libbpf.LoadedObject
    host: libbpf.LoadedObject
    sock: libbpf.LoadedObject

    def close(self) -> None:
        for obj in (self.lxc, self.host, self.sock):
            obj.close()

    def program_ids(self) -> list[int]:
        """The kernel's IDs of the loaded programs (to wait for them to be freed later)."""
        return [
            bpf.prog_info(fd).id
            for obj in (self.lxc, self.host, self.sock)
            for fd in obj.programs.values()
        ]

    def map_ids(self) -> list[int]:
        """The kernel's IDs of the objects' maps (freed after the programs that hold them)."""
        return [
            bpf.map_info(fd).id
            for obj in (self.lxc, self.host, self.sock)
            for fd in obj.maps.values()
        ]


def load(bpffs_root: str, cfg: NodeConfig, max_entries: dict[str, int] | None = None) -> Loaded:
    """Load the node's programs; the first load creates and pins its maps, later ones reuse
    them."""
    pins = pin_dir(bpffs_root, cfg.name)
    os.makedirs(pins, mode=0o700, exist_ok=True)
    done: list[libbpf.LoadedObject] = []
    try:
        for program, names in (
            ("bpf_lxc", LXC_PROGRAMS),
            ("bpf_host", HOST_PROGRAMS),
            ("bpf_sock", tuple(SOCK_PROGRAMS)),
        ):
            path = objects.object_path(program)
            done.append(libbpf.load(path, pins, names, rodata(program, cfg), max_entries))
    except BaseException:
        for obj in done:
            obj.close()
        raise
    return Loaded(*done)


def load_lxc(bpffs_root: str, cfg: NodeConfig, pins: Maps) -> libbpf.LoadedObject:
    """The pod-side object alone, on the node's pinned maps (sized as they were created):
    for pods that came after the node's first sync."""
    prepare()
    sizes = {}
    for name in os.listdir(pins.pins):
        try:
            sizes[name] = bpf.map_info(pins.fd(name)).max_entries
        except OSError:
            continue  # a pin that is not a map
    path = objects.object_path("bpf_lxc")
    return libbpf.load(
        path, pin_dir(bpffs_root, cfg.name), LXC_PROGRAMS, rodata("bpf_lxc", cfg), sizes
    )


def _attach_lxc(
    ipr: IPRoute, index: dict[str, int], programs: Mapping[str, int], devices: list[str]
) -> list[str]:
    """cil_from_container (ingress) and cil_to_container (egress) on each pod device that
    exists; the devices attached, in order."""
    out = []
    for dev in devices:
        if dev not in index:
            continue
        tc.attach(ipr, index[dev], programs["cil_from_container"], "cil_from_container", tc.INGRESS)
        tc.attach(ipr, index[dev], programs["cil_to_container"], "cil_to_container", tc.EGRESS)
        out.append(dev)
    return out


def attach_pods(netns_name: str, lxc: libbpf.LoadedObject, pod_devices: Iterable[str]) -> list[str]:
    """Attach the pod-side tc programs to the given pod devices (those that exist)."""
    wanted = list(pod_devices)

    def job() -> list[str]:
        netns.assert_not_host()
        out = []
        with IPRoute() as ipr:
            index = {
                str(link.get_attr("IFLA_IFNAME")): int(link["index"]) for link in ipr.get_links()
            }
            out = _attach_lxc(ipr, index, lxc.programs, wanted)
        return out

    return threads.call(job, netns_name=netns_name)


def attach_devices(netns_name: str, loaded: Loaded, pod_devices: Iterable[str]) -> list[str]:
    """Attach the tc programs in the node's namespace to ``eth0`` and every pod device there;
    the devices attached, in order."""
    wanted = list(pod_devices)

    def job() -> list[str]:
        netns.assert_not_host()
        out = []
        with IPRoute() as ipr:
            index = {
                str(link.get_attr("IFLA_IFNAME")): int(link["index"]) for link in ipr.get_links()
            }
            if NATIVE_DEVICE in index:
                prog = loaded.host.programs["cil_from_netdev"]
                tc.attach(ipr, index[NATIVE_DEVICE], prog, "cil_from_netdev", tc.INGRESS)
                out.append(NATIVE_DEVICE)
            out += _attach_lxc(ipr, index, loaded.lxc.programs, wanted)
        return out

    return threads.call(job, netns_name=netns_name)


def attach_cgroup(path: str, loaded: Loaded) -> None:
    """The socket programs on the node's cgroup, replacing any netlab attached before."""
    cgroup.detach_all(path)
    for name, attach_type in SOCK_PROGRAMS.items():
        cgroup.attach(path, loaded.sock.programs[name], attach_type)


@dataclass
class Maps:
    """The node's pinned maps, opened by path (works from any process)."""

    pins: str
    fds: dict[str, int] = field(default_factory=dict)

    def fd(self, name: str) -> int:
        if name not in self.fds:
            self.fds[name] = bpf.obj_get(os.path.join(self.pins, name))
        return self.fds[name]

    def apply(self, ops: list[Op]) -> int:
        """Write ``ops`` in order, each in one bulk call; how many entries changed."""
        count = 0
        for op in ops:
            fd = self.fd(op.map)
            if op.update:
                bpf.map_update_batch(fd, op.update)
                count += len(op.update)
            if op.delete:
                bpf.map_delete_batch(fd, op.delete)
                count += len(op.delete)
        return count

    def dump(self, name: str) -> dict[bytes, bytes]:
        lay = layouts()[name]
        return bpf.map_dump(self.fd(name), lay.key.size, lay.value.size)

    def dump_all(self) -> dict[str, dict[bytes, bytes]]:
        return {name: self.dump(name) for name in ALL_MAPS}

    def close(self) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()

    def __enter__(self) -> Maps:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
