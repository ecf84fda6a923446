"""Rate limits: fixed 1 s / 60 s windows per (key, endpoint), 429 + Retry-After at the tier limit."""

from __future__ import annotations

import math
import time

import requests

from klaviyo_emulator.ratelimit import RateLimiter

from .conftest import headers


class FakeClock:
    def __init__(self, now: float = 1_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_burst_window_allows_exactly_the_limit_then_recovers():
    clock = FakeClock(1_000_000.25)
    rl = RateLimiter(clock=clock)
    decisions = [rl.check("k", "get_flows", 3, 60) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[3].retry_after == 1
    assert decisions[3].headers() == {"Retry-After": "1"}
    clock.now += 0.75  # next second: a new burst window
    assert rl.check("k", "get_flows", 3, 60).allowed


def test_steady_window_and_headers():
    clock = FakeClock(1_000_040.0)  # 20 s into a minute window
    rl = RateLimiter(clock=clock)
    for i in range(60):
        d = rl.check("k", "get_flows", 3, 60)
        assert d.allowed
        assert d.headers() == {"RateLimit-Limit": "60", "RateLimit-Remaining": str(59 - i), "RateLimit-Reset": str(math.ceil(40 - i / 2))}
        clock.now += 0.5
    refused = rl.check("k", "get_flows", 3, 60)
    assert not refused.allowed and refused.retry_after == 10
    clock.now = 1_000_080.0  # the next minute window
    assert rl.check("k", "get_flows", 3, 60).allowed


def test_counters_are_per_key_and_bucket_and_scaled():
    clock = FakeClock()
    rl = RateLimiter(scale=0.1, clock=clock)
    assert rl.limits(75, 750) == (7, 75)
    assert rl.limits(3, 60) == (1, 6)  # never below one request per window
    assert rl.check("a", "get_flows", 3, 60).allowed
    assert not rl.check("a", "get_flows", 3, 60).allowed
    assert rl.check("b", "get_flows", 3, 60).allowed
    assert rl.check("a", "get_tags", 3, 60).allowed


def _wait_for_fresh_second():
    time.sleep(1 - time.time() % 1 + 0.01)


def test_http_429_at_the_scaled_tier_limit_then_recovery(fresh):
    emu, client = fresh
    emu.rate_limits = True
    emu.rate_limit_scale = 0.02  # events XL tier 350/s -> 7/s, 3500/m -> 70/m
    _wait_for_fresh_second()
    statuses = [client.get("/api/events", {"page[size]": "1"}) for _ in range(8)]
    assert [r.status_code for r in statuses] == [200] * 7 + [429]
    ok, throttled = statuses[0], statuses[7]
    assert ok.headers["RateLimit-Limit"] == "70"
    assert ok.headers["RateLimit-Remaining"] == "69"
    assert 0 < int(ok.headers["RateLimit-Reset"]) <= 60
    assert throttled.headers["Retry-After"] == "1"
    assert "RateLimit-Limit" not in throttled.headers
    err = throttled.json()["errors"][0]
    assert err["code"] == "throttled" and err["status"] == 429
    assert err["title"] == "Request was throttled."
    assert err["detail"] == "Request was throttled. Expected available in 1 seconds."
    # other endpoints have their own buckets; another key has its own counters
    assert client.get("/api/lists").status_code == 200
    other = requests.get(emu.base_url + "/api/events", headers=headers(key="pk_otherkey12345"), timeout=5)
    assert other.status_code == 200
    time.sleep(int(throttled.headers["Retry-After"]))
    assert client.get("/api/events", {"page[size]": "1"}).status_code == 200


def test_predictive_analytics_uses_the_lower_tier(fresh):
    emu, client = fresh
    emu.rate_limits = True
    emu.rate_limit_scale = 0.1  # profiles 75/s -> 7/s; predictive 10/s -> 1/s, 150/m -> 15/m
    _wait_for_fresh_second()
    params = {"additional-fields[profile]": "predictive_analytics"}
    first, second = client.get("/api/profiles", params), client.get("/api/profiles", params)
    assert first.status_code == 200 and first.headers["RateLimit-Limit"] == "15"
    assert second.status_code == 429
    assert client.get("/api/profiles").status_code == 200  # the plain bucket is untouched


def test_switching_rate_limits_off(fresh):
    emu, client = fresh
    emu.rate_limits = True
    emu.rate_limit_scale = 0.01
    _wait_for_fresh_second()
    client.get("/api/flows")
    assert client.get("/api/flows").status_code == 429
    emu.rate_limits = False
    r = client.get("/api/flows")
    assert r.status_code == 200 and "RateLimit-Limit" not in r.headers
