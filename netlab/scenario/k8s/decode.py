"""Strict decoding of a manifest into the Go types' shape: unknown fields, wrong types and
out-of-range integers reported as the API server's JSON decoder reports them.
"""

from __future__ import annotations

import datetime
import difflib
import math
from typing import Any

from netlab.scenario.k8s.context import _HINT_QUOTE, _Ctx
from netlab.scenario.k8s.gotypes import _BAD, _F, _INT_RANGE, _STRUCTS
from netlab.scenario.k8s.quantity import quantity_of
from netlab.scenario.yamlpos import Path, dotted

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
        f"{ctx.decode_prefix}json: cannot unmarshal {what} into Go struct field "
        f"{owner}.{field_path} of type {go}",
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
    unread = ctx.doc.bad  # values the YAML loader could not read (rarely any)
    for key, value in raw.items():
        spec = fields.get(key)
        # Most fields are a string or an in-range integer: taken as they are, without the
        # general path (which would accept them unchanged).
        if spec is not None and not unread:
            kind = type(value)
            shape = spec.shape
            if kind is str:
                if shape == "string" or shape == "intstr":
                    out[key] = value
                    continue
            elif kind is int and (shape in _INT_RANGE or shape == "intstr"):
                lo, hi = _INT_RANGE["int32" if shape == "intstr" else shape]
                if lo <= value <= hi:
                    out[key] = value
                    continue
        kloc = (*loc, key)
        if spec is None:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f'did you mean "{close[0]}"? ' if close else ""
            if close and close[0] not in raw:
                ctx.misspelled.append((*loc, close[0]))
            hint += "field names are case-sensitive; remove fields Kubernetes does not define"
            ctx.emit(
                kloc,
                f'{ctx.decode_prefix}strict decoding error: unknown field "{dotted(kloc)}"',
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
    if loc in ctx.doc.bad:  # the YAML loader could not read it and has said so
        ctx.bad.append(loc)
        return _BAD
    if isinstance(raw, float) and not math.isfinite(raw):
        # kubectl's YAML-to-JSON step fails before the API server sees anything
        go = "NaN" if raw != raw else ("+Inf" if raw > 0 else "-Inf")
        ctx.emit(
            loc,
            f"error converting YAML to JSON: json: unsupported value: {go}",
            "JSON has no NaN or infinity: write a number",
            force=True,
        )
        ctx.bad.append(loc)
        return _BAD
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
                f"{ctx.decode_prefix}json: cannot unmarshal {value} into Go value of type int32",
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
                _type_error(ctx, (*loc, k), _json_kind(v), owner, gopath, spec.elem)
        return out
    if shape == "quantities":
        if not isinstance(raw, dict):
            return _type_error(ctx, loc, _json_kind(raw), owner, gopath, spec.go)
        quantities: dict[str, str] = {}
        for k, v in raw.items():
            q = quantity_of(v)
            if isinstance(q, str):
                ctx.emit(
                    (*loc, k),
                    ctx.decode_prefix + q,
                    "a quantity is a number with an optional suffix, e.g. 500m, 2, 128Mi or 1G",
                    force=True,
                )
                ctx.bad.append((*loc, k))
            else:
                quantities[k] = v if isinstance(v, str) else _number_text(v)
        return quantities
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
                _type_error(ctx, (*loc, i), _json_kind(v), owner, gopath, spec.elem)
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
