"""Routes a lab changes while it runs: the stand-in load balancer's next hops."""

from __future__ import annotations

import contextlib

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from netlab.kernel import threads


def set_nexthops(netns_name: str, dst: str, gateways: list[str]) -> None:
    """Route ``dst`` over every gateway (ECMP), or remove the route when there are none."""

    def job() -> None:
        with IPRoute() as ipr:
            if not gateways:
                with contextlib.suppress(NetlinkError):
                    ipr.route("del", dst=dst)
                return
            if len(gateways) == 1:
                ipr.route("replace", dst=dst, gateway=gateways[0], proto="boot")
                return
            ipr.route(
                "replace",
                dst=dst,
                multipath=[{"gateway": gw} for gw in gateways],
                proto="boot",
            )

    threads.call(job, netns_name=netns_name)
