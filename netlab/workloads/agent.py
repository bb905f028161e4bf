"""The lab agent: one process that serves every pod of a lab.

It reads the list of listeners from its spec file, opens each socket inside its pod's namespace
(from a worker thread, so the sockets belong to that namespace), and serves them all from one
asyncio loop: 1,000 pods are 2,000-odd sockets in one interpreter, not 1,000 interpreters.

Started by ``netlab up`` as ``python -m netlab.workloads.agent SPEC READY_FD`` in its own session,
tagged with ``NETLAB_LAB=<lab>`` in its environment so ``cleanup`` can find it; it writes
``ready`` to ``READY_FD`` once every socket is bound, and exits on SIGTERM.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import signal
import socket
import sys
import typing
from dataclasses import dataclass

from netlab.kernel import netns, threads
from netlab.workloads import echo

MAX_LINE = 8192


@dataclass(frozen=True)
class Listener:
    netns: str
    hostname: str
    address: str  # "" = all addresses
    port: int
    protocol: str  # "TCP" | "UDP"


def load_spec(path: str) -> list[Listener]:
    with open(path) as f:
        data = json.load(f)
    return [Listener(**item) for item in data["listeners"]]


def open_sockets(listeners: list[Listener]) -> list[tuple[Listener, socket.socket]]:
    """Bind every listener inside its namespace; grouped so each namespace is entered once."""
    by_ns: dict[str, list[Listener]] = {}
    for item in listeners:
        by_ns.setdefault(item.netns, []).append(item)

    def job() -> list[tuple[Listener, socket.socket]]:
        out = []
        for name, items in by_ns.items():
            netns.enter(name)
            for item in items:
                kind = socket.SOCK_STREAM if item.protocol == "TCP" else socket.SOCK_DGRAM
                sock = socket.socket(socket.AF_INET, kind)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((item.address, item.port))
                if item.protocol == "TCP":
                    sock.listen(512)
                sock.setblocking(False)
                out.append((item, sock))
        return out

    return threads.call(job)


async def _serve_tcp(
    hostname: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    peer = writer.get_extra_info("peername")
    client = (peer[0], peer[1]) if peer else ("", 0)
    try:
        line = await asyncio.wait_for(reader.readline(), timeout=30)
        text = line.decode("latin-1", "replace")
        if " HTTP/" in text:
            while True:  # skip the headers
                header = await asyncio.wait_for(reader.readline(), timeout=30)
                if header in (b"\r\n", b"\n", b""):
                    break
            writer.write(echo.http_response(hostname, client, text))
        elif text:
            writer.write((echo.command(hostname, client, text) + "\n").encode())
        await writer.drain()
    except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


class _UDP(asyncio.DatagramProtocol):
    def __init__(self, hostname: str):
        self.hostname = hostname
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector transport implements DatagramTransport without subclassing it.
        self.transport = typing.cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        client = (str(addr[0]), int(addr[1]))
        reply = echo.command(self.hostname, client, data[:MAX_LINE].decode("utf-8", "replace"))
        if self.transport is not None:
            self.transport.sendto(reply.encode(), addr)


async def serve(sockets: list[tuple[Listener, socket.socket]], ready_fd: int) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    servers = []
    for item, sock in sockets:
        if item.protocol == "TCP":

            def handler(
                r: asyncio.StreamReader, w: asyncio.StreamWriter, h: str = item.hostname
            ) -> asyncio.Future[None]:
                return asyncio.ensure_future(_serve_tcp(h, r, w))

            servers.append(await asyncio.start_server(handler, sock=sock, limit=MAX_LINE))
        else:
            await loop.create_datagram_endpoint(functools.partial(_UDP, item.hostname), sock=sock)
    if ready_fd >= 0:
        os.write(ready_fd, b"ready\n")
        os.close(ready_fd)
    await stop.wait()
    for s in servers:
        s.close()


def main(argv: list[str]) -> int:
    spec, ready_fd = argv[0], int(argv[1]) if len(argv) > 1 else -1
    try:
        sockets = open_sockets(load_spec(spec))
    except OSError as exc:
        if ready_fd >= 0:
            os.write(ready_fd, f"error {exc}\n".encode())
        print(f"netlab agent: {exc}", file=sys.stderr)
        return 1
    asyncio.run(serve(sockets, ready_fd))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
