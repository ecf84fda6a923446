"""The filter grammar parser."""

from __future__ import annotations

import pytest

from klaviyo_emulator.filters import Condition, FilterError, Literal, parse_datetime_us, parse_filter

JAN1 = 1735689600 * 1_000_000  # 2025-01-01T00:00:00Z


def test_single_condition_with_quoted_strings():
    assert parse_filter("equals(email,'a@b.com')") == [Condition("equals", "email", Literal("string", "a@b.com"))]
    assert parse_filter('equals(email,"it\\"s")')[0].value == Literal("string", 'it"s')


def test_comma_joined_and_nested_and_flatten():
    flat = parse_filter("greater-than(updated,2025-01-01T00:00:00Z),less-than(updated,2025-02-01)")
    nested = parse_filter("and(greater-than(updated,2025-01-01T00:00:00Z),less-than(updated,2025-02-01))")
    assert flat == nested and [c.op for c in flat] == ["greater-than", "less-than"]


@pytest.mark.parametrize(
    "text",
    ["2025-01-01T00:00:00Z", "2025-01-01 00:00:00Z", "2025-01-01T00:00:00+00:00", "2025-01-01T02:00:00+02:00",
     "2025-01-01T00:00:00.000000Z", "2025-01-01T00:00:00", "2025-01-01", "2024-12-31T19:00:00-0500"],
)  # fmt: skip
def test_datetime_forms(text):
    assert parse_datetime_us(text) == JAN1
    assert parse_filter(f"greater-than(datetime,{text})")[0].value == Literal("datetime", JAN1)


def test_fractions_keep_microseconds():
    assert parse_datetime_us("2025-01-01T00:00:00.5Z") == JAN1 + 500_000
    assert parse_datetime_us("2025-01-01T00:00:00.000001+00:00") == JAN1 + 1
    assert parse_datetime_us("2025-13-01") is None


def test_lists_booleans_numbers_and_has():
    (c,) = parse_filter("any(id,['a', \"b\"])")
    assert c.shape == "list" and c.value == (Literal("string", "a"), Literal("string", "b"))
    assert parse_filter("equals(archived,true)")[0].value == Literal("boolean", True)
    assert parse_filter("greater-than(timestamp,1735689600)")[0].value == Literal("number", 1735689600)
    assert parse_filter("has(profile)") == [Condition("has", "profile", None)]
    assert parse_filter("has(profile)")[0].shape == "none"


@pytest.mark.parametrize(
    "text",
    ["equals(email,bob@example.com)", "equals(email,'unterminated)", "equals(email 'x')", "or(equals(a,'b'))",
     "frobnicate(a,'b')", "equals(a,'b'))", "equals(a,'b'),", "equals(,'b')", "", "equals(a,[])", "has(profile,'x')"],
)  # fmt: skip
def test_syntax_errors(text):
    with pytest.raises(FilterError):
        parse_filter(text)
