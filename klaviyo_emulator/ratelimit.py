"""Klaviyo-style rate limiting: per (API key, endpoint bucket), fixed 1 s burst and 60 s steady windows,
plus a fixed UTC-day window for endpoints with a daily quota (the Reporting API's 225/d).

Klaviyo documents a fixed-window algorithm (klaviyo-api.md §6.1); for the daily window it does not
say where the day starts, so the emulator takes the UTC day (epoch-aligned 86,400 s windows).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class Decision:
    """Outcome of one request: allowed with RateLimit-* values, or refused with Retry-After."""

    allowed: bool
    limit: int = 0
    remaining: int = 0
    reset: int = 0
    retry_after: int = 0

    def headers(self) -> dict[str, str]:
        if not self.allowed:
            return {"Retry-After": str(self.retry_after)}
        return {"RateLimit-Limit": str(self.limit), "RateLimit-Remaining": str(self.remaining), "RateLimit-Reset": str(self.reset)}


class RateLimiter:
    """Fixed-window counters. Limits are multiplied by `scale` (at least 1 request per window)."""

    def __init__(self, scale: float = 1.0, clock: Callable[[], float] = time.time):
        self.scale = scale
        self.clock = clock
        self._lock = threading.Lock()
        self._windows: dict[tuple, tuple[int, int]] = {}  # (key, bucket, length) -> (window index, count)

    def limits(self, burst: int, steady: int) -> tuple[int, int]:
        return max(1, int(burst * self.scale)), max(1, int(steady * self.scale))

    def check(self, api_key: str, bucket: str, burst: int, steady: int, daily: int | None = None) -> Decision:
        """Count the request if every window has room; otherwise refuse it without counting.

        A refusal's Retry-After runs to the end of the latest-ending window that refused it, so a
        spent daily quota answers with the seconds until the next UTC midnight.
        """
        burst, steady = self.limits(burst, steady)
        windows = [(1, burst), (60, steady)]
        if daily is not None:
            windows.append((86_400, max(1, int(daily * self.scale))))
        now = self.clock()
        with self._lock:
            states = []
            refused = 0
            for length, limit in windows:
                index = int(now // length)
                window, count = self._windows.get((api_key, bucket, length), (index, 0))
                if window != index:
                    count = 0
                if count >= limit:
                    refused = max(refused, math.ceil((index + 1) * length - now))
                states.append((length, index, count))
            if refused:
                return Decision(False, retry_after=max(1, refused))
            for length, index, count in states:
                self._windows[(api_key, bucket, length)] = (index, count + 1)
        steady_count = states[1][2] + 1
        return Decision(True, steady, steady - steady_count, max(0, math.ceil((states[1][1] + 1) * 60 - now)))
