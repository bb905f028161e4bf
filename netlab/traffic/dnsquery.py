"""A stub resolver for netlab's DNS checks: one query, or a lookup through resolv.conf's search.

Run inside a namespace by the caller (plain blocking sockets). ``query`` asks one server one
question, as ``dig`` would. ``resolve`` is what a pod's libc does with a name: it applies
``search`` and ``ndots`` exactly as glibc's ``__res_context_search`` (resolv/res_query.c) does,
which is why ``web`` resolves to ``web.default.svc.cluster.local`` in a pod, and why an external
name costs several NXDOMAINs first under Kubernetes' ``ndots:5``.
"""

from __future__ import annotations

import dataclasses
import random
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import dnslib

from netlab.checks.observations import DNSResult, Record
from netlab.cluster.resolvconf import ResolvConf

QueryFn = Callable[[str, str, str], "DNSResult"]  # (server, absolute name, type) -> result

# glibc's h_errno values for a failed lookup (netdb.h), as strings.
HOST_NOT_FOUND = "HOST_NOT_FOUND"  # NXDOMAIN
NO_DATA = "NO_DATA"  # the name exists, not with this type
TRY_AGAIN = "TRY_AGAIN"  # SERVFAIL, timeout, refused connection
NO_RECOVERY = "NO_RECOVERY"  # FORMERR, NOTIMP, REFUSED...


def _rcode(value: int) -> str:
    try:
        return str(dnslib.RCODE[value])
    except Exception:
        return str(value)


def _qtype(name: str) -> int:
    value = getattr(dnslib.QTYPE, name.upper(), None)
    if value is None:
        raise ValueError(f"unknown DNS type {name!r}")
    return int(value)


def _flat(rr: dnslib.RR) -> Record:
    try:
        rtype = str(dnslib.QTYPE[rr.rtype])
    except Exception:
        rtype = f"TYPE{rr.rtype}"
    return (str(rr.rname), rtype, int(rr.ttl), rr.rdata.toZone() if rr.rdata else "")


def result_from_reply(server: str, name: str, qtype: str, reply: dnslib.DNSRecord) -> DNSResult:
    """Flatten a parsed reply (also used by tests that answer in-process)."""
    answers = tuple(_flat(rr) for rr in reply.rr)
    chain = [name]
    seen = {name.lower()}
    while True:
        nxt = next(
            (d for n, t, _, d in answers if t == "CNAME" and n.lower() == chain[-1].lower()),
            None,
        )
        if nxt is None or nxt.lower() in seen:
            break
        seen.add(nxt.lower())
        chain.append(nxt)
    h = reply.header
    bits = {"qr": h.qr, "aa": h.aa, "tc": h.tc, "rd": h.rd, "ra": h.ra, "ad": h.ad, "cd": h.cd}
    return DNSResult(
        server=server,
        name=name,
        qtype=qtype.upper(),
        rcode=_rcode(h.rcode),
        answers=answers,
        authority=tuple(_flat(rr) for rr in reply.auth),
        additional=tuple(_flat(rr) for rr in reply.ar if rr.rtype != dnslib.QTYPE.OPT),
        cname_chain=tuple(chain),
        flags=frozenset(k for k, v in bits.items() if v),
    )


def query(
    server: str,
    name: str,
    qtype: str,
    *,
    port: int = 53,
    tcp: bool = False,
    timeout: float = 2.0,
    retry_tcp: bool = True,
    edns: int | None = None,
) -> DNSResult:
    """Ask ``server`` one question. A relative ``name`` is taken as absolute (dig does the same).

    Over UDP, a truncated reply is asked again over TCP (``retry_tcp``), as glibc and dig do.
    ``edns`` adds an OPT record with that buffer size (glibc sends none unless ``options edns0``).
    """
    fqdn = name if name.endswith(".") else name + "."
    request = dnslib.DNSRecord(
        dnslib.DNSHeader(id=random.randint(0, 0xFFFF), rd=1),
        q=dnslib.DNSQuestion(fqdn, _qtype(qtype)),
    )
    if edns is not None:
        request.add_ar(dnslib.EDNS0(udp_len=edns))
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    data = request.pack()
    used_tcp = tcp
    try:
        if tcp:
            raw = _tcp(family, server, port, data, timeout)
        else:
            raw = _udp(family, server, port, data, request, timeout)
            if retry_tcp and raw[2] & 0x02:  # TC: ask again over TCP
                used_tcp = True
                raw = _tcp(family, server, port, data, timeout)
        reply = dnslib.DNSRecord.parse(raw)
    except TimeoutError:
        return DNSResult(server, fqdn, qtype.upper(), error="timeout", tcp=used_tcp)
    except ConnectionRefusedError:
        return DNSResult(server, fqdn, qtype.upper(), error="connection refused", tcp=used_tcp)
    except (OSError, EOFError, dnslib.DNSError) as exc:
        return DNSResult(server, fqdn, qtype.upper(), error=str(exc) or type(exc).__name__)
    return dataclasses.replace(result_from_reply(server, fqdn, qtype, reply), tcp=used_tcp)


def _udp(
    family: int, server: str, port: int, data: bytes, request: dnslib.DNSRecord, timeout: float
) -> bytes:
    """Send once, then wait for the reply with our id and question (others are dropped)."""
    deadline = time.monotonic() + timeout
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((server, port))
        sock.send(data)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            sock.settimeout(left)
            raw = sock.recv(65535)  # socket.timeout is TimeoutError
            try:
                reply = dnslib.DNSRecord.parse(raw)
            except dnslib.DNSError:
                continue
            if reply.header.id == request.header.id and reply.questions == request.questions:
                return raw


def _tcp(family: int, server: str, port: int, data: bytes, timeout: float) -> bytes:
    with socket.create_connection((server, port), timeout=timeout) as sock:
        sock.sendall(len(data).to_bytes(2, "big") + data)
        size = int.from_bytes(_recv_exactly(sock, 2), "big")
        return _recv_exactly(sock, size)


def _recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise EOFError("connection closed")
        data += chunk
    return data


# Search: glibc's __res_context_search ----------------------------------------------------------


@dataclass
class _Search:
    """What one lookup has learnt so far (res_query.c's local variables)."""

    tried: list[str] = field(default_factory=list)
    results: list[DNSResult] = field(default_factory=list)


def _herrno(result: DNSResult) -> str:
    """res_nquery's verdict on one reply ("" = an answer)."""
    if result.ok:
        return ""
    if not result.rcode:
        return TRY_AGAIN  # no reply: timeout or refused
    if result.rcode == "NXDOMAIN":
        return HOST_NOT_FOUND
    if result.rcode == "NOERROR":
        return NO_DATA
    if result.rcode == "SERVFAIL":
        return TRY_AGAIN
    return NO_RECOVERY


def _ask(resolv: ResolvConf, fqdn: str, qtype: str, ask: QueryFn, state: _Search) -> DNSResult:
    """res_send: each nameserver in turn until one gives a usable reply.

    SERVFAIL, NOTIMP and REFUSED replies, timeouts and refused connections move on to the next
    server; with none left, the last of them is the outcome.
    """
    state.tried.append(fqdn)
    result = DNSResult(resolv.nameservers[0] if resolv.nameservers else "", fqdn, qtype)
    for server in resolv.nameservers or ("127.0.0.1",):  # glibc's default without nameservers
        result = ask(server, fqdn, qtype)
        if result.rcode and result.rcode not in ("SERVFAIL", "NOTIMP", "REFUSED"):
            break
    state.results.append(result)
    return result


def resolve(
    resolv: ResolvConf,
    name: str,
    qtype: str,
    *,
    query_fn: QueryFn | None = None,
    timeout: float = 2.0,
    tcp: bool = False,
) -> DNSResult:
    """Look ``name`` up as glibc does (``res_search``), returning the deciding reply.

    - A trailing dot: the name as is, and nothing else.
    - At least ``ndots`` dots: the name as is first; then each search domain.
    - Fewer: each search domain first, then the name as is.
    - The first positive answer (NOERROR with records) wins. NXDOMAIN and NODATA go on to the
      next candidate; so does SERVFAIL. A timeout or any other error stops the search list (the
      name as is is still tried if it has not been), and a refused connection stops everything.
    - On failure ``herrno`` is glibc's: the as-is query's if it went first, else NO_DATA if any
      candidate had NODATA, else TRY_AGAIN if any had SERVFAIL, else the last one's.

    ``query_fn(server, fqdn, qtype)`` replaces the network (tests, or a query run in a netns).
    """

    def ask_default(server: str, fqdn: str, t: str) -> DNSResult:
        return query(server, fqdn, t, timeout=timeout, tcp=tcp)

    ask = query_fn or ask_default
    state = _Search()
    dots = name.count(".")
    trailing = name.endswith(".")
    bare = name.rstrip(".") if trailing else name

    def done(result: DNSResult, herrno: str) -> DNSResult:
        return dataclasses.replace(result, tried=tuple(state.tried), herrno=herrno)

    saved: DNSResult | None = None
    if dots >= resolv.ndots or trailing:
        first = _ask(resolv, bare + ".", qtype, ask, state)
        if first.ok or trailing:
            return done(first, _herrno(first))
        saved = first

    got_nodata: DNSResult | None = None
    got_servfail: DNSResult | None = None
    root_on_list = False
    last: DNSResult | None = saved
    if not trailing:  # RES_DEFNAMES and RES_DNSRCH are on by default
        for domain in resolv.search:
            domain = domain.strip(".")
            root_on_list = root_on_list or not domain
            fqdn = f"{bare}.{domain}." if domain else f"{bare}."
            result = _ask(resolv, fqdn, qtype, ask, state)
            last = result
            if result.ok:
                return done(result, "")
            if result.error == "connection refused":
                return done(result, TRY_AGAIN)  # ECONNREFUSED: give up at once
            herrno = _herrno(result)
            if herrno == NO_DATA:
                got_nodata = got_nodata or result
            elif herrno == TRY_AGAIN and result.rcode == "SERVFAIL":
                got_servfail = got_servfail or result
            elif herrno != HOST_NOT_FOUND:
                break  # anything else: stop searching, but still try the name as is

    if saved is None and not root_on_list:
        result = _ask(resolv, bare + ".", qtype, ask, state)
        if result.ok:
            return done(result, "")
        last = result

    if saved is not None:
        return done(saved, _herrno(saved))
    if got_nodata is not None:
        return done(got_nodata, NO_DATA)
    if got_servfail is not None:
        return done(got_servfail, TRY_AGAIN)
    assert last is not None
    return done(last, _herrno(last))


def try_order(resolv: ResolvConf, name: str) -> list[str]:
    """The names ``resolve`` would try, in order, if every one of them were NXDOMAIN."""
    tried: list[str] = []

    def nx(server: str, fqdn: str, qtype: str) -> DNSResult:
        tried.append(fqdn)
        return DNSResult(server, fqdn, qtype, rcode="NXDOMAIN")

    resolve(resolv, name, "A", query_fn=nx)
    return tried


__all__ = [
    "DNSResult",
    "QueryFn",
    "Record",
    "ResolvConf",
    "query",
    "resolve",
    "result_from_reply",
    "try_order",
]
