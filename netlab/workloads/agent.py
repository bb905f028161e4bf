"""The lab agent: one process that serves every pod of a lab, and what runs on the nodes.

It reads its spec (``agent.json``) and the cluster state (``cluster.json``), opens each socket
inside its namespace (from a worker thread, so the socket belongs to that namespace) and serves
them all from one asyncio loop: 1,000 pods are 2,000-odd sockets in one interpreter, not 1,000
interpreters. What it serves:

- every container port of every pod, over TCP and UDP, answering like agnhost ``netexec``;
- the cluster DNS pods (``kube-system/coredns-*``) on port 53, from the live cluster state,
  forwarding other names to the upstream server;
- the outside world's DNS server and servers in the external namespace;
- on every node, kube-proxy's health server: ``healthCheckNodePort`` of each LoadBalancer
  Service with externalTrafficPolicy Local (200 with local endpoints, 503 without) and the proxy's
  own healthz on 10256; and its metrics port, 127.0.0.1:10249, where /proxyMode tells the mode.

Started by the lab as ``python -m netlab.workloads.agent STATE_DIR READY_FD`` in its own session,
tagged with ``NETLAB_LAB=<lab>`` so ``cleanup`` can find it. It writes ``ready`` to ``READY_FD``
once every socket is bound, and exits on SIGTERM. On SIGHUP it re-reads its spec and the state
and answers the request in ``reload-request`` (a nonce) in ``reloaded``: that nonce, and whether
the reload worked. A failed reload leaves the old sockets serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import queue
import signal
import socket
import sys
import threading
import time
import typing
from collections.abc import Awaitable, Callable
from concurrent.futures import Future

from netlab.cluster.state import ClusterState
from netlab.kernel import netns, threads
from netlab.proxy.userspace.render import UserspaceProxy
from netlab.serial import from_data
from netlab.workloads import echo, userspace
from netlab.workloads.spec import (
    RELOAD_REQUEST,
    RELOADED,
    AgentSpec,
    DnsServer,
    HealthServer,
    Listener,
)

MAX_LINE = 8192


def load_spec(state_dir: str) -> tuple[AgentSpec, ClusterState]:
    with open(os.path.join(state_dir, "agent.json")) as f:
        spec = from_data(AgentSpec, json.load(f))
    with open(os.path.join(state_dir, "cluster.json")) as f:
        state = from_data(ClusterState, json.load(f))
    return spec, state


Key = tuple[str, str, int, str]  # netns, address, port, protocol


def _key(netns_name: str, address: str, port: int, protocol: str) -> Key:
    return (netns_name, address, port, protocol)


def open_sockets(wanted: list[Key]) -> dict[Key, socket.socket]:
    """Bind every socket inside its namespace; each namespace is entered once."""
    by_ns: dict[str, list[Key]] = {}
    for key in wanted:
        by_ns.setdefault(key[0], []).append(key)

    def job() -> dict[Key, socket.socket]:
        out: dict[Key, socket.socket] = {}
        try:
            for name, keys in by_ns.items():
                netns.enter(name)
                for key in keys:
                    _, address, port, protocol = key
                    kind = socket.SOCK_STREAM if protocol == "TCP" else socket.SOCK_DGRAM
                    sock = socket.socket(socket.AF_INET, kind)
                    out[key] = sock
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    sock.bind((address, port))
                    if protocol == "TCP":
                        sock.listen(512)
                    sock.setblocking(False)
        except OSError:
            for sock in out.values():  # all or nothing: no half-open set left behind
                sock.close()
            raise
        return out

    return threads.call(job)


class NamespaceSockets:
    """Makes outgoing sockets inside one namespace, on demand, from a thread parked there.

    The agent's loop runs in the host namespace; a DNS pod forwarding upstream must send from the
    pod's own namespace, as CoreDNS would.
    """

    def __init__(self, netns_name: str):
        self.requests: queue.Queue[tuple[int, Future[socket.socket]] | None] = queue.Queue()
        self.thread = threading.Thread(target=self._run, args=(netns_name,), daemon=True)
        self.thread.start()

    def _run(self, netns_name: str) -> None:
        netns.enter(netns_name)
        while (item := self.requests.get()) is not None:
            kind, future = item
            try:
                future.set_result(socket.socket(socket.AF_INET, kind))
            except OSError as exc:
                future.set_exception(exc)

    def __call__(self, kind: int) -> Awaitable[socket.socket]:
        future: Future[socket.socket] = Future()
        self.requests.put((kind, future))
        return asyncio.wrap_future(future)

    def close(self) -> None:
        self.requests.put(None)


FIRST_LINE_TIMEOUT = 30  # seconds for a new connection's first line
IDLE_TIMEOUT = 900  # seconds a kept-alive connection may wait for its next request


async def _serve_tcp(
    hostname: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """netexec over TCP: HTTP requests (kept alive as Go's server keeps them), or one line of
    netexec's UDP commands."""
    peer = writer.get_extra_info("peername")
    client = (peer[0], peer[1]) if peer else ("", 0)
    timeout: float = FIRST_LINE_TIMEOUT
    try:
        while True:
            line = await asyncio.wait_for(reader.readline(), timeout=timeout)
            text = line.decode("latin-1", "replace")
            if " HTTP/" not in text:
                if text:
                    writer.write((echo.command(hostname, client, text) + "\n").encode())
                    await writer.drain()
                return
            headers = await _read_headers(reader)
            keep = echo.keeps_alive(text, headers)
            writer.write(echo.http_response(hostname, client, text, keep_alive=keep))
            await writer.drain()
            if not keep:
                return
            timeout = IDLE_TIMEOUT
    except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def _read_headers(reader: asyncio.StreamReader) -> list[str]:
    headers: list[str] = []
    while True:
        header = await asyncio.wait_for(reader.readline(), timeout=FIRST_LINE_TIMEOUT)
        if header in (b"\r\n", b"\n", b""):
            return headers
        headers.append(header.decode("latin-1", "replace"))


async def _skip_headers(reader: asyncio.StreamReader) -> None:
    await _read_headers(reader)


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


def local_ready_endpoints(state: ClusterState, namespace: str, name: str, node: str) -> int:
    """What kube-proxy's service health server counts: ready endpoints on this node."""
    key = f"{namespace}/{name}"
    seen = {
        ep.address
        for sl in state.slices
        if sl.service == key
        for ep in sl.endpoints
        if ep.ready and ep.node_name == node
    }
    return len(seen)


def health_response(server: HealthServer, state: ClusterState, started: float) -> bytes:
    """kube-proxy's answers, byte for byte in shape (pkg/proxy/healthcheck)."""
    if server.kind == "service":
        count = local_ready_endpoints(state, server.namespace, server.name, server.node)
        body = (
            "{\n"
            '\t"service": {\n'
            f'\t\t"namespace": {json.dumps(server.namespace)},\n'
            f'\t\t"name": {json.dumps(server.name)}\n'
            "\t},\n"
            f'\t"localEndpoints": {count},\n'
            '\t"serviceProxyHealthy": true\n'
            "}"
        )
        status = "200 OK" if count else "503 Service Unavailable"
        extra = f"X-Load-Balancing-Endpoint-Weight: {count}\r\n"
    else:
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))
        body = json.dumps(
            {"lastUpdated": since, "currentTime": now, "nodeEligible": True}, separators=(",", ":")
        )
        status, extra = "200 OK", ""
    data = body.encode()
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nX-Content-Type-Options: nosniff"
        f"\r\n{extra}Content-Length: {len(data)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + data


def metrics_response(server: HealthServer, path: str) -> bytes:
    """kube-proxy's metrics server (cmd/kube-proxy/app/server.go, serveMetrics): /proxyMode
    answers the mode, /healthz "ok"; anything else is Go's "404 page not found". (kube-proxy
    also serves /metrics, /configz and /metrics/slis; netlab's stand-in keeps no counters.)"""
    path = path.split("?", 1)[0]
    if path == "/proxyMode":
        status, body = "200 OK", server.mode
    elif path == "/healthz":
        status, body = "200 OK", "ok"
    else:
        status, body = "404 Not Found", "404 page not found\n"
    data = body.encode()
    now = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n"
        f"X-Content-Type-Options: nosniff\r\nDate: {now}\r\nContent-Length: {len(data)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + data


class Agent:
    def __init__(self, state_dir: str):
        self.state_dir = state_dir
        self.spec, self.state = load_spec(state_dir)
        self.sockets: dict[Key, socket.socket] = {}
        self.closers: dict[Key, Callable[[], None]] = {}
        self.dns_handlers: dict[Key, typing.Any] = {}
        self.factories: dict[str, NamespaceSockets] = {}
        self.balancers: dict[Key, userspace.Balancer] = {}
        self.started = time.time()

    def wanted(self) -> dict[Key, Callable[[socket.socket], Awaitable[Callable[[], None]]]]:
        """Every socket the spec asks for, with how to serve it."""
        out: dict[Key, Callable[[socket.socket], Awaitable[Callable[[], None]]]] = {}
        for item in self.spec.listeners:
            key = _key(item.netns, item.address, item.port, item.protocol)
            out[key] = functools.partial(self._serve_echo, item)
        for server in self.spec.dns:
            for proto in ("UDP", "TCP"):
                key = _key(server.netns, server.address, server.port, proto)
                out[key] = functools.partial(self._serve_dns, server, proto)
        for health in self.spec.health:
            key = _key(health.netns, health.address, health.port, "TCP")
            out[key] = functools.partial(self._serve_health, health)
        for proxy in self.spec.proxies:
            key = _key(proxy.netns, "", proxy.port, proxy.protocol)
            out[key] = functools.partial(self._serve_proxy, proxy)
        return out

    def _sockets_in(self, netns_name: str) -> NamespaceSockets:
        if netns_name not in self.factories:
            self.factories[netns_name] = NamespaceSockets(netns_name)
        return self.factories[netns_name]

    async def _serve_proxy(self, proxy: UserspaceProxy, sock: socket.socket) -> Callable[[], None]:
        balancer = userspace.Balancer(proxy)
        self.balancers[_key(proxy.netns, "", proxy.port, proxy.protocol)] = balancer
        serve = userspace.serve_tcp if proxy.protocol == "TCP" else userspace.serve_udp
        return await serve(sock, balancer, self._sockets_in(proxy.netns))

    async def _serve_echo(self, item: Listener, sock: socket.socket) -> Callable[[], None]:
        loop = asyncio.get_running_loop()
        if item.protocol == "TCP":
            open_conns: set[asyncio.StreamWriter] = set()

            def handler(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> asyncio.Future[None]:
                open_conns.add(w)
                task = asyncio.ensure_future(_serve_tcp(item.hostname, r, w))
                task.add_done_callback(lambda _: open_conns.discard(w))
                return task

            server = await asyncio.start_server(handler, sock=sock, limit=MAX_LINE)

            def stop() -> None:
                # The pod is gone: like its process exiting, close what it still had open.
                server.close()
                for w in list(open_conns):
                    w.close()

            return stop
        transport, _ = await loop.create_datagram_endpoint(
            functools.partial(_UDP, item.hostname), sock=sock
        )
        return transport.close

    async def _serve_dns(
        self, server: DnsServer, proto: str, sock: socket.socket
    ) -> Callable[[], None]:
        from netlab.workloads import dns

        handler: typing.Any
        if server.role == "upstream":
            upstream = dns.UpstreamDNS(self.spec.upstream_records)

            async def answer(data: bytes, tcp: bool = proto == "TCP") -> bytes:
                return upstream.handle(data, tcp=tcp)

            handler = answer
        else:
            ip, _, port = server.upstream.rpartition(":")
            cluster = dns.ClusterDNS(self.state, zone=self.state.lab.dns.domain)
            full = dns.ClusterDNSHandler(
                cluster, (ip, int(port)), open_upstream=self._sockets_in(server.netns)
            )
            self.dns_handlers[_key(server.netns, server.address, server.port, proto)] = full
            handler = full.udp if proto == "UDP" else full.tcp
        if proto == "UDP":
            transport = await dns.serve_udp(sock, handler)
            return transport.close
        server_obj = await dns.serve_tcp(sock, handler)
        return server_obj.close

    async def _serve_health(self, health: HealthServer, sock: socket.socket) -> Callable[[], None]:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                line = await asyncio.wait_for(reader.readline(), timeout=30)
                await _skip_headers(reader)
                if health.kind == "metrics":
                    path = line.decode("latin-1", "replace").split(" ")[1:2]
                    writer.write(metrics_response(health, path[0] if path else "/"))
                else:
                    writer.write(health_response(health, self.state, self.started))
                await writer.drain()
            except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                writer.close()

        server = await asyncio.start_server(handle, sock=sock)
        return server.close

    async def reconcile(self) -> None:
        """Open what the spec asks for and is not open; close what it no longer asks for."""
        wanted = self.wanted()
        for key in [k for k in self.sockets if k not in wanted]:
            self.closers.pop(key)()
            self.sockets.pop(key).close()
            self.balancers.pop(key, None)
            self.dns_handlers.pop(key, None)
        used = {k[0] for k in wanted}
        for name in [n for n in self.factories if n not in used]:
            self.factories.pop(name).close()
        opened = open_sockets([k for k in wanted if k not in self.sockets])
        try:
            for key, sock in list(opened.items()):
                self.closers[key] = await wanted[key](sock)
                self.sockets[key] = opened.pop(key)
        finally:
            for sock in opened.values():  # not served after an error: do not keep them
                sock.close()

    def reload(self) -> None:
        from netlab.workloads import dns

        self.spec, self.state = load_spec(self.state_dir)
        for proxy in self.spec.proxies:  # endpoints change without the socket changing
            balancer = self.balancers.get(_key(proxy.netns, "", proxy.port, proxy.protocol))
            if balancer is not None:
                balancer.update(proxy)
        for handler in self.dns_handlers.values():
            handler.cluster = dns.ClusterDNS(self.state, zone=self.state.lab.dns.domain)

    async def run(self, ready_fd: int) -> None:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        reload = asyncio.Event()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        loop.add_signal_handler(signal.SIGINT, stop.set)
        loop.add_signal_handler(signal.SIGHUP, reload.set)
        await self.reconcile()
        if ready_fd >= 0:
            os.write(ready_fd, b"ready\n")
            os.close(ready_fd)
        while not stop.is_set():
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(reload.wait())]
            await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            for w in waiters:
                w.cancel()
            if reload.is_set() and not stop.is_set():
                reload.clear()
                await self._reload_and_report()
        for close in self.closers.values():
            with contextlib.suppress(Exception):
                close()

    async def _reload_and_report(self) -> None:
        """Reload, then answer the request's nonce with the outcome; keep serving either way."""
        try:
            with open(os.path.join(self.state_dir, RELOAD_REQUEST)) as f:
                nonce = f.read().strip()
        except OSError:
            nonce = ""
        error = ""
        try:
            self.reload()
            await self.reconcile()
        except Exception as exc:  # a bad reload must not take every pod's servers down
            error = f"{type(exc).__name__}: {exc}"
            print(f"netlab agent: reload failed: {error}", file=sys.stderr)
        tmp = os.path.join(self.state_dir, RELOADED + ".tmp")
        with open(tmp, "w") as f:
            json.dump({"nonce": nonce, "ok": not error, "error": error}, f)
        os.replace(tmp, os.path.join(self.state_dir, RELOADED))


def main(argv: list[str]) -> int:
    state_dir, ready_fd = argv[0], int(argv[1]) if len(argv) > 1 else -1
    try:
        agent = Agent(state_dir)
        asyncio.run(agent.run(ready_fd))
    except OSError as exc:
        if ready_fd >= 0:
            with contextlib.suppress(OSError):
                os.write(ready_fd, f"error {exc}\n".encode())
        print(f"netlab agent: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
