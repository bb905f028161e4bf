"""Validate Kubernetes manifests the way the API server does, and build netlab's typed objects.

Scenario files hold ordinary Kubernetes manifests. A learner who writes an invalid one should get
the message ``kubectl apply`` would have printed (same wording, same field path), but positioned at
the line of their file, with a hint, and together with every other problem in the document rather
than one at a time. So this module re-implements, for the four kinds netlab supports, the API
server's pipeline: strict decoding (unknown fields, wrong types), defaulting
(``pkg/apis/core/v1/defaults.go``), then validation (``pkg/apis/core/validation``,
``pkg/apis/apps/validation`` and the apimachinery helpers they call). Message texts are copied from
those sources, quirks included; see the constants below for where each comes from.

What needs knowledge of the whole cluster (NodePort range and allocation, ClusterIP in the service
CIDR, ...) is left to the caller.

Deliberate departures: every problem is reported, not just the first decoding error (follow-on
errors of one mistake are suppressed); what netlab cannot model is rejected with netlab's own
wording (selector matchExpressions, generateName, a loadBalancerIP that is not an address); and
warnings are added for what the API server accepts but will not work in the lab (a Service
without a selector, an IP address as externalName, one port name in two containers). Wording is
that of released Kubernetes; the main branch has since reworded a few helpers ("characters" ->
"bytes" in length limits, "qualified name" -> "label key").
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import ipaddress
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from netlab.errors import Diagnostic
from netlab.scenario.k8s import (
    READY_ANNOTATION,
    Container,
    ContainerPort,
    Deployment,
    Namespace,
    ObjectMeta,
    Pod,
    PodSpec,
    Service,
    ServicePort,
)
from netlab.scenario.yamlpos import Document, Path, dotted

SUPPORTED_KINDS: dict[tuple[str, str], str] = {
    ("v1", "Namespace"): "a namespace to put objects in",
    ("v1", "Pod"): "a single pod (its containers' ports are what Services target)",
    ("v1", "Service"): "ClusterIP, NodePort, LoadBalancer, headless or ExternalName Services",
    ("apps/v1", "Deployment"): "a set of identical pods selected by matchLabels",
}

K8sObject = Namespace | Pod | Deployment | Service

# ---------------------------------------------------------------------------------------------
# Rendering values and errors the way k8s.io/apimachinery/pkg/util/validation/field/errors.go does
# ---------------------------------------------------------------------------------------------


class _Raw(str):
    """A value already rendered in Go syntax (``%#v`` of a struct, map or slice)."""


def _go_quote(s: str) -> str:
    """Go's ``strconv.Quote`` (what ``%q`` prints): printable runes stay, the rest is escaped."""
    named = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t"}
    out = ['"']
    for ch in s:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in named:
            out.append(named[ch])
        elif ch == "\v":
            out.append(r"\v")
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def _go_value(value: object) -> str:
    """The bad value as ``field.Error.ErrorBody`` prints it: ``%q`` for strings, ``%v`` else."""
    if isinstance(value, _Raw):
        return str(value)
    if isinstance(value, str):
        return _go_quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _go_map(m: dict[str, str] | None) -> _Raw:
    """``%#v`` of a ``map[string]string``: keys sorted, ``(nil)`` when unset."""
    if m is None:
        return _Raw("map[string]string(nil)")
    inner = ", ".join(f"{_go_quote(k)}:{_go_quote(m[k])}" for k in sorted(m))
    return _Raw(f"map[string]string{{{inner}}}")


def _go_strings(items: list[str] | None) -> _Raw:
    """``%#v`` of a ``[]string``."""
    if items is None:
        return _Raw("[]string(nil)")
    return _Raw("[]string{" + ", ".join(_go_quote(s) for s in items) + "}")


def _invalid(value: object, detail: str) -> str:
    return f"Invalid value: {_go_value(value)}: {detail}"


def _required(detail: str = "") -> str:
    return f"Required value: {detail}" if detail else "Required value"


def _forbidden(detail: str) -> str:
    return f"Forbidden: {detail}"


def _duplicate(value: object) -> str:
    return f"Duplicate value: {_go_value(value)}"


def _unsupported(value: object, supported: Iterable[str]) -> str:
    """``field.NotSupported``; callers pass the list in upstream order (sorted for sets)."""
    quoted = ", ".join(json.dumps(v) for v in supported)
    return f"Unsupported value: {_go_value(value)}: supported values: {quoted}"


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
    if not re.fullmatch(_DNS1123_LABEL_FMT, value):
        if re.fullmatch(_DNS1123_SUBDOMAIN_FMT, value):
            errs.append("must not contain dots")
        else:
            errs.append(_regex_error(_DNS1123_LABEL_MSG, _DNS1123_LABEL_FMT, "my-name", "123-abc"))
    return errs


def _dns1123_subdomain(value: str) -> list[str]:
    errs = [_max_len(253)] if _blen(value) > 253 else []
    if not re.fullmatch(_DNS1123_SUBDOMAIN_FMT, value):
        errs.append(_regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com"))
    return errs


def _dns1035_label(value: str) -> list[str]:
    errs = [_max_len(63)] if _blen(value) > 63 else []
    if not re.fullmatch(_DNS1035_LABEL_FMT, value):
        errs.append(_regex_error(_DNS1035_LABEL_MSG, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def _port_num(port: int) -> list[str]:
    return [] if 1 <= port <= 65535 else [_PORT_RANGE_MSG]


def _port_name(port: str) -> list[str]:
    """``IsValidPortName``: an IANA_SVC_NAME (at most 15 chars, a-z0-9 and single hyphens)."""
    errs = []
    if _blen(port) > 15:
        errs.append(_max_len(15))
    if not re.fullmatch("[-a-z0-9]+", port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not re.search("[a-z]", port):
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
    if not re.fullmatch(_QNAME_FMT, name):
        errs.append(
            "name part " + _regex_error(_QNAME_MSG, _QNAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errs


def _label_value(value: str) -> list[str]:
    errs = [_max_len(63)] if _blen(value) > 63 else []
    if not re.fullmatch(_LABEL_VALUE_FMT, value):
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


# ---------------------------------------------------------------------------------------------
# Strict decoding: which fields each Go struct has, and their types
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _F:
    """One JSON field: the Go type decode errors name, and how to check the value."""

    go: str
    shape: str  # string int32 int64 bool intstr map strings struct list object array any
    struct: str = ""  # _STRUCTS entry for "struct" and "list"


_S = _F("string", "string")
_I32 = _F("int32", "int32")
_I64 = _F("int64", "int64")
_B = _F("bool", "bool")
_MSS = _F("map[string]string", "map")
_LS = _F("[]string", "strings")
_ANY = _F("any", "any")


def _obj(go: str) -> _F:
    """An object netlab accepts whole without looking inside (probes, volumes, affinity...)."""
    return _F(go, "object")


def _arr(go: str) -> _F:
    return _F(go, "array")


def _st(go: str, struct: str) -> _F:
    return _F(go, "struct", struct)


def _ls(go: str, struct: str) -> _F:
    return _F(go, "list", struct)


_META = _st("v1.ObjectMeta", "ObjectMeta")

# name -> (Go struct name used in "Go struct field X.path" messages, its JSON fields)
_STRUCTS: dict[str, tuple[str, dict[str, _F]]] = {
    "ObjectMeta": (
        "ObjectMeta",
        {
            "name": _S,
            "generateName": _S,
            "namespace": _S,
            "selfLink": _S,
            "uid": _S,
            "resourceVersion": _S,
            "generation": _I64,
            "creationTimestamp": _ANY,
            "deletionTimestamp": _ANY,
            "deletionGracePeriodSeconds": _I64,
            "labels": _MSS,
            "annotations": _MSS,
            "ownerReferences": _arr("[]v1.OwnerReference"),
            "finalizers": _LS,
            "managedFields": _arr("[]v1.ManagedFieldsEntry"),
        },
    ),
    "Namespace": (
        "Namespace",
        {
            "apiVersion": _S,
            "kind": _S,
            "metadata": _META,
            "spec": _st("v1.NamespaceSpec", "NamespaceSpec"),
            "status": _obj("v1.NamespaceStatus"),
        },
    ),
    "NamespaceSpec": ("NamespaceSpec", {"finalizers": _LS}),
    "Pod": (
        "Pod",
        {
            "apiVersion": _S,
            "kind": _S,
            "metadata": _META,
            "spec": _st("v1.PodSpec", "PodSpec"),
            "status": _obj("v1.PodStatus"),
        },
    ),
    "PodSpec": (
        "PodSpec",
        {
            "volumes": _arr("[]v1.Volume"),
            "initContainers": _ls("[]v1.Container", "Container"),
            "containers": _ls("[]v1.Container", "Container"),
            "ephemeralContainers": _arr("[]v1.EphemeralContainer"),
            "restartPolicy": _S,
            "terminationGracePeriodSeconds": _I64,
            "activeDeadlineSeconds": _I64,
            "dnsPolicy": _S,
            "nodeSelector": _MSS,
            "serviceAccountName": _S,
            "serviceAccount": _S,
            "automountServiceAccountToken": _B,
            "nodeName": _S,
            "hostNetwork": _B,
            "hostPID": _B,
            "hostIPC": _B,
            "shareProcessNamespace": _B,
            "securityContext": _obj("v1.PodSecurityContext"),
            "imagePullSecrets": _arr("[]v1.LocalObjectReference"),
            "hostname": _S,
            "subdomain": _S,
            "affinity": _obj("v1.Affinity"),
            "schedulerName": _S,
            "tolerations": _arr("[]v1.Toleration"),
            "hostAliases": _arr("[]v1.HostAlias"),
            "priorityClassName": _S,
            "priority": _I32,
            "dnsConfig": _obj("v1.PodDNSConfig"),
            "readinessGates": _arr("[]v1.PodReadinessGate"),
            "runtimeClassName": _S,
            "enableServiceLinks": _B,
            "preemptionPolicy": _S,
            "overhead": _obj("v1.ResourceList"),
            "topologySpreadConstraints": _arr("[]v1.TopologySpreadConstraint"),
            "setHostnameAsFQDN": _B,
            "os": _obj("v1.PodOS"),
            "hostUsers": _B,
            "schedulingGates": _arr("[]v1.PodSchedulingGate"),
            "resourceClaims": _arr("[]v1.PodResourceClaim"),
            "resources": _obj("v1.ResourceRequirements"),
        },
    ),
    "Container": (
        "Container",
        {
            "name": _S,
            "image": _S,
            "command": _LS,
            "args": _LS,
            "workingDir": _S,
            "ports": _ls("[]v1.ContainerPort", "ContainerPort"),
            "envFrom": _arr("[]v1.EnvFromSource"),
            "env": _arr("[]v1.EnvVar"),
            "resources": _obj("v1.ResourceRequirements"),
            "resizePolicy": _arr("[]v1.ContainerResizePolicy"),
            "restartPolicy": _S,
            "volumeMounts": _arr("[]v1.VolumeMount"),
            "volumeDevices": _arr("[]v1.VolumeDevice"),
            "livenessProbe": _obj("v1.Probe"),
            "readinessProbe": _obj("v1.Probe"),
            "startupProbe": _obj("v1.Probe"),
            "lifecycle": _obj("v1.Lifecycle"),
            "terminationMessagePath": _S,
            "terminationMessagePolicy": _S,
            "imagePullPolicy": _S,
            "securityContext": _obj("v1.SecurityContext"),
            "stdin": _B,
            "stdinOnce": _B,
            "tty": _B,
        },
    ),
    "ContainerPort": (
        "ContainerPort",
        {"name": _S, "hostPort": _I32, "containerPort": _I32, "protocol": _S, "hostIP": _S},
    ),
    "Deployment": (
        "Deployment",
        {
            "apiVersion": _S,
            "kind": _S,
            "metadata": _META,
            "spec": _st("v1.DeploymentSpec", "DeploymentSpec"),
            "status": _obj("v1.DeploymentStatus"),
        },
    ),
    "DeploymentSpec": (
        "DeploymentSpec",
        {
            "replicas": _I32,
            "selector": _st("v1.LabelSelector", "LabelSelector"),
            "template": _st("v1.PodTemplateSpec", "PodTemplateSpec"),
            "strategy": _obj("v1.DeploymentStrategy"),
            "minReadySeconds": _I32,
            "revisionHistoryLimit": _I32,
            "paused": _B,
            "progressDeadlineSeconds": _I32,
        },
    ),
    "LabelSelector": (
        "LabelSelector",
        {"matchLabels": _MSS, "matchExpressions": _arr("[]v1.LabelSelectorRequirement")},
    ),
    "PodTemplateSpec": (
        "PodTemplateSpec",
        {"metadata": _META, "spec": _st("v1.PodSpec", "PodSpec")},
    ),
    "Service": (
        "Service",
        {
            "apiVersion": _S,
            "kind": _S,
            "metadata": _META,
            "spec": _st("v1.ServiceSpec", "ServiceSpec"),
            "status": _obj("v1.ServiceStatus"),
        },
    ),
    "ServiceSpec": (
        "ServiceSpec",
        {
            "ports": _ls("[]v1.ServicePort", "ServicePort"),
            "selector": _MSS,
            "clusterIP": _S,
            "clusterIPs": _LS,
            "type": _S,
            "externalIPs": _LS,
            "sessionAffinity": _S,
            "loadBalancerIP": _S,
            "loadBalancerSourceRanges": _LS,
            "externalName": _S,
            "externalTrafficPolicy": _S,
            "healthCheckNodePort": _I32,
            "publishNotReadyAddresses": _B,
            "sessionAffinityConfig": _st("v1.SessionAffinityConfig", "SessionAffinityConfig"),
            "ipFamilies": _LS,
            "ipFamilyPolicy": _S,
            "allocateLoadBalancerNodePorts": _B,
            "loadBalancerClass": _S,
            "internalTrafficPolicy": _S,
            "trafficDistribution": _S,
        },
    ),
    "ServicePort": (
        "ServicePort",
        {
            "name": _S,
            "protocol": _S,
            "appProtocol": _S,
            "port": _I32,
            "targetPort": _F("intstr.IntOrString", "intstr"),
            "nodePort": _I32,
        },
    ),
    "SessionAffinityConfig": (
        "SessionAffinityConfig",
        {"clientIP": _st("v1.ClientIPConfig", "ClientIPConfig")},
    ),
    "ClientIPConfig": ("ClientIPConfig", {"timeoutSeconds": _I32}),
}

_INT_RANGE = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_BAD = object()  # a value that failed to decode and was dropped

# ---------------------------------------------------------------------------------------------
# Hints: short, practical, shared by several checks
# ---------------------------------------------------------------------------------------------

_HINT_KINDS = "netlab accepts: " + ", ".join(f"{v} {k}" for v, k in SUPPORTED_KINDS)
_HINT_LABEL = "use lower-case letters, digits and '-', starting and ending with a letter or digit"
_HINT_PORT = "a port number is 1-65535"
_HINT_PORT_NAME = (
    "port names are at most 15 characters of a-z, 0-9 and '-', with at least one letter "
    "(e.g. http, metrics)"
)
_HINT_LABELS = (
    "label keys are [prefix/]name (name: letters, digits, '-', '_', '.'); values are at most 63 "
    "such characters, or empty"
)
_HINT_QUOTE = (
    "quote the value: YAML reads true, yes, 1.0 as booleans or numbers, but labels and "
    'annotations must be strings (e.g. version: "1.0")'
)


def _name_hint(kind: str) -> str:
    if kind == "Service":
        return (
            "a Service name becomes a DNS label: lower-case letters, digits and '-', starting "
            "with a letter (e.g. web-1)"
        )
    if kind == "Namespace":
        return "a namespace name is a DNS label: " + _HINT_LABEL
    return "use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit"


# ---------------------------------------------------------------------------------------------
# The per-document context: where diagnostics go, and which paths failed to decode
# ---------------------------------------------------------------------------------------------


@dataclass
class _Ctx:
    doc: Document
    out: list[Diagnostic]
    category: str
    bad: list[Path] = field(default_factory=list)
    misspelled: list[Path] = field(default_factory=list)
    failed: bool = False

    def _suppressed(self, loc: Path) -> bool:
        # A value that failed to decode was dropped, and a misspelled field is missing; checking
        # what is left would only report consequences of the same mistake ("port: '80'" also
        # showing up as port 0, "contaierPort: 80" as a missing containerPort).
        if any(loc[: len(b)] == b or b[: len(loc)] == loc for b in self.bad):
            return True
        return any(loc[: len(m)] == m for m in self.misspelled)

    def emit(
        self,
        loc: Path,
        message: str,
        hint: str,
        *,
        shown: str | None = None,
        key: bool = False,
        severity: str = "error",
        force: bool = False,
    ) -> None:
        """Record a diagnostic positioned at ``loc``; ``shown`` overrides the printed path."""
        if not force and self._suppressed(loc):
            return
        diag = self.doc.diag(
            loc, message, hint=hint, category=self.category, key=key, severity=severity
        )
        if shown is not None:
            diag = dataclasses.replace(diag, path=shown)
        self.out.append(diag)
        if severity == "error":
            self.failed = True

    def warn(self, loc: Path, message: str, hint: str, *, shown: str | None = None) -> None:
        self.emit(loc, message, hint, shown=shown, severity="warning")


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def _json_kind(raw: object) -> str:
    if isinstance(raw, bool):
        return "bool"
    if isinstance(raw, int | float):
        return "number"
    if isinstance(raw, dict):
        return "object"
    if isinstance(raw, list):
        return "array"
    return "string"


def _number_text(raw: int | float) -> str:
    return repr(raw) if isinstance(raw, float) else str(raw)


def _as_int(raw: object, bits: str) -> int | str:
    """The value as an int of Go type ``bits``, or the JSON description used in the error."""
    lo, hi = _INT_RANGE[bits]
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        return _json_kind(raw)
    if isinstance(raw, float) and not raw.is_integer():
        return f"number {_number_text(raw)}"
    if not lo <= raw <= hi:
        return f"number {_number_text(raw)}"
    return int(raw)


def _type_error(ctx: _Ctx, loc: Path, what: str, owner: str, gopath: list[str], go: str) -> object:
    """Report a value of the wrong JSON type the way encoding/json's UnmarshalTypeError reads."""
    field_path = ".".join(gopath)
    hint = f"this field takes a {go}"
    if go == "string" and gopath[-1] in (
        "labels",
        "annotations",
        "nodeSelector",
        "selector",
        "matchLabels",
    ):
        hint = _HINT_QUOTE
    elif go in ("int32", "int64"):
        hint = "write a whole number without quotes"
    ctx.emit(
        loc,
        f"json: cannot unmarshal {what} into Go struct field {owner}.{field_path} of type {go}",
        hint,
        force=True,
    )
    ctx.bad.append(loc)
    return _BAD


def _decode_struct(
    ctx: _Ctx, raw: dict[str, Any], loc: Path, gopath: list[str], name: str
) -> dict[str, Any]:
    """Check every key of ``raw`` against the struct's fields; return the well-typed ones."""
    owner, fields = _STRUCTS[name]
    out: dict[str, Any] = {}
    for key, value in raw.items():
        kloc = (*loc, key)
        spec = fields.get(key)
        if spec is None:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f'did you mean "{close[0]}"? ' if close else ""
            if close and close[0] not in raw:
                ctx.misspelled.append((*loc, close[0]))
            hint += "field names are case-sensitive; remove fields Kubernetes does not define"
            ctx.emit(
                kloc,
                f'strict decoding error: unknown field "{dotted(kloc)}"',
                hint,
                key=True,
                force=True,
            )
            continue
        if value is None:
            continue  # JSON null leaves a Go field at its zero value
        decoded = _decode_value(ctx, value, kloc, [*gopath, key], owner, spec)
        if decoded is not _BAD:
            out[key] = decoded
    return out


def _decode_value(ctx: _Ctx, raw: Any, loc: Path, gopath: list[str], owner: str, spec: _F) -> Any:
    shape = spec.shape
    if shape == "any":
        return raw
    if shape == "string":
        if isinstance(raw, str):
            return raw
        if isinstance(raw, datetime.date):
            return raw.isoformat()  # YAML timestamps reach the API server as JSON strings
        return _type_error(ctx, loc, _json_kind(raw), owner, gopath, spec.go)
    if shape in ("int32", "int64"):
        value = _as_int(raw, shape)
        if isinstance(value, str):
            return _type_error(ctx, loc, value, owner, gopath, spec.go)
        return value
    if shape == "bool":
        if isinstance(raw, bool):
            return raw
        return _type_error(ctx, loc, _json_kind(raw), owner, gopath, spec.go)
    if shape == "intstr":
        if isinstance(raw, str):
            return raw
        value = _as_int(raw, "int32")
        if isinstance(value, str):
            # IntOrString.UnmarshalJSON decodes into its int32 and returns that error as is
            ctx.emit(
                loc,
                f"json: cannot unmarshal {value} into Go value of type int32",
                "write a port number (e.g. 8080) or a container port name (e.g. http)",
                force=True,
            )
            ctx.bad.append(loc)
            return _BAD
        return value
    if shape == "map":
        if not isinstance(raw, dict):
            return _type_error(ctx, loc, _json_kind(raw), owner, gopath, spec.go)
        out: dict[str, str] = {}
        for k, v in raw.items():
            if v is None:
                out[k] = ""
            elif isinstance(v, str):
                out[k] = v
            else:
                _type_error(ctx, (*loc, k), _json_kind(v), owner, gopath, "string")
        return out
    if shape == "strings":
        if not isinstance(raw, list):
            return _type_error(ctx, loc, _json_kind(raw), owner, gopath, spec.go)
        items: list[str] = []
        for i, v in enumerate(raw):
            if v is None:
                items.append("")
            elif isinstance(v, str):
                items.append(v)
            else:
                _type_error(ctx, (*loc, i), _json_kind(v), owner, gopath, "string")
        return items
    if shape == "struct":
        if not isinstance(raw, dict):
            return _type_error(ctx, loc, _json_kind(raw), owner, gopath, spec.go)
        return _decode_struct(ctx, raw, loc, gopath, spec.struct)
    if shape == "list":
        if not isinstance(raw, list):
            return _type_error(ctx, loc, _json_kind(raw), owner, gopath, spec.go)
        elems: list[Any] = []
        for i, v in enumerate(raw):
            iloc = (*loc, i)
            if v is None:
                elems.append({})
            elif isinstance(v, dict):
                elems.append(_decode_struct(ctx, v, iloc, gopath, spec.struct))
            else:
                _type_error(ctx, iloc, _json_kind(v), owner, gopath, spec.go.removeprefix("[]"))
                elems.append({})
        return elems
    if shape == "object":
        if isinstance(raw, dict):
            return raw
        return _type_error(ctx, loc, _json_kind(raw), owner, gopath, spec.go)
    if isinstance(raw, list):  # "array"
        return raw
    return _type_error(ctx, loc, _json_kind(raw), owner, gopath, spec.go)


# ---------------------------------------------------------------------------------------------
# Metadata (apimachinery/pkg/api/validation/objectmeta.go, meta/v1/validation)
# ---------------------------------------------------------------------------------------------


def _validate_labels(ctx: _Ctx, labels: dict[str, str], loc: Path, shown: str) -> bool:
    """``ValidateLabels``: errors are reported at the map's path, positioned at the entry."""
    ok = True
    for k, v in labels.items():
        for msg in _qualified_name(k):
            ctx.emit((*loc, k), _invalid(k, msg), _HINT_LABELS, shown=shown, key=True)
            ok = False
        for msg in _label_value(v):
            ctx.emit((*loc, k), _invalid(v, msg), _HINT_LABELS, shown=shown)
            ok = False
    return ok


def _validate_annotations(ctx: _Ctx, annotations: dict[str, str], loc: Path, shown: str) -> None:
    total = 0
    for k, v in annotations.items():
        total += _blen(k) + _blen(v)
        # the rule is QualifiedName except that case doesn't matter
        for msg in _qualified_name(k.lower()):
            ctx.emit(
                (*loc, k),
                _invalid(k, msg),
                "annotation keys are [prefix/]name, like label keys (e.g. example.com/owner)",
                shown=shown,
                key=True,
            )
    if total > 256 * 1024:
        ctx.emit(
            loc,
            "Too long: must have at most 262144 bytes",
            "annotations may hold at most 256 KiB in total",
            shown=shown,
        )


def _ready(ctx: _Ctx, annotations: dict[str, str], loc: Path, shown: str) -> bool:
    """netlab's readiness annotation: "true" (the default) or "false"."""
    value = annotations.get(READY_ANNOTATION)
    if value is None or value in ("true", "false"):
        return value != "false"
    ctx.emit(
        (*loc, READY_ANNOTATION),
        _invalid(value, 'must be "true" or "false"'),
        f'{READY_ANNOTATION}: "false" keeps the pod out of Service endpoints (as a failing '
        'readiness probe would); remove it or write "true" for a ready pod',
        shown=f"{shown}[{READY_ANNOTATION}]",
    )
    return True


def _validate_meta(
    ctx: _Ctx,
    meta: dict[str, Any],
    kind: str,
    name_fn: Callable[[str], list[str]],
    *,
    namespaced: bool,
) -> ObjectMeta:
    """``ValidateObjectMeta`` on creation, then the defaults (namespace "default")."""
    loc: Path = ("metadata",)
    name: str = meta.get("name", "")
    if not name:
        if meta.get("generateName"):
            ctx.emit(
                ("metadata", "generateName"),
                "netlab needs a fixed name: generateName is not supported",
                "write metadata.name; checks and Services refer to objects by name",
            )
        else:
            ctx.emit(
                ("metadata", "name"),
                _required("name or generateName is required"),
                f"give the {kind} a name under metadata, e.g. metadata: {{name: web}}",
            )
    else:
        for msg in name_fn(name):
            ctx.emit(("metadata", "name"), _invalid(name, msg), _name_hint(kind))
    namespace: str = meta.get("namespace", "")
    if namespaced:
        if namespace:
            for msg in _dns1123_label(namespace):
                ctx.emit(
                    ("metadata", "namespace"),
                    _invalid(namespace, msg),
                    "a namespace name is a DNS label: " + _HINT_LABEL,
                )
        else:
            namespace = "default"
    elif namespace:
        ctx.warn(
            ("metadata", "namespace"),
            "is ignored: a Namespace is not inside a namespace",
            "remove metadata.namespace from this Namespace",
        )
        namespace = ""
    labels: dict[str, str] = meta.get("labels", {})
    _validate_labels(ctx, labels, (*loc, "labels"), "metadata.labels")
    annotations: dict[str, str] = meta.get("annotations", {})
    _validate_annotations(ctx, annotations, (*loc, "annotations"), "metadata.annotations")
    return ObjectMeta(
        name=name, namespace=namespace, labels=dict(labels), annotations=dict(annotations)
    )


# ---------------------------------------------------------------------------------------------
# Pod specs (ValidatePodSpec and what it calls), shared by Pods and Deployment templates
# ---------------------------------------------------------------------------------------------

_PROTOCOLS = ("SCTP", "TCP", "UDP")  # supportedPortProtocols, as sets.List sorts them
_HINT_PROTOCOL = "protocol is TCP (the default), UDP or SCTP, in capitals"


def _container_ports(
    ctx: _Ctx, ports: list[dict[str, Any]], loc: Path, *, host_network: bool, is_pod: bool
) -> list[ContainerPort]:
    """``validateContainerPorts``, after defaulting protocol to TCP."""
    names: set[str] = set()
    result = []
    for i, port in enumerate(ports):
        ploc = (*loc, i)
        name: str = port.get("name", "")
        if name:
            msgs = _port_name(name)
            for msg in msgs:
                ctx.emit((*ploc, "name"), _invalid(name, msg), _HINT_PORT_NAME)
            if not msgs and name in names:
                ctx.emit(
                    (*ploc, "name"),
                    _duplicate(name),
                    "port names must be unique within a container",
                )
            names.add(name)
        cport: int = port.get("containerPort", 0)
        if cport == 0:
            ctx.emit(
                (*ploc, "containerPort"),
                _required(),
                "give the port the container listens on, e.g. containerPort: 8080",
            )
        else:
            for msg in _port_num(cport):
                ctx.emit((*ploc, "containerPort"), _invalid(cport, msg), _HINT_PORT)
        hport: int = port.get("hostPort", 0)
        if hport != 0:
            for msg in _port_num(hport):
                ctx.emit((*ploc, "hostPort"), _invalid(hport, msg), _HINT_PORT)
        if host_network and (is_pod or hport != 0) and hport not in (0, cport):
            ctx.emit(
                (*ploc, "hostPort"),
                _invalid(hport, "must match `containerPort` when `hostNetwork` is true"),
                "with hostNetwork the container port is the host port: drop hostPort",
            )
        protocol: str = port.get("protocol") or "TCP"
        if protocol not in _PROTOCOLS:
            ctx.emit((*ploc, "protocol"), _unsupported(protocol, _PROTOCOLS), _HINT_PROTOCOL)
        result.append(ContainerPort(container_port=cport, protocol=protocol, name=name))
    return result


# String fields that, when given, must be one of a fixed list (in upstream's order), with a hint.
_CONTAINER_ENUMS: dict[str, tuple[tuple[str, ...], str]] = {
    "terminationMessagePolicy": (
        ("File", "FallbackToLogsOnError"),
        "terminationMessagePolicy is File or FallbackToLogsOnError",
    ),
    "imagePullPolicy": (
        ("Always", "IfNotPresent", "Never"),
        "imagePullPolicy is Always, IfNotPresent or Never",
    ),
}
_POD_ENUMS: dict[str, tuple[tuple[str, ...], str]] = {
    "restartPolicy": (
        ("Always", "OnFailure", "Never"),
        "restartPolicy is Always (the default), OnFailure or Never",
    ),
    "dnsPolicy": (
        ("ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"),
        "dnsPolicy is ClusterFirst (the default), ClusterFirstWithHostNet, Default or None",
    ),
}


def _enums(
    ctx: _Ctx, spec: dict[str, Any], loc: Path, table: dict[str, tuple[tuple[str, ...], str]]
) -> None:
    for key, (allowed, hint) in table.items():
        value = spec.get(key)
        if value and value not in allowed:
            ctx.emit((*loc, key), _unsupported(value, allowed), hint)


def _container(
    ctx: _Ctx, c: dict[str, Any], loc: Path, *, is_pod: bool, init: bool, host_network: bool
) -> Container:
    """``validateContainerCommon`` plus the regular/init container specific checks."""
    name: str = c.get("name", "")
    if not name:
        ctx.emit((*loc, "name"), _required(), "every container needs a name, e.g. name: web")
    else:
        for msg in _dns1123_label(name):
            ctx.emit(
                (*loc, "name"),
                _invalid(name, msg),
                "a container name is a DNS label: " + _HINT_LABEL,
            )
    image: str = c.get("image", "")
    if not image:
        ctx.emit(
            (*loc, "image"),
            _required(),
            "netlab does not pull images, but the API server requires one: write any image, "
            "e.g. image: nginx",
        )
    elif is_pod and image != image.strip():
        ctx.emit(
            (*loc, "image"),
            _invalid(image, "must not have leading or trailing whitespace"),
            "remove the spaces around the image name",
        )
    _enums(ctx, c, loc, _CONTAINER_ENUMS)
    ports = _container_ports(
        ctx, c.get("ports", []), (*loc, "ports"), host_network=host_network, is_pod=is_pod
    )
    policy = c.get("restartPolicy")
    if policy is not None:
        if not init:
            ctx.emit(
                (*loc, "restartPolicy"),
                _forbidden("may not be set for non-init containers"),
                "set restartPolicy on the pod spec, not on a container",
            )
        elif policy != "Always":
            ctx.emit(
                (*loc, "restartPolicy"),
                _unsupported(policy, ("Always",)),
                "an init container's restartPolicy can only be Always (a sidecar)",
            )
    return Container(name=name, image=image, ports=ports)


def _pod_spec(ctx: _Ctx, spec: dict[str, Any], loc: Path, *, is_pod: bool) -> PodSpec:
    """``ValidatePodSpec`` for a Pod (``is_pod``) or a pod template, after defaulting."""
    host_network: bool = spec.get("hostNetwork", False)
    containers: list[Container] = []
    raw_containers: list[dict[str, Any]] = spec.get("containers", [])
    if not raw_containers:
        ctx.emit(
            (*loc, "containers"),
            _required(),
            "a pod needs at least one container: containers: [{name: web, image: nginx}]",
        )
    seen: set[str] = set()
    for i, c in enumerate(raw_containers):
        cloc = (*loc, "containers", i)
        container = _container(ctx, c, cloc, is_pod=is_pod, init=False, host_network=host_network)
        if container.name in seen:
            ctx.emit(
                (*cloc, "name"),
                _duplicate(container.name),
                "container names must be unique within the pod",
            )
        seen.add(container.name)
        containers.append(container)
    for i, c in enumerate(spec.get("initContainers", [])):
        cloc = (*loc, "initContainers", i)
        container = _container(ctx, c, cloc, is_pod=is_pod, init=True, host_network=host_network)
        if container.name in seen:
            ctx.emit(
                (*cloc, "name"),
                _duplicate(container.name),
                "init and regular container names share one namespace within the pod",
            )
        elif container.name:
            seen.add(container.name)
    _host_port_conflicts(ctx, raw_containers, (*loc, "containers"), host_network, is_pod)
    _enums(ctx, spec, loc, _POD_ENUMS)
    _validate_labels(
        ctx, spec.get("nodeSelector", {}), (*loc, "nodeSelector"), dotted((*loc, "nodeSelector"))
    )
    for key in ("serviceAccountName", "nodeName"):
        value: str = spec.get(key, "")
        for msg in _dns1123_subdomain(value) if value else []:
            ctx.emit((*loc, key), _invalid(value, msg), _name_hint("Node"))
    deadline = spec.get("activeDeadlineSeconds")
    if deadline is not None and not 1 <= deadline <= 2**31 - 1:
        ctx.emit(
            (*loc, "activeDeadlineSeconds"),
            _invalid(deadline, "must be between 1 and 2147483647, inclusive"),
            "activeDeadlineSeconds is a positive number of seconds",
        )
    for key in ("hostname", "subdomain"):
        value = spec.get(key, "")
        for msg in _dns1123_label(value) if value else []:
            ctx.emit((*loc, key), _invalid(value, msg), f"{key} is one DNS label: " + _HINT_LABEL)
    _port_names_across_containers(ctx, containers, loc)
    return PodSpec(
        containers=containers,
        node_name=spec.get("nodeName", ""),
        hostname=spec.get("hostname", ""),
        subdomain=spec.get("subdomain", ""),
        host_network=host_network,
    )


def _host_port_conflicts(
    ctx: _Ctx, containers: list[dict[str, Any]], loc: Path, host_network: bool, is_pod: bool
) -> None:
    """``AccumulateUniqueHostPorts``: one host port per protocol and host IP in a pod."""
    taken: set[str] = set()
    for ci, c in enumerate(containers):
        for pi, p in enumerate(c.get("ports", [])):
            hport: int = p.get("hostPort", 0)
            if hport == 0 and host_network and is_pod:
                hport = p.get("containerPort", 0)  # defaultHostNetworkPorts
            if hport == 0:
                continue
            key = f"{p.get('protocol') or 'TCP'}/{p.get('hostIP', '')}/{hport}"
            if key in taken:
                ctx.emit(
                    (*loc, ci, "ports", pi, "hostPort"),
                    _duplicate(key),
                    "two ports of this pod claim the same host port",
                )
            taken.add(key)


def _port_names_across_containers(ctx: _Ctx, containers: list[Container], loc: Path) -> None:
    """The API server only requires port names unique per container; Services resolve a named
    targetPort to the first container that has it, which surprises, so say so."""
    first: dict[str, int] = {}
    for ci, c in enumerate(containers):
        for pi, p in enumerate(c.ports):
            if not p.name:
                continue
            if p.name in first and first[p.name] != ci:
                ctx.warn(
                    (*loc, "containers", ci, "ports", pi, "name"),
                    f"port name {_go_quote(p.name)} is also used by container "
                    f"{_go_quote(containers[first[p.name]].name)}",
                    "a Service targetPort naming it reaches only the first container's port; "
                    "give each container port its own name",
                )
            first.setdefault(p.name, ci)


# ---------------------------------------------------------------------------------------------
# The kinds
# ---------------------------------------------------------------------------------------------


def _status_warning(ctx: _Ctx, obj: dict[str, Any]) -> None:
    if obj.get("status"):
        ctx.warn(
            ("status",),
            "is ignored: status is written by the cluster, not by manifests",
            "remove the status section; netlab computes it (e.g. load balancer addresses)",
        )


def _namespace(ctx: _Ctx, obj: dict[str, Any]) -> Namespace:
    meta = _validate_meta(
        ctx, obj.get("metadata", {}), "Namespace", _dns1123_label, namespaced=False
    )
    if meta.name:
        meta.labels["kubernetes.io/metadata.name"] = meta.name  # SetDefaults_Namespace
    _status_warning(ctx, obj)
    return Namespace(meta=meta)


def _pod(ctx: _Ctx, obj: dict[str, Any]) -> Pod:
    meta = _validate_meta(ctx, obj.get("metadata", {}), "Pod", _dns1123_subdomain, namespaced=True)
    ready = _ready(ctx, meta.annotations, ("metadata", "annotations"), "metadata.annotations")
    spec = _pod_spec(ctx, obj.get("spec", {}), ("spec",), is_pod=True)
    _status_warning(ctx, obj)
    return Pod(meta=meta, spec=spec, ready=ready)


def _render_selector(sel: dict[str, Any]) -> _Raw:
    """``%#v`` of a ``v1.LabelSelector``."""
    exprs = sel.get("matchExpressions")
    if exprs is None:
        rendered = "[]v1.LabelSelectorRequirement(nil)"
    else:
        parts = []
        for e in exprs:
            e = e if isinstance(e, dict) else {}
            values = e.get("values")
            rendered_values = _go_strings(
                [str(v) for v in values] if isinstance(values, list) else None
            )
            parts.append(
                f"v1.LabelSelectorRequirement{{Key:{_go_quote(str(e.get('key', '')))}, "
                f"Operator:{_go_quote(str(e.get('operator', '')))}, Values:{rendered_values}}}"
            )
        rendered = "[]v1.LabelSelectorRequirement{" + ", ".join(parts) + "}"
    return _Raw(
        f"v1.LabelSelector{{MatchLabels:{_go_map(sel.get('matchLabels'))}, "
        f"MatchExpressions:{rendered}}}"
    )


def _deployment_selector(ctx: _Ctx, selector: dict[str, Any] | None) -> tuple[dict[str, str], bool]:
    """The selector checks of ``ValidateDeploymentSpec``: its matchLabels, and whether it is
    fit to compare with the template's labels."""
    if selector is None:
        ctx.emit(
            ("spec", "selector"),
            _required(),
            "apps/v1 Deployments need spec.selector.matchLabels, a subset of the template's labels",
        )
        return {}, False
    match_labels: dict[str, str] = selector.get("matchLabels", {})
    labels_ok = _validate_labels(
        ctx, match_labels, ("spec", "selector", "matchLabels"), "spec.selector.matchLabels"
    )
    exprs = selector.get("matchExpressions")
    if not match_labels and not exprs:
        ctx.emit(
            ("spec", "selector"),
            _invalid(_render_selector(selector), "empty selector is invalid for deployment"),
            "add matchLabels, e.g. matchLabels: {app: web}",
        )
    if not labels_ok:  # metav1.LabelSelectorAsSelector fails on what ValidateLabels rejected
        ctx.emit(
            ("spec", "selector"),
            _invalid(_render_selector(selector), "invalid label selector"),
            "fix the matchLabels entries reported above",
        )
    if exprs:
        ctx.emit(
            ("spec", "selector", "matchExpressions"),
            "netlab supports only matchLabels in a Deployment selector",
            "rewrite the selector as matchLabels (key: value pairs the pods must all have)",
            key=True,
        )
    return match_labels, labels_ok and not exprs and bool(match_labels)


def _deployment(ctx: _Ctx, obj: dict[str, Any]) -> Deployment:
    """``ValidateDeployment`` (apps/validation) after the apps/v1 defaults (replicas 1)."""
    meta = _validate_meta(
        ctx, obj.get("metadata", {}), "Deployment", _dns1123_subdomain, namespaced=True
    )
    spec: dict[str, Any] = obj.get("spec", {})
    replicas: int = spec.get("replicas", 1)
    if replicas < 0:
        ctx.emit(
            ("spec", "replicas"),
            _invalid(replicas, "must be greater than or equal to 0"),
            "replicas is how many pods to run: 0 or more",
        )
    match_labels, selector_ok = _deployment_selector(ctx, spec.get("selector"))
    template: dict[str, Any] = spec.get("template", {})
    tmeta: dict[str, Any] = template.get("metadata", {})
    tlabels: dict[str, str] | None = tmeta.get("labels")
    tloc: Path = ("spec", "template", "metadata")
    if selector_ok and any((tlabels or {}).get(k) != v for k, v in match_labels.items()):
        ctx.emit(
            (*tloc, "labels"),
            _invalid(_go_map(tlabels), "`selector` does not match template `labels`"),
            "every matchLabels entry must also appear in spec.template.metadata.labels",
        )
    # ValidatePodTemplateSpec reports these at spec.template.labels / .annotations (sic)
    _validate_labels(ctx, tlabels or {}, (*tloc, "labels"), "spec.template.labels")
    tannotations: dict[str, str] = tmeta.get("annotations", {})
    _validate_annotations(ctx, tannotations, (*tloc, "annotations"), "spec.template.annotations")
    ready = _ready(ctx, tannotations, (*tloc, "annotations"), "spec.template.annotations")
    pspec: dict[str, Any] = template.get("spec", {})
    ploc: Path = ("spec", "template", "spec")
    template_spec = _pod_spec(ctx, pspec, ploc, is_pod=False)
    policy = pspec.get("restartPolicy") or "Always"
    if policy != "Always":
        ctx.emit(
            (*ploc, "restartPolicy"),
            _unsupported(policy, ("Always",)),
            "a Deployment restarts its pods' containers: remove restartPolicy",
        )
    if "activeDeadlineSeconds" in pspec:
        ctx.emit(
            (*ploc, "activeDeadlineSeconds"),
            _forbidden("activeDeadlineSeconds in ReplicaSet is not Supported"),
            "remove activeDeadlineSeconds from a Deployment's template",
        )
    _status_warning(ctx, obj)
    return Deployment(
        meta=meta,
        replicas=replicas,
        selector=dict(match_labels),
        template_meta=ObjectMeta(
            name=tmeta.get("name", ""),
            namespace=meta.namespace,
            labels=dict(tlabels or {}),
            annotations=dict(tannotations),
        ),
        template_spec=template_spec,
        template_ready=ready,
    )


_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
_HINT_TYPE = "type is ClusterIP (the default), NodePort, LoadBalancer or ExternalName"
_LB_ONLY = "may only be used when `type` is 'LoadBalancer'"
_DEFAULTED = "\x00targetPortDefaulted"  # marks a port whose targetPort came from its port


@dataclass
class _Svc:
    """A Service spec after defaulting and ClusterIP/ClusterIPs normalisation."""

    spec: dict[str, Any]
    type: str
    ports: list[dict[str, Any]]
    cluster_ip: str
    cluster_ips: list[str]
    ips_loc: Path  # where the user wrote the cluster IP(s)
    affinity: str = "None"
    timeout: int = 10800  # DefaultClientIPServiceAffinitySeconds
    etp: str = ""
    itp: str = ""

    @property
    def headless(self) -> bool:
        return self.cluster_ips == ["None"]

    @property
    def externally_accessible(self) -> bool:
        """``apiservice.ExternallyAccessible``."""
        return self.type in ("LoadBalancer", "NodePort") or (
            self.type == "ClusterIP" and bool(self.spec.get("externalIPs"))
        )

    def ip_loc(self, i: int) -> Path:
        """Where clusterIPs[i] was written (clusterIP stands for clusterIPs[0])."""
        return (*self.ips_loc, i) if self.ips_loc[-1] == "clusterIPs" else self.ips_loc


def _service_defaults(spec: dict[str, Any]) -> _Svc:
    """``SetDefaults_Service`` and the strategy's ClusterIP/ClusterIPs normalisation."""
    ports = []
    for p in spec.get("ports", []):
        p = dict(p)
        p["protocol"] = p.get("protocol") or "TCP"
        if p.get("targetPort") in (None, 0, ""):
            p["targetPort"] = p.get("port", 0)
            p[_DEFAULTED] = True
        ports.append(p)
    cluster_ip: str = spec.get("clusterIP", "")
    cluster_ips: list[str] = list(spec.get("clusterIPs", []))
    ips_loc: Path = ("spec", "clusterIPs")
    if cluster_ip and not cluster_ips:
        cluster_ips, ips_loc = [cluster_ip], ("spec", "clusterIP")
    elif not cluster_ip and cluster_ips:
        cluster_ip = cluster_ips[0]
    svc = _Svc(spec, spec.get("type") or "ClusterIP", ports, cluster_ip, cluster_ips, ips_loc)
    svc.affinity = spec.get("sessionAffinity") or "None"
    if svc.affinity == "ClientIP":
        config = spec.get("sessionAffinityConfig", {}).get("clientIP", {})
        svc.timeout = config.get("timeoutSeconds", 10800)
    svc.etp = spec.get("externalTrafficPolicy", "")
    if svc.externally_accessible and not svc.etp:
        svc.etp = "Cluster"
    svc.itp = spec.get("internalTrafficPolicy", "")
    if not svc.itp and svc.type in ("ClusterIP", "NodePort", "LoadBalancer"):
        svc.itp = "Cluster"
    return svc


def _service_type_rules(ctx: _Ctx, svc: _Svc) -> None:
    """The per-type checks at the top of ``ValidateService``."""
    t, spec = svc.type, svc.spec
    if not svc.ports and not svc.headless and t != "ExternalName":
        ctx.emit(
            ("spec", "ports"),
            _required(),
            "list the ports the Service exposes, e.g. ports: [{port: 80, targetPort: 8080}]",
        )
    if t in ("LoadBalancer", "NodePort") and svc.headless:
        ctx.emit(
            svc.ip_loc(0),
            _invalid("None", f"may not be set to 'None' for {t} services"),
            "a headless Service has no virtual IP to reach through a node or a load balancer: "
            "use type ClusterIP with clusterIP None",
            shown="spec.clusterIPs[0]",
        )
    if t != "ExternalName":
        return
    for key, present, loc in (
        ("clusterIPs", svc.cluster_ips, svc.ips_loc),
        ("ipFamilies", spec.get("ipFamilies"), ("spec", "ipFamilies")),
        ("ipFamilyPolicy", spec.get("ipFamilyPolicy"), ("spec", "ipFamilyPolicy")),
    ):
        if present:
            ctx.emit(
                loc,
                _forbidden("may not be set for ExternalName services"),
                f"an ExternalName Service is only a DNS CNAME: remove {loc[-1]}",
                shown=f"spec.{key}",
            )
    # The value (a CNAME) may have a trailing dot to denote it as fully qualified
    cname = spec.get("externalName", "").removesuffix(".")
    if not cname:
        ctx.emit(
            ("spec", "externalName"),
            _required(),
            "an ExternalName Service needs the DNS name it aliases, e.g. externalName: "
            "db.example.com",
        )
        return
    msgs = _dns1123_subdomain(cname)
    for msg in msgs:
        ctx.emit(
            ("spec", "externalName"),
            _invalid(cname, msg),
            "externalName is a DNS name in lower case, e.g. db.example.com",
        )
    if not msgs and _parse_ip(cname) is not None:
        ctx.warn(
            ("spec", "externalName"),
            f"{_go_quote(cname)} looks like an IP address, but an ExternalName is a DNS name: "
            "the API server accepts it, yet it does not resolve (CoreDNS answers the Service's "
            "name with NXDOMAIN; older kube-dns published a CNAME to a host name made of "
            "digits, which resolves nowhere either)",
            "to reach an IP address use a DNS name that resolves to it; netlab cannot give a "
            "Service manual EndpointSlices",
        )


def _service_port(
    ctx: _Ctx, p: dict[str, Any], loc: Path, require_name: bool, names: set[str]
) -> None:
    """``validateServicePort``."""
    name: str = p.get("name", "")
    if require_name and not name:
        ctx.emit(
            (*loc, "name"),
            _required(),
            "with more than one port every port needs a name, e.g. http and https",
        )
    elif name:
        for msg in _dns1123_label(name):
            ctx.emit(
                (*loc, "name"),
                _invalid(name, msg),
                "a Service port name is a DNS label: " + _HINT_LABEL,
            )
        if name in names:
            ctx.emit((*loc, "name"), _duplicate(name), "Service port names must be unique")
        names.add(name)
    port: int = p.get("port", 0)
    for msg in _port_num(port):
        ctx.emit(
            (*loc, "port"),
            _invalid(port, msg),
            "port is the Service's own port that clients connect to: 1-65535",
        )
    if p["protocol"] not in _PROTOCOLS:
        ctx.emit((*loc, "protocol"), _unsupported(p["protocol"], _PROTOCOLS), _HINT_PROTOCOL)
    target: int | str = p["targetPort"]  # ValidatePortNumOrName
    # a defaulted targetPort is the port: point there (and stay quiet if the port was unreadable)
    tloc = (*loc, "port") if p.get(_DEFAULTED) else (*loc, "targetPort")
    for msg in _port_num(target) if isinstance(target, int) else _port_name(target):
        ctx.emit(
            tloc,
            _invalid(target, msg),
            "targetPort is the pods' port: a number (1-65535) or a container port name; "
            + _HINT_PORT_NAME,
            shown=dotted((*loc, "targetPort")),
        )
    app = p.get("appProtocol")
    if app is not None:
        for msg in _qualified_name(app):
            ctx.emit(
                (*loc, "appProtocol"),
                _invalid(app, msg),
                "appProtocol is a name like http, or a prefixed one like example.com/proto",
            )


def _session_affinity(ctx: _Ctx, svc: _Svc) -> None:
    if svc.affinity not in ("ClientIP", "None"):
        ctx.emit(
            ("spec", "sessionAffinity"),
            _unsupported(svc.affinity, ("ClientIP", "None")),
            "sessionAffinity is None (the default) or ClientIP",
        )
    elif svc.affinity == "ClientIP" and not 0 < svc.timeout <= 86400:
        ctx.emit(
            ("spec", "sessionAffinityConfig", "clientIP", "timeoutSeconds"),
            _invalid(svc.timeout, "must be greater than 0 and less than 86400"),
            "timeoutSeconds is 1-86400 (one day); omit it for the default 10800 (3 hours)",
        )
    elif svc.affinity == "None" and "sessionAffinityConfig" in svc.spec:
        ctx.warn(
            ("spec", "sessionAffinityConfig"),
            "is ignored: the API server drops it when sessionAffinity is None",
            "set sessionAffinity: ClientIP to use it",
        )


def _cluster_ips(ctx: _Ctx, svc: _Svc) -> None:
    """``ValidateServiceClusterIPsRelatedFields``."""
    spec, ips, shown = svc.spec, svc.cluster_ips, "spec.clusterIPs"
    if spec.get("clusterIP") and spec.get("clusterIPs") and ips[0] != spec["clusterIP"]:
        ctx.emit(
            ("spec", "clusterIPs"),
            _invalid(_go_strings(ips), "first value must match `clusterIP`"),
            "clusterIPs[0] must be the clusterIP address; usually write only clusterIP",
        )
    families: list[str] = spec.get("ipFamilies", [])
    for i, family in enumerate(families):
        if family not in ("IPv4", "IPv6"):
            ctx.emit(
                ("spec", "ipFamilies", i),
                _unsupported(family, ("IPv4", "IPv6")),
                "ipFamilies holds IPv4 and/or IPv6",
            )
        if family in families[:i]:
            ctx.emit(("spec", "ipFamilies", i), _duplicate(family), "list each family once")
    policy = spec.get("ipFamilyPolicy")
    policies = ("PreferDualStack", "RequireDualStack", "SingleStack")
    if policy is not None and policy not in policies:
        ctx.emit(
            ("spec", "ipFamilyPolicy"),
            _unsupported(policy, policies),
            "ipFamilyPolicy is SingleStack, PreferDualStack or RequireDualStack",
        )
    invalid = False
    for i, ip in enumerate(ips):
        if i == 0 and ip == "None":
            if len(ips) > 1:
                invalid = True
                ctx.emit(
                    svc.ips_loc,
                    _invalid(_go_strings(ips), "'None' must be the first and only value"),
                    "a headless Service has clusterIP None and nothing else",
                    shown=shown,
                )
            continue
        if _parse_ip(ip) is None:
            invalid = True
            ctx.emit(
                svc.ip_loc(i),
                _invalid(ip, _IP_MSG),
                'clusterIP is an IPv4 address, "None" for a headless Service, or omitted to have '
                "one allocated",
                shown=f"{shown}[{i}]",
            )
        elif warning := _ip_warning(ip):
            ctx.warn(
                svc.ip_loc(i),
                warning,
                "write the address in its standard form",
                shown=f"{shown}[{i}]",
            )
    if len(ips) > 2:
        ctx.emit(
            svc.ips_loc,
            _invalid(_go_strings(ips), "may only hold up to 2 values"),
            "at most one IPv4 and one IPv6 address",
            shown=shown,
        )
    versions = [p.version for ip in ips if (p := _parse_ip(ip)) is not None]
    if not invalid and len(ips) > 1 and len(set(versions)) != len(versions):
        ctx.emit(
            svc.ips_loc,
            _invalid(_go_strings(ips), "may specify no more than one IP for each IP family"),
            "a dual-stack Service has one IPv4 and one IPv6 address",
            shown=shown,
        )


def _external_ips(ctx: _Ctx, svc: _Svc) -> None:
    for i, raw in enumerate(svc.spec.get("externalIPs", [])):
        loc = ("spec", "externalIPs", i)
        ip = _parse_ip(raw)
        if ip is None:
            ctx.emit(
                loc,
                _invalid(raw, _IP_MSG),
                "externalIPs are addresses on the nodes' network the Service also answers on",
            )
            continue
        for msg in _non_special_ip(raw, ip):
            ctx.emit(loc, _invalid(raw, msg), "use an ordinary unicast address routed to a node")
        if warning := _ip_warning(raw):
            ctx.warn(loc, warning, "write the address in its standard form")


def _port_collisions(ctx: _Ctx, svc: _Svc) -> None:
    """NodePorts on a ClusterIP Service, then duplicate (protocol, nodePort/port) pairs."""
    if svc.type == "ClusterIP":
        for i, p in enumerate(svc.ports):
            if p.get("nodePort", 0) != 0:
                ctx.emit(
                    ("spec", "ports", i, "nodePort"),
                    _forbidden("may not be used when `type` is 'ClusterIP'"),
                    "a ClusterIP Service has no NodePort: remove nodePort or set type: NodePort",
                )
    node_ports: set[tuple[str, int]] = set()
    for i, p in enumerate(svc.ports):
        np: int = p.get("nodePort", 0)
        if np and (p["protocol"], np) in node_ports:
            ctx.emit(
                ("spec", "ports", i, "nodePort"),
                _duplicate(np),
                "each port of a Service needs its own nodePort",
            )
        node_ports.add((p["protocol"], np))
    ports: set[tuple[str, int]] = set()
    for i, p in enumerate(svc.ports):
        key: tuple[str, int] = (p["protocol"], p.get("port", 0))
        if key in ports:
            ctx.emit(
                ("spec", "ports", i),
                _duplicate(_service_port_key(p)),
                f"port {key[1]}/{key[0]} is listed twice: merge the entries or change one port",
            )
        ports.add(key)


def _service_port_key(p: dict[str, Any]) -> _Raw:
    """``%#v`` of the core.ServicePort{Protocol, Port} key ValidateService compares."""
    return _Raw(
        f'core.ServicePort{{Name:"", Protocol:{_go_quote(p["protocol"])}, '
        f"AppProtocol:(*string)(nil), Port:{p.get('port', 0)}, "
        'TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}'
    )


def _load_balancer_fields(ctx: _Ctx, svc: _Svc) -> None:
    """Source ranges, allocateLoadBalancerNodePorts, loadBalancerClass and loadBalancerIP."""
    t, spec = svc.type, svc.spec
    ranges: list[str] = spec.get("loadBalancerSourceRanges", [])
    # upstream spells this path with a capital L
    if ranges and t != "LoadBalancer":
        ctx.emit(
            ("spec", "loadBalancerSourceRanges"),
            _forbidden(_LB_ONLY),
            "loadBalancerSourceRanges restricts a load balancer: set type: LoadBalancer or "
            "remove it",
            shown="spec.LoadBalancerSourceRanges",
            key=True,
        )
    for i, cidr in enumerate(ranges):
        # values may be space-padded, a leftover from the annotation they replaced
        if not _valid_cidr(cidr.strip()):
            ctx.emit(
                ("spec", "loadBalancerSourceRanges", i),
                _invalid(cidr.strip(), _CIDR_MSG),
                "write a network such as 10.0.0.0/8 or 192.0.2.7/32",
                shown=f"spec.LoadBalancerSourceRanges[{i}]",
            )
    for key in ("allocateLoadBalancerNodePorts", "loadBalancerClass"):
        if key in spec and t != "LoadBalancer":
            ctx.emit(
                ("spec", key),
                _forbidden(_LB_ONLY),
                f"remove {key}, or set type: LoadBalancer",
                key=True,
            )
    lb_class = spec.get("loadBalancerClass")
    for msg in _qualified_name(lb_class) if lb_class is not None and t == "LoadBalancer" else []:
        ctx.emit(
            ("spec", "loadBalancerClass"),
            _invalid(lb_class, msg),
            "loadBalancerClass is a name like example.com/internal-vip",
        )
    lb_ip: str = spec.get("loadBalancerIP", "")
    if lb_ip and _parse_ip(lb_ip) is None:
        # not checked by the API server (cloud providers reject it later), but netlab needs it
        ctx.emit(
            ("spec", "loadBalancerIP"),
            _invalid(lb_ip, _IP_MSG),
            "the API server stores any text here, but netlab's load balancer needs an address "
            "to announce; omit loadBalancerIP to have one assigned",
        )
    elif lb_ip and (warning := _ip_warning(lb_ip)):
        ctx.warn(("spec", "loadBalancerIP"), warning, "write the address in its standard form")


def _traffic_policies(ctx: _Ctx, svc: _Svc) -> None:
    """``validateServiceExternalTrafficPolicy`` and the internal traffic policy value."""
    raw_etp = svc.spec.get("externalTrafficPolicy", "")
    if not svc.externally_accessible and raw_etp:
        ctx.emit(
            ("spec", "externalTrafficPolicy"),
            _invalid(raw_etp, "may only be set for externally-accessible services"),
            "externalTrafficPolicy applies to NodePort and LoadBalancer Services (and to "
            "externalIPs): remove it or change spec.type",
        )
    elif svc.externally_accessible and svc.etp not in ("Cluster", "Local"):
        ctx.emit(
            ("spec", "externalTrafficPolicy"),
            _unsupported(svc.etp, ("Cluster", "Local")),
            "externalTrafficPolicy is Cluster (the default) or Local",
        )
    hc: int = svc.spec.get("healthCheckNodePort", 0)
    needs_hc = svc.type == "LoadBalancer" and svc.etp == "Local"  # apiservice.NeedsHealthCheck
    if hc and not needs_hc:
        ctx.emit(
            ("spec", "healthCheckNodePort"),
            _invalid(
                hc,
                "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is "
                "'Local'",
            ),
            "remove healthCheckNodePort: it exists only for LoadBalancer Services with "
            "externalTrafficPolicy: Local",
        )
    for msg in _port_num(hc) if hc and needs_hc else []:
        ctx.emit(("spec", "healthCheckNodePort"), _invalid(hc, msg), _HINT_PORT)
    if svc.itp and svc.itp not in ("Cluster", "Local"):
        ctx.emit(
            ("spec", "internalTrafficPolicy"),
            _unsupported(svc.itp, ("Cluster", "Local")),
            "internalTrafficPolicy is Cluster (the default) or Local",
        )


def _selector(ctx: _Ctx, svc: _Svc) -> dict[str, str] | None:
    # An empty selector does not survive storage: it reads back as no selector at all.
    selector: dict[str, str] | None = svc.spec.get("selector") or None
    if selector is not None:
        _validate_labels(ctx, selector, ("spec", "selector"), "spec.selector")
    elif svc.type != "ExternalName":
        ctx.warn(
            ("spec", "selector"),
            "no selector: netlab cannot add EndpointSlices by hand, so this Service will have "
            "no endpoints and connections to it will be refused",
            "add a selector matching your pods' labels, e.g. selector: {app: web}",
        )
    return selector


def _service(ctx: _Ctx, obj: dict[str, Any]) -> Service:
    """``ValidateService``, in its order, after ``SetDefaults_Service``."""
    meta = _validate_meta(ctx, obj.get("metadata", {}), "Service", _dns1035_label, namespaced=True)
    svc = _service_defaults(obj.get("spec", {}))
    _service_type_rules(ctx, svc)
    names: set[str] = set()
    for i, p in enumerate(svc.ports):
        _service_port(ctx, p, ("spec", "ports", i), len(svc.ports) > 1, names)
    selector = _selector(ctx, svc)
    _session_affinity(ctx, svc)
    if svc.type != "ExternalName":
        _cluster_ips(ctx, svc)
    _external_ips(ctx, svc)
    if svc.type not in _SERVICE_TYPES:
        ctx.emit(("spec", "type"), _unsupported(svc.type, _SERVICE_TYPES), _HINT_TYPE)
    _port_collisions(ctx, svc)
    _load_balancer_fields(ctx, svc)
    _traffic_policies(ctx, svc)
    _service_warnings(ctx, svc)
    _status_warning(ctx, obj)
    spec = svc.spec
    return Service(
        meta=meta,
        ports=[
            ServicePort(
                port=p.get("port", 0),
                protocol=p["protocol"],
                name=p.get("name", ""),
                target_port=p["targetPort"],
                node_port=p.get("nodePort", 0),
                app_protocol=p.get("appProtocol", ""),
            )
            for p in svc.ports
        ],
        type=svc.type,
        selector=dict(selector) if selector is not None else None,
        cluster_ip=svc.cluster_ip,
        external_ips=list(spec.get("externalIPs", [])),
        external_name=spec.get("externalName", ""),
        session_affinity=svc.affinity,
        session_affinity_timeout=svc.timeout,
        external_traffic_policy=svc.etp,
        internal_traffic_policy=svc.itp,
        load_balancer_ip=spec.get("loadBalancerIP", ""),
        load_balancer_source_ranges=[r.strip() for r in spec.get("loadBalancerSourceRanges", [])],
        allocate_load_balancer_node_ports=spec.get("allocateLoadBalancerNodePorts", True),
        health_check_node_port=spec.get("healthCheckNodePort", 0),
        publish_not_ready_addresses=spec.get("publishNotReadyAddresses", False),
    )


def _service_warnings(ctx: _Ctx, svc: _Svc) -> None:
    """The warnings ``GetWarningsForService`` (pkg/api/service/warnings.go) sends to kubectl."""
    spec = svc.spec
    # upstream's own test: type ClusterIP and clusterIP None
    if svc.type == "ClusterIP" and svc.cluster_ip == "None":
        if spec.get("loadBalancerIP"):
            ctx.warn(
                ("spec", "loadBalancerIP"),
                "is ignored for headless services",
                "remove loadBalancerIP",
            )
        if spec.get("externalIPs"):
            ctx.warn(
                ("spec", "externalIPs"),
                "is ignored for headless services",
                "remove externalIPs; clients of a headless Service reach the pods directly",
            )
        if spec.get("sessionAffinity", "None") != "None":
            ctx.warn(
                ("spec", "sessionAffinity"),
                "is ignored for headless services",
                "remove sessionAffinity; there is no virtual IP to keep sessions on",
                shown="spec.SessionAffinity",
            )
    if svc.type == "ExternalName" and spec.get("externalIPs"):
        ctx.warn(
            ("spec", "externalIPs"),
            'is ignored when spec.type is "ExternalName"',
            "remove externalIPs from an ExternalName Service",
        )
    if svc.type != "ExternalName" and spec.get("externalName"):
        ctx.warn(
            ("spec", "externalName"),
            'is ignored when spec.type is not "ExternalName"',
            "remove externalName, or set type: ExternalName",
        )


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------

_VALIDATORS: dict[str, Callable[[_Ctx, dict[str, Any]], K8sObject]] = {
    "Namespace": _namespace,
    "Pod": _pod,
    "Deployment": _deployment,
    "Service": _service,
}


def _category(kind: str, data: dict[str, Any]) -> str:
    meta = data.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not name:
        return kind
    if kind == "Namespace":
        return f"Namespace {name}"
    ns = meta.get("namespace") if isinstance(meta, dict) else None
    return f"{kind} {ns if isinstance(ns, str) and ns else 'default'}/{name}"


def parse_object(doc: Document, out: list[Diagnostic]) -> K8sObject | None:
    """Validate one Kubernetes manifest as the API server would and return it defaulted.

    Every problem found is appended to ``out`` (errors and warnings); the result is ``None`` if
    any of them is an error.
    """
    data = doc.data
    if not isinstance(data, dict):
        out.append(
            doc.diag(
                (),
                "a Kubernetes object must be a YAML mapping",
                hint="start the document with apiVersion: and kind:",
                category="object",
            )
        )
        return None
    kind = data.get("kind")
    version = data.get("apiVersion")
    kind_s = kind if isinstance(kind, str) else ""
    ctx = _Ctx(doc, out, _category(kind_s, data) if kind_s else "object")
    as_json = json.dumps(
        data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    )
    if not kind_s:
        ctx.emit(
            ("kind",), f"Object 'Kind' is missing in '{as_json}'", "add kind: (" + _HINT_KINDS + ")"
        )
    if not isinstance(version, str) or not version:
        ctx.emit(
            ("apiVersion",),
            f"Object 'apiVersion' is missing in '{as_json}'",
            "add apiVersion: (" + _HINT_KINDS + ")",
        )
    if ctx.failed:
        return None
    assert isinstance(version, str)
    if (version, kind_s) not in SUPPORTED_KINDS:
        known_kind = any(k == kind_s for _, k in SUPPORTED_KINDS)
        ctx.emit(
            ("apiVersion",) if known_kind else ("kind",),
            f"no matches for kind {_go_quote(kind_s)} in version {_go_quote(version)}",
            _HINT_KINDS,
        )
        return None
    decoded = _decode_struct(ctx, data, (), [], kind_s)
    obj = _VALIDATORS[kind_s](ctx, decoded)
    return None if ctx.failed else obj
