"""End to end through Meltano: `meltano install`, then `meltano run tap-klaviyo target-duckdb` and
`... target-jsonl` against an in-process emulator, twice: a full first run whose row counts must equal the
emulator's account exactly, then, after changes to the account, a second run that starts from the state
Meltano stored (bounded requests) and brings the new rows.

Uses the repository's meltano.yml (copied into a temporary project, extractor installed from this checkout);
needs the `meltano` executable, which `make test` installs (.venv-meltano) and passes as $MELTANO_BIN.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from klaviyo_emulator import Account
from tap_klaviyo.streams import STREAMS as TAP_STREAMS
from tests.e2e.meltano_project import MeltanoProject, find_meltano, tap_env
from tests.tap_klaviyo.expected import EVENT_STREAM_METRICS, expected_keys, klaviyo_metric_ids, record_keys, suppression_of

pytestmark = pytest.mark.slow

STREAMS = tuple(stream.name for stream in TAP_STREAMS)  # meltano.yml selects every stream
EVENT_STREAMS = tuple(EVENT_STREAM_METRICS)
LOOKBACK_MINUTES = 60
SCHEMA = "tap_klaviyo"  # default_target_schema in meltano.yml
LOWER_BOUND = re.compile(r"greater-(?:or-equal|than)\(([\w.]+),([^)]+)\)")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> MeltanoProject:
    """One installed Meltano project for the module: plugin installs are the slow part."""
    meltano = find_meltano()
    if meltano is None:
        pytest.skip("meltano is not installed (`make test` installs it into .venv-meltano; or set MELTANO_BIN)")
    project = MeltanoProject.create(tmp_path_factory.mktemp("meltano-project"), meltano)
    project.run("install")
    return project


@pytest.fixture
def account() -> Account:
    return Account.generate(seed=23, size="tiny")


def expected_counts(account: Account) -> dict[str, int]:
    return {stream: len(expected_keys(account, stream)) for stream in STREAMS}


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def change_account(account: Account) -> dict[str, set]:
    """Changes between the two runs; returns the keys each stream must bring on the second run."""
    now = account.now()
    profiles = [profile["id"] for profile in account.profiles()]
    new_profile = account.add_profile(email="e2e.newcomer@example.com", first_name="Newcomer")
    suppressed = next(p["id"] for p in account.profiles() if not suppression_of(p) and p["id"] != new_profile)
    account.suppress_profile(suppressed, "SPAM_COMPLAINT")
    list_id = next(item["id"] for item in account.lists() if account.list_member_ids(item["id"]))
    account.add_list_member(list_id, new_profile)
    # A suppression does not bump the profile's `updated`: it shows in global_exclusions only.
    new = {"profiles": {new_profile}, "global_exclusions": {suppressed}, "list_members": {(list_id, new_profile)}}
    for i, stream in enumerate(EVENT_STREAMS):
        metric_id = klaviyo_metric_ids(account, *EVENT_STREAM_METRICS[stream])[0]
        new[stream] = {account.add_event(metric_id, profiles[i], now - dt.timedelta(minutes=2 + i))}
    return new


def bookmarks_by_metric(state: dict) -> dict[str, dt.datetime]:
    """{metric_id: bookmark} of the event streams in a Singer state."""
    marks = {}
    for stream in EVENT_STREAMS:
        for partition in state["bookmarks"].get(stream, {}).get("partitions", []):
            if partition.get("replication_key_value"):
                marks[partition["context"]["metric_id"]] = parse_time(partition["replication_key_value"])
    return marks


def metric_of(request) -> str:
    return re.search(r'equals\(metric_id,"([^"]+)"\)', request.query["filter"]).group(1)


def assert_second_run_bounded(requests, singer_state: dict) -> None:
    """Every event/profile request of the second run has a lower bound, taken from the stored state."""
    marks = bookmarks_by_metric(singer_state)
    assert marks, f"no event bookmarks in the stored state: {singer_state}"
    lookback = dt.timedelta(minutes=LOOKBACK_MINUTES, seconds=1)
    checked = 0
    for request in requests:
        if request.path not in ("/api/events", "/api/profiles"):
            continue
        flt = request.query.get("filter", "")
        bounds = LOWER_BOUND.findall(flt)
        if request.path == "/api/events" and metric_of(request) not in marks:
            continue  # a metric without any event yet has no bookmark: one empty read of its whole history
        assert bounds, f"second run read {request.path} without a lower bound: {request.query}"
        if request.path == "/api/events":
            metric_id = metric_of(request)
            low = min(parse_time(value) for field, value in bounds if field == "datetime")
            assert low >= marks[metric_id] - lookback, (metric_id, low, marks[metric_id])
            checked += 1
    assert checked, "the second run requested no events"


def test_meltano_run_duckdb_exact_counts_then_incremental(project: MeltanoProject, account, emulator, tmp_path):
    database = tmp_path / "klaviyo.duckdb"
    env = project.env(**tap_env(emulator.base_url), TAP_KLAVIYO_LOOKBACK_MINUTES=str(LOOKBACK_MINUTES), TARGET_DUCKDB_FILEPATH=str(database))

    project.run("run", "tap-klaviyo", "target-duckdb", env=env)

    expected = expected_counts(account)
    assert all(expected.values()), f"the test account should fill every stream: {expected}"
    assert project.duckdb_counts(database) == expected, "row counts in DuckDB differ from the emulator's account"
    first_requests = list(emulator.requests)
    unbounded = {metric_of(r) for r in first_requests if r.path == "/api/events" and not LOWER_BOUND.search(r.query["filter"])}
    assert unbounded == {metric_of(r) for r in first_requests if r.path == "/api/events"}, "a first run reads all history"
    state = project.state("dev:tap-klaviyo-to-target-duckdb", env=env)["singer_state"]
    assert set(state["bookmarks"]) >= set(EVENT_STREAMS) | {"profiles"}

    new = change_account(account)
    emulator.clear_requests()
    project.run("run", "tap-klaviyo", "target-duckdb", env=env)

    second_requests = list(emulator.requests)
    assert_second_run_bounded(second_requests, state)
    assert len(second_requests) < len(first_requests)
    expected_after = expected_counts(account)
    assert project.duckdb_counts(database) == expected_after, "row counts after the incremental run"
    for stream, keys in new.items():
        if stream == "list_members":
            rows = project.duckdb_query(database, f"select list_id, id from {SCHEMA}.{stream}")
            assert keys <= {tuple(row) for row in rows}, stream
        else:
            rows = project.duckdb_query(database, f"select id from {SCHEMA}.{stream}")
            assert keys <= {row[0] for row in rows}, stream
    assert project.state("dev:tap-klaviyo-to-target-duckdb", env=env)["singer_state"] != state, "state moved on"


def read_jsonl(directory: Path) -> dict[str, list[dict]]:
    return {
        path.stem: [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for path in sorted(directory.glob("*.jsonl"))
    }


def test_meltano_run_jsonl_then_incremental(project: MeltanoProject, account, emulator, tmp_path):
    out = tmp_path / "jsonl"
    env = project.env(**tap_env(emulator.base_url), TAP_KLAVIYO_LOOKBACK_MINUTES=str(LOOKBACK_MINUTES), TARGET_JSONL_DESTINATION_PATH=str(out))

    project.run("run", "tap-klaviyo", "target-jsonl", env=env)

    first = read_jsonl(out)
    assert set(first) == set(STREAMS)
    for stream in STREAMS:
        keys = record_keys(stream, first[stream])
        assert len(keys) == len(set(keys)), f"{stream}: duplicates in a full run"
        assert set(keys) == expected_keys(account, stream), stream
    state = project.state("dev:tap-klaviyo-to-target-jsonl", env=env)["singer_state"]

    new = change_account(account)
    emulator.clear_requests()
    project.run("run", "tap-klaviyo", "target-jsonl", env=env)

    assert_second_run_bounded(list(emulator.requests), state)
    both = read_jsonl(out)  # target-jsonl appends
    for stream in STREAMS:
        appended = both[stream][len(first[stream]) :]
        assert set(record_keys(stream, both[stream])) == expected_keys(account, stream), stream
        assert new.get(stream, set()) <= set(record_keys(stream, appended)), f"{stream}: new records in the second run"
        if stream in EVENT_STREAMS or stream == "profiles":
            assert len(appended) < len(first[stream]), f"{stream}: the second run re-read everything"


def test_meltano_config_list_shows_the_tap_defaults(project: MeltanoProject):
    """Without declared defaults every setting read `None (default)`."""
    out = project.run("config", "list", "tap-klaviyo", "--all").stdout
    for setting, value in (("api_url", "'https://a.klaviyo.com'"), ("lookback_minutes", "180"), ("max_workers", "16")):
        assert re.search(rf"^{setting} .* current value: {re.escape(value)} \(default\)$", out, re.M), out
