"""Deployments: selector, replicas and template, as ``ValidateDeployment`` checks them
(kubernetes/kubernetes ``pkg/apis/apps/validation/validation.go``).
"""

from __future__ import annotations

from typing import Any

from netlab.scenario.k8s import (
    Deployment,
    ObjectMeta,
)
from netlab.scenario.k8s.context import _Ctx
from netlab.scenario.k8s.fielderrors import (
    _forbidden,
    _go_map,
    _go_quote,
    _go_strings,
    _invalid,
    _Raw,
    _required,
    _unsupported,
)
from netlab.scenario.k8s.names import _dns1123_subdomain
from netlab.scenario.k8s.objectmeta import (
    _ready,
    _validate_annotations,
    _validate_labels,
    _validate_meta,
)
from netlab.scenario.k8s.pod import _pod_spec, _status_warning
from netlab.scenario.yamlpos import Path


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
