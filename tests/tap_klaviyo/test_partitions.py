"""The concurrent partition reader (tap_klaviyo/partitions.py): the same records, STATE and requests as
one partition after another, with the partitions' first requests in flight together."""

from __future__ import annotations

import collections
import copy
import datetime as dt
import logging
import re
import threading
import typing as t
from types import SimpleNamespace

import pytest

from klaviyo_emulator import Emulator
from tap_klaviyo.partitions import FirstPages
from tests.conftest import catalog_for, parse_messages, run_cli, run_tap, tap_config

# The partitioned streams, with the parents their partitions come from.
PARTITIONED = {
    "list_members": ("lists", "list_members"),
    "segment_members": ("segments", "segment_members"),
    "events": ("events",),
    "flow_messages": ("flows", "flow_messages"),
    "form_versions": ("forms", "form_versions"),
    "campaign_variations": ("campaign_variations",),  # revision 2026-10-15, the default
}

RUN_END = re.compile(r"less-than\(([^,]+),[^)]+\)")  # the run's end: each run's own start


def requests_of(emulator: Emulator, since: int) -> collections.Counter:
    """Every request after `since`, as (path, sorted query): what was asked, in any order."""
    return collections.Counter(
        (r.path, tuple(sorted((name, RUN_END.sub(r"less-than(\1,END)", value)) for name, value in r.query.items())))
        for r in emulator.requests[since:]
    )


RUN_TIMES = ("read_to", "swept_at")  # when each run read a fan-out partition: the two runs differ there


def without_run_times(state: t.Any) -> t.Any:
    if isinstance(state, dict):
        return {key: without_run_times(value) for key, value in state.items() if key not in RUN_TIMES}
    if isinstance(state, list):
        return [without_run_times(value) for value in state]
    return state


AHEAD = re.compile(r"Stream (\S+): (\d+) partitions' first requests sent ahead, (\d+) of them used")


def sync_both_ways(emulator: Emulator, streams: tuple[str, ...], caplog, state: dict | None = None):
    """One run with the concurrent reader and one with the sequential one, from the same state.

    A windowed stream (events) splits its windows as responses arrive, so its requests differ from
    run to run in either mode; its partitions' first requests are what the reader may add, and
    every one it sent must have been used.
    """
    results = {}
    for concurrent in (True, False):
        before = len(emulator.requests)
        config = tap_config(emulator, max_workers=8, concurrent_partitions=concurrent, lookback_minutes=0)
        caplog.clear()
        with caplog.at_level(logging.INFO):
            result = run_tap(config, state=copy.deepcopy(state), streams=streams)
        ahead = [match.groups() for match in map(AHEAD.search, caplog.messages) if match]
        if concurrent:
            assert ahead and all(sent == used for _, sent, used in ahead), ahead
        else:
            assert not ahead
        results[concurrent] = (result, None if "events" in streams else requests_of(emulator, before))
    return results[True], results[False]


@pytest.mark.parametrize("stream", sorted(PARTITIONED))
def test_concurrent_and_sequential_partition_readers_emit_the_same_records_state_and_requests(
    emulator, account, stream, caplog
):
    streams = PARTITIONED[stream]
    (concurrent, asked), (sequential, asked_sequentially) = sync_both_ways(emulator, streams, caplog)
    assert concurrent.records[stream], "the account has records for this stream"
    assert concurrent.records == sequential.records  # the same records in the same order
    assert without_run_times(concurrent.state) == without_run_times(sequential.state)
    if asked is not None:
        assert asked == asked_sequentially, "the reader sent a request the sequential read does not"

    # An incremental run after changes in a few partitions: again the same. The changes lie before
    # both runs' start (each run reads up to the second it starts).
    changed_at = account.now() - dt.timedelta(seconds=2)
    if stream == "events":
        event = concurrent.records["events"][0]
        account.add_event(event["metric_id"], event["profile_id"], changed_at)
    elif stream in ("list_members", "segment_members"):
        member = concurrent.records[stream][-1]
        group = "list_id" if stream == "list_members" else "segment_id"
        members = {r["id"] for r in concurrent.records[stream] if r[group] == member[group]}
        other = next(r["id"] for r in concurrent.records[stream] if r["id"] not in members)
        add = account.add_list_member if stream == "list_members" else account.add_segment_member
        add(member[group], other, changed_at)
    (again, asked), (again_sequential, asked_sequentially) = sync_both_ways(emulator, streams, caplog, concurrent.state)
    assert again.records == again_sequential.records
    assert without_run_times(again.state) == without_run_times(again_sequential.state)
    if asked is not None:
        assert asked == asked_sequentially
    if stream in ("events", "list_members", "segment_members"):
        assert again.records.get(stream), "the change was read"


METRIC = re.compile(r'equals\(metric_id,"([^"]+)"\)')


def test_partitions_are_in_flight_together_and_only_with_the_concurrent_reader(account):
    """With 30 ms per request, the sequential reader starts one partition per 30 ms at most (a
    partition's later pages may overlap: that is the window reader)."""
    with Emulator(account, latency_ms=30) as emulator:
        overlap = {}
        for concurrent in (True, False):
            before = len(emulator.requests)
            config = tap_config(emulator, max_workers=8, concurrent_partitions=concurrent)
            run_tap(config, streams=("events",))
            firsts: dict[str, float] = {}  # metric -> when its partition's first request arrived
            for request in emulator.requests[before:]:
                if request.path == "/api/events":
                    firsts.setdefault(METRIC.search(request.query["filter"]).group(1), request.time)
            starts = sorted(firsts.values())
            assert len(starts) > 200, "one partition per metric"
            overlap[concurrent] = max(sum(1 for s in starts if start <= s < start + 0.025) for start in starts)
    assert overlap[False] == 1
    assert overlap[True] >= 4


def test_a_partition_failing_ahead_fails_the_stream_only_when_its_turn_comes_and_the_next_run_resumes(
    emulator, tmp_path
):
    """The prefetched error of a later list is raised in that list's turn: the lists before it are
    emitted and bookmarked, and the next run reads the rest."""
    config = tap_config(emulator, max_workers=8)
    full = run_tap(config, streams=PARTITIONED["list_members"])
    lists = list(dict.fromkeys(r["list_id"] for r in full.records["list_members"]))
    assert len(lists) >= 4
    failing = lists[len(lists) // 2]
    emulator.script(f"/api/lists/{failing}/profiles", 400, {"errors": [{"status": 400, "code": "invalid", "detail": "scripted"}]})

    files = {"--config": config, "--catalog": catalog_for(*PARTITIONED["list_members"])}
    failed = run_cli(input_files=files, tmp_path=tmp_path)
    assert failed.returncode == 1
    first = parse_messages(failed.stdout)
    emitted = list(dict.fromkeys(r["list_id"] for r in first.records["list_members"]))
    assert emitted == lists[: len(emitted)] and failing not in emitted
    assert set(emitted) >= set(lists[: lists.index(failing)]) - {None}
    before_failing = {r["id"] for r in full.records["list_members"] if r["list_id"] in emitted}
    assert {r["id"] for r in first.records["list_members"]} == before_failing
    assert failed.stdout.splitlines()[-1].startswith(b'{"type":"STATE"')

    files["--state"] = first.state
    second = parse_messages(run_cli(input_files=files, tmp_path=tmp_path).stdout)
    keys = lambda result: {(r["list_id"], r["id"]) for r in result.records["list_members"]}  # noqa: E731
    assert keys(first) | keys(second) == keys(full)


# --- FirstPages alone ---------------------------------------------------------------------------


def _request(url: str) -> SimpleNamespace:
    return SimpleNamespace(url=url)


def test_at_most_ahead_first_pages_are_held_or_in_flight():
    held = set()
    peak = 0
    lock = threading.Lock()

    def fetch(prepared, partition):
        nonlocal peak
        with lock:
            held.add(partition["id"])
            peak = max(peak, len(held))
        return prepared.url

    partitions = [{"id": i} for i in range(50)]
    reader = FirstPages(partitions, lambda p: _request(f"u{p['id']}"), fetch, workers=3, ahead=3)
    taken = []
    for partition in partitions:
        reader.advance(partition)
        future = reader.take(partition, f"u{partition['id']}")
        taken.append(future.result())
        with lock:
            held.discard(partition["id"])
    reader.close()
    assert taken == [f"u{i}" for i in range(50)]
    assert reader.sent == reader.used == 50
    assert peak <= 3


def test_a_plan_that_no_longer_holds_is_not_used_and_partitions_without_a_request_are_skipped():
    partitions = [{"id": i} for i in range(6)]
    plan = lambda p: None if p["id"] % 2 else _request(f"u{p['id']}")  # noqa: E731
    reader = FirstPages(partitions, plan, lambda prepared, partition: prepared.url, workers=2, ahead=2)
    reader.advance(partitions[0])
    assert reader.take(partitions[0], "other-url") is None  # the read asked for something else
    assert reader.take(partitions[1], "u1") is None  # nothing planned for it
    reader.advance(partitions[2])
    assert reader.take(partitions[2], "u2").result() == "u2"
    reader.advance(partitions[4])
    assert reader.take(partitions[4], "u4").result() == "u4"
    reader.close()
    assert reader.sent == 3 and reader.used == 2
