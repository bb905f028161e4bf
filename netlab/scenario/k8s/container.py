"""The container fields netlab accepts without using them (environment, probes, resources),
validated as the API server validates them (kubernetes/kubernetes
``pkg/apis/core/validation/validation.go`` at commit a7264f95: ``ValidateEnv``,
``validateProbe`` and its handlers, ``validateContainerResourceName``; quantities as
``staging/src/k8s.io/apimachinery/pkg/api/resource/quantity.go`` parses them), so a manifest
netlab accepts is one a cluster would accept too.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from netlab.scenario.k8s.context import _HINT_PORT, _HINT_PORT_NAME, _Ctx
from netlab.scenario.k8s.fielderrors import _forbidden, _invalid, _required
from netlab.scenario.k8s.names import _port_name, _port_num, _qualified_name
from netlab.scenario.k8s.quantity import parse_quantity
from netlab.scenario.yamlpos import Path, dotted

# IsRelaxedEnvVarName (k8s.io/apimachinery pkg/util/validation), which the
# RelaxedEnvironmentVariableValidation gate (on by default since v1.32) selects
_ENV_NAME_MSG = (
    "a valid environment variable name must consist only of printable ASCII characters other "
    "than '='"
)
_NEGATIVE = "must be greater than or equal to 0"


def validate_env(ctx: _Ctx, env: list[dict[str, Any]], loc: Path) -> None:
    """``ValidateEnv``: every variable has a name, and ``valueFrom`` names one source."""
    for i, var in enumerate(env):
        vloc = (*loc, i)
        name: str = var.get("name", "")
        if not name:
            ctx.emit((*vloc, "name"), _required(), "every environment variable needs a name")
        elif any(not 0x20 <= ord(c) <= 0x7E or c == "=" for c in name):
            ctx.emit(
                (*vloc, "name"),
                _invalid(name, _ENV_NAME_MSG),
                "use letters, digits and '_' (e.g. LOG_LEVEL)",
            )
        source = var.get("valueFrom")
        if source is None:
            continue
        kinds = [
            k
            for k in ("fieldRef", "resourceFieldRef", "configMapKeyRef", "secretKeyRef")
            if isinstance(source, dict) and source.get(k) is not None
        ]
        floc = (*vloc, "valueFrom")
        if not kinds:
            ctx.emit(
                floc,
                _invalid(
                    "",
                    "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or "
                    "`secretKeyRef`",
                ),
                "valueFrom takes one source, e.g. fieldRef: {fieldPath: status.podIP}",
            )
        elif var.get("value"):
            ctx.emit(
                floc,
                _invalid("", "may not be specified when `value` is not empty"),
                "give the variable either value or valueFrom",
            )
        elif len(kinds) > 1:
            ctx.emit(
                floc,
                _invalid("", "may not have more than one field specified at a time"),
                "valueFrom takes exactly one source",
            )


def validate_probe(ctx: _Ctx, probe: dict[str, Any] | None, loc: Path, *, kind: str) -> None:
    """``validateProbe`` and its handler (``validateHandler``), plus what the liveness,
    readiness and startup kinds add."""
    if probe is None:
        return
    handlers = [k for k in ("exec", "httpGet", "tcpSocket", "grpc") if probe.get(k) is not None]
    for extra in handlers[1:]:
        ctx.emit(
            (*loc, extra),
            _forbidden("may not specify more than 1 handler type"),
            "a probe has one of exec, httpGet, tcpSocket or grpc",
            key=True,
        )
    if not handlers:
        ctx.emit(
            loc,
            _required("must specify a handler type"),
            "add one of exec, httpGet, tcpSocket or grpc",
        )
    elif handlers[0] == "exec" and not (probe["exec"] or {}).get("command"):
        ctx.emit((*loc, "exec", "command"), _required(), "exec runs a command: command: [cat, x]")
    elif handlers[0] in ("httpGet", "tcpSocket"):
        _probe_port(ctx, probe[handlers[0]].get("port", 0), (*loc, handlers[0], "port"))
        scheme = probe[handlers[0]].get("scheme", "HTTP")
        if handlers[0] == "httpGet" and scheme not in ("HTTP", "HTTPS"):
            ctx.emit(
                (*loc, "httpGet", "scheme"),
                f'Unsupported value: "{scheme}": supported values: "HTTP", "HTTPS"',
                "scheme is HTTP (the default) or HTTPS",
            )
    elif handlers[0] == "grpc":
        _probe_port(ctx, probe["grpc"].get("port", 0), (*loc, "grpc", "port"))
    # SetDefaults_Probe fills zeros, so only what is written can be negative
    for key in (
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ):
        value = probe.get(key, 0)
        if value < 0:
            ctx.emit((*loc, key), _invalid(value, _NEGATIVE), f"{key} is 0 or more")
    grace = probe.get("terminationGracePeriodSeconds")
    if grace is not None and kind == "readiness":
        ctx.emit(
            (*loc, "terminationGracePeriodSeconds"),
            _invalid(grace, "must not be set for readinessProbes"),
            "remove terminationGracePeriodSeconds from the readiness probe",
        )
    elif grace is not None and grace <= 0:
        ctx.emit(
            (*loc, "terminationGracePeriodSeconds"),
            _invalid(grace, "must be greater than 0"),
            "a grace period is a positive number of seconds",
        )
    success = probe.get("successThreshold", 1) or 1
    if kind in ("liveness", "startup") and success != 1:
        ctx.emit(
            (*loc, "successThreshold"),
            _invalid(success, "must be 1"),
            f"a {kind} probe succeeds once: remove successThreshold",
        )


def _probe_port(ctx: _Ctx, port: int | str, loc: Path) -> None:
    """``ValidatePortNumOrName``."""
    if isinstance(port, int):
        for msg in _port_num(port):
            ctx.emit(loc, _invalid(port, msg), _HINT_PORT + ", or a container port name")
    else:
        for msg in _port_name(port):
            ctx.emit(loc, _invalid(port, msg), _HINT_PORT_NAME)


# helper.IsStandardContainerResourceName (and hugepages-<size>), and the wider
# IsStandardResourceName set validateResourceName checks first
_CONTAINER_RESOURCES = {"cpu", "memory", "ephemeral-storage"}
_STANDARD_RESOURCES = _CONTAINER_RESOURCES | {
    "pods",
    "services",
    "replicationcontrollers",
    "resourcequotas",
    "secrets",
    "configmaps",
    "persistentvolumeclaims",
    "storage",
    "requests.cpu",
    "requests.memory",
    "requests.storage",
    "requests.ephemeral-storage",
    "limits.cpu",
    "limits.memory",
    "limits.ephemeral-storage",
    "services.nodeports",
    "services.loadbalancers",
}
_HINT_RESOURCE = "container resources are cpu, memory, ephemeral-storage, or a domain/name"


def validate_resources(ctx: _Ctx, resources: dict[str, Any] | None, loc: Path) -> None:
    """``ValidateResourceRequirements``: names, non-negative values, requests within limits.
    Values are shown as written (``Quantity.String`` would print 0.5 as 500m)."""
    if not resources:
        return
    written: dict[str, dict[str, str]] = {
        part: resources.get(part, {}) for part in ("limits", "requests")
    }
    for part, items in written.items():
        for name, text in items.items():
            rloc = (*loc, part, name)
            shown = f"{dotted((*loc, part))}[{name}]"
            _resource_name(ctx, name, rloc, shown)
            value = parse_quantity(text)
            if not isinstance(value, Fraction):
                continue
            if value < 0:
                ctx.emit(rloc, _invalid(text, _NEGATIVE), "a quantity is 0 or more", shown=shown)
            elif not _native(name) and value.denominator != 1:
                ctx.emit(
                    rloc, _invalid(text, "must be an integer"), "count whole units", shown=shown
                )
    limits, requests = written["limits"], written["requests"]
    for name, text in requests.items():
        value = parse_quantity(text)
        limit = parse_quantity(limits[name]) if name in limits else None
        if not isinstance(value, Fraction):
            continue
        if limit is None:
            if not _overcommit(name):
                ctx.emit(
                    (*loc, "limits"),
                    _required("Limit must be set for non overcommitable resources"),
                    f"add limits: {{{name}: ...}} equal to the request",
                )
        elif not isinstance(limit, Fraction):
            continue
        elif value != limit and not _overcommit(name):
            ctx.emit(
                (*loc, "requests", name),
                _invalid(text, f"must be equal to {name} limit of {limits[name]}"),
                "an extended resource's request equals its limit",
                shown=dotted((*loc, "requests")),
            )
        elif value > limit:
            ctx.emit(
                (*loc, "requests", name),
                _invalid(text, f"must be less than or equal to {name} limit of {limits[name]}"),
                "a request may not exceed its limit: raise the limit or lower the request",
                shown=dotted((*loc, "requests")),
            )


def _resource_name(ctx: _Ctx, name: str, loc: Path, shown: str) -> None:
    """``validateContainerResourceName``."""
    msgs = _qualified_name(name)
    for msg in msgs:
        ctx.emit(loc, _invalid(name, msg), _HINT_RESOURCE, shown=shown, key=True)
    if msgs or "/" in name:
        return
    if name not in _STANDARD_RESOURCES and not name.startswith("hugepages-"):
        ctx.emit(
            loc,
            _invalid(name, "must be a standard resource type or fully qualified"),
            _HINT_RESOURCE,
            shown=shown,
            key=True,
        )
    if name not in _CONTAINER_RESOURCES and not name.startswith("hugepages-"):
        ctx.emit(
            loc,
            _invalid(name, "must be a standard resource for containers"),
            _HINT_RESOURCE,
            shown=shown,
            key=True,
        )


def _native(name: str) -> bool:
    """``helper.IsNativeResource``: no domain, or a kubernetes.io one."""
    return "/" not in name or "kubernetes.io/" in name


def _overcommit(name: str) -> bool:
    """``helper.IsOvercommitAllowed``: native resources but hugepages."""
    return _native(name) and not name.startswith("hugepages-")
