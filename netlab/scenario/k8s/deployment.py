"""Deployments: selector, replicas, template, strategy and timing, as ``ValidateDeployment``
checks them (kubernetes/kubernetes ``pkg/apis/apps/validation/validation.go``:
``ValidateDeploymentSpec``, ``ValidateDeploymentStrategy``, ``ValidateRollingUpdateDeployment``;
label selectors as ``staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/validation`` checks them).
"""

from __future__ import annotations

import re
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
from netlab.scenario.k8s.names import _dns1123_subdomain, _label_value, _qualified_name
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


def _deployment_selector(
    ctx: _Ctx, selector: dict[str, Any] | None
) -> tuple[dict[str, str], list[dict[str, Any]], bool]:
    """The selector checks of ``ValidateDeploymentSpec`` (``ValidateLabelSelector`` in
    k8s.io/apimachinery ``pkg/apis/meta/v1/validation``): its matchLabels and requirements,
    and whether it is fit to compare with the template's labels."""
    if selector is None:
        ctx.emit(
            ("spec", "selector"),
            _required(),
            "apps/v1 Deployments need spec.selector, e.g. matchLabels: {app: web}",
        )
        return {}, [], False
    match_labels: dict[str, str] = selector.get("matchLabels", {})
    ok = _validate_labels(
        ctx, match_labels, ("spec", "selector", "matchLabels"), "spec.selector.matchLabels"
    )
    exprs: list[dict[str, Any]] = selector.get("matchExpressions", [])
    for i, req in enumerate(exprs):
        ok = _requirement(ctx, req, ("spec", "selector", "matchExpressions", i)) and ok
    if not match_labels and not exprs:
        ctx.emit(
            ("spec", "selector"),
            _invalid(_render_selector(selector), "empty selector is invalid for deployment"),
            "add matchLabels, e.g. matchLabels: {app: web}",
        )
    if not ok:  # metav1.LabelSelectorAsSelector fails on what was rejected above
        ctx.emit(
            ("spec", "selector"),
            _invalid(_render_selector(selector), "invalid label selector"),
            "fix the selector entries reported above",
        )
    return match_labels, exprs, ok and bool(match_labels or exprs)


_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


def _requirement(ctx: _Ctx, req: dict[str, Any], loc: Path) -> bool:
    """``ValidateLabelSelectorRequirement``."""
    before = len(ctx.out)
    operator: str = req.get("operator", "")
    values: list[str] = req.get("values", [])
    if operator in ("In", "NotIn") and not values:
        ctx.emit(
            (*loc, "values"),
            _required("must be specified when `operator` is 'In' or 'NotIn'"),
            "list the values, e.g. values: [web]",
        )
    elif operator in ("Exists", "DoesNotExist") and values:
        ctx.emit(
            (*loc, "values"),
            _forbidden("may not be specified when `operator` is 'Exists' or 'DoesNotExist'"),
            "remove values",
            key=True,
        )
    elif operator not in _OPERATORS:
        ctx.emit(
            (*loc, "operator"),
            _invalid(operator, "not a valid selector operator"),
            "operator is In, NotIn, Exists or DoesNotExist",
        )
    key: str = req.get("key", "")
    for msg in _qualified_name(key):
        ctx.emit((*loc, "key"), _invalid(key, msg), "a label key, e.g. app")
    for i, value in enumerate(values):
        for msg in _label_value(value):
            ctx.emit((*loc, "values", i), _invalid(value, msg), "a label value, e.g. web")
    return len(ctx.out) == before


def selector_matches(
    match_labels: dict[str, str], exprs: list[dict[str, Any]], labels: dict[str, str]
) -> bool:
    """``labels.Selector.Matches`` for a valid LabelSelector."""
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for req in exprs:
        key, op, values = req.get("key", ""), req.get("operator"), req.get("values", [])
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def _strategy(ctx: _Ctx, spec: dict[str, Any]) -> None:
    """``ValidateDeploymentStrategy`` and ``ValidateRollingUpdateDeployment``, after
    ``SetDefaults_Deployment`` (RollingUpdate, 25% and 25%)."""
    strategy: dict[str, Any] = spec.get("strategy", {})
    kind = strategy.get("type") or "RollingUpdate"
    loc: Path = ("spec", "strategy")
    if kind == "Recreate":
        if "rollingUpdate" in strategy:
            ctx.emit(
                (*loc, "rollingUpdate"),
                _forbidden("may not be specified when strategy `type` is 'Recreate'"),
                "remove rollingUpdate, or use type: RollingUpdate",
                key=True,
            )
        return
    if kind != "RollingUpdate":
        rolling = (
            "(*apps.RollingUpdateDeployment)(nil)"
            if "rollingUpdate" not in strategy
            else "&apps.RollingUpdateDeployment{...}"  # upstream prints the pointer's address
        )
        ctx.emit(
            loc,
            _unsupported(
                _Raw(f"apps.DeploymentStrategy{{Type:{_go_quote(kind)}, RollingUpdate:{rolling}}}"),
                ("Recreate", "RollingUpdate"),
            ),
            "strategy type is RollingUpdate (the default) or Recreate",
            shown="spec.strategy",
        )
        return
    rolling_update: dict[str, Any] = strategy.get("rollingUpdate") or {}
    rloc = (*loc, "rollingUpdate")
    amounts = {k: rolling_update.get(k, "25%") for k in ("maxUnavailable", "maxSurge")}
    for key, value in amounts.items():
        if isinstance(value, int):
            if value < 0:
                ctx.emit((*rloc, key), _invalid(value, "must be greater than or equal to 0"), _PCT)
        elif not re.fullmatch(r"[0-9]+%", value):
            ctx.emit(
                (*rloc, key),
                _invalid(
                    value,
                    "a valid percent string must be a numeric string followed by an ending '%' "
                    "(e.g. '1%',  or '93%', regex used for validation is '[0-9]+%')",
                ),
                _PCT,
            )
    numbers = {k: _amount(v) for k, v in amounts.items()}
    if numbers["maxUnavailable"] == 0 and numbers["maxSurge"] == 0:
        ctx.emit(
            (*rloc, "maxUnavailable"),
            _invalid(amounts["maxUnavailable"], "may not be 0 when `maxSurge` is 0"),
            "a rolling update must be allowed to add a pod or to take one away",
        )
    unavailable = amounts["maxUnavailable"]
    if isinstance(unavailable, str) and (numbers["maxUnavailable"] or 0) > 100:
        ctx.emit(
            (*rloc, "maxUnavailable"),
            _invalid(unavailable, "must not be greater than 100%"),
            "at most all of the pods may be unavailable",
        )


_PCT = "a number of pods (e.g. 1) or a percentage of replicas (e.g. 25%)"


def _amount(value: int | str) -> int | None:
    if isinstance(value, int):
        return value
    return int(value[:-1]) if re.fullmatch(r"[0-9]+%", value) else None


def _timing(ctx: _Ctx, spec: dict[str, Any]) -> None:
    """minReadySeconds, revisionHistoryLimit and progressDeadlineSeconds (defaults 0, 10, 600)."""
    min_ready = spec.get("minReadySeconds", 0)
    for key in ("minReadySeconds", "revisionHistoryLimit"):
        value = spec.get(key, 0)
        if value < 0:
            ctx.emit(
                ("spec", key),
                _invalid(value, "must be greater than or equal to 0"),
                f"{key} is 0 or more",
            )
    deadline = spec.get("progressDeadlineSeconds", 600)
    if deadline < 0:
        ctx.emit(
            ("spec", "progressDeadlineSeconds"),
            _invalid(deadline, "must be greater than or equal to 0"),
            "progressDeadlineSeconds is a number of seconds",
        )
    if deadline <= min_ready:
        ctx.emit(
            ("spec", "progressDeadlineSeconds"),
            _invalid(deadline, "must be greater than minReadySeconds"),
            f"a rollout has progressDeadlineSeconds (default 600) to make progress, longer than "
            f"minReadySeconds ({min_ready})",
        )


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
    match_labels, exprs, selector_ok = _deployment_selector(ctx, spec.get("selector"))
    template: dict[str, Any] = spec.get("template", {})
    tmeta: dict[str, Any] = template.get("metadata", {})
    tlabels: dict[str, str] | None = tmeta.get("labels")
    tloc: Path = ("spec", "template", "metadata")
    if selector_ok and not selector_matches(match_labels, exprs, tlabels or {}):
        ctx.emit(
            (*tloc, "labels"),
            _invalid(_go_map(tlabels), "`selector` does not match template `labels`"),
            "the template's labels must satisfy the selector (every matchLabels entry, every "
            "matchExpressions requirement)",
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
    _strategy(ctx, spec)
    _timing(ctx, spec)
    strategy, surge, unavailable = _rollout(spec.get("strategy"))
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
        strategy=strategy,
        max_surge=surge,
        max_unavailable=unavailable,
    )


def _rollout(data: object) -> tuple[str, int | str, int | str]:
    """The strategy after the apps/v1 defaults (RollingUpdate, 25% and 25%): its type and the
    surge and unavailable amounts a rollout moves by (Recreate: none). What :func:`_strategy`
    refused falls back to the defaults; the object is refused anyway."""
    strategy = data if isinstance(data, dict) else {}
    kind = strategy.get("type") or "RollingUpdate"
    if kind == "Recreate":
        return kind, 0, 0
    rolling = strategy.get("rollingUpdate")
    rolling = rolling if isinstance(rolling, dict) else {}
    return "RollingUpdate", _intstr(rolling.get("maxSurge")), _intstr(rolling.get("maxUnavailable"))


def _intstr(value: object) -> int | str:
    """A valid IntOrString amount as is; anything else (absent, or refused) as the default."""
    if isinstance(value, bool):
        return "25%"
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]+%", value):
        return value
    return "25%"
