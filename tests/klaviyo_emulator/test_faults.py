"""Fault injection as a requests client experiences it, and the seeded random plan."""

from __future__ import annotations

import time

import pytest
import requests

from klaviyo_emulator import FaultPlan
from klaviyo_emulator.faults import FaultQueue


@pytest.mark.parametrize("kind", ["500", "502", "503", "504"])
def test_scripted_5xx_then_normal(fresh, kind):
    emu, client = fresh
    emu.inject(kind, count=2, path="/api/events")
    assert client.get("/api/lists").status_code == 200  # other paths are untouched
    first, second, third = (client.get("/api/events") for _ in range(3))
    assert first.status_code == second.status_code == int(kind)
    assert first.json()["errors"][0]["status"] == int(kind)
    assert third.status_code == 200
    assert [r.fault for r in emu.requests[-3:]] == [kind, kind, None]


def test_scripted_429_carries_retry_after(fresh):
    emu, client = fresh
    emu.inject("429", retry_after=3)
    r = client.get("/api/metrics")
    assert r.status_code == 429
    assert r.headers["Retry-After"] == "3"
    assert r.json()["errors"][0]["detail"] == "Request was throttled. Expected available in 3 seconds."


def test_html_503_is_a_cloudflare_page(fresh):
    emu, client = fresh
    emu.inject("html_503")
    r = client.get("/api/profiles")
    assert r.status_code == 503
    assert r.headers["Content-Type"].startswith("text/html")
    assert "Cloudflare" in r.text
    with pytest.raises(ValueError):
        r.json()


@pytest.mark.parametrize("kind", ["reset", "truncate"])
def test_broken_bodies_raise_connection_errors_and_the_next_request_works(fresh, kind):
    emu, client = fresh
    emu.inject(kind, path="/api/events")
    with pytest.raises((requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        client.get("/api/events", {"page[size]": "100"})
    assert client.get("/api/events", {"page[size]": "100"}).status_code == 200


def test_stall_trips_a_client_read_timeout(fresh):
    emu, client = fresh
    emu.inject("stall", stall_seconds=1.5)
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.get("/api/lists", timeout=0.3)
    assert time.monotonic() - started < 1.4
    time.sleep(1.3)  # let the stalled handler finish
    assert client.get("/api/lists").status_code == 200


def test_latency_is_added_to_every_request(fresh):
    emu, client = fresh
    emu.latency_ms = 150
    started = time.monotonic()
    assert client.get("/api/tags").status_code == 200
    assert time.monotonic() - started >= 0.15
    emu.latency_ms = 0


def test_fault_plan_is_deterministic_by_seed_and_bursts():
    def sequence(seed):
        plan = FaultPlan(seed=seed, error_rate=0.1, burst=3, reset_rate=0.05, truncate_rate=0.05, stall_rate=0.05)
        return [(f.kind if f else None) for f in (plan.draw() for _ in range(400))]

    a, b = sequence(5), sequence(5)
    assert a == b and a != sequence(6)
    kinds = set(a)
    assert {"reset", "truncate", "stall"} <= kinds and kinds & {"500", "502", "503", "504"}
    i = next(i for i, k in enumerate(a) if k in ("500", "502", "503", "504"))
    assert a[i] == a[i + 1] == a[i + 2]  # a burst of 3 identical 5xx


def test_outage_answers_503_to_everything(fresh):
    emu, client = fresh
    emu.faults = FaultPlan(outage=True)
    assert {client.get(p).status_code for p in ("/api/lists", "/api/events", "/api/nothing")} == {503}
    emu.faults = None
    assert client.get("/api/lists").status_code == 200


def test_random_faults_over_http(fresh):
    emu, client = fresh
    emu.faults = FaultPlan(seed=3, error_rate=0.3, burst=2)
    statuses = [client.get("/api/tags").status_code for _ in range(30)]
    assert 200 in statuses and set(statuses) - {200} <= {500, 502, 503, 504} and set(statuses) != {200}


def test_unknown_fault_kind_is_refused():
    with pytest.raises(ValueError):
        FaultQueue().add("teapot", 1, None, 1, 1.0)


def test_a_scripted_response_is_served_verbatim_once(fresh):
    emu, client = fresh
    emu.script("/api/lists", 400, {"errors": [{"detail": "scripted"}]}, headers={"X-Test": "1"})
    first, second = client.get("/api/lists"), client.get("/api/lists")
    assert first.status_code == 400 and first.headers["X-Test"] == "1"
    assert first.json() == {"errors": [{"detail": "scripted"}]}
    assert second.status_code == 200
    assert [r.fault for r in emu.requests[-2:]] == ["response", None]


def test_next_link_rewrite_edits_only_links_next(fresh):
    emu, client = fresh
    normal = client.get("/api/lists").json()
    emu.rewrite_next("/api/lists", lambda url, next_url: url)
    rewritten = client.get("/api/lists").json()
    assert rewritten["links"]["next"] == f"{emu.base_url}/api/lists"
    assert normal["links"]["next"] and rewritten["data"] == normal["data"]
    assert client.get("/api/lists").json()["links"]["next"] == normal["links"]["next"]
