"""Faults against the emulator's fault injection: a sync under faults ends with exactly the
records of a clean sync, and an outage that outlasts the retries stops the tap in bounded time
with a clear message, exit code 1 and its last good STATE already emitted.

(test_http.py covers one fault kind at a time on one stream; these combine them.)
"""

from __future__ import annotations

import collections
import time

import pytest

from klaviyo_emulator import Emulator, FaultPlan
from tests.conftest import API_KEY, catalog_for, parse_messages, run_cli, run_tap, tap_config
from tests.tap_klaviyo.expected import expected_keys, record_keys

STREAMS = ("receive", "click", "profiles", "lists", "list_members", "campaigns", "global_exclusions")


def keys_of(result, stream: str) -> collections.Counter:
    return collections.Counter(record_keys(stream, result.records.get(stream, [])))


@pytest.fixture(scope="module")
def clean_sync():
    """Keys of a fault-free sync of every stream under test, on a fresh copy of the account."""
    from klaviyo_emulator import Account

    with Emulator(Account.generate(seed=7, size="tiny")) as emulator:
        result = run_tap(tap_config(emulator), streams=STREAMS)
    return {stream: keys_of(result, stream) for stream in STREAMS}


@pytest.mark.parametrize("seed", [11, 12])
def test_a_multi_stream_sync_under_random_faults_equals_a_clean_sync(account, clean_sync, seed):
    """5xx bursts, resets mid-body, truncated JSON and stalls past the timeout, on every endpoint."""
    plan = FaultPlan(
        seed=seed, error_rate=0.08, burst=3, reset_rate=0.05, truncate_rate=0.05, stall_rate=0.01, stall_seconds=1.0
    )
    with Emulator(account, faults=plan) as emulator:
        emulator.inject("html_503", count=2, path="/api/profiles")
        config = tap_config(emulator, request_timeout=0.5, max_retries=10, backoff_base_seconds=0.005)
        result = run_tap(config, streams=STREAMS)
        faults = collections.Counter(r.fault for r in emulator.requests if r.fault)
    for stream in STREAMS:
        got = keys_of(result, stream)
        assert got == clean_sync[stream], stream
        assert set(got) == expected_keys(account, stream), stream
        assert max(got.values()) == 1, f"{stream}: a retried page must not emit its records twice"
    assert faults["reset"] and faults["truncate"] and faults["html_503"], faults
    assert sum(faults[k] for k in ("500", "502", "503", "504")) >= 5, faults


def test_a_429_storm_on_the_concurrent_reader_loses_nothing(emulator, account):
    emulator.inject("429", count=3, path="/api/events", retry_after=1)
    emulator.inject("429", count=2, path="/api/profiles", retry_after=1)
    started = time.monotonic()
    result = run_tap(tap_config(emulator, max_workers=4, max_retries=6), streams=("receive", "profiles"))
    elapsed = time.monotonic() - started
    for stream in ("receive", "profiles"):
        keys = keys_of(result, stream)
        assert set(keys) == expected_keys(account, stream) and max(keys.values()) == 1, stream
    throttled = [r for r in emulator.requests if r.status == 429]
    assert len(throttled) == 5
    assert elapsed >= 1.0, "429s wait for Retry-After"


def test_stalls_and_truncation_inside_windowed_reads_are_retried(emulator, account):
    emulator.inject("stall", count=3, path="/api/events", stall_seconds=1.5)
    emulator.inject("truncate", count=3, path="/api/events")
    emulator.inject("reset", count=3, path="/api/profiles")
    result = run_tap(tap_config(emulator, request_timeout=0.5, max_workers=4), streams=("receive", "profiles"))
    for stream in ("receive", "profiles"):
        keys = keys_of(result, stream)
        assert set(keys) == expected_keys(account, stream) and max(keys.values()) == 1, stream


# --- An outage that outlasts the retries -------------------------------------------------

MAX_RETRIES = 3
BASE = 0.2
TIMEOUT = 0.5


def retries_of(kind: str) -> int:
    """429s (here with Retry-After: 0) have a budget ten times larger than other failures."""
    return 10 * MAX_RETRIES if kind == "429" else MAX_RETRIES


def worst_case_seconds(kind: str) -> float:
    """The longest the retries of one request may take: every wait at its cap, every try timed out."""
    waits = sum(min(60.0, BASE * 2**attempt) for attempt in range(1, MAX_RETRIES + 1))
    if kind == "429":
        waits = retries_of(kind) * 0.05
    tries = (retries_of(kind) + 1) * (TIMEOUT if kind == "stall" else 0.1)
    return waits + tries


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("503", "Klaviyo answered 503 for GET /api/profiles"),
        ("html_503", "Klaviyo answered 503 for GET /api/profiles: <!DOCTYPE html>"),
        ("429", "Klaviyo answered 429 for GET /api/profiles"),
        ("reset", "for GET /api/profiles after 4 attempts"),
        ("truncate", "for GET /api/profiles after 4 attempts"),
        ("stall", "for GET /api/profiles after 4 attempts"),
    ],
)
def test_an_outage_stops_in_bounded_time_with_exit_1_a_clear_line_and_the_last_state(
    emulator, account, tmp_path, kind, message
):
    """`lists` completes; then /api/profiles stays down. The tap gives up after max_retries,
    prints one clear ERROR line, exits 1, and has emitted a STATE with the lists bookmark; a
    rerun from that STATE, once Klaviyo is back, completes with nothing lost."""
    emulator.inject(kind, count=10_000, path="/api/profiles", retry_after=0, stall_seconds=1.0)
    config = tap_config(
        emulator, max_retries=MAX_RETRIES, backoff_base_seconds=BASE, request_timeout=TIMEOUT, max_workers=1
    )
    started = time.monotonic()
    result = run_cli(
        input_files={"--config": config, "--catalog": catalog_for("lists", "profiles")}, tmp_path=tmp_path, timeout=60
    )
    elapsed = time.monotonic() - started
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr[-2000:]
    assert "Traceback" not in stderr
    last_error = [line for line in stderr.splitlines() if "| ERROR" in line][-1]
    assert message in last_error and f"after {retries_of(kind) + 1} attempts" in last_error, last_error
    assert "stream 'profiles'" in last_error
    assert len(last_error) < 600 and API_KEY not in stderr
    retries = [line for line in stderr.splitlines() if "Retrying /api/profiles" in line]
    assert len(retries) == retries_of(kind), "bounded: exactly 1 + max_retries attempts"
    assert "Backing off" not in stderr, "each retry is logged once"
    assert elapsed < 10 + worst_case_seconds(kind), elapsed  # 10 s: interpreter start-up on a slow CI box

    out = parse_messages(result.stdout)
    assert out.messages[-1]["type"] == "STATE", "the last good STATE is the last message"
    newest_list = max(item["attributes"]["updated"] for item in account.lists())
    assert out.state["bookmarks"]["lists"]["replication_key_value"] == newest_list
    assert set(out.ids("lists")) == expected_keys(account, "lists")

    emulator.clear_faults()
    rerun = run_tap(tap_config(emulator), state=out.state, streams=("lists", "profiles"))
    assert set(rerun.ids("profiles")) == expected_keys(account, "profiles")
    assert set(out.ids("lists")) | set(rerun.ids("lists")) == expected_keys(account, "lists")


def test_an_outage_mid_stream_in_the_window_reader_keeps_the_progress_made(account, tmp_path):
    """Klaviyo goes down part-way through an event stream read by 4 workers: the emitted STATE
    carries the bookmark of the records already emitted, and the rerun starts there."""
    served = collections.Counter()

    class FlakyEmulator(Emulator):
        def respond(self, method, path, params, headers):
            if path.startswith("/api/events"):
                served["events"] += 1
                if served["events"] > 3:
                    return 503, {"Content-Type": "application/vnd.api+json"}, b'{"errors":[{"detail":"down"}]}'
            return super().respond(method, path, params, headers)

    with FlakyEmulator(account) as emulator:
        config = tap_config(emulator, max_retries=2, backoff_base_seconds=0.01, max_workers=4)
        result = run_cli(
            input_files={"--config": config, "--catalog": catalog_for("lists", "receive")}, tmp_path=tmp_path, timeout=60
        )
        assert result.returncode == 1
        out = parse_messages(result.stdout)
        assert out.messages[-1]["type"] == "STATE"
        served["events"] = -10_000  # back up
        rerun = run_tap(tap_config(emulator), state=out.state, streams=("receive",))
    got = set(out.ids("receive")) | set(rerun.ids("receive"))
    assert got == expected_keys(account, "receive")
