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

import functools
import json
from collections.abc import Callable
from typing import Any

from netlab.errors import Diagnostic
from netlab.scenario.k8s.context import _HINT_KINDS, _Ctx
from netlab.scenario.k8s.decode import _decode_struct
from netlab.scenario.k8s.deployment import _deployment
from netlab.scenario.k8s.fielderrors import _go_quote
from netlab.scenario.k8s.objects import SUPPORTED_KINDS, K8sObject
from netlab.scenario.k8s.pod import _namespace, _pod
from netlab.scenario.k8s.service import _service
from netlab.scenario.yamlpos import Document

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


@functools.lru_cache(maxsize=64)
def _decode_prefix(kind: str, version: str) -> str:
    """What the API server puts before a decoding error; one per kind and version."""
    return (
        f"{kind} in version {_go_quote(version.rpartition('/')[2])} cannot be handled as a {kind}: "
    )


def parse_object(
    doc: Document, out: list[Diagnostic], gates: tuple[str, ...] = ()
) -> K8sObject | None:
    """Validate one Kubernetes manifest as the API server would and return it defaulted.

    Every problem found is appended to ``out`` (errors and warnings); the result is ``None`` if
    any of them is an error. ``gates`` are the feature gates switched on (the Lab document's
    ``featureGates``).
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
    ctx = _Ctx(doc, out, _category(kind_s, data) if kind_s else "object", gates=gates)
    as_json = (
        ""
        if kind_s and isinstance(version, str) and version
        else json.dumps(
            data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
        )
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
    ctx.decode_prefix = _decode_prefix(kind_s, version)
    decoded = _decode_struct(ctx, data, (), [], kind_s)
    obj = _VALIDATORS[kind_s](ctx, decoded)
    return None if ctx.failed else obj
