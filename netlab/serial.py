"""Dataclasses to and from JSON-ready dicts, driven by their type hints.

The lab's desired state is written to its state file so that ``status``, ``rules``, ``exec`` and
``down`` work without the scenario file; this is the one (de)serialiser for it.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")


def to_data(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_data(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_data(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_data(v) for k, v in obj.items()}
    return obj


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def from_data(cls: type[T], data: Any) -> T:
    return typing.cast(T, _build(cls, data))


def _build(tp: Any, data: Any) -> Any:
    if data is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        for a in args:
            if _matches(a, data):
                return _build(a, data)
        return data
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        hints = _hints(tp)
        kwargs = {
            f.name: _build(hints[f.name], data[f.name])
            for f in dataclasses.fields(tp)
            if f.name in data
        }
        return tp(**kwargs)
    if origin is list:
        (arg,) = typing.get_args(tp)
        return [_build(arg, v) for v in data]
    if origin is tuple:
        targs = typing.get_args(tp)
        if len(targs) == 2 and targs[1] is Ellipsis:
            return tuple(_build(targs[0], v) for v in data)
        return tuple(_build(a, v) for a, v in zip(targs, data, strict=True))
    if origin is dict:
        _, vt = typing.get_args(tp)
        return {k: _build(vt, v) for k, v in data.items()}
    return data


def _matches(tp: Any, data: Any) -> bool:
    origin = typing.get_origin(tp) or tp
    if dataclasses.is_dataclass(origin):
        # Members of a union of dataclasses are told apart by their ``kind`` field's default
        # (the check kinds); a dataclass without one matches any mapping.
        kind = next((f.default for f in dataclasses.fields(origin) if f.name == "kind"), None)
        if isinstance(kind, str) and isinstance(data, dict) and "kind" in data:
            return bool(data["kind"] == kind)
        return isinstance(data, dict)
    if origin in (list, tuple):
        return isinstance(data, list)
    if origin is dict:
        return isinstance(data, dict)
    if isinstance(origin, type):
        return isinstance(data, origin)
    return True
