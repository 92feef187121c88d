"""JSON round-trip for the db layer's dataclasses.

Ledger results are stored under their idempotency token (customer_operations.result) and
returned again on a Temporal retry, so they must come back as the very same dataclasses.
Supported field types: dataclasses, ``X | None``, ``tuple[X, ...]``, ``list[X]``,
``dict``/``Any`` (kept as JSON), ``datetime``, ``date``, ``Literal``, enums, str/int/bool.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from datetime import date, datetime
from enum import Enum
from functools import partial
from typing import Any, TypeVar

from psycopg.types.json import Jsonb

T = TypeVar("T")


def to_jsonable(value: Any) -> Any:
    """Plain JSON data (dicts, lists, str, int, bool, None) for ``value``."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    return value


def from_jsonable(cls: type[T], data: Any) -> T:
    """Rebuild a value of type ``cls`` from ``to_jsonable`` output."""
    return _build(cls, data)


def _build(tp: Any, data: Any) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if data is None:
            return None
        # Only Optional[X] is used by our dataclasses; the first non-None member wins.
        return _build(next(a for a in args if a is not type(None)), data)
    if data is None or tp is Any or tp is object:
        return data
    if origin is typing.Literal:
        return data
    if origin is tuple:
        item = args[0] if args else Any
        return tuple(_build(item, x) for x in data)
    if origin is list:
        return [_build(args[0] if args else Any, x) for x in data]
    if origin is dict or tp is dict:
        return dict(data)
    if dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return tp(**{f.name: _build(hints[f.name], data[f.name])
                     for f in dataclasses.fields(tp) if f.name in data})
    if tp is datetime:
        return datetime.fromisoformat(data)
    if tp is date:
        return date.fromisoformat(data)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return tp(data)
    return data


def _default(value: Any) -> Any:
    converted = to_jsonable(value)
    if converted is value:
        raise TypeError(f"not JSON serialisable: {type(value).__name__}")
    return converted


dumps = partial(json.dumps, default=_default, ensure_ascii=False, sort_keys=True)


def jsonb(value: Any) -> Jsonb | None:
    """A jsonb query parameter (None stays SQL NULL); dataclasses and datetimes allowed."""
    return None if value is None else Jsonb(to_jsonable(value), dumps=dumps)
