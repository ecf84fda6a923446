"""Concurrent reading of a replication range in time windows, emitted in replication-key order.

The range [start, end) is cut into consecutive half-open windows. A bounded thread pool fetches
a few windows ahead of the consumer; the consumer takes results strictly in window order, so the
records come out sorted and the stream's STATE stays resumable. Window sizes follow the density
seen so far: empty windows grow the next span, and a window that turns out denser than planned
hands its unread remainder back as several smaller windows.
"""

from __future__ import annotations

import datetime as dt
import math
import threading
import typing as t
from dataclasses import dataclass, field

MIN_SPAN = dt.timedelta(seconds=1)
GROWTH = 4


@dataclass(frozen=True)
class Window:
    """A half-open interval [start, end) of replication-key values."""

    start: dt.datetime
    end: dt.datetime

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()


@dataclass
class WindowResult:
    """What one fetch produced: its records, how far they reach, and any remainder to read."""

    window: Window
    records: list[dict]
    covered_until: dt.datetime
    remainder: list[Window] = field(default_factory=list)


def split(start: dt.datetime, end: dt.datetime, parts: int) -> list[Window]:
    """Cut [start, end) into `parts` consecutive windows of (nearly) equal length."""
    parts = max(1, parts)
    step = (end - start) / parts
    bounds = [min(start + step * i, end) for i in range(parts)] + [end]  # rounding to µs may overshoot
    return [Window(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]


def split_remainder(
    window: Window, last_key: dt.datetime, records_read: int, target_records: int, max_parts: int
) -> list[Window]:
    """Windows for the unread part [last_key, end) of a window, sized from the density read so far.

    The remainder starts at `last_key` inclusive: records sharing that key may straddle the cut,
    and the stream's deduplication drops the ones already emitted. Returns [] when the records
    read so far all share the window's start (a single instant cannot be split).
    """
    covered = (last_key - window.start).total_seconds()
    if covered <= 0 or last_key >= window.end:
        return []
    remaining = (window.end - last_key).total_seconds()
    expected = records_read * remaining / covered
    parts = min(max_parts, max(1, math.ceil(expected / target_records)))
    return split(last_key, window.end, parts)


class WindowPlanner:
    """Proposes consecutive windows over [start, end), sized to hold about `target_records`."""

    def __init__(self, start: dt.datetime, end: dt.datetime, target_records: int, initial_parts: int) -> None:
        self.cursor = start
        self.end = end
        self.target_records = target_records
        self.max_span = max(end - start, MIN_SPAN)
        self.span = max(self.max_span / max(1, initial_parts), MIN_SPAN)

    @property
    def done(self) -> bool:
        return self.cursor >= self.end

    def next_window(self) -> Window:
        window = Window(self.cursor, min(self.cursor + self.span, self.end))
        self.cursor = window.end
        return window

    def observe(self, result: WindowResult) -> None:
        """Resize the next windows from the density of a finished fetch."""
        seconds = (result.covered_until - result.window.start).total_seconds()
        if not result.records or seconds <= 0:
            self.span = min(self.span * GROWTH, self.max_span)
            return
        density = len(result.records) / seconds
        wanted = dt.timedelta(seconds=self.target_records / density)
        self.span = max(MIN_SPAN, min(wanted, self.span * GROWTH, self.max_span))


class _Slot:
    """One window in reading order: queued, being fetched, or fetched and waiting for the consumer."""

    __slots__ = ("error", "result", "state", "window")

    def __init__(self, window: Window) -> None:
        self.window = window
        self.state = "queued"
        self.result: WindowResult | None = None
        self.error: BaseException | None = None


def read_ordered(
    planner: WindowPlanner,
    fetch: t.Callable[[Window], WindowResult],
    workers: int,
    ahead: int,
    cancelled: threading.Event,
) -> t.Iterator[dict]:
    """Fetch windows with `workers` threads and yield their records in window order.

    Workers always take the earliest queued window, so the one the consumer waits for comes
    first; a window that splits queues its parts at once, where the next free worker finds them.
    At most `ahead` windows are taken and not yet consumed (the memory bound), except the
    earliest unconsumed one, which is always allowed, so the reader cannot deadlock.
    `cancelled` is set when the consumer stops early or a fetch fails: workers then stop.
    """
    slots: list[_Slot] = []  # unconsumed windows, in reading order
    taken = 0  # slots fetched or being fetched, not yet consumed
    lock = threading.Condition()

    def next_task() -> _Slot | None:
        nonlocal taken
        with lock:
            while not cancelled.is_set():
                queued = [slot for slot in slots if slot.state == "queued"]
                if len(queued) < workers and not planner.done:
                    slots.append(_Slot(planner.next_window()))
                    continue
                if queued and (taken < ahead or queued[0] is slots[0]):
                    queued[0].state = "fetching"
                    taken += 1
                    return queued[0]
                if not queued and planner.done and all(slot.state == "done" for slot in slots):
                    return None
                lock.wait()
            return None

    def work() -> None:
        while (slot := next_task()) is not None:
            try:
                result, error = fetch(slot.window), None
            except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which re-raises it
                result, error = None, exc
            with lock:
                slot.state, slot.result, slot.error = "done", result, error
                if error is not None:
                    cancelled.set()
                elif result.remainder:
                    position = slots.index(slot) + 1
                    slots[position:position] = [_Slot(window) for window in result.remainder]
                if result is not None:
                    planner.observe(result)
                lock.notify_all()

    threads = [threading.Thread(target=work, name=f"klaviyo-window-{i}", daemon=True) for i in range(workers)]
    for thread in threads:
        thread.start()
    try:
        while True:
            with lock:
                while not (slots and slots[0].state == "done") and not (not slots and planner.done):
                    if cancelled.is_set():
                        failed = next((slot.error for slot in slots if slot.error is not None), None)
                        if failed is not None:
                            raise failed
                    lock.wait(0.5)
                if not slots:
                    return
                slot = slots.pop(0)
                taken -= 1
                lock.notify_all()
            if slot.error is not None:
                raise slot.error
            yield from slot.result.records
    finally:
        cancelled.set()
        with lock:
            lock.notify_all()
        for thread in threads:
            thread.join()
