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


# What miekg/dns's server does before a handler (CoreDNS) sees a message ------------------------

_QR, _AA, _Z = 0x8000, 0x0400, 0x0040
OPCODE_QUERY, OPCODE_NOTIFY = 0, 4
MAX_NAME_WIRE = 255  # maxDomainNameWireOctets
MAX_POINTERS = 126  # maxCompressionPointers: a loop of pointers is an error, not a hang


class WireError(ValueError):
    """A message miekg/dns cannot unpack (ErrBuf, ErrRdata, ErrLongDomain, too many pointers)."""


def _skip_name(data: bytes, off: int) -> int:
    """UnpackDomainName, for its verdict only: where the name ends, or WireError.

    A label length byte of 64-191 (the 0x40 and 0x80 label types) is an error: that is how a
    label of more than 63 octets shows on the wire.
    """
    end = -1
    size = 0
    pointers = 0
    while True:
        if off >= len(data):
            raise WireError("buffer size too small")
        c = data[off]
        off += 1
        kind = c & 0xC0
        if kind == 0x00:
            if c == 0:
                break
            if off + c > len(data):
                raise WireError("buffer size too small")
            size += c + 1
            if size + 1 > MAX_NAME_WIRE:
                raise WireError("domain name exceeded 255 wire-format octets")
            off += c
        elif kind == 0xC0:
            if off >= len(data):
                raise WireError("buffer size too small")
            if end < 0:
                end = off + 1
            pointers += 1
            if pointers > MAX_POINTERS:
                raise WireError("too many compression pointers")
            off = ((c & 0x3F) << 8) | data[off]
        else:
            raise WireError("bad rdata")  # 0x40 and 0x80 are reserved label types
    return end if end >= 0 else off


def _header_reply(data: bytes, rcode: int, opcode: int | None = None) -> bytes:
    """SetRcodeFormatError on the request's own header (sections dropped): id and flags kept,
    QR set, AA and Z cleared, opcode QUERY unless given, and ``rcode``."""
    flags = int.from_bytes(data[2:4], "big")
    op = OPCODE_QUERY if opcode is None else opcode
    flags = (flags | _QR) & ~(_AA | _Z | 0x7800 | 0xF)
    flags |= (op << 11) | rcode
    return data[:2] + flags.to_bytes(2, "big") + bytes(8)


def accept(data: bytes) -> bytes | None:
    """miekg/dns's ``serveDNS``: ``None`` when the message goes on to the handler, else what the
    server sends instead (``b""``: nothing).

    Without a whole header, or for a response, nothing is sent. Opcodes other than QUERY and
    NOTIFY get NOTIMP; a question count other than one, or more records than a query carries
    (defaultMsgAcceptFunc), get FORMERR; so does a message that does not unpack, e.g. a name
    with a label over 63 octets. Never silence for a query that had a header.
    """
    if len(data) < 12:
        return b""
    flags = int.from_bytes(data[2:4], "big")
    if flags & _QR:
        return b""
    opcode = (flags >> 11) & 0xF
    if opcode not in (OPCODE_QUERY, OPCODE_NOTIFY):
        return _header_reply(data, int(RCODE.NOTIMP), opcode)
    qd, an, ns, ar = (int.from_bytes(data[i : i + 2], "big") for i in (4, 6, 8, 10))
    if qd != 1 or an > 1 or ns > 1 or ar > 2:
        return _header_reply(data, int(RCODE.FORMERR))
    off = 12
    try:
        off = _skip_name(data, off)
        if off + 4 > len(data):
            raise WireError("buffer size too small")
        off += 4
        question_end = off
    except WireError:
        return _header_reply(data, int(RCODE.FORMERR))
    try:
        for _ in range(an + ns + ar):
            off = _skip_name(data, off)
            if off + 10 > len(data):
                raise WireError("buffer size too small")
            rdlength = int.from_bytes(data[off + 8 : off + 10], "big")
            off += 10 + rdlength
            if off > len(data):
                raise WireError("buffer size too small")
    except WireError:
        # The question did unpack: miekg keeps it in the FORMERR reply.
        reply = _header_reply(data, int(RCODE.FORMERR))
        return reply[:4] + (1).to_bytes(2, "big") + reply[6:] + data[12:question_end]
    return None


EDNS_VERSION = 0
RCODE_BADVERS = 16


def edns_version(message: dnslib.DNSRecord) -> int | None:
    """The EDNS version a message's OPT record carries (None without one)."""
    opt = _edns(message)
    return None if opt is None else (int(opt.ttl) >> 16) & 0xFF


def badvers(request: dnslib.DNSRecord) -> dnslib.DNSRecord:
    """CoreDNS's edns.Version reply to an EDNS version it does not speak: SetReply, then an OPT
    of version 0 carrying the extended rcode BADVERS (16: header rcode 0, OPT's upper bits 1),
    with a UDP size of 0, as ``new(dns.OPT)`` leaves it."""
    h = request.header
    header = dnslib.DNSHeader(id=h.id, qr=1, opcode=h.opcode, rd=h.rd, cd=h.cd, rcode=0)
    reply = dnslib.DNSRecord(header, questions=list(request.questions[:1]))
    ttl = (RCODE_BADVERS >> 4) << 24 | EDNS_VERSION << 16
    reply.add_ar(dnslib.RR(".", QTYPE.OPT, rclass=0, ttl=ttl, rdata=[]))
    return reply
