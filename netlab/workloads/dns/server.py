"""The DNS servers themselves: the outside world's upstream, the cluster DNS handler (CoreDNS's
``forward`` and ``loadbalance`` around :class:`~netlab.workloads.dns.zone.ClusterDNS`), and
the UDP and TCP servers the lab agent runs on sockets opened in the DNS pods' namespaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
import socket
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence

import dnslib

from netlab.workloads.dns.wire import (
    EDNS_VERSION,
    QTYPE,
    RCODE,
    Labels,
    _reply,
    accept,
    badvers,
    edns_version,
    fit,
    formerr,
    udp_limit,
)
from netlab.workloads.dns.zone import MAX_CHAIN, ClusterDNS, Lookup, _fqdn, _ip, _labels, _under

log = logging.getLogger(__name__)
TCP_IDLE = 10.0  # seconds a TCP client may sit idle between queries

Handler = Callable[[bytes], Awaitable[bytes]]
# Opens an outgoing socket of the given type (SOCK_DGRAM or SOCK_STREAM): a plain socket in tests,
# a socket created inside the DNS pod's namespace in a lab. May be a coroutine function.
SocketFactory = Callable[[int], "socket.socket | Awaitable[socket.socket]"]


# The outside world -------------------------------------------------------------------------------


class UpstreamDNS:
    """The external world's DNS server: A/AAAA for the servers a scenario declares, else NXDOMAIN.

    It stands for the recursive resolver a node's /etc/resolv.conf names, so replies carry ra and
    not aa. A name that only looks like an IPv4 address (``10.0.0.5.``) is just an unknown name:
    NXDOMAIN. Negative answers carry an SOA: the declared name's parent zone, else the root's.
    """

    ROOT_SOA = ("a.root-servers.net.", "nstld.verisign-grs.com.")

    def __init__(self, records: Mapping[str, Sequence[str]], ttl: int = 300) -> None:
        self.ttl = ttl
        self._records: dict[Labels, list[str]] = {}
        self._zones: set[Labels] = set()
        for name, addresses in records.items():
            labels = _labels(_fqdn(name))
            self._records.setdefault(labels, []).extend(addresses)
            self._zones.add(labels[-2:] if len(labels) >= 2 else labels)

    def answer(self, request: dnslib.DNSRecord) -> dnslib.DNSRecord:
        if request.header.opcode != dnslib.OPCODE.QUERY:
            return _reply(request, rcode=RCODE.NOTIMP, ra=True)
        if len(request.questions) != 1:
            return _reply(request, rcode=RCODE.FORMERR, ra=True)
        qname, qtype = request.q.qname, request.q.qtype
        labels = _labels(qname)
        addresses = self._records.get(labels)
        if addresses is None:
            return _reply(request, authority=[self._soa(labels)], rcode=RCODE.NXDOMAIN, ra=True)
        answers = []
        for text in addresses:
            ip = _ip(text)
            rtype = QTYPE.A if ip is not None and ip.version == 4 else QTYPE.AAAA
            if qtype in (rtype, QTYPE.ANY):
                rdata = dnslib.A(text) if rtype == QTYPE.A else dnslib.AAAA(text)
                answers.append(dnslib.RR(qname, rtype, ttl=self.ttl, rdata=rdata))
        if not answers:
            return _reply(request, authority=[self._soa(labels)], ra=True)
        return _reply(request, answers, ra=True)

    def handle(self, data: bytes, *, tcp: bool = False) -> bytes:
        """One query in wire format -> its reply (cut to the client's UDP size unless ``tcp``)."""
        refused = accept(data)
        if refused is not None:
            return refused
        try:
            request = dnslib.DNSRecord.parse(data)
        except dnslib.DNSError:
            return formerr(data)
        reply: bytes = self.answer(request).pack()
        return fit(reply, 65535 if tcp else udp_limit(request))

    async def udp(self, data: bytes) -> bytes:
        return self.handle(data)

    async def tcp(self, data: bytes) -> bytes:
        return self.handle(data, tcp=True)

    async def __call__(self, data: bytes) -> bytes:
        return await self.udp(data)

    def _soa(self, labels: Labels) -> dnslib.RR:
        zone = next((z for z in self._zones if _under(labels, z)), ())
        origin = ".".join(zone) + "." if zone else "."
        mname, rname = (f"ns1.{origin}", f"hostmaster.{origin}") if zone else self.ROOT_SOA
        soa = dnslib.SOA(mname, rname, (1, 7200, 3600, 1209600, self.ttl))
        return dnslib.RR(origin, QTYPE.SOA, ttl=self.ttl, rdata=soa)


# Serving ----------------------------------------------------------------------------------------


class ClusterDNSHandler:
    """The DNS pod's server: ``ClusterDNS`` answers, everything else goes to ``upstream``.

    Forwarding is CoreDNS's ``forward`` plugin with ``prefer_udp``: UDP first, TCP again when the
    UDP reply is truncated, SERVFAIL when the upstream does not answer within ``timeout``.
    ExternalName targets are resolved the same way (CoreDNS's Upstream.Lookup goes through the
    server itself). Outgoing sockets come from ``open_upstream`` so a lab can create them inside
    the DNS pod's namespace; the default is a plain socket (tests).

    Serve UDP with ``serve_udp(sock, handler)`` (``handler`` is the UDP handler) and TCP with
    ``serve_tcp(sock, handler.tcp)``: a UDP reply is cut to the client's size, a TCP one is not.
    """

    def __init__(
        self,
        cluster: ClusterDNS,
        upstream: tuple[str, int],
        *,
        open_upstream: SocketFactory | None = None,
        timeout: float = 1.5,
        loadbalance: bool = True,
    ) -> None:
        self.cluster = cluster  # replace it to serve a new state
        self.upstream = upstream
        self.loadbalance = loadbalance
        self.timeout = timeout
        self._open_upstream = open_upstream or (lambda kind: socket.socket(socket.AF_INET, kind))

    async def udp(self, data: bytes) -> bytes:
        return await self.handle(data, tcp=False)

    async def tcp(self, data: bytes) -> bytes:
        return await self.handle(data, tcp=True)

    async def __call__(self, data: bytes) -> bytes:
        return await self.udp(data)

    async def handle(self, data: bytes, *, tcp: bool = False) -> bytes:
        """One query in wire format -> its reply in wire format (b"" = no reply).

        First what CoreDNS's server does before any plugin (core/dnsserver ``ServeDNS``, after
        miekg/dns has accepted and unpacked the message): a class other than IN is REFUSED
        (kubeadm's Corefile has no chaos plugin), an EDNS version above 0 gets BADVERS.
        """
        refused = accept(data)
        if refused is not None:
            return refused
        try:
            request = dnslib.DNSRecord.parse(data)
        except dnslib.DNSError:
            return formerr(data)
        limit = 65535 if tcp else udp_limit(request)
        if request.q.qclass != dnslib.CLASS.IN:
            return fit(_reply(request, rcode=RCODE.REFUSED).pack(), limit)
        version = edns_version(request)
        if version is not None and version > EDNS_VERSION:
            packed_badvers: bytes = badvers(request).pack()
            return packed_badvers
        try:
            answer = self.cluster.answer(request)
        except Exception:  # a bug must not cost the client its reply: SERVFAIL, as CoreDNS
            log.exception("cluster DNS failed on %s", request.q.qname)
            return fit(_reply(request, rcode=RCODE.SERVFAIL).pack(), limit)
        if answer.reply is None:
            raw = await self._forward(data, request, tcp)
            if raw is None:
                raw = _reply(request, rcode=RCODE.SERVFAIL).pack()
            return fit(raw, limit)
        reply = answer.reply
        if answer.lookup is not None:
            target = await self._lookup(answer.lookup, depth=1)
            reply = self.cluster.complete(answer, target)
        if self.loadbalance:
            loadbalance(reply)
        packed: bytes = reply.pack()
        return fit(packed, limit)

    async def _lookup(self, lookup: Lookup, depth: int) -> dnslib.DNSRecord | None:
        """Resolve an ExternalName target through this server: cluster first, then upstream."""
        query = dnslib.DNSRecord.question(lookup.name, QTYPE[lookup.qtype])
        answer = self.cluster.answer(query)
        if answer.reply is not None:
            if answer.lookup is None or depth >= MAX_CHAIN:
                return answer.reply
            return self.cluster.complete(answer, await self._lookup(answer.lookup, depth + 1))
        raw = await self._forward(query.pack(), query, tcp=False)
        if raw is None:
            return None
        try:
            reply: dnslib.DNSRecord = dnslib.DNSRecord.parse(raw)
        except dnslib.DNSError:
            return None
        return reply

    async def _forward(self, data: bytes, request: dnslib.DNSRecord, tcp: bool) -> bytes | None:
        """Send the query upstream unchanged; None when nothing usable came back."""
        if tcp:
            raw = await self._exchange(data, socket.SOCK_STREAM)  # forward follows the client
        else:
            raw = await self._exchange(data, socket.SOCK_DGRAM)
            if raw is not None and _truncated(raw):
                raw = await self._exchange(data, socket.SOCK_STREAM) or raw  # as prefer_udp
        if raw is None:
            return None
        try:
            reply = dnslib.DNSRecord.parse(raw)
        except dnslib.DNSError:
            return None
        if reply.header.id != request.header.id or reply.questions != request.questions:
            wrong: bytes = _reply(request, rcode=RCODE.FORMERR).pack()  # "Wrong reply for id"
            return wrong
        return raw

    async def _exchange(self, data: bytes, kind: int) -> bytes | None:
        loop = asyncio.get_running_loop()
        opened = self._open_upstream(kind)
        sock = await opened if inspect.isawaitable(opened) else opened
        try:
            sock.setblocking(False)
            async with asyncio.timeout(self.timeout):
                await loop.sock_connect(sock, self.upstream)
                if kind == socket.SOCK_DGRAM:
                    await loop.sock_sendall(sock, data)
                    return await loop.sock_recv(sock, 65535)
                await loop.sock_sendall(sock, len(data).to_bytes(2, "big") + data)
                size = int.from_bytes(await _recv_exactly(loop, sock, 2), "big")
                return await _recv_exactly(loop, sock, size)
        except (OSError, TimeoutError, EOFError):
            return None
        finally:
            sock.close()


def loadbalance(reply: dnslib.DNSRecord) -> None:
    """CoreDNS's ``loadbalance`` plugin (in kubeadm's Corefile): shuffle the A, AAAA and MX
    records of an answer, so clients that take the first address spread over them (a headless
    Service's pods, for one). Other records keep their place, before the shuffled ones."""
    shuffled = {QTYPE.A, QTYPE.AAAA, QTYPE.MX}
    rest = [rr for rr in reply.rr if rr.rtype not in shuffled]
    for group in (QTYPE.A, QTYPE.AAAA), (QTYPE.MX,):
        rrs = [rr for rr in reply.rr if rr.rtype in group]
        random.shuffle(rrs)
        rest += rrs
    reply.rr = rest


def _truncated(raw: bytes) -> bool:
    return len(raw) >= 4 and bool(raw[2] & 0x02)


async def _recv_exactly(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await loop.sock_recv(sock, size - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


class _DatagramServer(asyncio.DatagramProtocol):
    """Each datagram is answered in its own task, so a slow forward does not block the rest."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.transport: asyncio.DatagramTransport | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # The selector transport implements DatagramTransport without subclassing it.
        self.transport = typing.cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        task = asyncio.ensure_future(self._answer(data, addr))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _answer(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        try:
            reply = await self.handler(data)
        except Exception:
            log.exception("DNS handler failed")
            return
        if reply and self.transport is not None:
            self.transport.sendto(reply, addr)


# A DNS server must hold a burst: queries wait in the socket's receive queue while earlier ones
# are answered, and the kernel's default (net.core.rmem_default, ~208 KiB: some 150 small
# datagrams) drops the rest. CoreDNS answers each query on its own goroutine; one asyncio loop
# needs the queue instead. 8 MiB holds several thousand queries; set per socket, no sysctl.
UDP_BUFFER = 8 << 20
_SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
_SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)


def enlarge_buffers(sock: socket.socket, size: int = UDP_BUFFER) -> int:
    """Give ``sock`` ``size`` bytes of receive and send buffer: past net.core.rmem_max with
    CAP_NET_ADMIN (the lab's agent runs as root), else as much as the sysctl allows. Returns the
    receive buffer the kernel granted."""
    for force, plain in ((_SO_RCVBUFFORCE, socket.SO_RCVBUF), (_SO_SNDBUFFORCE, socket.SO_SNDBUF)):
        try:
            sock.setsockopt(socket.SOL_SOCKET, force, size)
        except OSError:  # not privileged: capped by the sysctl
            sock.setsockopt(socket.SOL_SOCKET, plain, size)
    return sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)


async def serve_udp(sock: socket.socket, handler: Handler) -> asyncio.DatagramTransport:
    """Serve DNS over UDP on a bound, non-blocking socket; close the transport to stop."""
    enlarge_buffers(sock)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _DatagramServer(handler), sock=sock)
    return transport


async def serve_tcp(sock: socket.socket, handler: Handler) -> asyncio.Server:
    """Serve DNS over TCP (2-byte length prefix, several queries per connection) on a bound,
    non-blocking socket; close the server to stop."""

    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE)
                data = await asyncio.wait_for(reader.readexactly(int.from_bytes(head, "big")), 30)
                try:
                    reply = await handler(data)
                except Exception:
                    log.exception("DNS handler failed")
                    break
                if not reply:
                    break
                writer.write(len(reply).to_bytes(2, "big") + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    return await asyncio.start_server(client, sock=sock)
