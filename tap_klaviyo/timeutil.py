"""Datetime parsing and rendering for Klaviyo's formats.

Klaviyo returns `2021-05-17 23:43:28+00:00` (space) on events, microseconds on campaigns and
suppressions, and `+00:00` everywhere else. The tap emits one canonical RFC 3339 form so that
replication-key values compare correctly as strings.
"""

from __future__ import annotations

import datetime as dt
import re

UTC = dt.timezone.utc

_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})"
    r"(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"\s*(Z|z|[+-]\d{2}:?\d{2})?$"
)


class OutOfRangeError(ValueError):
    """A well-formed date-time that UTC cannot represent (after 9999-12-31T23:59:59Z)."""


def parse_datetime(value: str) -> dt.datetime:
    """Parse an ISO 8601 / RFC 3339 value (T or space separator, optional fraction) as aware UTC.

    A value without an offset is taken as UTC. Raises ValueError on anything else, and
    OutOfRangeError on a value beyond what UTC can hold (e.g. `9999-12-31T23:00:00-05:00`).
    """
    match = _DATETIME.match(value.strip()) if isinstance(value, str) else None
    if not match:
        msg = f"not an ISO 8601 datetime: {value!r}"
        raise ValueError(msg)
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    tz = UTC
    if offset and offset not in {"Z", "z"}:
        sign = -1 if offset[0] == "-" else 1
        digits = offset[1:].replace(":", "")
        tz = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    parsed = dt.datetime(
        int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro, tzinfo=tz
    )
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        msg = f"beyond the last representable date-time: {value!r}"
        raise OutOfRangeError(msg) from None


def to_rfc3339(value: dt.datetime) -> str:
    """Render an aware datetime in the tap's canonical form: `YYYY-MM-DDTHH:MM:SS[.ffffff]+00:00`."""
    return value.astimezone(UTC).isoformat()


def canonical(value: str) -> str | None:
    """A Klaviyo datetime string in the tap's canonical RFC 3339 form, or None if it is not one.

    The fast path covers the two common shapes (events' `2021-05-17 23:43:28+00:00` in one call).
    """
    if len(value) == 25 and value.find(" ") == 10 and value.endswith("+00:00"):
        return value.replace(" ", "T", 1)
    if value[10:11] == "T" and value.endswith("+00:00") and len(value) in {25, 32}:
        return value
    try:
        return to_rfc3339(parse_datetime(value))
    except ValueError:
        return None


def normalize(value: str | None) -> str | None:
    """Canonicalise a Klaviyo datetime string.

    Strings that do not parse are returned unchanged, so the caller can decide what to do.
    """
    if value is None:
        return None
    normal = canonical(value)
    return value if normal is None else normal


def to_filter_value(value: dt.datetime) -> str:
    """Render a datetime for a Klaviyo filter: unquoted, UTC, `Z`, microseconds only when set."""
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


def utcnow() -> dt.datetime:
    """The current time, aware UTC (a seam for tests)."""
    return dt.datetime.now(UTC)
