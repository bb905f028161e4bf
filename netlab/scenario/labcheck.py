"""The Lab document checked against its JSON Schema, with errors worded as Kubernetes words them.

:mod:`netlab.scenario.labschema` is the one schema that documents the Lab document and validates
it. A schema library's own messages (``'x' is not of type 'object'``, a regular expression) are
no help to someone writing a scenario, so this module walks the schema itself and says what the
API server would say of a field of its own: ``unknown field "spec.nodse"`` with "did you mean",
``Unsupported value: "nftable": supported values: ...``, ``Required value``, ``Invalid value: 0:
must be between 1 and 50, inclusive``, each at the field's own line and column, with a hint.

It understands the part of JSON Schema (draft 2020-12) the Lab schema uses: ``type``,
``properties``, ``additionalProperties: false``, ``required``, ``if``/``then`` (over
``required`` and ``not``), ``enum``, ``const``, ``oneOf``, ``items``, ``minItems``/``maxItems``,
``minimum``/``maximum``/``exclusiveMinimum``, ``pattern``, ``maxLength``; a unit test holds
its verdicts to a reference validator's.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from netlab.errors import Diagnostic
from netlab.scenario.yamlpos import Document, Path, dotted

_KIND_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "string": "a string",
    "boolean": "true or false",
    "object": "a mapping of fields",
    "array": "a list",
}
_DOCS_HINT = (
    "the Lab document's fields are described in docs/scenarios.md (netlab schema prints them)"
)


def json_numbers(value: Any) -> Any:
    """The document as JSON carries it: a float with no fraction is the integer (``2.0`` is 2),
    as the YAML-to-JSON step before the API server makes it."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: json_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_numbers(v) for v in value]
    return value


def schema_errors(doc: Document, schema: dict[str, Any], data: Any) -> list[Diagnostic]:
    """Every place where ``data`` (the document, after :func:`json_numbers`) breaks ``schema``."""
    out: list[Diagnostic] = []
    _check(doc, schema, data, (), out, "")
    return out


def render(value: Any) -> str:
    """A value as a field error shows it: strings quoted, collections as short JSON."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and not math.isfinite(value):
        return {math.inf: ".inf", -math.inf: "-.inf"}.get(value, ".nan")
    if isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
        return text if len(text) <= 60 else text[:57] + "..."
    return str(value)


def did_you_mean(word: str, choices: list[str]) -> str:
    """``did you mean "nodes"?`` for a near miss (a letter or two wrong, swapped or missing, or
    another case), or ``""`` when nothing is near or two choices are equally near."""
    if not word:
        return ""
    scored = sorted((_distance(word.lower(), c.lower()), c) for c in set(choices) if c != word)
    near = [(d, c) for d, c in scored if d <= (1 if len(c) <= 6 else 2)]
    if not near or (len(near) > 1 and near[1][0] == near[0][0]):
        return ""
    return f'did you mean "{near[0][1]}"?'


def _distance(a: str, b: str) -> int:
    """Edits (insert, delete, replace, swap two neighbours) from ``a`` to ``b``."""
    if abs(len(a) - len(b)) > 2:
        return 3
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (ca != cb))
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], prev2[j - 2] + 1)
        prev2, prev = prev, row
    return prev[-1]


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return "null"


def _fits(schema: dict[str, Any], value: Any) -> bool:
    """Whether ``value`` is of the JSON type a oneOf branch takes."""
    kind = _json_type(value)
    if "type" in schema:
        want = schema["type"]
        return kind == want or (want == "number" and kind == "integer")
    if "enum" in schema:
        return any(_json_type(v) == kind for v in schema["enum"])
    return True


def _hint(schema: dict[str, Any], inherited: str) -> str:
    return str(schema.get("x-hint") or inherited or schema.get("description") or _DOCS_HINT)


def _join(*parts: str) -> str:
    return "; ".join(p for p in parts if p)


def _check(
    doc: Document, schema: dict[str, Any], value: Any, path: Path, out: list[Diagnostic], hint: str
) -> None:
    if path in doc.bad:
        return  # the YAML loader could not read this value and has said so
    hint = _hint(schema, hint)

    def error(message: str, extra: str = "", *, key: bool = False) -> None:
        out.append(doc.diag(path, message, hint=_join(extra, hint), category="Lab", key=key))

    if "oneOf" in schema:
        branches = [b for b in schema["oneOf"] if _fits(b, value)]
        if not branches:
            error(f"Invalid value: {render(value)}: {_expected(schema)}")
            return
        found: list[Diagnostic] = []
        for branch in branches:
            found = []
            _check(doc, branch, value, path, found, hint)
            if not found:
                return
        out.extend(found)
        return
    if "const" in schema and value != schema["const"]:
        choices = [str(schema["const"])]
        mean = did_you_mean(value, choices) if isinstance(value, str) else ""
        error(f"Unsupported value: {render(value)}: supported values: {render(choices[0])}", mean)
        return
    if "enum" in schema and value not in schema["enum"]:
        choices = [str(c) for c in schema["enum"]]
        mean = did_you_mean(value, choices) if isinstance(value, str) else ""
        supported = ", ".join(render(c) for c in schema["enum"])
        error(f"Unsupported value: {render(value)}: supported values: {supported}", mean)
        return
    want = schema.get("type")
    if want is not None and not _fits(schema, value):
        error(f"Invalid value: {render(value)}: must be {_KIND_WORDS.get(want, want)}")
        return
    if isinstance(value, float) and not math.isfinite(value):
        error(f"Invalid value: {render(value)}: must be a finite number")
        return
    if isinstance(value, str):
        _check_string(schema, value, error)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        _check_number(schema, value, error)
    elif isinstance(value, list):
        _check_list(doc, schema, value, path, out, error)
    elif isinstance(value, dict):
        _check_object(doc, schema, value, path, out, error)


def _expected(schema: dict[str, Any]) -> str:
    if "x-message" in schema:
        return str(schema["x-message"])
    kinds = [b.get("type") or "string" for b in schema.get("oneOf", [])]
    words = [_KIND_WORDS.get(k, k) for k in dict.fromkeys(kinds)]
    return "must be " + " or ".join(words)


def _check_string(schema: dict[str, Any], value: str, error: Any) -> None:
    limit = schema.get("maxLength")
    if limit is not None and len(value) > limit:
        error(f"Too long: must have at most {limit} characters")
    pattern = schema.get("pattern")
    if pattern is not None and not re.search(pattern, value):
        error(
            f"Invalid value: {render(value)}: {schema.get('x-message', 'is not in the right form')}"
        )


def _check_number(schema: dict[str, Any], value: float, error: Any) -> None:
    lo, hi = schema.get("minimum"), schema.get("maximum")
    low = schema.get("exclusiveMinimum")
    if lo is not None and hi is not None and not lo <= value <= hi:
        error(f"Invalid value: {render(value)}: must be between {lo} and {hi}, inclusive")
    elif lo is not None and value < lo:
        error(f"Invalid value: {render(value)}: must be greater than or equal to {lo}")
    elif hi is not None and value > hi:
        error(f"Invalid value: {render(value)}: must be less than or equal to {hi}")
    if low is not None and value <= low:
        error(f"Invalid value: {render(value)}: must be greater than {low}")


def _check_list(
    doc: Document,
    schema: dict[str, Any],
    value: list[Any],
    path: Path,
    out: list[Diagnostic],
    error: Any,
) -> None:
    least, most = schema.get("minItems"), schema.get("maxItems")
    if least is not None and len(value) < least:
        error(f"Required value: must have at least {least} item{'s' if least != 1 else ''}")
    if most is not None and len(value) > most:
        error(f"Too many: {len(value)}: must have at most {most} items")
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            _check(doc, items, item, (*path, i), out, "")


def _present(condition: dict[str, Any], value: dict[str, Any]) -> bool:
    """Whether an ``if`` holds: the keys it requires are there (``not`` inverts)."""
    if "not" in condition:
        return not _present(condition["not"], value)
    return all(key in value for key in condition.get("required", []))


def _check_object(
    doc: Document,
    schema: dict[str, Any],
    value: dict[str, Any],
    path: Path,
    out: list[Diagnostic],
    error: Any,
) -> None:
    props: dict[str, Any] = schema.get("properties", {})
    required = list(schema.get("required", []))
    if "if" in schema and _present(schema["if"], value):
        required += schema.get("then", {}).get("required", [])
    for key in required:
        if key not in value:
            sub = props.get(key, {})
            out.append(
                doc.diag(
                    (*path, key),
                    "Required value",
                    hint=_hint(sub, "") if sub else _DOCS_HINT,
                    category="Lab",
                )
            )
    allowed = sorted(props)
    for key, item in value.items():
        if key in props:
            _check(doc, props[key], item, (*path, key), out, "")
        elif schema.get("additionalProperties") is False:
            out.append(
                doc.diag(
                    (*path, key),
                    f'unknown field "{dotted((*path, key))}"',
                    hint=_join(
                        did_you_mean(key, allowed), f"fields allowed here: {', '.join(allowed)}"
                    ),
                    category="Lab",
                    key=True,
                )
            )
