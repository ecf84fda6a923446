"""Client-side rate limiting per Klaviyo rate-limit bucket.

Klaviyo counts requests per endpoint in two fixed windows, a burst window of one second and a
steady window of one minute, and for the Reporting API also per day. The limiter keeps at most
`burst` sends in any sliding interval a little longer than a second, `steady` sends in any
interval a little longer than a minute, and `daily` in any interval a little longer than a day:
a sliding limit holds for every alignment of the server's fixed windows, and the margin absorbs
jitter in network latency. One limiter serves every stream (and thread) that uses the bucket.
"""

from __future__ import annotations

import collections
import threading
import time
import typing as t
from dataclasses import dataclass


@dataclass(frozen=True)
class Tier:
    """A published Klaviyo rate-limit tier: requests per second (burst), per minute (steady) and,
    for the Reporting API, per day."""

    burst: int
    steady: int
    daily: int | None = None


# Tiers of the endpoints the tap reads (developers.klaviyo.com, OpenAPI x-klaviyo-ratelimit, 2026-07-15).
TIER_S = Tier(3, 60)
TIER_M = Tier(10, 150)
TIER_L = Tier(75, 750)
TIER_XL = Tier(350, 3500)
TIER_REPORTS = Tier(1, 2, 225)  # the Reporting API's POST /api/*-reports, per endpoint

BURST_WINDOW = 1.05
STEADY_WINDOW = 60.25
DAY_WINDOW = 86_400.25


class RateLimiter:
    """Blocks callers so that one bucket's sends stay within its burst and steady windows.

    After a pause (a 429's Retry-After, or a used-up quota) the callers that waited are let go one
    by one at the tier's burst rate, not all at once: a crowd released together would all be
    refused again and pause the bucket anew.
    """

    def __init__(self, tier: Tier, *, paced: bool = True, clock=time.monotonic, sleep=time.sleep) -> None:
        """`paced=False` keeps no burst and steady windows of its own but still honours pauses and releases
        gradually; a daily allowance is always kept (it is a budget to plan by, not only pacing)."""
        self.tier = tier
        self.paced = paced
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._burst: collections.deque[float] = collections.deque()
        self._steady: collections.deque[float] = collections.deque()
        self._day: collections.deque[float] = collections.deque()
        self._paused_until = 0.0
        self._release_left = 0  # callers still to be let go one by one after the last pause
        self._next_release = 0.0

    def _wait_time(self, now: float) -> float:
        while self._burst and self._burst[0] + BURST_WINDOW <= now:
            self._burst.popleft()
        while self._steady and self._steady[0] + STEADY_WINDOW <= now:
            self._steady.popleft()
        while self._day and self._day[0] + DAY_WINDOW <= now:
            self._day.popleft()
        wait = self._paused_until - now
        if self._release_left:
            wait = max(wait, self._next_release - now)
        if self.tier.daily is not None and len(self._day) >= self.tier.daily:
            wait = max(wait, self._day[0] + DAY_WINDOW - now)
        if not self.paced:
            return wait
        if len(self._burst) >= self.tier.burst:
            wait = max(wait, self._burst[0] + BURST_WINDOW - now)
        if len(self._steady) >= self.tier.steady:
            wait = max(wait, self._steady[0] + STEADY_WINDOW - now)
        return wait

    def acquire(self, sleep: t.Callable[[float], None] | None = None) -> float:
        """Wait for a free slot and take it; returns the seconds spent waiting.

        `sleep` replaces the limiter's own, e.g. with one that a cancelled run interrupts.
        """
        sleep = sleep or self._sleep
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                wait = self._wait_time(now)
                if wait <= 0:
                    if self._release_left:
                        self._release_left -= 1
                        self._next_release = now + 1.0 / self.tier.burst
                    if self.paced:
                        self._burst.append(now)
                        self._steady.append(now)
                    if self.tier.daily is not None:
                        self._day.append(now)
                    return waited
            sleep(wait)
            waited += wait

    def left_today(self) -> int | None:
        """Sends the daily allowance still has in the sliding day (None: the tier has none)."""
        if self.tier.daily is None:
            return None
        with self._lock:
            now = self._clock()
            while self._day and self._day[0] + DAY_WINDOW <= now:
                self._day.popleft()
            return max(0, self.tier.daily - len(self._day))

    def count_earlier(self, seconds_ago: float, count: int) -> None:
        """Count `count` sends made `seconds_ago` (by an earlier run) against the daily allowance."""
        with self._lock:
            self._day.extend([self._clock() - seconds_ago] * count)
            self._day = collections.deque(sorted(self._day))

    def pause(self, seconds: float) -> None:
        """Hold every caller of this bucket for `seconds` from now (after a 429 with Retry-After).

        A pause never accumulates: another caller's 429 extends it only to its own now + seconds.
        """
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
            self._release_left = self.tier.burst
