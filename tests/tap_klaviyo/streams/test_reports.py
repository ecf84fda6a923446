"""Report streams: the request plan, the conversion metric, and rows against the emulator's account."""

from __future__ import annotations

import datetime as dt

import pytest

from tap_klaviyo.client import KlaviyoAPIError
from tap_klaviyo.streams.reports import Chunk, chunks_backward, conversion_metric_id, plan_series, span_after

D = dt.date


def days(chunks: list[Chunk]) -> set[dt.date]:
    return {chunk.start + dt.timedelta(days=i) for chunk in chunks for i in range((chunk.end - chunk.start).days)}


def test_chunks_are_at_most_60_days_most_recent_first_and_cover_the_range_once():
    chunks = chunks_backward(D(2026, 1, 1), D(2026, 12, 3), 60)
    assert chunks[0].end == D(2026, 12, 3) and chunks[-1].start == D(2026, 1, 1)
    assert all(0 < (c.end - c.start).days <= 60 for c in chunks)
    assert all(newer.start == older.end for newer, older in zip(chunks, chunks[1:]))
    assert len(chunks) == 6  # 336 days


def test_first_run_reads_the_most_recent_chunks_the_allowance_covers():
    plan = plan_series(D(2025, 12, 3), D(2026, 12, 3), None, 30, allowance=2)
    assert [c.end for c in plan.chunks] == [D(2026, 12, 3), D(2026, 10, 4)]
    assert len(plan.left) == 5 and plan.left[-1].start == D(2025, 12, 3)
    assert days(plan.chunks) | days(plan.left) == days([Chunk(D(2025, 12, 3), D(2026, 12, 3))])


def test_a_later_run_reads_the_lookback_then_the_older_history_left():
    # the last run read 2026-08-05 .. 2026-12-01 (exclusive); two days later, lookback 30
    plan = plan_series(D(2025, 12, 3), D(2026, 12, 3), (D(2026, 8, 5), D(2026, 12, 1)), 30, allowance=3)
    recent, *older = plan.chunks
    assert recent == Chunk(D(2026, 11, 1), D(2026, 12, 3))
    assert older[0].end == D(2026, 8, 5) and all((c.end - c.start).days == 60 for c in older)
    assert days(plan.chunks) | days(plan.left) == days([Chunk(D(2025, 12, 3), D(2026, 8, 5)), recent])


def test_span_joins_the_earlier_span_only_where_the_run_reached_it():
    plan = plan_series(D(2025, 1, 1), D(2026, 12, 3), (D(2026, 8, 5), D(2026, 12, 1)), 30, allowance=9)
    assert span_after(plan, D(2026, 11, 1), D(2026, 12, 3)) == (D(2026, 8, 5), D(2026, 12, 3))
    assert span_after(plan, D(2026, 6, 6), D(2026, 12, 3)) == (D(2026, 6, 6), D(2026, 12, 3))
    # a run that stopped short of the earlier span (not run for months): the span is this run's alone
    stale = plan_series(D(2025, 1, 1), D(2026, 12, 3), (D(2026, 1, 1), D(2026, 3, 1)), 30, allowance=1)
    assert span_after(stale, stale.chunks[0].start, D(2026, 12, 3)) == (stale.chunks[0].start, D(2026, 12, 3))


def test_start_after_the_earlier_span_reads_afresh():
    plan = plan_series(D(2026, 6, 1), D(2026, 12, 3), (D(2025, 1, 1), D(2025, 3, 1)), 30, allowance=10)
    assert days(plan.chunks) == days([Chunk(D(2026, 6, 1), D(2026, 12, 3))]) and not plan.left


METRICS = [
    {"id": "PO1", "name": "Placed Order", "integration": {"key": "shopify"}},
    {"id": "AO1", "name": "Active on Site", "integration": {"key": "api"}},
]


def test_conversion_metric_defaults_to_the_one_placed_order_and_takes_ids_and_names():
    assert conversion_metric_id(METRICS, None) == "PO1"
    assert conversion_metric_id(METRICS, "AO1") == "AO1"
    assert conversion_metric_id(METRICS, "api:Active on Site") == "AO1"


@pytest.mark.parametrize(
    ("metrics", "selector", "says"),
    [
        (METRICS[1:], None, "the account has no 'Placed Order' metric"),
        ([*METRICS, {"id": "PO2", "name": "Placed Order", "integration": {"key": "woocommerce"}}], None, "shopify:Placed Order (PO1), woocommerce:Placed Order (PO2)"),
        (METRICS, "Active on Sit", "Closest: 'Active on Site'"),
    ],
)
def test_conversion_metric_errors_are_one_line_naming_the_choices(metrics, selector, says):
    with pytest.raises(KlaviyoAPIError) as error:
        conversion_metric_id(metrics, selector)
    assert says in str(error.value) and "\n" not in str(error.value)
