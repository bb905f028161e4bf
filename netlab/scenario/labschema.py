"""The JSON Schema of netlab's own document (``apiVersion: netlab.dev/v1alpha1``, ``kind: Lab``).

This one schema both validates scenario files and is published as ``docs/lab.schema.json``
(``netlab schema`` prints it), so the documentation cannot drift from what is enforced.
Each property may carry ``x-hint``: the hint shown when a value there is rejected, and
``x-message``: what a value of the wrong form "must be" (for patterns and choices of types).
"""

from __future__ import annotations

import re
from typing import Any

LAB_API_VERSION = "netlab.dev/v1alpha1"
LAB_KIND = "Lab"

PROXY_MODES = ["iptables", "nftables", "ipvs", "userspace", "ebpf"]

LAB_NAME_MAX = 40
LAB_NAME_HINT = "lower-case letters, digits and '-', starting and ending with a letter or digit"
_LAB_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")

_NAME = {
    "type": "string",
    "pattern": _LAB_NAME_RE.pattern,
    "maxLength": LAB_NAME_MAX,
    "x-hint": LAB_NAME_HINT,
    "x-message": "must be a DNS label",
}


def lab_name_problem(name: str) -> str:
    """Why ``name`` cannot name a lab ("" if it can).

    A lab's name becomes namespace names, tags and a directory under /run/netlab, so it is
    checked wherever one comes in: scenario, ``--name``, command arguments, tags found on the host.
    """
    if not _LAB_NAME_RE.match(name):
        return f"{name!r} is not a valid lab name"
    if len(name) > LAB_NAME_MAX:
        return f"{name!r} is longer than {LAB_NAME_MAX} characters"
    return ""


_HEAD_HINT = f"netlab's own document starts apiVersion: {LAB_API_VERSION}, kind: {LAB_KIND}"

_CIDR = {
    "type": "string",
    "pattern": r"^\d{1,3}(\.\d{1,3}){3}/\d{1,2}$",
    "x-hint": "an IPv4 prefix such as 10.244.0.0/16",
    "x-message": "must be an IPv4 prefix (ADDRESS/LENGTH)",
}
_IPV4 = {
    "type": "string",
    "pattern": r"^\d{1,3}(\.\d{1,3}){3}$",
    "x-hint": "an IPv4 address such as 192.168.56.100",
    "x-message": "must be an IPv4 address",
}
_PORT = {
    "oneOf": [{"type": "integer", "minimum": 1, "maximum": 65535}, {"type": "string"}],
    "x-message": "must be a port number (1-65535) or a port name",
}

_SOURCE = {
    "type": "string",
    "description": (
        "Where the client runs: pod/NAME, pod/NAMESPACE/NAME, node/NODE (host network), "
        "external (the external client) or external/CLIENT."
    ),
    "pattern": r"^(pod/[^/\s]+(/[^/\s]+)?|node/[^/\s]+|external(/[^/\s]+)?)$",
    "x-hint": "use pod/NAME, pod/NAMESPACE/NAME, node/NODE, external or external/CLIENT",
    "x-message": "must name a pod, a node or an external client",
}

_DESTINATION_OBJECT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "service": {"type": "string", "description": "Service name, or NAMESPACE/NAME."},
        "namespace": {"type": "string"},
        "port": {**_PORT, "description": "Service port name or number, or a raw port."},
        "via": {
            "enum": ["clusterIP", "nodePort", "name", "loadBalancer", "externalIP"],
            "description": "How the Service is addressed (default clusterIP).",
        },
        "node": {"type": "string", "description": "Node whose IP is dialled (via nodePort)."},
        "address": {**_IPV4, "description": "A raw destination address."},
        "name": {
            "type": "string",
            "description": (
                "A DNS name, resolved from the source as its resolver would (search path for "
                "short names), then dialled; e.g. db.example.com or web.default."
            ),
        },
    },
}

_DESTINATION = {
    "description": (
        "service/NAME[:PORT], service/NAMESPACE/NAME[:PORT], IP:PORT, node/NODE:PORT, "
        "or an object for the other forms (a DNS name: {name: NAME, port: P})."
    ),
    "oneOf": [
        {
            "type": "string",
            "pattern": (
                r"^(service/[^\s:]+(:[^\s:]+)?|\d{1,3}(\.\d{1,3}){3}:\d+|node/[^\s:/]+:\d+)$"
            ),
            "x-message": "must be service/NAME[:PORT], IP:PORT or node/NODE:PORT",
        },
        _DESTINATION_OBJECT,
    ],
    "x-hint": "use service/NAME[:PORT], IP:PORT, node/NODE:PORT, or {service:, via:, node:, port:}",
    "x-message": "must be a string such as service/web:http, or a mapping",
}

_ENDPOINT_SET = {
    "description": "all, none, or a list of pod names and node/NODE (the endpoints on a node).",
    "oneOf": [
        {"enum": ["all", "none"]},
        {"type": "array", "items": {"type": "string"}, "minItems": 1},
    ],
    "x-hint": "use all, none, or a list such as [web-0, node/node-1]",
    "x-message": "must be all, none or a list of endpoints",
}

_EXPECT = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "result": {
            "enum": [
                "connected",
                "refused",
                "timeout",
                "unreachable",
                "unresolved",
                "closed",
                "failed",
            ],
            "description": (
                "connected; refused (REJECT); timeout (DROP); unreachable (no route); "
                "unresolved (a name that did not resolve); closed (accepted, then closed "
                "without an answer: the userspace proxy with no endpoint); failed (any of "
                "these failures, where modes fail differently)."
            ),
        },
        "sticky": {
            "type": "boolean",
            "description": (
                "Every connection reaches one and the same endpoint, whichever it is "
                "(sessionAffinity: ClientIP, through one node); false: they spread over the "
                "expected endpoints. Default: what the Service's sessionAffinity promises."
            ),
        },
        "status": {
            "type": "integer",
            "minimum": 100,
            "maximum": 599,
            "description": "http checks: the HTTP status code of every answer (default 200).",
        },
        "body": {
            "type": "string",
            "description": "http checks: a piece of text every answer's body must contain.",
        },
        "dnat": {
            "type": "boolean",
            "description": (
                "Whether the connections were DNATed, as connection tracking on the client's "
                "node shows (false for a headless Service: pods are dialled directly)."
            ),
        },
        "endpoints": _ENDPOINT_SET,
        "source": {
            "oneOf": [
                {"type": "string", "enum": ["client", "masqueraded", "snat-if-remote"]},
                {
                    "type": "string",
                    "pattern": r"^\d{1,3}(\.\d{1,3}){3}$",
                    "x-message": "must be client, masqueraded, snat-if-remote or an IPv4 address",
                },
            ],
            "x-message": "must be client, masqueraded, snat-if-remote or an IPv4 address",
            "description": (
                "What backends saw as the client: client (its own address), masqueraded (a "
                "translated one), snat-if-remote (its own at backends on the node that took "
                "the connection, that node's address elsewhere: Cilium's NodePort), or an "
                "address every backend must have seen (e.g. 169.254.42.1, Cilium's hairpin)."
            ),
            "x-hint": "use client, masqueraded, snat-if-remote or an IPv4 address",
        },
        "rcode": {
            "enum": ["NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED"],
            "description": "dns checks: the response code (default NOERROR).",
        },
        "answers": {
            "type": "array",
            "items": {"type": "string"},
            "description": (
                "dns checks: the exact set of answers of the queried type. Literal values, or "
                "service/[NS/]NAME (its ClusterIP), endpoints/[NS/]NAME (its ready endpoints' "
                "addresses), pod/[NS/]NAME (its IP), external/SERVER (an external server's "
                "address)."
            ),
        },
        "cname": {
            "type": "string",
            "description": "dns checks: the name the first CNAME in the answer points to.",
        },
    },
}

_CHECK = {
    "type": "object",
    "additionalProperties": False,
    # from is required, except of a check over a held connection (it has the holder's).
    "if": {"not": {"required": ["connection"]}},
    "then": {"required": ["from"]},
    "properties": {
        "name": {**_NAME, "maxLength": 80},
        "kind": {
            "enum": ["connect", "capture", "dns", "http"],
            "description": (
                "connect: N real connections, observing who answered and the source address it "
                "saw. capture: the same, with the SYN captured by scapy inside the backend pods, "
                "proving the DNAT on the wire. dns: a DNS query from the source, through its "
                "resolver configuration. http: HTTP GETs to any server (a health or metrics "
                "port, say), judged by status code and body."
            ),
        },
        "path": {
            "type": "string",
            "pattern": r"^/[^\s]*$",
            "description": "http checks: the path to GET (default /), e.g. /proxyMode.",
            "x-hint": "a path starting with /, e.g. /healthz",
        },
        "description": {"type": "string"},
        "from": _SOURCE,
        "to": _DESTINATION,
        "query": {
            "type": "string",
            "description": "dns checks: the name to look up (a short name uses the search path).",
        },
        "type": {
            "enum": ["A", "SRV", "PTR", "CNAME", "TXT", "AAAA", "SOA", "NS"],
            "description": "dns checks: the record type (default A).",
        },
        "search": {
            "type": "boolean",
            "description": (
                "dns checks: apply the source's search path and ndots as its resolver would "
                "(default true; a name ending in '.' is never searched)."
            ),
        },
        "protocol": {"enum": ["TCP", "UDP"]},
        "connections": {"type": "integer", "minimum": 1, "maximum": 10000},
        "timeout": {"type": "number", "exclusiveMinimum": 0, "maximum": 60},
        "expect": _EXPECT,
        "hold": {
            "type": "string",
            "pattern": _NAME["pattern"],
            "description": (
                "connect checks: keep this check's connection open under this name, so checks "
                "of later steps can use it again (connection: NAME). TCP keeps the connection "
                "(HTTP keep-alive); UDP keeps the socket, so later datagrams leave from the same "
                "source port."
            ),
        },
        "connection": {
            "type": "string",
            "description": (
                "Send over a connection a check before this one held, instead of a new one: "
                "source, destination and protocol are that connection's; connections counts "
                "requests (default 3)."
            ),
        },
        "modes": {
            "type": "object",
            "description": (
                "Where proxy modes genuinely differ: per-mode expectations that replace fields of "
                "expect, e.g. {userspace: {expect: {source: masqueraded}}}."
            ),
            "additionalProperties": False,
            "properties": {
                mode: {
                    "type": "object",
                    "additionalProperties": False,
                    "required": ["expect"],
                    "properties": {"expect": _EXPECT, "why": {"type": "string"}},
                }
                for mode in PROXY_MODES
            },
        },
    },
}

_DURATION = {
    "oneOf": [
        {"type": "number", "minimum": 0},
        {
            "type": "string",
            "pattern": r"^((\d+(\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h))+$",
            "x-message": "must be a number of seconds or a duration (40s, 500ms, 1m30s)",
        },
    ],
    "x-hint": "seconds, or a duration such as 40s, 500ms or 1m30s",
}

_REF = {"type": "string", "pattern": r"^([a-z0-9][-a-z0-9]*/)?[a-z0-9][-a-z0-9.]*$"}

_STEP = {
    "type": "object",
    "additionalProperties": False,
    "description": "One change (at most), then the checks that must hold after it.",
    "properties": {
        "name": {**_NAME, "maxLength": 80},
        "description": {"type": "string"},
        "apply": {
            "type": "array",
            "items": {"type": "object"},
            "minItems": 1,
            "description": (
                "Kubernetes manifests to apply, as kubectl apply: new objects are created, "
                "existing ones updated (a Deployment's new pod template rolls out)."
            ),
        },
        "scale": {
            "type": "object",
            "additionalProperties": False,
            "required": ["deployment", "replicas"],
            "properties": {
                "deployment": {**_REF, "description": "NAME or NAMESPACE/NAME"},
                "replicas": {"type": "integer", "minimum": 0, "maximum": 1000},
            },
            "x-hint": "e.g. scale: {deployment: web, replicas: 0}",
        },
        "delete": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "pod": {**_REF, "description": "NAME or NAMESPACE/NAME"},
                "service": _REF,
                "deployment": _REF,
                "gracePeriodSeconds": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 3600,
                    "description": (
                        "Seconds the pod keeps serving as a terminating endpoint (default: its "
                        "terminationGracePeriodSeconds; 0: removed at once)."
                    ),
                },
            },
            "x-hint": "e.g. delete: {pod: web-a, gracePeriodSeconds: 5}",
        },
        "node": {
            "type": "object",
            "additionalProperties": False,
            "required": ["name", "state"],
            "properties": {"name": _NAME, "state": {"enum": ["down", "up"]}},
            "x-hint": "e.g. node: {name: node-2, state: down}",
        },
        "ready": {
            "type": "object",
            "additionalProperties": False,
            "required": ["pod", "value"],
            "properties": {"pod": _REF, "value": {"type": "boolean"}},
            "x-hint": "e.g. ready: {pod: web-a, value: false}",
        },
        "proxy": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"conntrackCleanup": {"type": "boolean"}},
            "description": "Restart kube-proxy with another setting.",
        },
        "wait": {
            **_DURATION,
            "description": "Let time pass: grace periods end, the node lifecycle controller acts.",
        },
        "checks": {"type": "array", "items": _CHECK},
    },
}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": "https://netlab.dev/schemas/lab-v1alpha1.json",
    "title": "netlab Lab",
    "description": (
        "netlab's own document in a scenario file: the lab's nodes, networks, proxy mode, "
        "external clients, checks and timeline. Kubernetes manifests sit beside it in the same "
        "file."
    ),
    "type": "object",
    "additionalProperties": False,
    "required": ["apiVersion", "kind"],
    "properties": {
        "apiVersion": {"const": LAB_API_VERSION, "x-hint": _HEAD_HINT},
        "kind": {"const": LAB_KIND, "x-hint": _HEAD_HINT},
        "metadata": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "name": {**_NAME, "description": "Lab name; prefixes every namespace it makes."},
                "description": {"type": "string"},
            },
        },
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "nodes": {
                    "description": "Node count (named node-1..node-N) or a list of nodes.",
                    "oneOf": [
                        {"type": "integer", "minimum": 1, "maximum": 50},
                        {
                            "type": "array",
                            "minItems": 1,
                            "maxItems": 50,
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["name"],
                                "properties": {
                                    "name": _NAME,
                                    "labels": {
                                        "type": "object",
                                        "additionalProperties": {"type": "string"},
                                        "description": (
                                            "The Node's labels, e.g. {topology.kubernetes.io/"
                                            "zone: zone-a}: endpoints take their node's zone, "
                                            "which trafficDistribution's hints use."
                                        ),
                                        "x-hint": "label values are strings: quote numbers",
                                    },
                                },
                            },
                        },
                    ],
                    "x-hint": "a number of nodes (1-50) or a list like [{name: node-1}]",
                    "x-message": "must be a number of nodes or a list of nodes",
                },
                "network": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "podCIDR": {
                            **_CIDR,
                            "description": "Cluster CIDR (default 10.244.0.0/16).",
                        },
                        "nodeCIDRMaskSize": {
                            "type": "integer",
                            "minimum": 16,
                            "maximum": 28,
                            "description": "Prefix length of each node's pod CIDR (default 24).",
                        },
                        "serviceCIDR": {**_CIDR, "description": "Default 10.96.0.0/12."},
                        "nodeNetwork": {
                            **_CIDR,
                            "description": "The nodes' network (default 192.168.56.0/24).",
                        },
                    },
                },
                "proxy": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "mode": {"enum": PROXY_MODES, "description": "Default iptables."},
                        "iptablesBackend": {
                            "enum": ["auto", "nft", "legacy"],
                            "description": (
                                "Which iptables back end programs the rules. auto picks nft "
                                "(what `iptables` shows on Debian) and legacy for large rule sets."
                            ),
                        },
                        "masqueradeAll": {"type": "boolean"},
                        "conntrackCleanup": {
                            "type": "boolean",
                            "description": (
                                "Delete the conntrack entries of UDP flows whose endpoint is no "
                                "longer serving, as kube-proxy does after every change to a UDP "
                                "Service's endpoints (default true; false shows the stale-flow "
                                "failure it prevents)."
                            ),
                        },
                        "nodePortAddresses": {
                            "description": (
                                "kube-proxy's nodePortAddresses: the node addresses that serve "
                                "NodePorts, as CIDRs (e.g. [192.168.56.0/24, 127.0.0.1/32]), "
                                "or primary (the node's own IP). Default: primary in nftables "
                                "mode, every local address in iptables and ipvs modes "
                                "(kube-proxy's defaults, also for an empty list); 0.0.0.0/0 is "
                                "every address. The userspace mode ignores it; the ebpf "
                                "mode reads it as Cilium's --nodeport-addresses (a NodePort "
                                "frontend on the node IP unless the CIDRs leave it out)."
                            ),
                            "oneOf": [
                                {"const": "primary"},
                                {"type": "array", "items": {"type": "string"}},
                            ],
                            "x-hint": "primary, or a list of CIDRs such as [192.168.56.0/24]",
                        },
                        "nftablesLayout": {
                            "enum": ["kube-proxy", "fast", "auto"],
                            "description": (
                                "nftables mode: kube-proxy's own layout (default, for learning), "
                                "a layout with the same verdicts that loads large rule sets "
                                "much faster (docs/performance.md), or auto (fast above 2000 "
                                "Service ports)."
                            ),
                        },
                    },
                },
                "external": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "clients": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["name"],
                                "properties": {"name": _NAME, "address": _IPV4},
                            },
                            "description": (
                                "Clients outside the cluster. The first sits on the node network "
                                "(default external at 192.168.56.100); others may use any address."
                            ),
                        },
                        "servers": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["name", "address"],
                                "properties": {
                                    "name": {
                                        "type": "string",
                                        "pattern": (
                                            r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)+"
                                            r"[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
                                        ),
                                        "x-hint": "a DNS name such as db.example.com",
                                        "x-message": "must be a DNS name with a dot",
                                    },
                                    "address": _IPV4,
                                    "ports": {
                                        "type": "array",
                                        "items": {
                                            "type": "integer",
                                            "minimum": 1,
                                            "maximum": 65535,
                                        },
                                    },
                                },
                            },
                            "description": (
                                "Servers of the outside world, in the external namespace: the "
                                "upstream DNS server resolves their names, and each port is "
                                "served over TCP and UDP like a pod's."
                            ),
                        },
                    },
                },
                "featureGates": {
                    "type": "object",
                    "additionalProperties": False,
                    "description": (
                        "Feature gates of the cluster's components, as --feature-gates sets "
                        "them; each is off by default as in Kubernetes v1.33."
                    ),
                    "x-hint": "netlab knows the gate PreferSameTrafficDistribution",
                    "properties": {
                        "PreferSameTrafficDistribution": {
                            "type": "boolean",
                            "description": (
                                "Alpha in v1.33: the API server accepts trafficDistribution "
                                "PreferSameZone and PreferSameNode, the EndpointSlice "
                                "controller writes node hints and kube-proxy follows them."
                            ),
                        },
                    },
                },
                "dns": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "enabled": {
                            "type": "boolean",
                            "description": "Run cluster DNS behind kube-system/kube-dns (default "
                            "true).",
                        },
                        "replicas": {"type": "integer", "minimum": 1, "maximum": 5},
                        "domain": {
                            "type": "string",
                            "pattern": r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*"
                            r"[a-z0-9])?$",
                            "description": "The cluster domain (default cluster.local).",
                            "x-message": "must be a DNS name",
                        },
                    },
                },
                "loadBalancer": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "pool": {
                            **_CIDR,
                            "description": (
                                "Addresses the stand-in cloud load balancer gives LoadBalancer "
                                "Services (default 192.0.2.0/24)."
                            ),
                        },
                    },
                },
                "clientPods": {
                    "type": "boolean",
                    "description": (
                        "Add a client pod netlab/client-NODE on every node (default true)."
                    ),
                },
                "controlPlane": {
                    "type": "object",
                    "additionalProperties": False,
                    "description": "How fast the control plane notices a node is gone.",
                    "properties": {
                        "nodeMonitorGracePeriod": {
                            **_DURATION,
                            "description": (
                                "kube-controller-manager's --node-monitor-grace-period: how long "
                                "a silent node stays Ready before its pods are marked not ready "
                                "(default 50s)."
                            ),
                        },
                        "defaultUnreachableTolerationSeconds": {
                            **_DURATION,
                            "description": (
                                "kube-apiserver's --default-unreachable-toleration-seconds: how "
                                "long pods stay on an unreachable node before they are evicted "
                                "(default 300)."
                            ),
                        },
                    },
                },
                "checks": {"type": "array", "items": _CHECK},
                "steps": {
                    "type": "array",
                    "items": _STEP,
                    "description": (
                        "The timeline: each step makes one change to the live cluster, then runs "
                        "its checks. netlab run runs spec.checks, then every step in order."
                    ),
                },
            },
        },
    },
}
