"""Parsing and rendering of Klaviyo's datetime formats (property-based)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tap_klaviyo import filters, timeutil

UTC = dt.timezone.utc
moments = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(UTC)
)


@given(moments)
def test_every_klaviyo_rendering_parses_to_the_same_instant(moment):
    renderings = [
        moment.isoformat(),
        moment.isoformat(sep=" "),
        moment.strftime("%Y-%m-%dT%H:%M:%S") + (f".{moment.microsecond:06d}" if moment.microsecond else "") + "Z",
        timeutil.to_filter_value(moment),
    ]
    for text in renderings:
        assert timeutil.parse_datetime(text) == moment, text


@given(moments)
def test_normalize_gives_canonical_rfc3339_that_sorts_like_time(moment):
    text = timeutil.normalize(moment.isoformat(sep=" "))
    assert text == moment.isoformat()
    assert text[10] == "T" and text.endswith("+00:00")


@given(moments, moments)
def test_canonical_strings_compare_like_the_instants(a, b):
    assert (timeutil.to_rfc3339(a) < timeutil.to_rfc3339(b)) == (a < b)


def test_offsets_are_converted_to_utc():
    assert timeutil.parse_datetime("2024-01-01T02:00:00+02:00") == dt.datetime(2024, 1, 1, tzinfo=UTC)
    assert timeutil.parse_datetime("2024-01-01") == dt.datetime(2024, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("bad", ["", "yesterday", "2024-13-01T00:00:00Z", "2024-01-01T25:00:00Z", "1700000000"])
def test_garbage_is_rejected(bad):
    with pytest.raises(ValueError):
        timeutil.parse_datetime(bad)


def test_unparseable_values_pass_through_normalize_unchanged():
    assert timeutil.normalize("not a date") == "not a date"
    assert timeutil.normalize(None) is None


@given(st.text(max_size=40))
def test_string_literals_are_quoted_and_escaped(text):
    rendered = filters.literal(text)
    assert rendered.startswith('"') and rendered.endswith('"')
    body = rendered[1:-1]
    assert body.replace('\\\\', "").replace('\\"', "").count('"') == 0


@given(moments)
def test_datetime_literals_are_unquoted_utc(moment):
    rendered = filters.condition("greater-or-equal", "datetime", moment)
    assert rendered == f"greater-or-equal(datetime,{timeutil.to_filter_value(moment)})"
    assert '"' not in rendered


def test_join_skips_missing_conditions():
    assert filters.join(None, filters.equals("archived", True), None) == "equals(archived,true)"
    assert filters.join(None) is None
