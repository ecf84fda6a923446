"""Hostile catalogs and states: every record still arrives, and the bookmark still moves.

Catalogs and states written by other tools (singer-io's taps, Meltano, hand edits) declare keys,
replication and schemas differently from the tap's own discovery output.
"""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from tap_klaviyo import timeutil
from tests.conftest import SyncResult, catalog_for, run_catalog, run_tap
from tests.tap_klaviyo.expected import expected_keys, klaviyo_metric_ids


def sync(config: dict, catalog: dict, state: dict | None = None) -> SyncResult:
    """Run a sync in-process with exactly this catalog."""
    return run_catalog(config, catalog, state)


def entry(catalog: dict, stream: str) -> dict:
    return next(e for e in catalog["streams"] if e["tap_stream_id"] == stream)


def root_metadata(catalog: dict, stream: str) -> dict:
    return next(m["metadata"] for m in entry(catalog, stream)["metadata"] if m["breadcrumb"] == [])


def field_metadata(catalog: dict, stream: str, name: str) -> dict:
    return next(m["metadata"] for m in entry(catalog, stream)["metadata"] if m["breadcrumb"] == ["properties", name])


def received_events(account) -> list[dict]:
    return list(account.events(metric_id=klaviyo_metric_ids(account, "Received Email")[0]))


def newest(values) -> str:
    return max(timeutil.canonical(value) for value in values)


# --- Keys ---------------------------------------------------------------------------------


def test_empty_key_properties_lose_no_record(emulator, account, config):
    """`key_properties: []` asks the target for append-only loading; it is no identity to deduplicate on."""
    catalog = catalog_for("receive", "profiles")
    for stream in ("receive", "profiles"):
        entry(catalog, stream)["key_properties"] = []
        root_metadata(catalog, stream)["table-key-properties"] = []
    result = sync(config, catalog)
    for stream in ("receive", "profiles"):
        emitted = result.ids(stream)
        assert sorted(emitted) == sorted(expected_keys(account, stream)), stream
    assert all(m["key_properties"] == [] for m in result.messages if m["type"] == "SCHEMA")


# --- Replication key ----------------------------------------------------------------------


def test_a_deselected_replication_key_still_moves_the_bookmark(emulator, account, config):
    """A catalog may mark the replication key `available` and deselect it; records then go out
    without it, but the bookmark is taken before the field is dropped."""
    catalog = catalog_for("receive", "profiles")
    for stream, key in (("receive", "datetime"), ("profiles", "updated")):
        field_metadata(catalog, stream, key).update(inclusion="available", selected=False)
    first = sync(tap_config_without_lookback(config), catalog)
    assert not any("datetime" in r for r in first.records["receive"])
    assert not any("updated" in r for r in first.records["profiles"])
    received = klaviyo_metric_ids(account, "Received Email")[0]
    events_mark = newest(e["attributes"]["datetime"] for e in received_events(account))
    profiles_mark = newest(p["attributes"]["updated"] for p in account.profiles())
    bookmarks = first.state["bookmarks"]
    assert bookmarks["receive"]["partitions"][0]["context"] == {"metric_id": received}
    assert bookmarks["receive"]["partitions"][0]["replication_key_value"] == events_mark
    assert bookmarks["profiles"]["replication_key_value"] == profiles_mark

    already = len(emulator.requests)
    second = sync(tap_config_without_lookback(config), catalog, state=first.state)
    at_events_mark = {e["id"] for e in received_events(account) if timeutil.canonical(e["attributes"]["datetime"]) == events_mark}
    at_profiles_mark = {p["id"] for p in account.profiles() if timeutil.canonical(p["attributes"]["updated"]) == profiles_mark}
    assert set(second.ids("receive")) <= at_events_mark, "the second run re-reads only the bookmark's own second"
    assert set(second.ids("profiles")) <= at_profiles_mark
    filters = [r.query.get("filter", "") for r in emulator.requests[already:] if r.path in {"/api/events", "/api/profiles"}]
    assert any(f"greater-or-equal(datetime,{filter_time(events_mark)})" in f for f in filters), filters
    assert any("greater-than(updated," in f for f in filters), filters


def filter_time(value: str) -> str:
    return timeutil.to_filter_value(timeutil.parse_datetime(value))


def tap_config_without_lookback(config: dict) -> dict:
    return {**config, "lookback_minutes": 0}


def without_replication_key(catalog: dict, stream: str) -> None:
    """singer-io's catalog style: the stream metadata lists `valid-replication-keys` only."""
    entry(catalog, stream).pop("replication_key", None)
    entry(catalog, stream).pop("replication_method", None)
    metadata = root_metadata(catalog, stream)
    key = metadata.pop("replication-key")
    metadata.pop("forced-replication-method", None)
    metadata["valid-replication-keys"] = [key]


def test_a_catalog_naming_no_replication_key_still_reads_incrementally(emulator, account, config):
    catalog = catalog_for("receive", "profiles")
    without_replication_key(catalog, "receive")
    without_replication_key(catalog, "profiles")
    root_metadata(catalog, "profiles")["replication-method"] = "INCREMENTAL"
    first = sync(tap_config_without_lookback(config), catalog)
    assert set(first.ids("receive")) == expected_keys(account, "receive")
    assert first.state["bookmarks"]["receive"]["partitions"][0]["replication_key"] == "datetime"
    assert first.state["bookmarks"]["profiles"]["replication_key"] == "updated"
    second = sync(tap_config_without_lookback(config), catalog, state=first.state)
    assert len(second.ids("receive")) < len(first.ids("receive")) / 10
    assert len(second.ids("profiles")) < len(first.ids("profiles")) / 10


def test_a_catalog_naming_another_replication_key_is_warned_about_and_ignored(emulator, account, config, caplog):
    """`timestamp` is an integer field of events: bookmarking it used to raise a TypeError."""
    catalog = catalog_for("receive")
    entry(catalog, "receive")["replication_key"] = "timestamp"
    root_metadata(catalog, "receive")["replication-key"] = "timestamp"
    caplog.set_level(logging.WARNING)
    result = sync(config, catalog)
    assert set(result.ids("receive")) == expected_keys(account, "receive")
    partition = result.state["bookmarks"]["receive"]["partitions"][0]
    assert partition["replication_key"] == "datetime"
    assert partition["replication_key_value"] == newest(e["attributes"]["datetime"] for e in received_events(account))
    assert "names replication key 'timestamp' for stream 'receive'" in caplog.text


def test_full_table_in_the_catalog_reads_whole_and_bookmarks_the_newest_record(emulator, account, config):
    """Read whole (whatever the state says), in key order: the bookmark it leaves is the newest record's,
    so an incremental run after it goes on from there."""
    catalog = catalog_for("lists")
    without_replication_key(catalog, "lists")
    root_metadata(catalog, "lists")["forced-replication-method"] = "FULL_TABLE"
    stale = {"bookmarks": {"lists": {"replication_key": "updated", "replication_key_value": "2099-01-01T00:00:00+00:00"}}}
    result = sync(config, catalog, state=stale)
    assert set(result.ids("lists")) == expected_keys(account, "lists")
    newest = max(item["attributes"]["updated"] for item in account.lists())
    assert result.state["bookmarks"]["lists"]["replication_key_value"] == newest


# --- Schema -------------------------------------------------------------------------------


def test_records_match_a_catalog_schema_without_some_properties(emulator, account, config):
    catalog = catalog_for("receive", "lists")
    del entry(catalog, "receive")["schema"]["properties"]["uuid"]
    del entry(catalog, "lists")["schema"]["properties"]["opt_in_process"]
    result = sync(config, catalog)
    assert "uuid" not in result.schemas["receive"]["properties"]
    assert set(result.ids("receive")) == expected_keys(account, "receive")
    assert not any("uuid" in r for r in result.records["receive"])
    assert all("event_properties" in r for r in result.records["receive"])
    assert set(result.ids("lists")) == expected_keys(account, "lists")
    assert not any("opt_in_process" in r for r in result.records["lists"])


# --- State from elsewhere -----------------------------------------------------------------


def test_meltano_state_get_output_is_unwrapped(emulator, account, config, caplog):
    first = run_tap(config, streams=("lists",))
    caplog.set_level(logging.INFO)
    second = run_tap(config, state={"singer_state": first.state}, streams=("lists",))
    assert "unwrapped 'singer_state'" in caplog.text
    assert len(second.ids("lists")) < len(expected_keys(account, "lists"))
    assert second.state["bookmarks"]["lists"]["replication_key_value"] == first.state["bookmarks"]["lists"]["replication_key_value"]


@pytest.mark.parametrize(
    ("state", "found"),
    [
        ({"bookmarks": {"orders": {"replication_key_value": "2024-01-01T00:00:00+00:00"}}}, "bookmarks of ['orders']"),
        (catalog_for("lists"), "top-level keys ['streams']"),
        ({"currently_syncing": None, "type": "STATE"}, "top-level keys ['currently_syncing', 'type']"),
    ],
)
def test_a_state_of_something_else_is_warned_about(emulator, account, config, caplog, state, found):
    caplog.set_level(logging.WARNING)
    result = run_tap(config, state=state, streams=("lists",))
    assert f"holds no bookmark of any tap-klaviyo stream (found {found})" in caplog.text
    assert set(result.ids("lists")) == expected_keys(account, "lists")


@pytest.mark.parametrize("state", [{}, {"bookmarks": {}}, {"bookmarks": {"lists": {}}}])
def test_an_empty_or_own_state_is_not_warned_about(emulator, config, caplog, state):
    caplog.set_level(logging.WARNING)
    run_tap(config, state=state, streams=("lists",))
    assert "holds no bookmark" not in caplog.text


# --- Bookmarks of deleted partitions ------------------------------------------------------


def test_bookmarks_of_deleted_metrics_and_lists_are_dropped(emulator, account, config, caplog):
    received = klaviyo_metric_ids(account, "Received Email")[0]
    list_id = account.lists()[0]["id"]
    mark = "2026-01-01T00:00:00+00:00"

    def partition(key: str, value: str, replication_key: str) -> dict:
        return {"context": {key: value}, "replication_key": replication_key, "replication_key_value": mark}

    state = {"bookmarks": {
        "receive": {"partitions": [partition("metric_id", "DeLeTeD", "datetime"), partition("metric_id", received, "datetime")]},
        "list_members": {"partitions": [partition("list_id", "GoNe01", "joined_group_at"), partition("list_id", list_id, "joined_group_at")]},
        "lists": {"replication_key": "updated", "replication_key_value": mark},
    }}
    caplog.set_level(logging.INFO)
    result = run_tap(config, state=state, streams=("receive", "list_members"))
    for message in result.states:  # not even the first STATE carries them
        contexts = [p["context"] for stream in ("receive", "list_members") for p in message["bookmarks"][stream]["partitions"]]
        assert {"metric_id": "DeLeTeD"} not in contexts and {"list_id": "GoNe01"} not in contexts
    final = result.state["bookmarks"]
    assert {"metric_id": received} in [p["context"] for p in final["receive"]["partitions"]]
    assert {"list_id": list_id} in [p["context"] for p in final["list_members"]["partitions"]]
    assert final["lists"]["replication_key_value"] == mark, "a stream not synced keeps its bookmark"
    assert "Stream 'receive': dropped the bookmarks of 1 partition(s) no longer in the account" in caplog.text
    assert "Stream 'list_members': dropped the bookmarks of 1 partition(s)" in caplog.text


def test_the_state_writer_writes_each_change_once_even_when_changed_in_place():
    """The writer compares encodings, not a reference to the live state (which changes in place)."""
    from tap_klaviyo.state import EncodedStateWriter

    written = []

    class Collect:
        def write_message(self, message):
            written.append(message.to_dict()["value"]["bookmarks"]["lists"]["replication_key_value"])

    writer = EncodedStateWriter(Collect())
    state = {"bookmarks": {"lists": {"replication_key_value": "a"}}}
    writer.write_state(state)
    writer.write_state(state)
    state["bookmarks"]["lists"]["replication_key_value"] = "b"
    writer.write_state(state)
    writer.write_state(state)
    assert written == ["a", "b"]


# --- Records changing during the run -------------------------------------------------------


@pytest.mark.parametrize("workers", [1, 4])
def test_a_change_landing_inside_the_run_is_emitted_again_with_its_new_values(emulator, account, config, workers):
    """Normally a record changed mid-run moves past the run's end (fixed at its start) and waits
    for the next run (test_incremental.py). When the server's clock runs ahead of the tap's, the
    new value lands inside this run: the record is emitted again, newest last, since dropping the
    repeat would lose the change (the bookmark passes it). No run-wide set of ids is kept."""
    profiles = sorted(account.profiles(), key=lambda p: p["attributes"]["updated"])
    oldest = profiles[0]["id"]
    account.set_clock(timeutil.parse_datetime(profiles[-1]["attributes"]["updated"]) + dt.timedelta(hours=1))
    original = emulator.respond
    changed = []

    def respond(method, path, params, headers):
        answer = original(method, path, params, headers)
        if path == "/api/profiles" and not changed:
            account.update_profile(oldest, title="Changed mid-run")
            changed.append(oldest)
        return answer

    emulator.respond = respond
    try:
        result = run_tap({**config, "max_workers": workers}, streams=("profiles",))
    finally:
        emulator.respond = original
    versions = [r for r in result.records["profiles"] if r["id"] == oldest]
    assert len(versions) == 2
    assert versions[0]["title"] != "Changed mid-run" and versions[-1]["title"] == "Changed mid-run"
    assert result.state["bookmarks"]["profiles"]["replication_key_value"] == versions[-1]["updated"]
    others = [r["id"] for r in result.records["profiles"] if r["id"] != oldest]
    assert sorted(others) == sorted(expected_keys(account, "profiles") - {oldest})


def test_partition_states_are_found_by_context_and_created_once():
    from tap_klaviyo.state import IndexedStateManager

    first = {"context": {"list_id": "A"}, "replication_key_value": "x"}
    state = {"bookmarks": {"list_members": {"partitions": [first]}}}
    manager = IndexedStateManager(stream_name="list_members", tap_state=state, is_sorted=True)
    assert manager.get_context_state({"list_id": "A"}) is first
    created = manager.get_context_state({"list_id": "B"})
    assert manager.get_context_state({"list_id": "B"}) is created
    assert state["bookmarks"]["list_members"]["partitions"] == [first, {"context": {"list_id": "B"}}]
    replaced = {"context": {"list_id": "A"}, "replication_key_value": "y"}
    state["bookmarks"]["list_members"]["partitions"] = [replaced]  # a state swapped under the manager
    assert manager.get_context_state({"list_id": "A"}) is replaced


def test_partition_contexts_of_any_json_shape_are_dropped_not_crashed_on(emulator, account, config):
    received = klaviyo_metric_ids(account, "Received Email")[0]
    state = {"bookmarks": {"receive": {"partitions": [{"context": {"metric_id": ["not", "an", "id"]}}]}}}
    result = run_tap(config, state=state, streams=("receive",))
    assert [p["context"] for p in result.state["bookmarks"]["receive"]["partitions"]] == [{"metric_id": received}]
    assert set(result.ids("receive")) == expected_keys(account, "receive")
