"""The API server's value validators: DNS labels and subdomains, qualified names, label values,
ports, IP addresses and CIDRs (k8s.io/apimachinery ``pkg/util/validation/validation.go`` and
``pkg/apis/core/validation``), with the released wording ("... characters").
"""

from __future__ import annotations

import ipaddress
import re

from netlab.scenario.k8s.fielderrors import _go_quote

# ---------------------------------------------------------------------------------------------
# k8s.io/apimachinery/pkg/util/validation/validation.go (released wording: "... characters")
# ---------------------------------------------------------------------------------------------

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL_MSG = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + r"(\." + _DNS1123_LABEL_FMT + ")*"
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
    "'.', and must start and end with an alphanumeric character"
)
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_MSG = (
    "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
    "alphabetic character, and end with an alphanumeric character"
)
_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QNAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
_LABEL_VALUE_FMT = "(" + _QNAME_FMT + ")?"
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_PORT_RANGE_MSG = "must be between 1 and 65535, inclusive"
_IP_MSG = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"
_CIDR_MSG = "must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)"


# compiled once: every name, label key and label value of a file goes through them
_DNS1123_LABEL_RE = re.compile(_DNS1123_LABEL_FMT)
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1035_LABEL_RE = re.compile(_DNS1035_LABEL_FMT)
_QNAME_RE = re.compile(_QNAME_FMT)
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_PORT_NAME_RE = re.compile("[-a-z0-9]+")
_LETTER_RE = re.compile("[a-z]")


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """``RegexError``, including its double space before ``or`` when there are two examples."""
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    msg += " (e.g. "
    for i, example in enumerate(examples):
        if i > 0:
            msg += " or "
        msg += f"'{example}', "
    return msg + f"regex used for validation is '{fmt}')"


def _max_len(n: int) -> str:
    return f"must be no more than {n} characters"


def _blen(s: str) -> int:
    """Go's ``len`` counts bytes."""
    return len(s.encode())


def _dns1123_label(value: str) -> list[str]:
    errs = [_max_len(63)] if _blen(value) > 63 else []
    if not _DNS1123_LABEL_RE.fullmatch(value):
        if _DNS1123_SUBDOMAIN_RE.fullmatch(value):
            errs.append("must not contain dots")
        else:
            errs.append(_regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def _dns1123_subdomain(value: str) -> list[str]:
    errs = [_max_len(253)] if _blen(value) > 253 else []
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def _dns1035_label(value: str) -> list[str]:
    errs = [_max_len(63)] if _blen(value) > 63 else []
    if not _DNS1035_LABEL_RE.fullmatch(value):
        errs.append(_regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def _port_num(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [_PORT_RANGE_MSG]


def _port_name(port: str) -> list[str]:
    """``IsValidPortName``: an IANA_SVC_NAME (at most 15 chars, a-z0-9 and single hyphens)."""
    errs = []
    if _blen(port) > 15:
        errs.append(_max_len(15))
    if not _PORT_NAME_RE.fullmatch(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _LETTER_RE.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def _qualified_name(value: str) -> list[str]:
    """``IsQualifiedName``: what label keys and annotation keys must be."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part must be non-empty")
        else:
            errs += ["prefix part " + m for m in _dns1123_subdomain(prefix)]
    else:
        return [
            "a qualified name "
            + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part must be non-empty")
    elif _blen(name) > 63:
        errs.append("name part " + _max_len(63))
    if not _QNAME_RE.fullmatch(name):
        errs.append(
            "name part " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def _label_value(value: str) -> list[str]:
    errs = [_max_len(63)] if _blen(value) > 63 else []
    if not _LABEL_VALUE_RE.fullmatch(value):
        errs.append(
            _regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345")
        )
    return errs


IP = ipaddress.IPv4Address | ipaddress.IPv6Address


def _parse_ip(s: str) -> IP | None:
    """``netutils.ParseIPSloppy``: like Go's old ``net.ParseIP``, IPv4 parts may have leading 0s."""
    if "%" in s:
        return None  # Go never accepts an IPv6 zone here
    if ":" not in s:
        parts = s.split(".")
        if len(parts) != 4 or not all(p.isascii() and p.isdigit() for p in parts):
            return None
        if any(int(p) > 255 for p in parts):
            return None
        return ipaddress.IPv4Address(".".join(str(int(p)) for p in parts))
    try:
        return ipaddress.IPv6Address(s)
    except ValueError:
        return None


def _valid_cidr(s: str) -> bool:
    """``netutils.ParseCIDRSloppy``: host bits may be set, IPv4 parts may have leading zeros."""
    addr, sep, bits = s.partition("/")
    ip = _parse_ip(addr)
    if not sep or ip is None or not (bits.isascii() and bits.isdigit()):
        return False
    return int(bits) <= (32 if ip.version == 4 else 128)


def _as_v4(ip: IP) -> IP:
    """Go treats IPv4-mapped IPv6 addresses as IPv4 in its Is* predicates."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _non_special_ip(raw: str, ip: IP) -> list[str]:
    """``ValidateNonSpecialIP`` (core/validation): what externalIPs may not be."""
    ip = _as_v4(ip)
    errs = []
    if ip.is_unspecified:
        errs.append(f"may not be unspecified ({raw})")
    if ip.is_loopback:
        errs.append("may not be in the loopback range (127.0.0.0/8, ::1/128)")
    if ip.is_link_local:
        errs.append("may not be in the link-local range (169.254.0.0/16, fe80::/10)")
    if (ip.version == 4 and ip in ipaddress.IPv4Network("224.0.0.0/24")) or (
        ip.version == 6 and ip.packed[0] == 0xFF and ip.packed[1] & 0x0F == 0x02
    ):
        errs.append("may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)")
    return errs


def _ip_warning(raw: str) -> str:
    """``GetWarningsForIP`` (util/validation/ip.go), without its leading field path."""
    ip = _parse_ip(raw)
    if ip is None:
        return ""
    if isinstance(ip, ipaddress.IPv4Address) and str(ip) != raw:
        return (
            f"non-standard IP address {_go_quote(raw)} will be considered invalid in a future "
            f"Kubernetes release: use {_go_quote(str(ip))}"
        )
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return (
                f"non-standard IP address {_go_quote(raw)} will be considered invalid in a future "
                f"Kubernetes release: use {_go_quote(str(ip.ipv4_mapped))}"
            )
        if ip.compressed != raw:
            return (
                f"IPv6 address {_go_quote(raw)} should be in RFC 5952 canonical format "
                f"({_go_quote(ip.compressed)})"
            )
    return ""


# helper.IsStandardFinalizerName: kubernetes, and metav1's orphan and foregroundDeletion
_STANDARD_FINALIZERS = ("kubernetes", "orphan", "foregroundDeletion")


def finalizer_problems(name: str) -> list[str]:
    """``validateFinalizerName``: a qualified name, and one without a domain must be standard."""
    msgs = _qualified_name(name)
    if "/" not in name and name not in _STANDARD_FINALIZERS:
        msgs.append("name is neither a standard finalizer name nor is it fully qualified")
    return msgs
