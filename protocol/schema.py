"""A small declarative schema language for record bodies.

Each field is a :class:`Field`; :func:`check` walks a value against it and raises
:class:`~protocol.errors.SchemaError` naming the field path and what was expected. Bodies are strict: unknown
fields are refused, so that two implementations never disagree on what a record says.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import SchemaError, TooLargeError

__all__ = ["Field", "check", "obj", "lst", "text", "integer", "id32", "boolean", "SLUG"]

SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


@dataclass(frozen=True)
class Field:
    """One field's type and constraints. ``kind`` is str, int, bytes, bool, list or map."""

    kind: str
    required: bool = True
    min_len: int = 0
    max_len: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    choices: frozenset[str] | None = None
    pattern: re.Pattern[str] | None = None
    pattern_help: str = ""
    item: Field | None = None
    fields: dict[str, Field] = field(default_factory=dict)
    unique: bool = False
    extra: Callable[[Any, str], None] | None = None


def text(max_len: int, *, required: bool = True, min_len: int = 1, choices: frozenset[str] | None = None,
         pattern: re.Pattern[str] | None = None, pattern_help: str = "") -> Field:
    return Field("str", required, min_len, max_len, choices=choices, pattern=pattern, pattern_help=pattern_help)


def integer(minimum: int, maximum: int, *, required: bool = True) -> Field:
    return Field("int", required, minimum=minimum, maximum=maximum)


def id32(*, required: bool = True) -> Field:
    return Field("bytes", required, min_len=32, max_len=32)


def boolean(*, required: bool = True) -> Field:
    return Field("bool", required)


def lst(item: Field, max_len: int, *, required: bool = True, min_len: int = 0, unique: bool = False,
        extra: Callable[[Any, str], None] | None = None) -> Field:
    return Field("list", required, min_len, max_len, item=item, unique=unique, extra=extra)


def obj(fields: dict[str, Field], *, required: bool = True,
        extra: Callable[[Any, str], None] | None = None) -> Field:
    return Field("map", required, fields=fields, extra=extra)


_TYPES: dict[str, type | tuple[type, ...]] = {
    "str": str, "int": int, "bytes": bytes, "bool": bool, "list": list, "map": dict,
}
_NAMES = {"str": "a string", "int": "an integer", "bytes": "bytes", "bool": "true or false",
          "list": "a list", "map": "a map"}


def _has_type(spec: Field, value: Any) -> bool:
    # A function, not an inline isinstance: narrowing by a tuple of types would make ``value`` an ``object``.
    return isinstance(value, _TYPES[spec.kind]) and not (spec.kind == "int" and isinstance(value, bool))


def check(spec: Field, value: Any, path: str) -> None:
    """Raises:
    SchemaError: ``value`` does not match ``spec``; the message names ``path``.
    TooLargeError: a string or list is over its maximum length.
    """
    if not _has_type(spec, value):
        raise SchemaError(f"expected {_NAMES[spec.kind]}, got {type(value).__name__}", field=path)
    if spec.kind in ("str", "bytes", "list"):
        _check_length(spec, value, path)
    if spec.kind == "str":
        if spec.choices is not None and value not in spec.choices:
            raise SchemaError(f"expected one of {', '.join(sorted(spec.choices))}; got {value!r}", field=path)
        if spec.pattern is not None and not spec.pattern.fullmatch(value):
            raise SchemaError(f"expected {spec.pattern_help or spec.pattern.pattern}; got {value!r}", field=path)
    elif spec.kind == "int":
        if spec.minimum is not None and value < spec.minimum or spec.maximum is not None and value > spec.maximum:
            raise SchemaError(f"expected an integer from {spec.minimum} to {spec.maximum}; got {value}",
                              field=path)
    elif spec.kind == "list":
        assert spec.item is not None
        for i, item in enumerate(value):
            check(spec.item, item, f"{path}[{i}]")
        if spec.unique and len({_hashable(v) for v in value}) != len(value):
            raise SchemaError("items must not repeat", field=path)
    elif spec.kind == "map":
        _check_map(spec, value, path)
    if spec.extra is not None:
        spec.extra(value, path)


def _check_length(spec: Field, value: Any, path: str) -> None:
    n = len(value)
    what = {"str": "characters", "bytes": "bytes", "list": "items"}[spec.kind]
    if spec.max_len is not None and n > spec.max_len:
        raise TooLargeError(f"{n} {what}, over the maximum of {spec.max_len}", field=path)
    if n < spec.min_len:
        if spec.kind == "bytes" and spec.min_len == spec.max_len:
            raise SchemaError(f"expected exactly {spec.min_len} bytes, got {n}", field=path)
        raise SchemaError(f"expected at least {spec.min_len} {what}, got {n}", field=path)


def _check_map(spec: Field, value: dict[str, Any], path: str) -> None:
    prefix = f"{path}." if path else ""
    unknown = [k for k in value if k not in spec.fields]
    if unknown:
        raise SchemaError(f"unknown field; allowed: {', '.join(sorted(spec.fields))}",
                          field=f"{prefix}{unknown[0]}")
    for name, sub in spec.fields.items():
        if name in value:
            check(sub, value[name], f"{prefix}{name}")
        elif sub.required:
            raise SchemaError("required field is missing", field=f"{prefix}{name}")


def _hashable(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((k, _hashable(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_hashable(v) for v in value)
    return value
