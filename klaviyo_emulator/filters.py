"""Parser for Klaviyo's `filter` query grammar.

Grammar (as documented in the Klaviyo "Filtering" guide and seen in production):

    filter    := condition ("," condition)*
    condition := "and(" filter ")" | op "(" field ")" | op "(" field "," value ")"
    value     := scalar | "[" scalar ("," scalar)* "]"
    scalar    := 'quoted' | "quoted" | true | false | null | number | datetime

Datetimes are unquoted ISO 8601 (``T`` or space, optional fraction, ``Z`` or
offset, or a bare date); strings must be quoted. The parser only checks syntax
and produces typed literals; which fields/operators/types are allowed is an
endpoint concern (see endpoints.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

OPERATORS = frozenset(
    {
        "equals",
        "less-than",
        "less-or-equal",
        "greater-than",
        "greater-or-equal",
        "contains",
        "contains-any",
        "contains-all",
        "ends-with",
        "starts-with",
        "any",
        "has",
    }
)

_DATETIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?\Z"
)
_NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?\Z")
_FIELD_RE = re.compile(r"[A-Za-z_$][A-Za-z0-9_$.\-]*\Z")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)


class FilterError(ValueError):
    """The filter text is not valid; the message says why."""


@dataclass(frozen=True, slots=True)
class Literal:
    """A typed filter value. `kind` is string|datetime|number|boolean|null; datetimes are epoch microseconds."""

    kind: str
    value: object


@dataclass(frozen=True, slots=True)
class Condition:
    """One `op(field[,value])` term. `value` is a Literal, a tuple of Literals (list shape) or None (has)."""

    op: str
    field: str
    value: object

    @property
    def shape(self) -> str:
        """The x-klaviyo-filters shape of this condition: single, list or none."""
        if self.value is None:
            return "none"
        return "list" if isinstance(self.value, tuple) else "single"


def parse_datetime_us(text: str) -> int | None:
    """Parse an ISO 8601 datetime (or date) to epoch microseconds; None if it is not one. Naive means UTC."""
    m = _DATETIME_RE.match(text)
    if not m:
        return None
    y, mo, d, hh, mi, ss, frac, tz = m.groups()
    try:
        dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mi or 0), int(ss or 0), tzinfo=timezone.utc)
    except ValueError:
        return None
    us = int((frac or "").ljust(6, "0") or 0)
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        dt -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    delta = dt - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + us


def parse_filter(text: str) -> list[Condition]:
    """Parse a filter expression into a flat list of ANDed conditions."""
    parser = _Parser(text)
    conditions = parser.conditions()
    if parser.pos != len(text):
        raise FilterError(f"unexpected {text[parser.pos:]!r}")
    return conditions


class _Parser:
    def __init__(self, text: str):
        self.text = text
        self.pos = 0

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            raise FilterError(f"expected {char!r} at position {self.pos}")
        self.pos += 1

    def _skip_spaces(self) -> None:
        while self._peek() == " ":
            self.pos += 1

    def _word(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in "(),[]'\"":
            self.pos += 1
        return self.text[start : self.pos].strip()

    def conditions(self) -> list[Condition]:
        out = self.condition()
        while self._peek() == ",":
            self.pos += 1
            self._skip_spaces()
            out.extend(self.condition())
        return out

    def condition(self) -> list[Condition]:
        name = self._word()
        self._expect("(")
        if name == "and":
            inner = self.conditions()
            self._expect(")")
            return inner
        if name not in OPERATORS:
            raise FilterError(f"unknown operator {name!r}")
        field = self._word()
        if not _FIELD_RE.match(field):
            raise FilterError(f"invalid field {field!r}")
        if name == "has":
            self._expect(")")
            return [Condition(name, field, None)]
        self._expect(",")
        self._skip_spaces()
        value = self.value()
        self._skip_spaces()
        self._expect(")")
        return [Condition(name, field, value)]

    def value(self) -> Literal | tuple[Literal, ...]:
        if self._peek() != "[":
            return self.scalar()
        self.pos += 1
        items = [self.scalar()]
        while self._peek() == ",":
            self.pos += 1
            self._skip_spaces()
            items.append(self.scalar())
        self._expect("]")
        return tuple(items)

    def scalar(self) -> Literal:
        quote = self._peek()
        if quote in ("'", '"'):
            return Literal("string", self._quoted(quote))
        word = self._word()
        if word in ("true", "false"):
            return Literal("boolean", word == "true")
        if word == "null":
            return Literal("null", None)
        us = parse_datetime_us(word)
        if us is not None:
            return Literal("datetime", us)
        if _NUMBER_RE.match(word):
            return Literal("number", float(word) if "." in word else int(word))
        raise FilterError(f"invalid value {word!r} (strings must be quoted)")

    def _quoted(self, quote: str) -> str:
        self.pos += 1
        chars = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            self.pos += 1
            if ch == "\\" and self.pos < len(self.text):
                chars.append(self.text[self.pos])
                self.pos += 1
            elif ch == quote:
                return "".join(chars)
            else:
                chars.append(ch)
        raise FilterError("unterminated string")
