"""ObjectMeta validation: names, namespaces, labels and annotations
(k8s.io/apimachinery ``pkg/api/validation/objectmeta.go`` and ``apis/meta/v1/validation``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netlab.scenario.k8s import (
    READY_ANNOTATION,
    ObjectMeta,
)
from netlab.scenario.k8s.context import _HINT_LABEL, _HINT_LABELS, _Ctx, _name_hint
from netlab.scenario.k8s.fielderrors import _invalid, _required
from netlab.scenario.k8s.names import (
    _blen,
    _dns1123_label,
    _label_value,
    _qualified_name,
    finalizer_problems,
)
from netlab.scenario.yamlpos import Path

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
    for finalizer in meta.get("finalizers", []):
        for msg in finalizer_problems(finalizer):
            ctx.emit(
                (*loc, "finalizers"),
                _invalid(finalizer, msg),
                "a finalizer is kubernetes or a qualified name such as example.com/cleanup",
            )
    labels: dict[str, str] = meta.get("labels", {})
    _validate_labels(ctx, labels, (*loc, "labels"), "metadata.labels")
    annotations: dict[str, str] = meta.get("annotations", {})
    _validate_annotations(ctx, annotations, (*loc, "annotations"), "metadata.annotations")
    return ObjectMeta(
        name=name, namespace=namespace, labels=dict(labels), annotations=dict(annotations)
    )
