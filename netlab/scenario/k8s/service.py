"""Services: ``ValidateService`` and the checks it makes per type, port, ClusterIP, externalIPs,
load balancer fields, traffic policies and traffic distribution (kubernetes/kubernetes
``pkg/apis/core/validation/validation.go``, read at commit a7264f95), what the allocator
refuses on an IPv4-only cluster (``pkg/registry/core/service/storage/alloc.go``,
``initIPFamilyFields``), plus netlab's warnings for what cannot work in a lab.
"""

from __future__ import annotations

from typing import Any

from netlab.scenario.k8s import (
    Service,
    ServicePort,
)
from netlab.scenario.k8s.context import _HINT_LABEL, _HINT_PORT, _HINT_PORT_NAME, _Ctx
from netlab.scenario.k8s.defaults import _DEFAULTED, _service_defaults, _Svc
from netlab.scenario.k8s.fielderrors import (
    _duplicate,
    _forbidden,
    _go_quote,
    _go_strings,
    _invalid,
    _Raw,
    _required,
    _unsupported,
)
from netlab.scenario.k8s.names import (
    _CIDR_MSG,
    _IP_MSG,
    _dns1035_label,
    _dns1123_label,
    _dns1123_subdomain,
    _ip_warning,
    _non_special_ip,
    _parse_ip,
    _port_name,
    _port_num,
    _qualified_name,
    _valid_cidr,
)
from netlab.scenario.k8s.objectmeta import _validate_labels, _validate_meta
from netlab.scenario.k8s.pod import _HINT_PROTOCOL, _PROTOCOLS, _status_warning
from netlab.scenario.yamlpos import Path, dotted

_SERVICE_TYPES = ("ClusterIP", "ExternalName", "LoadBalancer", "NodePort")
_KUBELET_PORT = 10250  # ports.KubeletPort
_HINT_TYPE = "type is ClusterIP (the default), NodePort, LoadBalancer or ExternalName"
_LB_ONLY = "may only be used when `type` is 'LoadBalancer'"


def _service_type_rules(ctx: _Ctx, svc: _Svc) -> None:
    """The per-type checks at the top of ``ValidateService``."""
    t, spec = svc.type, svc.spec
    if not svc.ports and not svc.headless and t != "ExternalName":
        ctx.emit(
            ("spec", "ports"),
            _required(),
            "list the ports the Service exposes, e.g. ports: [{port: 80, targetPort: 8080}]",
        )
    for i, p in enumerate(svc.ports if t == "LoadBalancer" else []):
        if p.get("port") == _KUBELET_PORT:  # "a workaround for broken cloud environments"
            ctx.emit(
                ("spec", "ports", i),
                _invalid(
                    _KUBELET_PORT,
                    f"may not expose port {_KUBELET_PORT} externally since it is used by kubelet",
                ),
                "pick another port for a load balancer",
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


PREFER_SAME_GATE = "PreferSameTrafficDistribution"


def _traffic_distribution(ctx: _Ctx, svc: _Svc) -> None:
    """``validateServiceTrafficDistribution``: PreferSameZone and PreferSameNode only with the
    PreferSameTrafficDistribution gate (alpha in v1.33, off by default)."""
    value = svc.spec.get("trafficDistribution")
    gated = PREFER_SAME_GATE in ctx.gates
    supported = ("PreferClose", "PreferSameZone", "PreferSameNode") if gated else ("PreferClose",)
    if value is not None and value not in supported:
        ctx.emit(
            ("spec", "trafficDistribution"),
            _unsupported(value, supported),
            "trafficDistribution: PreferClose prefers endpoints in the client's zone; omit it "
            "otherwise"
            + (
                ""
                if gated
                else f" (PreferSameZone and PreferSameNode need featureGates: "
                f"{{{PREFER_SAME_GATE}: true}} in the Lab document)"
            ),
        )


def _ip_families_on_this_cluster(ctx: _Ctx, svc: _Svc) -> None:
    """What the allocator (``initIPFamilyFields``, kubernetes/kubernetes
    ``pkg/registry/core/service/storage/alloc.go``) refuses on a cluster whose only family
    is IPv4, as every netlab cluster is."""
    if svc.type == "ExternalName":
        return
    spec = svc.spec
    selectorless_headless = svc.headless and not spec.get("selector")
    policy = spec.get("ipFamilyPolicy") or (
        "RequireDualStack" if selectorless_headless else "SingleStack"
    )
    families: list[str] = spec.get("ipFamilies", [])
    failed = False
    if policy == "SingleStack":
        for what, count in (("cluster IPs", len(svc.cluster_ips)), ("IP families", len(families))):
            if count == 2:
                failed = True
                ctx.emit(
                    ("spec", "ipFamilyPolicy"),
                    _invalid(
                        policy,
                        f"must be 'RequireDualStack' or 'PreferDualStack' when multiple {what} "
                        "are specified",
                    ),
                    "a netlab cluster is IPv4 only: give one family and one address",
                )
    for i, ip in enumerate(svc.cluster_ips):
        parsed = _parse_ip(ip) if ip != "None" else None
        if ip == "None":
            break
        if parsed is not None and parsed.version == 6 and i >= len(families):
            failed = True
            ctx.emit(
                svc.ip_loc(i),
                _invalid(_go_strings(svc.cluster_ips), "IPv6 is not configured on this cluster"),
                "netlab clusters are IPv4 only: use an IPv4 address, or omit clusterIP",
                shown=f"spec.clusterIPs[{i}]",
            )
    if failed or selectorless_headless:
        return
    if policy == "RequireDualStack":
        ctx.emit(
            ("spec", "ipFamilyPolicy"),
            _invalid(policy, "this cluster is not configured for dual-stack services"),
            "netlab clusters are IPv4 only: use SingleStack, or PreferDualStack",
        )
    for i, family in enumerate(families):
        if family != "IPv4":
            ctx.emit(
                ("spec", "ipFamilies", i),
                _invalid(family, "not configured on this cluster"),
                "netlab clusters are IPv4 only: ipFamilies: [IPv4], or omit it",
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
    _traffic_distribution(ctx, svc)
    if not ctx.failed:  # the allocator runs only on a Service that passed validation
        _ip_families_on_this_cluster(ctx, svc)
    _service_warnings(ctx, svc)
    _single_stack_warnings(ctx, svc, meta.annotations)
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
        traffic_distribution=spec.get("trafficDistribution") or "",
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


_SINGLE_STACK = "netlab labs are single-stack IPv4"
_TOPOLOGY_MODE = "service.kubernetes.io/topology-mode"


def _single_stack_warnings(ctx: _Ctx, svc: _Svc, annotations: dict[str, str]) -> None:
    """What a lab does instead with fields it cannot honour: never taken silently.

    IPv6 families and addresses and RequireDualStack are refused as a single-stack cluster's
    API server refuses them (``_ip_families_on_this_cluster``); PreferDualStack is accepted
    there and makes one IPv4 ClusterIP, which is said.
    """
    if svc.type != "ExternalName" and svc.spec.get("ipFamilyPolicy") == "PreferDualStack":
        ctx.warn(
            ("spec", "ipFamilyPolicy"),
            f"{_SINGLE_STACK}: the Service is SingleStack with one IPv4 ClusterIP, as a "
            "single-stack cluster makes it",
            "use ipFamilyPolicy: SingleStack, or omit it",
        )
    if _TOPOLOGY_MODE in annotations:
        ctx.warn(
            ("metadata", "annotations", _TOPOLOGY_MODE),
            "Topology Aware Routing is not modelled: netlab's EndpointSlice controller writes no "
            "hints for it (they depend on each zone's CPU), so every endpoint is used",
            "use spec.trafficDistribution: PreferClose, which netlab models",
        )
