"""SIGKILL at random points of a multi-stream sync, resume from the last STATE printed, repeat.

Nothing is ever lost, and whatever is emitted twice lies inside the lookback window before
the bookmark the run resumed from (or was never covered by a STATE in the first place).
(test_incremental.py has a single kill of two streams; this is the repeated, seeded version.)
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import random
import sys

import pytest

from klaviyo_emulator import Account, Emulator
from tap_klaviyo import timeutil
from tests.conftest import (
    catalog_for,
    parse_messages,
    run_until_killed,
    tap_config,
)
from tests.tap_klaviyo.expected import expected_keys, record_keys

STREAMS = ("lists", "list_members", "campaigns", "profiles", "global_exclusions", "click", "receive")
REPLICATION_KEYS = {
    "lists": "updated",
    "list_members": "joined_group_at",
    "campaigns": "updated_at",
    "profiles": "updated",
    "global_exclusions": "suppression_timestamp",
    "click": "datetime",
    "receive": "datetime",
}
PARTITION_FIELD = {"list_members": "list_id", "click": "metric_id", "receive": "metric_id"}
LOOKBACK_MINUTES = 60
MAX_RUNS = 8


def bookmarks_of(state: dict) -> dict[tuple[str, str | None], str]:
    """{(stream, partition id or None): replication_key_value} of a Singer state."""
    out = {}
    for stream, entry in (state.get("bookmarks") or {}).items():
        if entry.get("replication_key_value"):
            out[(stream, None)] = entry["replication_key_value"]
        for partition in entry.get("partitions") or []:
            if partition.get("replication_key_value"):
                value = next(iter(partition["context"].values())) if len(partition["context"]) == 1 else None
                out[(stream, value)] = partition["replication_key_value"]
    return out


def resumed_floor(stream: str, record: dict, bookmarks: dict) -> dt.datetime | None:
    """Where the run that emitted `record` was allowed to start re-reading: bookmark - lookback."""
    field = PARTITION_FIELD.get(stream)
    if field:
        mark = bookmarks.get((stream, record.get(field)))
    else:
        marks = [v for (s, _), v in bookmarks.items() if s == stream]
        mark = min(marks) if marks else None  # campaigns: partitions the record does not name
    if mark is None:
        return None
    return timeutil.parse_datetime(mark) - dt.timedelta(minutes=LOOKBACK_MINUTES)


@pytest.mark.parametrize("seed", [6])
def test_repeated_sigkill_and_resume_never_loses_a_record(tmp_path, seed):
    account = Account.generate(seed=3, size="tiny", events=5000)
    rng = random.Random(seed)
    expected = {stream: expected_keys(account, stream) for stream in STREAMS}
    total = sum(len(keys) for keys in expected.values())
    with Emulator(account, latency_ms=8) as emulator:
        config = tap_config(emulator, max_workers=4, lookback_minutes=LOOKBACK_MINUTES)
        (tmp_path / "config.json").write_text(json.dumps(config))
        (tmp_path / "catalog.json").write_text(json.dumps(catalog_for(*STREAMS)))
        base = [sys.executable, "-m", "tap_klaviyo", "--config", str(tmp_path / "config.json"),
                "--catalog", str(tmp_path / "catalog.json")]  # fmt: skip

        state: dict = {}
        seen: dict[str, set] = collections.defaultdict(set)
        kills = resumed_with_state = duplicates = bounded = 0
        remaining = total  # about what the next run has left to emit: kill somewhere inside it
        for run in range(MAX_RUNS):
            argv = list(base)
            if state:
                (tmp_path / f"state{run}.json").write_text(json.dumps(state))
                argv += ["--state", str(tmp_path / f"state{run}.json")]
                resumed_with_state += 1
            last = run == MAX_RUNS - 1
            output, completed = run_until_killed(argv, None if last else rng.randint(1, max(1, remaining)))
            out = parse_messages(output)
            last_state = max((i for i, m in enumerate(out.messages) if m["type"] == "STATE"), default=-1)
            remaining -= sum(m["type"] == "RECORD" for m in out.messages[:last_state])
            bookmarks = bookmarks_of(state)
            for stream in STREAMS:
                records = out.records.get(stream, [])
                keys = record_keys(stream, records)
                assert len(keys) == len(set(keys)), f"run {run}: {stream} emitted a record twice in one run"
                for key, record in zip(keys, records):
                    if key in seen[stream]:
                        duplicates += 1
                        floor = resumed_floor(stream, record, bookmarks)
                        value = record[REPLICATION_KEYS[stream]]
                        assert floor is None or timeutil.parse_datetime(value) >= floor, (
                            f"run {run}: {stream} {key} re-emitted at {value}, before bookmark - lookback {floor}"
                        )
                        bounded += floor is not None
                    seen[stream].add(key)
            if out.states:
                state = out.state
            if completed:
                break
            kills += 1

    assert completed, "the last run completes"
    for stream in STREAMS:
        assert seen[stream] == expected[stream], stream
    assert kills >= 4 and resumed_with_state >= 3, (kills, resumed_with_state)
    assert bounded, "some re-emitted records were checked against a resumed bookmark"
    print(f"runs={run + 1} kills={kills} resumed_with_state={resumed_with_state} records={total} "
          f"re-emitted={duplicates} (of which after a resumed bookmark: {bounded})")
