"""Builders for Klaviyo's filter grammar: `op(field,value)`, comma-joined (implicit AND)."""

from __future__ import annotations

import datetime as dt

from tap_klaviyo.timeutil import to_filter_value

# Klaviyo filter values: strings quoted, datetimes unquoted ISO 8601, booleans and numbers bare.
FilterValue = str | bool | int | float | dt.datetime


def literal(value: FilterValue) -> str:
    """Render one filter value in Klaviyo's literal syntax."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return to_filter_value(value)
    if isinstance(value, (int, float)):
        return repr(value)
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def condition(operator: str, field: str, value: FilterValue) -> str:
    """One condition, e.g. `greater-than(updated,2024-01-01T00:00:00Z)`."""
    return f"{operator}({field},{literal(value)})"


def equals(field: str, value: FilterValue) -> str:
    return condition("equals", field, value)


def join(*conditions: str | None) -> str | None:
    """AND the given conditions (None entries are skipped); None when nothing remains."""
    kept = [c for c in conditions if c]
    return ",".join(kept) if kept else None
