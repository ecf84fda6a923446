"""The concurrent window reader returns every record exactly once, in order, whatever the density."""

from __future__ import annotations

import bisect
import datetime as dt
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tap_klaviyo import client
from tap_klaviyo.client import Deduplicator
from tap_klaviyo.windows import Window, WindowPlanner, WindowResult, read_ordered, split, split_remainder
from tests.conftest import run_tap, tap_config

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)


def fake_source(offsets: list[int], page_size: int):
    """A sorted record set and a fetch function paging it like the API: [start, end), `page_size` a page."""
    keys = sorted(offsets)
    records = [{"id": f"r{i}", "at": T0 + dt.timedelta(seconds=s)} for i, s in enumerate(keys)]
    stamps = [r["at"] for r in records]
    calls = []

    def fetch(window: Window, target: int, workers: int) -> WindowResult:
        lo = bisect.bisect_left(stamps, window.start)
        hi = bisect.bisect_left(stamps, window.end)
        got = []
        for page_start in range(lo, max(hi, lo + 1), page_size):
            calls.append(window)
            page = records[page_start:min(page_start + page_size, hi)]
            got.extend(page)
            if len(got) >= target and page and page_start + page_size < hi:
                rest = split_remainder(window, page[-1]["at"], len(got), target, workers * 2)
                if rest:
                    return WindowResult(window, got, page[-1]["at"], rest)
        return WindowResult(window, got, window.end)

    return records, fetch, calls


@settings(max_examples=150, deadline=None)
@given(
    offsets=st.lists(st.integers(min_value=0, max_value=86_400 * 30), max_size=600),
    ties=st.lists(st.integers(min_value=0, max_value=86_400 * 30), max_size=5),
    page_size=st.integers(min_value=1, max_value=50),
    window_pages=st.integers(min_value=1, max_value=5),
    workers=st.integers(min_value=1, max_value=6),
)
def test_every_record_once_and_in_order(offsets, ties, page_size, window_pages, workers):
    offsets = offsets + [t for t in ties for _ in range(7)]  # clusters sharing one timestamp
    records, fetch, _calls = fake_source(offsets, page_size)
    end = T0 + dt.timedelta(days=31)
    target = page_size * window_pages
    planner = WindowPlanner(T0, end, target, initial_parts=workers * 2)
    dedup = Deduplicator("at", ("id",))
    out = [
        r
        for r in read_ordered(planner, lambda w: fetch(w, target, workers), workers, workers + 2, threading.Event())
        if dedup.is_new(r)
    ]
    assert [r["id"] for r in out] == [r["id"] for r in records]


def test_empty_windows_grow_so_sparse_history_costs_few_requests():
    offsets = [86_400 * 365 * 10 + i for i in range(100)]  # nothing for ten years, then data
    records, fetch, calls = fake_source(offsets, page_size=50)
    end = T0 + dt.timedelta(days=365 * 10 + 1)
    planner = WindowPlanner(T0, end, target_records=100, initial_parts=64)
    out = list(read_ordered(planner, lambda w: fetch(w, 100, 4), 4, 6, threading.Event()))
    assert len(out) == 100
    assert len(calls) < 120


def test_split_covers_the_range_without_gaps():
    end = T0 + dt.timedelta(seconds=10)
    parts = split(T0, end, 3)
    assert parts[0].start == T0 and parts[-1].end == end
    assert all(a.end == b.start for a, b in zip(parts, parts[1:]))


def test_a_page_of_one_instant_cannot_be_split():
    window = Window(T0, T0 + dt.timedelta(hours=1))
    assert split_remainder(window, T0, 1000, 100, 8) == []


def test_consumer_stopping_early_cancels_the_workers():
    records, fetch, _ = fake_source(list(range(1000)), page_size=10)
    cancelled = threading.Event()
    planner = WindowPlanner(T0, T0 + dt.timedelta(seconds=1000), 20, initial_parts=8)
    reader = read_ordered(planner, lambda w: fetch(w, 20, 4), 4, 6, cancelled)
    assert next(reader)["id"] == "r0"
    reader.close()
    assert cancelled.is_set()


def test_split_of_a_few_microseconds_never_passes_the_end():
    end = T0 + dt.timedelta(microseconds=3)
    parts = split(T0, end, 5)  # a step of 0.6 µs rounds up to 1 µs
    assert parts[-1].end == end
    assert all(part.end <= end for part in parts)
    assert all(a.end == b.start for a, b in zip(parts, parts[1:]))


@pytest.mark.parametrize(("workers", "ahead"), [(4, 8), (16, 32), (64, 40)])
def test_the_look_ahead_is_two_windows_per_worker_within_a_record_budget(emulator, monkeypatch, workers, ahead):
    """The memory bound: windows being read or read and not yet consumed (2,000 events each) are at
    most two per worker and 80,000 events, whatever max_workers is."""
    taken = []

    def spy(planner, fetch, workers, ahead, cancelled):
        taken.append(ahead)
        return read_ordered(planner, fetch, workers, ahead, cancelled)

    monkeypatch.setattr(client, "read_ordered", spy)
    run_tap(tap_config(emulator, max_workers=workers), streams=("receive",))
    assert taken and set(taken) == {ahead}
