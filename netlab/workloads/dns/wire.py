"""DNS messages as CoreDNS's server code builds them (miekg/dns): replies, EDNS0 echo, UDP size
limits, truncation and FORMERR for what does not parse.
"""

from __future__ import annotations

from collections.abc import Sequence

import dnslib

UDP_MIN = 512  # a UDP reply without EDNS0 never exceeds 512 bytes (RFC 1035 4.2.1)
# EDNS0 options CoreDNS echoes back (request.SupportedOptions): NSID, EXPIRE, COOKIE, keepalive,
# padding.
_ECHOED_OPTIONS = {3, 9, 10, 11, 12}
QTYPE = dnslib.QTYPE
RCODE = dnslib.RCODE
Labels = tuple[str, ...]


def _reply(
    request: dnslib.DNSRecord,
    answers: Sequence[dnslib.RR] = (),
    authority: Sequence[dnslib.RR] = (),
    additional: Sequence[dnslib.RR] = (),
    *,
    rcode: int = 0,
    aa: bool = False,
    ra: bool = False,
) -> dnslib.DNSRecord:
    """miekg's SetReply: same id, opcode, question, rd and cd; the request's EDNS0 echoed."""
    h = request.header
    header = dnslib.DNSHeader(
        id=h.id, qr=1, opcode=h.opcode, aa=int(aa), rd=h.rd, ra=int(ra), cd=h.cd, rcode=rcode
    )
    reply = dnslib.DNSRecord(
        header,
        questions=list(request.questions),
        rr=list(answers),
        auth=list(authority),
        ar=list(additional),
    )
    opt = _edns(request)
    if opt is not None:
        # request.SizeAndDo: the client's buffer size and DO bit, version 0, supported options.
        options = [o for o in opt.rdata if o.code in _ECHOED_OPTIONS]
        ttl = opt.ttl & 0x8000
        reply.add_ar(dnslib.RR(".", QTYPE.OPT, rclass=opt.rclass, ttl=ttl, rdata=options))
    return reply


def _edns(message: dnslib.DNSRecord) -> dnslib.RR | None:
    return next((rr for rr in message.ar if rr.rtype == QTYPE.OPT), None)


def udp_limit(request: dnslib.DNSRecord) -> int:
    """The largest UDP reply the client accepts: 512, or its EDNS0 buffer size if larger."""
    opt = _edns(request)
    return max(UDP_MIN, int(opt.rclass)) if opt is not None else UDP_MIN


def fit(reply: bytes, limit: int) -> bytes:
    """Truncate a reply to ``limit`` bytes as miekg's Msg.Truncate does.

    Keep the question and as many answer records as fit, drop authority and additional (but keep
    the OPT record), and set TC so the client retries over TCP.
    """
    if len(reply) <= limit:
        return reply
    try:
        msg = dnslib.DNSRecord.parse(reply)
    except dnslib.DNSError:
        return reply[:12]
    opt = _edns(msg)
    msg.header.tc = 1
    answers, msg.rr, msg.auth, msg.ar = list(msg.rr), [], [], [opt] if opt is not None else []
    for rr in answers:
        msg.rr.append(rr)
        if len(msg.pack()) > limit:
            msg.rr.pop()
            break
    packed: bytes = msg.pack()
    return packed


def formerr(data: bytes) -> bytes:
    """A header-only FORMERR for a message that does not parse (nothing if not even a header)."""
    if len(data) < 12:
        return b""
    flags = int.from_bytes(data[2:4], "big")
    opcode = (flags >> 11) & 0xF
    out = (1 << 15) | (opcode << 11) | (flags & 0x0100) | int(RCODE.FORMERR)
    return data[:2] + out.to_bytes(2, "big") + bytes(8)
