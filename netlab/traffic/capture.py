"""Packet capture with scapy, inside one namespace: the ``capture`` check kind's eyes.

Run as ``nsenter --net=/run/netns/X python -m netlab.traffic.capture IFACE BPF SECONDS``: the
process is already inside the namespace when it imports scapy, so scapy's interface and route
caches describe that namespace (scapy reads them once, at import). It prints ``ready`` once the
sniffer is running, then one JSON line per captured packet, and exits on SIGTERM (once what
is queued is read). SECONDS only bounds the life of a capture whose parent vanished: the check
it serves may take long on a slow machine, and a capture that ended first would miss packets.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from typing import Any

from netlab.checks.observations import CapturedPacket


def _describe(pkt: Any) -> dict[str, Any] | None:
    from scapy.layers.inet import IP, TCP, UDP

    if IP not in pkt:
        return None
    ip = pkt[IP]
    l4 = pkt.getlayer(TCP) or pkt.getlayer(UDP)
    if l4 is None:
        return None
    return {
        "src": ip.src,
        "dst": ip.dst,
        "sport": int(l4.sport),
        "dport": int(l4.dport),
        "proto": "TCP" if TCP in pkt else "UDP",
        "flags": str(l4.flags) if TCP in pkt else "",
        "summary": pkt.summary(),
    }


def main(argv: list[str]) -> int:
    iface, bpf, seconds = argv[0], argv[1], float(argv[2])
    from scapy.config import conf

    # Import every layer before the first packet is read: scapy dissects a packet with the
    # layers registered at that moment, and a late import leaves it as Ether / Raw.
    from scapy.layers import inet, l2  # noqa: F401

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Open the socket here, before saying ready: packets queue in it until they are read.
    # (scapy's AsyncSniffer was seen to lose the first packet queued this way.)
    sock = conf.L2listen(iface=iface, filter=bpf)
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        readable, _, _ = select.select([sock], [], [], 0.05)
        if readable:
            pkt = sock.recv()
            info = _describe(pkt) if pkt is not None else None
            if info is not None:
                print(json.dumps(info), flush=True)
        elif stop.is_set():
            break  # stop only once the queue is drained
    sock.close()
    return 0


class Capture:
    """A running capture in a namespace (the parent's side), tagged with its lab."""

    def __init__(
        self,
        lab: str,
        netns_name: str,
        iface: str,
        bpf: str,
        seconds: float = 900.0,
        ready_timeout: float = 120.0,  # scapy imports slowly on an emulated CPU
    ):
        from netlab.errors import LabError, PrerequisiteError
        from netlab.kernel import netns
        from netlab.kernel.process import LAB_ENV, python_module

        if shutil.which("tcpdump") is None:  # scapy compiles BPF filters with it
            raise PrerequisiteError("tcpdump is not installed", hint="apt-get install -y tcpdump")
        argv = [
            "nsenter",
            f"--net={netns.path(netns_name)}",
            "--",
            *python_module("netlab.traffic.capture", iface, bpf, str(seconds)),
        ]
        self.netns = netns_name
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            env={**os.environ, LAB_ENV: lab},
        )
        assert self.proc.stdout is not None
        readable, _, _ = select.select([self.proc.stdout], [], [], ready_timeout)
        line = self.proc.stdout.readline().strip() if readable else ""
        if line != "ready":
            self.close()
            err = self.proc.stderr.read() if self.proc.stderr else ""
            raise LabError(f"capture in {netns_name} did not start", detail=f"{line} {err}".strip())

    def stop(self, grace: float = 0.2) -> list[CapturedPacket]:
        """Let in-flight packets arrive, stop the sniffer, and return what it saw."""
        time.sleep(grace)
        self.proc.terminate()
        try:
            out, _ = self.proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.close()
            raise
        packets = []
        for line in out.splitlines():
            if line.startswith("{"):
                packets.append(CapturedPacket(**json.loads(line)))
        return packets

    def close(self) -> None:
        """Kill the capture and reap it (after an error; :meth:`stop` is the normal end)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
