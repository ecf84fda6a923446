"""Incremental runs: bookmarks, lookback, late data, resumption and the run's upper bound."""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tap_klaviyo import timeutil
from tests.conftest import REPO, catalog_for, parse_messages, run_tap
from tests.tap_klaviyo.expected import expected_keys, klaviyo_metric_ids, record_keys

LOOKBACK = 60


def bookmark(state: dict, stream: str, **context) -> str:
    entry = state["bookmarks"][stream]
    if context:
        entry = next(p for p in entry["partitions"] if p["context"] == context)
    return entry["replication_key_value"]


def test_second_run_returns_only_new_and_changed_records(emulator, account):
    from tests.conftest import tap_config

    config = tap_config(emulator, lookback_minutes=LOOKBACK)
    first = run_tap(config)
    state = first.state
    now = account.now()
    lookback = dt.timedelta(minutes=LOOKBACK)

    # Changes between the runs, including late-arriving and "silent" ones.
    profile_ids = [p["id"] for p in account.profiles()]
    new_profile = account.add_profile(email="new.person@example.com", first_name="New")
    account.update_profile(profile_ids[0], first_name="Changed")
    received = klaviyo_metric_ids(account, "Received Email")[0]
    fresh_event = account.add_event(received, profile_ids[1], now - dt.timedelta(minutes=5))
    receive_mark = timeutil.parse_datetime(bookmark(state, "receive", metric_id=received))
    late_event = account.add_event(received, profile_ids[2], receive_mark - lookback / 2)
    too_late = account.add_event(received, profile_ids[3], receive_mark - lookback * 3)
    suppressed = next(p for p in account.profiles() if not (p["attributes"]["subscriptions"]["email"]["marketing"].get("suppression")))
    account.suppress_profile(suppressed["id"], "SPAM_COMPLAINT")
    list_id = next(item["id"] for item in account.lists() if account.list_member_ids(item["id"]))
    members = {pid for pid, _ in account.list_member_ids(list_id)}
    joiner = next(pid for pid in profile_ids if pid not in members)
    account.add_list_member(list_id, joiner)
    campaign = next(iter(account.campaigns()))
    account.update_campaign(campaign["id"], name="Renamed campaign")
    time.sleep(1.1)  # the next run's end is fixed at its start, to the second

    second = run_tap(config, state=state)

    profiles = set(second.ids("profiles"))
    assert {new_profile, profile_ids[0]} <= profiles
    profile_mark = timeutil.parse_datetime(bookmark(state, "profiles"))
    expected_profiles = {
        p["id"] for p in account.profiles() if timeutil.parse_datetime(p["attributes"]["updated"]) >= profile_mark - lookback
    }
    assert profiles == expected_profiles

    receive = set(second.ids("receive"))
    assert {fresh_event, late_event} <= receive
    assert too_late not in receive, "an event older than the lookback window is not re-read"
    expected_receive = {
        e["id"]
        for e in account.events(metric_id=received)
        if timeutil.parse_datetime(e["attributes"]["datetime"]) >= receive_mark - lookback
    }
    assert receive == expected_receive

    assert suppressed["id"] in second.ids("global_exclusions"), "a suppression that did not bump `updated`"
    assert (list_id, joiner) in record_keys("list_members", second.records["list_members"])
    assert campaign["id"] in second.ids("campaigns")
    renamed = next(r for r in second.records["campaigns"] if r["id"] == campaign["id"])
    assert renamed["name"] == "Renamed campaign"
    for stream, records in second.records.items():
        keys = record_keys(stream, records)
        assert len(keys) == len(set(keys)), stream


def test_first_run_starts_at_start_date(emulator, account):
    from tests.conftest import tap_config

    events = sorted(account.events(metric_id=klaviyo_metric_ids(account, "Received Email")[0]),
                    key=lambda e: e["attributes"]["datetime"])
    middle = timeutil.parse_datetime(events[len(events) // 2]["attributes"]["datetime"])
    result = run_tap(tap_config(emulator, start_date=timeutil.to_rfc3339(middle)), streams=("receive",))
    emitted = {r["datetime"] for r in result.records["receive"]}
    assert min(emitted) >= timeutil.to_rfc3339(middle)
    assert len(result.records["receive"]) < len(expected_keys(account, "receive"))


def test_bookmarks_never_pass_the_run_start(emulator, account, config):
    received = klaviyo_metric_ids(account, "Received Email")[0]
    profile = next(iter(account.profiles()))["id"]
    future = account.add_event(received, profile, account.now() + dt.timedelta(days=30))
    result = run_tap(config, streams=("receive",))
    assert future not in result.ids("receive")
    assert bookmark(result.state, "receive", metric_id=received) <= timeutil.to_rfc3339(timeutil.utcnow())


def test_a_bookmark_in_the_future_is_clamped_to_now(emulator, account, config):
    state = {"bookmarks": {"lists": {"replication_key": "updated", "replication_key_value": "2999-01-01T00:00:00+00:00"}}}
    result = run_tap(config, state=state, streams=("lists",))
    assert result.records.get("lists", []) == []


@pytest.mark.parametrize("workers", [1, 4])
def test_killed_run_resumes_from_its_last_state_without_loss(emulator, account, tmp_path, workers):
    """SIGKILL the tap mid-sync, resume from the last STATE it printed: nothing is missing."""
    from tests.conftest import tap_config

    config = tap_config(emulator, max_workers=workers)
    (tmp_path / "config.json").write_text(json.dumps(config))
    (tmp_path / "catalog.json").write_text(json.dumps(catalog_for("receive", "profiles")))
    emulator.latency_ms = 20
    argv = [sys.executable, "-m", "tap_klaviyo", "--config", str(tmp_path / "config.json"),
            "--catalog", str(tmp_path / "catalog.json")]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO)
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if sum(b'"type":"RECORD"' in l.replace(b" ", b"") for l in lines) >= 1500:
            break
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    first = parse_messages(b"".join(line for line in lines if line.endswith(b"\n")))
    assert first.states, "the tap must have emitted STATE before the kill"
    emulator.latency_ms = 0
    second = run_tap(config, state=first.state, streams=("receive", "profiles"))
    for stream in ("receive", "profiles"):
        got = set(first.ids(stream)) | set(second.ids(stream))
        assert got == expected_keys(account, stream), stream


@pytest.mark.parametrize("workers", [1, 4])
def test_records_changing_mid_run_are_not_emitted_twice(emulator, account, workers):
    """Profiles updated while the tap pages through them move to the end of a keyset scan."""
    import threading

    from tests.conftest import tap_config

    emulator.latency_ms = 30
    ids = [p["id"] for p in sorted(account.profiles(), key=lambda p: p["attributes"]["updated"])]
    stop = threading.Event()

    def churn():
        for profile_id in ids:  # oldest first: those the tap has most likely emitted already
            if stop.wait(0.01):
                return
            account.update_profile(profile_id, title="Changed mid-run")

    changer = threading.Thread(target=churn)
    changer.start()
    try:
        result = run_tap(tap_config(emulator, max_workers=workers), streams=("profiles",))
    finally:
        stop.set()
        changer.join()
    emitted = result.ids("profiles")
    assert len(emitted) == len(set(emitted)), "a profile that moved between pages was emitted twice"
    changed = {p["id"] for p in account.profiles() if p["attributes"]["title"] == "Changed mid-run"}
    assert changed, "the churn thread must have changed profiles during the run"
    assert set(ids) - changed <= set(emitted), "a profile that did not change was lost"
    # changed profiles wait for the next run, which reads them with their new `updated`
    time.sleep(1.1)  # past the second in which the last change happened
    second = run_tap(tap_config(emulator, max_workers=workers), state=result.state, streams=("profiles",))
    assert changed <= set(emitted) | set(second.ids("profiles"))
