"""YAML scalars as Kubernetes' own YAML reader sees them, without PyYAML's constructors.

``kubectl`` turns YAML into JSON with go-yaml v2 (``sigs.k8s.io/yaml``) before the API server sees
it, so the values a manifest means are go-yaml's: a plain ``2024-01-02`` is the *string* it was
written as (go-yaml v2 ``decode.go``: "It looks like a timestamp but for backward compatibility
reasons we set it as a string"), ``1:30`` is a string (no YAML 1.1 base-60 numbers), an unknown
tag leaves the value as written, and a tag that does not fit its value is an error worded as
go-yaml words it: ``cannot decode !!str `abc` as a !!int``.

PyYAML's constructors raise ``ValueError``/``KeyError`` on such input (``!!int abc``,
``!!bool x``, ``!!timestamp x``) and refuse integers of more than 4300 digits; here every scalar
gets a value or a :class:`ScalarError`, never an exception of another kind.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from typing import Any

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"
TIMESTAMP = "tag:yaml.org,2002:timestamp"
BINARY = "tag:yaml.org,2002:binary"
MERGE = "tag:yaml.org,2002:merge"

# YAML 1.1's implicit types as PyYAML resolves them (yaml/resolver.py), minus base 60.
_NULL_RE = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL_RE = re.compile(
    r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$"
)
_INT_RE = re.compile(
    r"^(?:[-+]?0b[0-1_]+|[-+]?0[0-7_]+|[-+]?(?:0|[1-9][0-9_]*)|[-+]?0x[0-9a-fA-F_]+)$"
)
_FLOAT_RE = re.compile(
    r"^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?"
    r"|\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_TIMESTAMP_RE = re.compile(
    r"^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]"
    r"|[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?"
    r"(?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?"
    r"(?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$"
)
_BOOL_VALUES = {"yes": True, "no": False, "true": True, "false": False, "on": True, "off": False}
_SHORT = {
    STR: "!!str",
    INT: "!!int",
    FLOAT: "!!float",
    BOOL: "!!bool",
    NULL: "!!null",
    TIMESTAMP: "!!timestamp",
    BINARY: "!!binary",
    MERGE: "!!merge",
}


class ScalarError(Exception):
    """A scalar whose explicit tag does not fit its text."""


def implicit_tag(value: str) -> str:
    """The type a plain (unquoted, untagged) scalar has."""
    if _NULL_RE.match(value):
        return NULL
    if _BOOL_RE.match(value):
        return BOOL
    if _INT_RE.match(value):
        return INT
    if _FLOAT_RE.match(value):
        return FLOAT
    if _TIMESTAMP_RE.match(value):
        return TIMESTAMP
    if value == "<<":
        return MERGE
    return STR


def scalar_value(value: str, tag: str | None, plain: bool) -> tuple[Any, bool]:
    """(the Python value, whether it is a merge key ``<<``) of one scalar.

    ``tag`` is the explicit tag (``None`` or ``"!"`` when none was written); ``plain`` says the
    scalar was written without quotes, so that implicit types apply.
    """
    digits = value.isascii() and value.isdigit() and value[:1] != "0" and len(value) < 4000
    if tag is None and plain and digits:
        return int(value), False  # the common case: a port, a count (not octal 0755)
    kind = tag or STR
    if tag is None and plain:
        kind = implicit_tag(value)
    elif tag == "!":  # the non-specific tag: a string
        kind = STR
    if kind == STR:
        return value, False
    if kind == MERGE:
        return value, True
    if kind not in _SHORT:
        return value, False  # an unknown tag: go-yaml keeps the value as written
    try:
        return _construct(kind, value), False
    except (ValueError, KeyError, binascii.Error) as exc:
        natural = implicit_tag(value)
        if kind == BINARY:
            raise ScalarError(f"!!binary value contains invalid base64 data ({exc})") from None
        raise ScalarError(
            f"cannot decode {_SHORT.get(natural, '!!str')} `{_short_text(value)}` as a "
            f"{_SHORT[kind]}"
        ) from None


def _short_text(value: str) -> str:
    return value if len(value) <= 40 else value[:37] + "..."


def _construct(kind: str, value: str) -> Any:
    if kind == NULL:
        if not _NULL_RE.match(value):
            raise ValueError(value)
        return None
    if kind == BOOL:
        return _BOOL_VALUES[value.lower()]
    if kind == INT:
        return _int(value)
    if kind == FLOAT:
        return _float(value)
    if kind == TIMESTAMP:
        if not _TIMESTAMP_RE.match(value):
            raise ValueError(value)
        return value  # the text as written, as go-yaml v2 hands timestamps to JSON
    # BINARY: the decoded bytes, as text (JSON has no bytes)
    return base64.b64decode(value.encode("ascii"), validate=False).decode("utf-8", "replace")


def _int(value: str) -> int | str:
    text = value.replace("_", "")
    sign = -1 if text.startswith("-") else 1
    text = text.lstrip("+-")
    if not text:
        raise ValueError(value)
    try:
        if text.startswith("0b"):
            return sign * int(text[2:], 2)
        if text.startswith("0x"):
            return sign * int(text[2:], 16)
        if text.startswith("0o"):
            return sign * int(text[2:], 8)
        if len(text) > 1 and text.startswith("0"):
            return sign * int(text, 8)
        return sign * int(text)
    except ValueError:
        if text.isdigit():
            # More digits than Python converts (4300): go-yaml cannot make a number of it
            # either and keeps the text, which the API server then refuses as a string.
            return value
        raise


def _float(value: str) -> float:
    text = value.replace("_", "").lower()
    if text in (".nan",):
        return math.nan
    sign = -1.0 if text.startswith("-") else 1.0
    text = text.lstrip("+-")
    if text == ".inf":
        return sign * math.inf
    return sign * float(text)
