"""Values and field errors rendered as k8s.io/apimachinery ``pkg/util/validation/field/errors.go``
renders them, so messages read exactly as ``kubectl apply`` prints them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

# ---------------------------------------------------------------------------------------------
# Rendering values and errors the way k8s.io/apimachinery/pkg/util/validation/field/errors.go does
# ---------------------------------------------------------------------------------------------


class _Raw(str):
    """A value already rendered in Go syntax (``%#v`` of a struct, map or slice)."""


def _go_quote(s: str) -> str:
    """Go's ``strconv.Quote`` (what ``%q`` prints): printable runes stay, the rest is escaped."""
    named = {"\a": r"\a", "\b": r"\b", "\f": r"\f", "\n": r"\n", "\r": r"\r", "\t": r"\t"}
    out = ['"']
    for ch in s:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in named:
            out.append(named[ch])
        elif ch == "\v":
            out.append(r"\v")
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def _go_value(value: object) -> str:
    """The bad value as ``field.Error.ErrorBody`` prints it: ``%q`` for strings, ``%v`` else."""
    if isinstance(value, _Raw):
        return str(value)
    if isinstance(value, str):
        return _go_quote(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _go_map(m: dict[str, str] | None) -> _Raw:
    """``%#v`` of a ``map[string]string``: keys sorted, ``(nil)`` when unset."""
    if m is None:
        return _Raw("map[string]string(nil)")
    inner = ", ".join(f"{_go_quote(k)}:{_go_quote(m[k])}" for k in sorted(m))
    return _Raw(f"map[string]string{{{inner}}}")


def _go_strings(items: list[str] | None) -> _Raw:
    """``%#v`` of a ``[]string``."""
    if items is None:
        return _Raw("[]string(nil)")
    return _Raw("[]string{" + ", ".join(_go_quote(s) for s in items) + "}")


def _invalid(value: object, detail: str) -> str:
    return f"Invalid value: {_go_value(value)}: {detail}"


def _required(detail: str = "") -> str:
    return f"Required value: {detail}" if detail else "Required value"


def _forbidden(detail: str) -> str:
    return f"Forbidden: {detail}"


def _duplicate(value: object) -> str:
    return f"Duplicate value: {_go_value(value)}"


def _unsupported(value: object, supported: Iterable[str]) -> str:
    """``field.NotSupported``; callers pass the list in upstream order (sorted for sets)."""
    quoted = ", ".join(json.dumps(v) for v in supported)
    return f"Unsupported value: {_go_value(value)}: supported values: {quoted}"
