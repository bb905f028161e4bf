"""Socket probes: N fresh connections from inside a namespace, and what each one saw.

A probe is a real client: a TCP connection (then ``GET /whoami``) or a UDP datagram
(``whoami``) from a socket opened inside the source namespace. Every connection uses a new
ephemeral port, so each is a new conntrack entry and kube-proxy picks an endpoint afresh. The
outcome is what a client sees: an answer (which pod, and the source address that pod saw),
``refused`` (REJECT: an ICMP port unreachable or a TCP reset), ``timeout`` (DROP), or
``unreachable``.
"""

from __future__ import annotations

import asyncio
import errno
import json
import socket
import time
from dataclasses import dataclass

from netlab.kernel import threads

CONCURRENCY = 64


@dataclass(frozen=True)
class Observation:
    outcome: str  # "connected" | "refused" | "timeout" | "unreachable" | "error"
    hostname: str = ""
    client_ip: str = ""
    client_port: int = 0
    local_ip: str = ""  # the probe socket's own address: the client as it left
    local_port: int = 0
    error: str = ""
    seconds: float = 0.0

    @property
    def translated(self) -> bool:
        """Whether the backend saw another address or port than the socket sent from (SNAT).

        The address alone is not enough: a node masquerading towards another node rewrites the
        source to its own address, which may be the address it sent from, with a new port.
        """
        return (self.client_ip, self.client_port) != (self.local_ip, self.local_port)


def _classify(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout", "no answer"
    if isinstance(exc, ConnectionRefusedError):
        return "refused", "connection refused"
    if isinstance(exc, ConnectionResetError):
        return "refused", "connection reset"
    if isinstance(exc, OSError) and exc.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
        return "unreachable", exc.strerror or str(exc)
    return "error", f"{type(exc).__name__}: {exc}"


def _parse_whoami(body: str) -> tuple[str, str, int]:
    data = json.loads(body)
    ip, _, port = str(data["clientip"]).rpartition(":")
    return str(data["hostname"]), ip, int(port)


async def _tcp(ip: str, port: int, timeout: float, source: str | None) -> Observation:
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        if source:
            sock.bind((source, 0))
        await asyncio.wait_for(loop.sock_connect(sock, (ip, port)), timeout)
        local = sock.getsockname()
        request = f"GET /whoami HTTP/1.1\r\nHost: {ip}:{port}\r\nConnection: close\r\n\r\n"
        await loop.sock_sendall(sock, request.encode())
        data = b""
        while True:
            chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), timeout)
            if not chunk:
                break
            data += chunk
        head, _, body = data.decode(errors="replace").partition("\r\n\r\n")
        if not head.startswith("HTTP/1.1 200"):
            return Observation(
                "error",
                error=f"unexpected answer {head.splitlines()[:1]}",
                seconds=time.perf_counter() - t0,
            )
        hostname, cip, cport = _parse_whoami(body)
        return Observation(
            "connected", hostname, cip, cport, local[0], local[1], seconds=time.perf_counter() - t0
        )
    except (OSError, TimeoutError, ValueError, KeyError) as exc:
        outcome, text = _classify(exc)
        return Observation(outcome, error=text, seconds=time.perf_counter() - t0)
    finally:
        sock.close()


async def _udp(ip: str, port: int, timeout: float, source: str | None) -> Observation:
    loop = asyncio.get_running_loop()
    t0 = time.perf_counter()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setblocking(False)
    try:
        sock.bind((source or "", 0))
        sock.connect((ip, port))
        local = sock.getsockname()
        await loop.sock_sendall(sock, b"whoami")
        data = await asyncio.wait_for(loop.sock_recv(sock, 65536), timeout)
        hostname, cip, cport = _parse_whoami(data.decode(errors="replace"))
        return Observation(
            "connected", hostname, cip, cport, local[0], local[1], seconds=time.perf_counter() - t0
        )
    except (OSError, TimeoutError, ValueError, KeyError) as exc:
        outcome, text = _classify(exc)
        return Observation(outcome, error=text, seconds=time.perf_counter() - t0)
    finally:
        sock.close()


async def _many(
    ip: str, port: int, protocol: str, count: int, timeout: float, source: str | None
) -> list[Observation]:
    gate = asyncio.Semaphore(CONCURRENCY)
    one = _tcp if protocol == "TCP" else _udp

    async def guarded() -> Observation:
        async with gate:
            return await one(ip, port, timeout, source)

    return list(await asyncio.gather(*(guarded() for _ in range(count))))


def probe(
    netns_name: str,
    ip: str,
    port: int,
    protocol: str = "TCP",
    count: int = 1,
    timeout: float = 1.0,
    source: str | None = None,
) -> list[Observation]:
    """Open ``count`` connections from inside ``netns_name`` to ``ip:port``."""
    return threads.call(
        lambda: asyncio.run(_many(ip, port, protocol, count, timeout, source)),
        netns_name=netns_name,
    )
