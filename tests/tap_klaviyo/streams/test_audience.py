"""Audience streams: segments, segment members and list exclusions.

(The full sync of every stream equals the account and validates against its schema:
tests/tap_klaviyo/test_streams.py. Here: what the next run brings, what it costs, and that a
killed run resumes without loss.)
"""

from __future__ import annotations

import collections
import copy
import datetime as dt
import json
import random
import sys
import time

import pytest

from klaviyo_emulator import Account, Emulator
from tap_klaviyo.client import KlaviyoStream
from tap_klaviyo.streams.audience import OPEN_RUN_SINCE, ListExclusionsStream
from tests.conftest import (
    assert_missing_scope_is_named,
    catalog_for,
    parse_messages,
    run_tap,
    run_until_killed,
    tap_config,
)
from tests.tap_klaviyo.expected import expected_keys, list_suppressions_of, record_keys

AUDIENCE = ("segments", "segment_members", "list_exclusions")
UTC = dt.UTC


def new_keys(result, stream: str, previous_state: dict, partition: str | None = None) -> set:
    """Keys a run emitted beyond the previous bookmark (of the record's partition, when the stream
    has partitions); the records at a bookmark are always read again. (The run must be given a
    copy of `previous_state`: the tap updates the state it is given in place.)"""
    entry = previous_state["bookmarks"].get(stream, {})
    marks = {p["context"][partition]: p.get("replication_key_value") for p in entry.get("partitions", [])} if partition else {}
    records = result.records.get(stream, [])
    keys = record_keys(stream, records)
    out = set()
    for key, record in zip(keys, records):
        mark = marks.get(record[partition]) if partition else entry.get("replication_key_value")
        key_field = "joined_group_at" if stream == "segment_members" else entry.get("replication_key", "updated")
        if record[key_field] != mark:
            out.add(key)
    return out


def audience_requests(emulator, since: int) -> collections.Counter:
    paths = collections.Counter()
    for request in emulator.requests[since:]:
        path = request.path.rstrip("/")
        if path.startswith("/api/segments/"):
            path = "/api/segments/{id}/profiles"
        paths[path] += 1
    return paths


def test_the_next_run_brings_exactly_the_new_audience_records(emulator, account):
    config = tap_config(emulator, lookback_minutes=0)
    first = run_tap(config, streams=AUDIENCE)
    # A profile with exactly one list suppression gets a second one, on another list.
    profile = next(p for p in account.profiles() if len(list_suppressions_of(p)) == 1)
    (old,) = list_suppressions_of(profile)
    other_list = next(row.id for row in account.list_rows if row.id != old["list_id"])
    segment = account.segment_rows[0].id
    members = set(account.members[segment].profile)
    joiner = account.profile_id(next(i for i in range(300) if i not in members))
    time.sleep(1.1)  # the first run's end is fixed to the second it started
    account.add_segment_member(segment, joiner)
    account.suppress_profile_on_list(profile["id"], other_list)
    fresh = account.add_segment("Fresh Segment")
    account.add_segment_member(fresh, joiner)
    time.sleep(1.1)

    second = run_tap(config, state=copy.deepcopy(first.state), streams=AUDIENCE)

    assert new_keys(second, "segments", first.state) == {fresh}
    assert new_keys(second, "segment_members", first.state, partition="segment_id") == {(segment, joiner), (fresh, joiner)}
    assert new_keys(second, "list_exclusions", first.state) == {(other_list, profile["id"])}
    assert (old["list_id"], profile["id"]) not in record_keys("list_exclusions", second.records["list_exclusions"])
    (record,) = [r for r in second.records["list_exclusions"] if r["list_id"] == other_list and r["id"] == profile["id"]]
    assert record["reason"] == "USER_SUPPRESSED" and record["email"] == profile["attributes"]["email"]
    assert OPEN_RUN_SINCE not in second.state["bookmarks"]["list_exclusions"], "a completed run leaves no open run"
    for stream in AUDIENCE:
        keys = record_keys(stream, second.records.get(stream, []))
        assert len(keys) == len(set(keys)), stream


def test_an_unchanged_incremental_run_costs_one_request_per_endpoint_and_segment(emulator, account):
    config = tap_config(emulator, lookback_minutes=0)  # a lookback would re-read members who joined within it
    before = len(emulator.requests)
    first = run_tap(config, streams=AUDIENCE)
    segments = len(account.segment_rows)
    assert segments == 12
    # 12 segments, 10 a page: 2 pages of segments and 2 of segment ids; every segment's members
    # fit one page of 100; the list suppressions of the account fit one page of profiles.
    assert audience_requests(emulator, before) == {"/api/segments": 4, "/api/segments/{id}/profiles": 12, "/api/profiles": 1}
    before = len(emulator.requests)
    second = run_tap(config, state=copy.deepcopy(first.state), streams=AUDIENCE)
    assert audience_requests(emulator, before) == {"/api/segments": 1 + 2, "/api/segments/{id}/profiles": 12, "/api/profiles": 1}
    for stream, partition in (("segments", None), ("segment_members", "segment_id"), ("list_exclusions", None)):
        assert new_keys(second, stream, first.state, partition) == set(), stream


def test_an_account_of_100_segments_costs_ten_pages_of_ids_and_one_request_per_segment(emulator, account):
    start = dt.datetime(2026, 1, 1, tzinfo=UTC)
    for n in range(100 - len(account.segment_rows)):
        account.set_clock(start + dt.timedelta(minutes=n))  # distinct `updated`, as in a real account
        account.add_segment(f"Segment {n}")
    account.set_clock(None)
    config = tap_config(emulator, lookback_minutes=0)
    before = len(emulator.requests)
    first = run_tap(config, streams=("segments", "segment_members"))
    assert len(first.records["segments"]) == 100
    assert audience_requests(emulator, before) == {"/api/segments": 10 + 10, "/api/segments/{id}/profiles": 100}
    before = len(emulator.requests)
    run_tap(config, state=copy.deepcopy(first.state), streams=("segments", "segment_members"))
    assert audience_requests(emulator, before) == {"/api/segments": 1 + 10, "/api/segments/{id}/profiles": 100}


def test_list_exclusions_come_out_by_profile_with_a_bookmark_that_never_passes_an_unread_profile(emulator, account):
    result = run_tap(tap_config(emulator), streams=("list_exclusions",))
    records = result.records["list_exclusions"]
    stamps = [record["timestamp"] for record in records]
    assert stamps != sorted(stamps), "the account must hold a profile read late with an older suppression"
    latest = {}  # per profile: its latest suppression, the server's sort key
    for profile in account.profiles():
        supp = list_suppressions_of(profile)
        if supp:
            latest[profile["id"]] = max(s["timestamp"].replace(" ", "T") for s in supp)
    order = list(dict.fromkeys(record["id"] for record in records))
    assert [latest[p] for p in order] == sorted(latest[p] for p in order)
    running = None
    for record in records:
        running = max(running or record["timestamp"], record["timestamp"])
        assert running <= latest[record["id"]]
    assert result.state["bookmarks"]["list_exclusions"]["replication_key_value"] == max(stamps)


_WRITE_RECORD = KlaviyoStream._write_record_message


def _record_then_state_due(self, record: dict) -> None:
    """KlaviyoStream._write_record_message, then what the SDK's own does after a record: mark the
    state unflushed, so the periodic STATE is written (KlaviyoStream's override leaves that out,
    so today the tap writes STATE only at a stream's or partition's end)."""
    _WRITE_RECORD(self, record)
    self.state_manager.is_flushed = False


@pytest.mark.parametrize("keep_open_run", [True, False])
def test_list_exclusions_resume_from_every_state_without_loss(emulator, account, monkeypatch, keep_open_run):
    """A STATE after every record; a run resumed from any of them, with the records emitted
    before it, covers every suppression. Without `open_run_since` some resume would lose the
    older suppressions of profiles not yet read (the control case)."""
    monkeypatch.setattr(ListExclusionsStream, "STATE_MSG_FREQUENCY", 1)
    monkeypatch.setattr(ListExclusionsStream, "_write_record_message", _record_then_state_due)
    config = tap_config(emulator, lookback_minutes=0)
    full = run_tap(config, streams=("list_exclusions",))
    expected = expected_keys(account, "list_exclusions")
    emitted: list = []
    lost = 0
    for message in full.messages:
        if message["type"] == "RECORD" and message["stream"] == "list_exclusions":
            emitted.append((message["record"]["list_id"], message["record"]["id"]))
        if message["type"] != "STATE" or "list_exclusions" not in message["value"].get("bookmarks", {}):
            continue
        state = json.loads(json.dumps(message["value"]))
        if not keep_open_run:
            state["bookmarks"]["list_exclusions"].pop(OPEN_RUN_SINCE, None)
        resumed = run_tap(config, state=state, streams=("list_exclusions",))
        got = set(emitted) | set(record_keys("list_exclusions", resumed.records.get("list_exclusions", [])))
        if keep_open_run:
            assert got == expected, f"resumed after {len(emitted)} records"
        lost += got != expected
    assert len(emitted) == len(expected)
    if not keep_open_run:
        assert lost, "the control: a bookmark alone loses records"


INTERRUPTED = ("segments", "segment_members", "list_exclusions")
# The CLI with a STATE after every 10 records (see _record_then_state_due), so kills land
# between STATE messages inside a stream.
CLI = """
from tap_klaviyo.client import KlaviyoStream
from tests.tap_klaviyo.streams.test_audience import _record_then_state_due
KlaviyoStream.STATE_MSG_FREQUENCY = 10
KlaviyoStream._write_record_message = _record_then_state_due
from tap_klaviyo.tap import TapKlaviyo
TapKlaviyo.cli()
"""


def test_a_killed_run_resumes_from_its_last_state_with_nothing_lost(tmp_path):
    account = Account.generate(seed=5, size="tiny", profiles=3000)
    expected = {stream: expected_keys(account, stream) for stream in INTERRUPTED}
    total = sum(len(keys) for keys in expected.values())
    rng = random.Random(2)
    with Emulator(account, rate_limits=False, latency_ms=2) as emulator:
        (tmp_path / "config.json").write_text(json.dumps(tap_config(emulator, lookback_minutes=0)))
        (tmp_path / "catalog.json").write_text(json.dumps(catalog_for(*INTERRUPTED)))
        base = [sys.executable, "-c", CLI, "--config", str(tmp_path / "config.json"), "--catalog", str(tmp_path / "catalog.json")]
        state: dict = {}
        seen = collections.defaultdict(set)
        kills = open_runs = 0
        remaining = total  # about what is left to emit: each kill lands somewhere inside it
        for run in range(8):
            argv = list(base)
            if state:
                (tmp_path / f"state{run}.json").write_text(json.dumps(state))
                argv += ["--state", str(tmp_path / f"state{run}.json")]
            last = run == 7
            output, completed = run_until_killed(argv, None if last else rng.randint(1, max(1, remaining)))
            out = parse_messages(output)
            # What a target has committed: the records before the last STATE it received.
            cut = max((i for i, m in enumerate(out.messages) if m["type"] == "STATE"), default=-1)
            for message in out.messages[:cut]:
                if message["type"] == "RECORD":
                    remaining -= 1
                    seen[message["stream"]].update(record_keys(message["stream"], [message["record"]]))
            if cut >= 0:
                state = out.messages[cut]["value"]
                open_runs += OPEN_RUN_SINCE in state["bookmarks"].get("list_exclusions", {})
            if completed:
                break
            kills += 1
    assert completed and kills >= 3
    assert open_runs, "some run resumed list_exclusions from the middle of a run"
    assert OPEN_RUN_SINCE not in state["bookmarks"]["list_exclusions"]
    for stream in INTERRUPTED:
        assert seen[stream] == expected[stream], stream


@pytest.mark.parametrize(("stream", "scope"), [("segments", "segments:read"), ("segment_members", "segments:read"),
                                               ("list_exclusions", "profiles:read")])
def test_a_key_without_the_scope_is_one_line_naming_it(emulator, tmp_path, stream, scope):
    assert_missing_scope_is_named(emulator, tmp_path, stream, scope)


def test_segment_members_name_both_scopes(emulator):
    from tap_klaviyo.tap import TapKlaviyo

    tap = TapKlaviyo(config=tap_config(emulator), parse_env_config=False)
    assert tap.streams["segment_members"].required_scope == "segments:read and profiles:read"
