"""Resource quantities (``500m``, ``128Mi``, ``1e3``) as k8s.io/apimachinery
``pkg/api/resource/quantity.go`` parses them: the value, or the error decoding reports.
"""

from __future__ import annotations

import re
from fractions import Fraction

# ErrFormatWrong and ErrSuffix of quantity.go
FORMAT_WRONG = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
SUFFIX_WRONG = "unable to parse quantity's suffix"

_SHAPE = re.compile(r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$")
_NUMBER = re.compile(r"^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)$")
_DECIMAL = {"n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18}
_BINARY = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_EXPONENT = re.compile(r"^[eE][-+]?[0-9]+$")


def parse_quantity(text: str) -> Fraction | str:
    """The quantity's exact value, or the error message ``ParseQuantity`` returns."""
    m = _SHAPE.match(text.strip()) if text.strip() == text else None
    if m is None or not _NUMBER.match(m.group(1)):
        return FORMAT_WRONG
    number, suffix = Fraction(m.group(1)), m.group(2)
    if suffix in _DECIMAL:
        return Fraction(number * Fraction(10) ** _DECIMAL[suffix])
    if suffix in _BINARY:
        return Fraction(number * 2 ** _BINARY[suffix])
    if _EXPONENT.match(suffix):
        exponent = int(suffix[1:])
        if abs(exponent) > 1000:
            return SUFFIX_WRONG
        return Fraction(number * Fraction(10) ** exponent)
    return SUFFIX_WRONG


def quantity_of(raw: object) -> Fraction | str:
    """A decoded JSON value as a quantity: strings and numbers are; anything else is refused
    the way ``Quantity.UnmarshalJSON`` refuses it (it parses the raw JSON text)."""
    if isinstance(raw, bool) or raw is None:
        return FORMAT_WRONG
    if isinstance(raw, int):
        return Fraction(raw)
    if isinstance(raw, float):
        return Fraction(raw) if raw == raw and abs(raw) != float("inf") else FORMAT_WRONG
    if isinstance(raw, str):
        return parse_quantity(raw)
    return FORMAT_WRONG
