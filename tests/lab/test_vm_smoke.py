"""IPVS smoke test: kube-proxy's ``kube-ipvs0`` and one rr virtual service, read back.

Marked ``ipvs``: it runs directly on a host whose kernel has IPVS and dummy devices, and inside
the throwaway VM (tests/lab/test_vm.py) on one without. Everything happens in a fresh network
namespace made with netlab's kernel layer; the host's own namespace is never touched.
"""

from __future__ import annotations

import os
import re
import socket

import pytest
from pyroute2 import IPVS, IPRoute, IPVSDest, IPVSService

from netlab.kernel import netns, process, threads
from tests.lab.host import HostSnapshot

pytestmark = pytest.mark.ipvs

CLUSTER_IP = "10.96.0.10"
PORT = 80
ENDPOINTS = ("10.244.1.2", "10.244.2.2")
TARGET_PORT = 8080
MASQ = 0  # IP_VS_CONN_F_MASQ: kube-proxy's forwarding method ("Masq" in ipvsadm)


def _build(name: str) -> list[tuple[str, int]]:
    """In a new namespace: dummy ``kube-ipvs0`` holding the ClusterIP, an rr virtual service
    with two real servers; return the real servers as the kernel reports them."""
    netns.create_and_enter(name)
    with IPRoute() as ipr:
        ipr.link("set", index=1, state="up")
        ipr.link("add", ifname="kube-ipvs0", kind="dummy")
        (index,) = ipr.link_lookup(ifname="kube-ipvs0")
        ipr.addr("add", index=index, address=CLUSTER_IP, prefixlen=32)
    service = IPVSService(addr=CLUSTER_IP, port=PORT, protocol=socket.IPPROTO_TCP, sched_name="rr")
    with IPVS() as ipvs:
        ipvs.service("add", service=service)
        for address in ENDPOINTS:
            dest = IPVSDest(addr=address, port=TARGET_PORT, fwd_method=MASQ, weight=1)
            ipvs.dest("add", service=service, dest=dest)
        found = [IPVSDest.from_message(d) for d in ipvs.dest("dump", service=service)]
    return sorted((str(d["addr"]), int(d["port"])) for d in found)


def test_kube_ipvs0_and_rr_service(clean_host: HostSnapshot) -> None:
    name = f"netlab-ipvs-smoke-{os.getpid()}"
    try:
        dests = threads.call(_build, name)
        assert dests == [(address, TARGET_PORT) for address in ENDPOINTS]

        link = process.run(name, ["ip", "-d", "-o", "addr", "show", "dev", "kube-ipvs0"]).stdout
        assert f"inet {CLUSTER_IP}/32" in link

        listing = process.run(name, ["ipvsadm", "-Ln"]).stdout
        assert re.search(rf"^TCP\s+{re.escape(CLUSTER_IP)}:{PORT}\s+rr\b", listing, re.M), listing
        for address in ENDPOINTS:
            real = rf"^\s+->\s+{re.escape(address)}:{TARGET_PORT}\s+Masq\s+1\b"
            assert re.search(real, listing, re.M), listing
    finally:
        netns.remove(name)
