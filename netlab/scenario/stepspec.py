"""A scenario's timeline as written: ``spec.steps``, each a change followed by the checks that must
hold after it, parsed with every problem located.

Whether a step's change names something the cluster has at that point of the timeline is only
known by playing the timeline on the desired state (:mod:`netlab.checks.validate`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from netlab.errors import Diagnostic
from netlab.scenario.changespec import (
    ApplyChange,
    Change,
    DeleteChange,
    NodeChange,
    ProxyChange,
    ReadyChange,
    ScaleChange,
    WaitChange,
    parse_ref,
)
from netlab.scenario.checkspec import CheckSpec, ConnectCheck, Origin, parse_check
from netlab.scenario.k8s import Deployment, Namespace, Pod, Service
from netlab.scenario.k8s.parse import parse_object
from netlab.scenario.yamlpos import Document, Path, dotted

CHANGE_KEYS = ("apply", "scale", "delete", "node", "ready", "proxy", "wait")
MAX_WAIT_SECONDS = 3600.0


@dataclass(frozen=True)
class StepSpec:
    """One moment of the timeline: a change (None: time stands still), then checks."""

    name: str
    change: Change | None
    checks: tuple[CheckSpec, ...] = ()
    description: str = ""
    origin: Origin | None = None


_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(value: Any) -> float | None:
    """Seconds from a number or a Go duration string (``40s``, ``1m30s``, ``500ms``); None when
    it is neither, or negative."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if value >= 0 else None
    if not isinstance(value, str) or not value:
        return None
    pos, total = 0, 0.0
    while pos < len(value):
        m = _DURATION_PART.match(value, pos)
        if m is None:
            return None
        total += float(m.group(1)) * _UNIT_SECONDS[m.group(2)]
        pos = m.end()
    return total


def parse_steps(
    doc: Document,
    steps: list[dict[str, Any]],
    initial: list[CheckSpec],
    category: str,
    out: list[Diagnostic],
) -> list[StepSpec]:
    """Every entry of ``spec.steps`` (already schema-valid). Held connections named by a check's
    ``connection`` must have been held by a check before it (in ``spec.checks`` or an earlier
    step); such a check takes its source, destination and protocol from the holder."""
    holders: dict[str, ConnectCheck] = {}
    # The initial checks that parsed, at their indexes in spec.checks.
    given = [c for c in doc.data.get("spec", {}).get("checks") or [] if isinstance(c, dict)]
    names = [c.get("name") or f"check-{i + 1}" for i, c in enumerate(given)]
    placed = [(names.index(c.name) if c.name in names else i, c) for i, c in enumerate(initial)]
    _collect_holds(doc, ("spec", "checks"), placed, holders, category, out)
    result: list[StepSpec] = []
    seen_steps: set[str] = set()
    for i, data in enumerate(steps):
        path: Path = ("spec", "steps", i)
        name = data.get("name") or f"step-{i + 1}"
        if name in seen_steps:
            out.append(
                doc.diag(
                    (*path, "name"),
                    f'Duplicate value: "{name}"',
                    hint="step names are unique",
                    category=category,
                )
            )
        seen_steps.add(name)
        change = _parse_change(doc, path, data, category, out)
        checks: list[tuple[int, CheckSpec]] = []
        seen: set[str] = set()
        for j, c in enumerate(data.get("checks") or []):
            cpath: Path = (*path, "checks", j)
            check = parse_check(doc, cpath, c, j, f"{category} step {name}", out)
            if check is None:
                continue
            if check.name in seen:
                out.append(
                    doc.diag(
                        (*cpath, "name"),
                        f'Duplicate value: "{check.name}"',
                        hint="check names are unique within a step",
                        category=category,
                    )
                )
            seen.add(check.name)
            checks.append((j, check))
        _collect_holds(doc, (*path, "checks"), checks, holders, category, out)
        line, col = doc.where(path)
        result.append(
            StepSpec(
                name=name,
                change=change,
                checks=tuple(_with_holder(c, holders) for _, c in checks),
                description=data.get("description", ""),
                origin=Origin(doc.file, line, col, dotted(path)),
            )
        )
    return result


def _collect_holds(
    doc: Document,
    path: Path,
    checks: list[tuple[int, CheckSpec]],
    holders: dict[str, ConnectCheck],
    category: str,
    out: list[Diagnostic],
) -> None:
    """Check ``connection`` references against the holds made so far, then add this list's
    (each check with its index in the list it was written in)."""
    for j, check in checks:
        if not isinstance(check, ConnectCheck):
            continue
        if check.connection and check.connection not in holders:
            known = ", ".join(sorted(holders)) or "none so far"
            out.append(
                doc.diag(
                    (*path, j, "connection"),
                    f'no connection "{check.connection}" is held before this check',
                    hint=f"hold it in an earlier check with hold: {check.connection} "
                    f"(held: {known})",
                    category=category,
                )
            )
        if check.hold:
            if check.hold in holders:
                out.append(
                    doc.diag(
                        (*path, j, "hold"),
                        f'Duplicate value: "{check.hold}"',
                        hint="each held connection has its own name",
                        category=category,
                    )
                )
            holders[check.hold] = check


def _with_holder(check: CheckSpec, holders: dict[str, ConnectCheck]) -> CheckSpec:
    if not isinstance(check, ConnectCheck) or not check.connection:
        return check
    holder = holders.get(check.connection)
    if holder is None:
        return check
    return replace(
        check,
        source=holder.source,
        destination=holder.destination,
        protocol=holder.protocol,
        connections=check.connections or 3,
    )


def _parse_change(
    doc: Document, path: Path, data: dict[str, Any], category: str, out: list[Diagnostic]
) -> Change | None:
    given = [k for k in CHANGE_KEYS if k in data]
    if len(given) > 1:
        out.append(
            doc.diag(
                (*path, given[1]),
                f"{given[0]} and {given[1]} exclude each other",
                hint="one change per step; put the next change in a step of its own",
                category=category,
            )
        )
        return None
    if not given:
        return None
    key = given[0]
    value = data[key]
    where: Path = (*path, key)
    line, col = doc.where(where)
    origin = Origin(doc.file, line, col, dotted(where))
    if key == "apply":
        return _parse_apply(doc, where, value, origin, out)
    if key == "scale":
        ns, name = parse_ref(value["deployment"])
        return ScaleChange(namespace=ns, name=name, replicas=value["replicas"], origin=origin)
    if key == "delete":
        kinds = [k for k in ("pod", "service", "deployment") if k in value]
        if len(kinds) != 1:
            out.append(
                doc.diag(
                    where,
                    "name exactly one of pod, service or deployment",
                    hint="e.g. delete: {pod: web-a, gracePeriodSeconds: 5}",
                    category=category,
                )
            )
            return None
        resource = kinds[0]
        if resource != "pod" and "gracePeriodSeconds" in value:
            out.append(
                doc.diag(
                    (*where, "gracePeriodSeconds"),
                    "a grace period applies to deleting a pod",
                    hint="a deleted Deployment's pods terminate with their own grace period",
                    category=category,
                )
            )
        ns, name = parse_ref(value[resource])
        return DeleteChange(
            resource=resource,
            namespace=ns,
            name=name,
            grace=value.get("gracePeriodSeconds"),
            origin=origin,
        )
    if key == "node":
        return NodeChange(node=value["name"], up=value["state"] == "up", origin=origin)
    if key == "ready":
        ns, name = parse_ref(value["pod"])
        return ReadyChange(namespace=ns, name=name, ready=value["value"], origin=origin)
    if key == "proxy":
        return ProxyChange(conntrack_cleanup=value.get("conntrackCleanup"), origin=origin)
    seconds = parse_duration(value)
    if seconds is None or seconds > MAX_WAIT_SECONDS:
        out.append(
            doc.diag(
                where,
                f"invalid duration {value!r}",
                hint=f"seconds (at most {MAX_WAIT_SECONDS:g}), or a duration such as 5s or 1m",
                category=category,
            )
        )
        return None
    return WaitChange(seconds=seconds, origin=origin)


def _parse_apply(
    doc: Document, path: Path, items: list[Any], origin: Origin, out: list[Diagnostic]
) -> ApplyChange | None:
    """Manifests written inside the step, each validated as the API server validates it."""
    before = len(out)
    objects: dict[str, list[Any]] = {"Namespace": [], "Pod": [], "Deployment": [], "Service": []}
    origins: dict[str, Origin] = {}
    for k, _ in enumerate(items):
        sub = doc.sub((*path, k))
        obj = parse_object(sub, out)
        if obj is None:
            continue
        kind = type(obj).__name__
        ns = "" if isinstance(obj, Namespace) else obj.meta.namespace
        line, col = doc.where((*path, k))
        origins[f"{kind}/{ns}/{obj.meta.name}"] = Origin(doc.file, line, col, dotted((*path, k)))
        objects[kind].append(obj)
    if any(d.severity == "error" for d in out[before:]):
        return None
    namespaces: list[Namespace] = objects["Namespace"]
    pods: list[Pod] = objects["Pod"]
    deployments: list[Deployment] = objects["Deployment"]
    services: list[Service] = objects["Service"]
    return ApplyChange(
        namespaces=tuple(namespaces),
        pods=tuple(pods),
        deployments=tuple(deployments),
        services=tuple(services),
        origins=origins,
        origin=origin,
    )
