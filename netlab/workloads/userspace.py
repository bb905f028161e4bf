"""The userspace proxy: kube-proxy's original data path, a socket that copies bytes.

Every connection to a Service ends at a proxy socket on the client's node; the proxy picks an
endpoint (round-robin, ``LoadBalancerRR``; sticky per client IP with ClientIP affinity), dials it
from the node itself and copies both directions. So backends see the node's address, never the
client's, and every byte crosses user space twice. UDP keeps one outgoing socket per client
address, dropped after ``UDP_IDLE_TIMEOUT`` of silence (kube-proxy's ``--udp-timeout``, 250 ms).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Awaitable, Callable

from netlab.proxy.userspace.render import UserspaceProxy

UDP_IDLE_TIMEOUT = 0.25
DIAL_TIMEOUTS = (0.25, 0.5, 1.0, 2.0)  # endpointDialTimeouts: a failed endpoint, then the next
COPY_CHUNK = 65536
SocketFactory = Callable[[int], Awaitable[socket.socket]]


class Balancer:
    """LoadBalancerRR: endpoints in order, one after the other; ClientIP affinity remembers the
    endpoint a client IP got until it has been idle for the affinity timeout."""

    def __init__(self, proxy: UserspaceProxy):
        self.update(proxy)
        self.index = 0
        self.sticky: dict[str, tuple[tuple[str, int], float]] = {}

    def update(self, proxy: UserspaceProxy) -> None:
        self.endpoints = [(ip, port) for ip, port in proxy.endpoints]
        self.affinity = proxy.affinity_seconds

    def next(self, client_ip: str) -> tuple[str, int] | None:
        if not self.endpoints:
            return None
        now = time.monotonic()
        if self.affinity:
            held = self.sticky.get(client_ip)
            if held and held[0] in self.endpoints and now - held[1] < self.affinity:
                self.sticky[client_ip] = (held[0], now)
                return held[0]
        endpoint = self.endpoints[self.index % len(self.endpoints)]
        self.index += 1
        if self.affinity:
            self.sticky[client_ip] = (endpoint, now)
        return endpoint


async def _dial(
    balancer: Balancer, client_ip: str, open_socket: SocketFactory
) -> socket.socket | None:
    """tryConnectEndpoints: each attempt a fresh endpoint, with growing timeouts."""
    loop = asyncio.get_running_loop()
    for timeout in DIAL_TIMEOUTS:
        endpoint = balancer.next(client_ip)
        if endpoint is None:
            return None
        sock = await open_socket(socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            await asyncio.wait_for(loop.sock_connect(sock, endpoint), timeout)
            return sock
        except (OSError, TimeoutError):
            sock.close()
    return None


async def _copy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(COPY_CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


async def serve_tcp(
    sock: socket.socket, balancer: Balancer, open_socket: SocketFactory
) -> Callable[[], None]:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        peer = client_w.get_extra_info("peername")
        upstream = await _dial(balancer, peer[0] if peer else "", open_socket)
        if upstream is None:  # no endpoint answered: the client's connection is just closed
            client_w.close()
            return
        up_r, up_w = await asyncio.open_connection(sock=upstream, limit=COPY_CHUNK)
        try:
            await asyncio.gather(_copy(client_r, up_w), _copy(up_r, client_w))
        finally:
            up_w.close()
            client_w.close()

    server = await asyncio.start_server(handle, sock=sock, limit=COPY_CHUNK)
    return server.close


class _UDPProxy(asyncio.DatagramProtocol):
    """One listening socket; per client, a socket to its endpoint relaying the answers back."""

    def __init__(self, balancer: Balancer, open_socket: SocketFactory):
        self.balancer = balancer
        self.open_socket = open_socket
        self.transport: asyncio.DatagramTransport | None = None
        self.clients: dict[tuple[str, int], asyncio.Queue[bytes]] = {}
        self.relays: set[asyncio.Task[None]] = set()  # held, or the loop may drop them

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        client = (str(addr[0]), int(addr[1]))
        queue = self.clients.get(client)
        if queue is None:
            queue = self.clients[client] = asyncio.Queue()
            task = asyncio.ensure_future(self._relay(client, queue))
            self.relays.add(task)
            task.add_done_callback(self.relays.discard)
        queue.put_nowait(data)

    async def _relay(self, client: tuple[str, int], queue: asyncio.Queue[bytes]) -> None:
        loop = asyncio.get_running_loop()
        endpoint = self.balancer.next(client[0])
        if endpoint is None:
            self.clients.pop(client, None)
            return
        sock = await self.open_socket(socket.SOCK_DGRAM)
        sock.setblocking(False)
        try:
            sock.connect(endpoint)
            while True:
                try:
                    while not queue.empty():
                        await loop.sock_sendall(sock, queue.get_nowait())
                    reply = await asyncio.wait_for(
                        loop.sock_recv(sock, COPY_CHUNK), UDP_IDLE_TIMEOUT
                    )
                except TimeoutError:
                    if queue.empty():
                        break
                    continue
                except OSError:
                    # The endpoint is unreachable or refuses (its pod went away): as
                    # proxyClient's failed Read, the session ends, and the client's next
                    # datagram is load-balanced afresh.
                    break
                if self.transport is not None:
                    self.transport.sendto(reply, client)
        finally:
            sock.close()
            self.clients.pop(client, None)


async def serve_udp(
    sock: socket.socket, balancer: Balancer, open_socket: SocketFactory
) -> Callable[[], None]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _UDPProxy(balancer, open_socket), sock=sock
    )
    return transport.close
