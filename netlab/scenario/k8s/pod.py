"""Pods: ``ValidatePodSpec`` and what it calls (containers, ports, host ports), shared by Pods and
Deployment templates (kubernetes/kubernetes ``pkg/apis/core/validation/validation.go``), and
the Namespace and Pod kinds.
"""

from __future__ import annotations

from typing import Any

from netlab.scenario.k8s import (
    Container,
    ContainerPort,
    Namespace,
    Pod,
    PodDNSConfig,
    PodDNSConfigOption,
    PodSpec,
)
from netlab.scenario.k8s.container import validate_env, validate_probe, validate_resources
from netlab.scenario.k8s.context import _HINT_LABEL, _HINT_PORT, _HINT_PORT_NAME, _Ctx, _name_hint
from netlab.scenario.k8s.fielderrors import (
    _duplicate,
    _forbidden,
    _go_quote,
    _go_strings,
    _invalid,
    _required,
    _unsupported,
)
from netlab.scenario.k8s.names import (
    _IP_MSG,
    _dns1123_label,
    _dns1123_subdomain,
    _parse_ip,
    _port_name,
    _port_num,
    finalizer_problems,
)
from netlab.scenario.k8s.objectmeta import _ready, _validate_labels, _validate_meta
from netlab.scenario.yamlpos import Path, dotted

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
    validate_env(ctx, c.get("env", []), (*loc, "env"))
    validate_resources(ctx, c.get("resources"), (*loc, "resources"))
    sidecar = init and c.get("restartPolicy") == "Always"
    for kind in ("liveness", "readiness", "startup"):
        key = f"{kind}Probe"
        if init and not sidecar and key in c:
            ctx.emit(
                (*loc, key),
                _forbidden("may not be set for init containers without restartPolicy=Always"),
                "an init container runs to completion: remove the probe",
                key=True,
            )
        else:
            validate_probe(ctx, c.get(key), (*loc, key), kind=kind)
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
    _dns_config(ctx, spec, loc)
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
        termination_grace_period_seconds=_grace_period(ctx, spec, loc),
        dns_policy=spec.get("dnsPolicy") or "ClusterFirst",
        dns_config=_pod_dns_config(spec.get("dnsConfig")),
    )


def _pod_dns_config(raw: dict[str, Any] | None) -> PodDNSConfig | None:
    """``spec.dnsConfig`` as kubelet reads it (already strictly decoded)."""
    if raw is None:
        return None
    return PodDNSConfig(
        nameservers=list(raw.get("nameservers") or []),
        searches=list(raw.get("searches") or []),
        options=[
            PodDNSConfigOption(o.get("name", ""), o.get("value"))
            for o in raw.get("options") or []
            if isinstance(o, dict)
        ],
    )


def _grace_period(ctx: _Ctx, spec: dict[str, Any], loc: Path) -> int:
    """``terminationGracePeriodSeconds``: 30 by default; a negative value is accepted with the
    API server's warning (``pkg/api/pod/warnings.go``) and taken as 1."""
    value: int | None = spec.get("terminationGracePeriodSeconds")
    if value is None:
        return 30
    if value < 0:
        ctx.warn(
            (*loc, "terminationGracePeriodSeconds"),
            "must be >= 0; negative values are invalid and will be treated as 1",
            "give the seconds a deleted pod keeps serving (0 or more)",
        )
        return 1
    return value


def _dns_config(ctx: _Ctx, spec: dict[str, Any], loc: Path) -> None:
    """``validatePodDNSConfig``."""
    dloc = (*loc, "dnsConfig")
    config: dict[str, Any] | None = spec.get("dnsConfig")
    if spec.get("dnsPolicy") == "None":
        if config is None:
            ctx.emit(
                dloc,
                _required("must provide `dnsConfig` when `dnsPolicy` is None"),
                "with dnsPolicy: None the pod's resolver is only what dnsConfig says: add "
                "dnsConfig: {nameservers: [10.96.0.10]}",
            )
            return
        if not config.get("nameservers"):
            ctx.emit(
                (*dloc, "nameservers"),
                _required("must provide at least one DNS nameserver when `dnsPolicy` is None"),
                "add nameservers: [ADDRESS]",
            )
            return
    if config is None:
        return
    servers: list[str] = config.get("nameservers", [])
    if len(servers) > 3:
        ctx.emit(
            (*dloc, "nameservers"),
            _invalid(_go_strings(servers), "must not have more than 3 nameservers"),
            "a resolver uses at most three nameservers (MAXNS in glibc)",
        )
    for i, server in enumerate(servers):
        if _parse_ip(server) is None:
            ctx.emit((*dloc, "nameservers", i), _invalid(server, _IP_MSG), "write an IP address")
    searches: list[str] = config.get("searches", [])
    if len(searches) > 32:
        ctx.emit(
            (*dloc, "searches"),
            _invalid(_go_strings(searches), "must not have more than 32 search paths"),
            "a resolver takes at most 32 search domains",
        )
    if len(" ".join(searches)) > 2048:
        ctx.emit(
            (*dloc, "searches"),
            _invalid(
                _go_strings(searches),
                "must not have more than 2048 characters (including spaces) in the search list",
            ),
            "shorten the search list",
        )
    for i, search in enumerate(searches):
        for msg in _dns1123_subdomain(search.removesuffix(".")):
            ctx.emit(
                (*dloc, "searches", i),
                _invalid(search.removesuffix("."), msg),
                "a search domain is a DNS name such as svc.cluster.local",
            )
    for i, option in enumerate(config.get("options", [])):
        if not option.get("name"):
            ctx.emit(
                (*dloc, "options", i),
                _required("must not be empty"),
                'a resolver option has a name, e.g. {name: ndots, value: "2"}',
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
    for finalizer in obj.get("spec", {}).get("finalizers", []):
        for msg in finalizer_problems(finalizer):
            # ValidateNamespace reports each at spec.finalizers itself, without an index
            ctx.emit(
                ("spec", "finalizers"),
                _invalid(finalizer, msg),
                "a finalizer is kubernetes or a qualified name such as example.com/cleanup",
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
