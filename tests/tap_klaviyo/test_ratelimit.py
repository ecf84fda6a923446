"""The limiter keeps every sliding second and minute within the tier, and pauses on Retry-After."""

from __future__ import annotations

from tap_klaviyo.ratelimit import BURST_WINDOW, DAY_WINDOW, STEADY_WINDOW, RateLimiter, Tier


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def sends(limiter: RateLimiter, clock: FakeClock, count: int) -> list[float]:
    times = []
    for _ in range(count):
        limiter.acquire()
        times.append(clock.now)
    return times


def test_burst_and_steady_windows_hold_for_any_alignment():
    clock = FakeClock()
    limiter = RateLimiter(Tier(burst=5, steady=12), clock=clock, sleep=clock.sleep)
    times = sends(limiter, clock, 40)
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + 1.0) <= 5
        assert sum(1 for t in times[i:] if t < start + 60.0) <= 12
    # and not slower than the tier allows: the 13th send waits for the steady window only
    assert times[4] == 0.0 and times[5] == BURST_WINDOW
    assert times[12] == STEADY_WINDOW


def test_pause_holds_every_caller_until_retry_after():
    clock = FakeClock()
    limiter = RateLimiter(Tier(burst=100, steady=1000), clock=clock, sleep=clock.sleep)
    limiter.acquire()
    limiter.pause(3)
    limiter.acquire()
    assert clock.now == 3


def test_daily_allowance_holds_for_any_day_and_is_reported():
    clock = FakeClock()
    limiter = RateLimiter(Tier(burst=1, steady=2, daily=5), clock=clock, sleep=clock.sleep)
    assert limiter.left_today() == 5
    times = sends(limiter, clock, 12)
    for i, start in enumerate(times):
        assert sum(1 for t in times[i:] if t < start + 60.0) <= 2
        assert sum(1 for t in times[i:] if t < start + 86_400.0) <= 5
    assert times[5] == DAY_WINDOW  # the 6th send waits for the first to leave the day
    assert limiter.left_today() == 0
    clock.now = times[-1] + DAY_WINDOW
    assert limiter.left_today() == 5


def test_daily_allowance_is_kept_when_not_paced():
    """respect_rate_limits off drops the burst and steady pacing, not the day's budget."""
    clock = FakeClock()
    limiter = RateLimiter(Tier(burst=1, steady=2, daily=3), paced=False, clock=clock, sleep=clock.sleep)
    sends(limiter, clock, 3)
    assert clock.now == 0.0 and limiter.left_today() == 0
    assert RateLimiter(Tier(1, 2)).left_today() is None
