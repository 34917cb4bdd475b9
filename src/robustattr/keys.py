"""Typed config keys: each key's type check, default, range check and doc, as one value.

``robustattr.config`` builds its schema from these (one :class:`KeySpec` per key), and so do the
training objectives that add keys of their own (``training.objectives.registry.objective_key``).
This module imports nothing of robustattr beyond ``errors``, so any layer may declare a key.

A *kind* normalises a JSON value or raises :class:`BadValue` with the allowed values in words; a
*check* (``rule``) tests the range, and may read other keys through the resolver it is given.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from robustattr.errors import UserInputError, did_you_mean

__all__ = ["BadValue", "Given", "KeySpec", "Kind", "Check", "kind", "rule", "choice", "is_int",
           "INT", "FLOAT", "BOOL", "STR", "NONNEG", "POS", "ONE", "UNIT", "SEED"]


class BadValue(Exception):
    """A value problem in words ("must be > 0"); :meth:`KeySpec.resolve` adds the key, value and origin."""


class Given(NamedTuple):
    value: Any
    origin: str  # the file, "--set", ...
    spelled: str  # the key as written (perhaps an alias)


Kind = Callable[[Any], Any]  # type check and normalisation (int -> float, list -> tuple)
Check = Callable[[Any, Any], None]  # range / cross-key check: (value, resolver)


@dataclass(frozen=True)
class KeySpec:
    """One config key: ``kind`` (type check), ``default`` (a value, or a function of the resolver),
    ``doc``, ``check`` (range), ``nullable`` (null allowed), ``key`` (the JSON key, where it differs
    from the attribute name)."""

    kind: Kind
    default: Any
    doc: str
    check: Check | None = None
    nullable: bool = False
    key: str = ""

    def resolve(self, key: str, r: Any) -> Any:
        """The key's value from ``r.given`` (or its default), checked; a one-line UserInputError naming
        the key, the value and where it came from otherwise."""
        given = r.given.get(key)
        value = None
        try:
            if given is None:
                value = self.default(r) if callable(self.default) else self.default
            elif given.value is not None or not self.nullable:
                try:
                    value = self.kind(given.value)
                except BadValue as exc:
                    raise BadValue(f"{exc} or null" if self.nullable else str(exc)) from None
            if self.check is not None:
                self.check(value, r)
        except BadValue as exc:
            name = f"'{key}'" if given is None or given.spelled == key else f"'{given.spelled}' ('{key}')"
            shown = json.dumps(value if given is None else given.value, default=str)
            if len(shown) > 1000:  # a 5,000-digit --set value or a long list: the start says enough
                shown = f"{shown[:60]}... ({len(shown)} characters)"
            where = "default" if given is None else f"from {given.origin}"
            raise UserInputError(f"config key {name} = {shown} ({where}): {exc}") from None
        return value


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)  # JSON true is not 1


def kind(ok: Callable[[Any], bool], text: str, convert: Kind = lambda v: v) -> Kind:
    """A kind from a predicate, the allowed values in words, and a normalisation."""
    def check(v: Any) -> Any:
        if not ok(v):
            raise BadValue(text)
        return convert(v)
    return check


def choice(*choices: str) -> Kind:
    """One of ``choices`` (a did-you-mean otherwise)."""
    def check(v: Any) -> str:
        if not isinstance(v, str) or v not in choices:
            raise BadValue(f"must be one of {', '.join(choices)}{did_you_mean(str(v), choices)}")
        return v
    return check


def rule(ok: Callable[[Any, Any], bool], text: str | Callable[[Any], str]) -> Check:
    """A check from a predicate ``ok(value, resolver)`` and the allowed range in words (maybe a
    function of the resolver); null values pass."""
    def check(v: Any, r: Any) -> None:
        if v is not None and not ok(v, r):
            raise BadValue(text(r) if callable(text) else text)
    return check


INT = kind(is_int, "must be an integer")
FLOAT = kind(lambda v: is_int(v) and abs(v) < 1e300 or isinstance(v, float) and math.isfinite(v),
             "must be a finite number", float)
BOOL = kind(lambda v: isinstance(v, bool), "must be true or false")
STR = kind(lambda v: isinstance(v, str | os.PathLike) and os.fspath(v) != "", "must be a non-empty string",
           os.fspath)

NONNEG = rule(lambda v, r: v >= 0, "must be >= 0")
POS = rule(lambda v, r: v > 0, "must be > 0")
ONE = rule(lambda v, r: v >= 1, "must be >= 1")
UNIT = rule(lambda v, r: 0 <= v < 1, "must be in [0, 1)")
SEED = rule(lambda v, r: 0 <= v < 2**32, "must be between 0 and 4294967295 (2**32 - 1)")
