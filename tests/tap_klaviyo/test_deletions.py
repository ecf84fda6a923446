"""Deletions through ACTIVATE_VERSION: full-table streams, and incremental ones the catalog sets to FULL_TABLE.

A target that supports ACTIVATE_VERSION drops (or soft-deletes) the rows of a stream older than
the version it is told to activate. That is right only after the stream was read whole, so the
message must follow the stream's last record, carry the version its records carry, and never be
sent for a stream that failed or was read incrementally.
"""

from __future__ import annotations

import pytest

from tests.conftest import catalog_for, run_catalog, run_tap, tap_config
from tests.tap_klaviyo.expected import expected_keys, record_keys


def messages_of(result, stream: str) -> list[dict]:
    return [m for m in result.messages if m.get("stream") == stream]


def force_full_table(catalog: dict, *streams: str) -> dict:
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] in streams:
            entry["replication_method"] = "FULL_TABLE"
            for item in entry["metadata"]:
                if item["breadcrumb"] == []:
                    item["metadata"]["forced-replication-method"] = "FULL_TABLE"
    return catalog


@pytest.mark.parametrize("stream", ["metrics", "tags", "tag_groups"])
def test_a_full_table_stream_ends_with_activate_version_of_its_records_version(emulator, stream):
    result = run_tap(tap_config(emulator, emit_activate_version_messages=True), streams=(stream,))
    messages = messages_of(result, stream)
    kinds = [m["type"] for m in messages]
    assert kinds[0] == "SCHEMA" and kinds[-1] == "ACTIVATE_VERSION" and kinds.count("ACTIVATE_VERSION") == 1
    versions = {m["version"] for m in messages if m["type"] == "RECORD"}
    assert versions == {messages[-1]["version"]}


def test_no_activate_version_without_the_setting_or_for_incremental_streams(emulator):
    plain = run_tap(tap_config(emulator), streams=("metrics",))
    assert not [m for m in plain.messages if m["type"] == "ACTIVATE_VERSION"]
    incremental = run_tap(tap_config(emulator, emit_activate_version_messages=True), streams=("lists", "profiles"))
    assert not [m for m in incremental.messages if m["type"] == "ACTIVATE_VERSION"]


def test_full_table_in_the_catalog_rereads_an_incremental_stream_whole_and_activates(emulator, account):
    config = tap_config(emulator, emit_activate_version_messages=True)
    first = run_tap(config, streams=("list_members",))
    everything = expected_keys(account, "list_members")
    list_id = next(item["id"] for item in account.lists() if len(account.list_member_ids(item["id"])) > 1)
    gone = account.list_member_ids(list_id)[0][0]
    account.remove_list_member(list_id, gone)

    catalog = force_full_table(catalog_for("list_members"), "list_members")
    full = run_catalog(config, catalog, state=first.state)

    keys = record_keys("list_members", full.records["list_members"])
    assert set(keys) == everything - {(list_id, gone)}, "a FULL_TABLE run reads every membership, bookmarks aside"
    messages = messages_of(full, "list_members")
    assert messages[-1]["type"] == "ACTIVATE_VERSION"
    assert {m["version"] for m in messages if m["type"] == "RECORD"} == {messages[-1]["version"]}
    # The same catalog without FULL_TABLE reads incrementally: only the lookback window.
    incremental = run_tap(config, state=first.state, streams=("list_members",))
    assert len(incremental.records.get("list_members", [])) < len(keys)
    assert not [m for m in incremental.messages if m["type"] == "ACTIVATE_VERSION"]


@pytest.mark.parametrize(("stream", "parent"), [("flow_messages", "flows"), ("form_versions", "forms")])
def test_full_table_on_a_fan_out_stream_reads_every_parent_not_only_the_changed_ones(emulator, account, stream, parent):
    """After ACTIVATE_VERSION the target drops every row this run did not emit: an unchanged parent
    skipped as in an incremental run would lose its children."""
    config = tap_config(emulator, emit_activate_version_messages=True, sweep_hours=1000)
    first = run_tap(config, streams=(parent, stream))
    everything = set(record_keys(stream, first.records[stream]))
    unchanged = run_tap(config, state=first.state, streams=(parent, stream))
    assert not unchanged.records.get(stream), "incrementally, unchanged parents are skipped (no sweep due)"

    catalog = force_full_table(catalog_for(parent, stream), stream)
    full = run_catalog(config, catalog, state=first.state)
    assert set(record_keys(stream, full.records[stream])) == everything
    assert messages_of(full, stream)[-1]["type"] == "ACTIVATE_VERSION"


def test_a_stream_that_fails_sends_no_activate_version(emulator):
    emulator.inject("503", count=50, path="/api/tags")
    config = tap_config(emulator, emit_activate_version_messages=True, max_retries=1)
    result = run_catalog(config, catalog_for("tags"), fails=True)
    assert [m["type"] for m in messages_of(result, "tags")] == ["SCHEMA"]
    assert result.messages[-1]["type"] == "STATE"
