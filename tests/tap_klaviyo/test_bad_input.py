"""Bad input: settings, state, catalog and API data.

Each case ends with one clear error line and exit code 1, or is handled and logged. Never a
traceback as the only message, never a silent wrong answer. (test_tap.py covers the basic
settings errors; these are the rest.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging

import pytest

from tap_klaviyo import timeutil
from tests.conftest import API_KEY, catalog_for, parse_messages, run_cli, run_tap, tap_config
from tests.tap_klaviyo.expected import expected_keys, klaviyo_metric_ids


def error_lines(stderr: bytes) -> list[str]:
    return [line for line in stderr.decode().splitlines() if "| ERROR" in line]


def assert_clean_failure(result, *fragments: str) -> str:
    """Exit 1, no traceback, and an ERROR line that says what is wrong."""
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr[-2000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = error_lines(result.stderr)
    assert errors, stderr[-2000:]
    assert any(all(f in line for f in fragments) for line in errors), (fragments, errors)
    return stderr


# --- Settings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "fragments"),
    [
        ({"api_key": None}, ("api_key",)),
        ({"api_key": 12345}, ("api_key",)),
        ({"api_key": "   "}, ("api_key is empty",)),
        ({"api_key": "pk_short"}, ("not a Klaviyo private API key",)),
        ({"api_key": "pk_has spaces in it 0123"}, ("not a Klaviyo private API key",)),
        ({"max_retries": "x"}, ("max_retries",)),
        ({"max_retries": -1}, ("max_retries must be at least 0",)),
        ({"request_timeout": "abc"}, ("request_timeout",)),
        ({"request_timeout": 0}, ("request_timeout must be positive",)),
        ({"lookback_minutes": 1.5}, ("lookback_minutes",)),
        ({"predictive_analytics": "yes"}, ("predictive_analytics",)),
        ({"start_date": "2024-02-30T00:00:00Z"}, ("start_date", "not an ISO 8601")),
        ({"start_date": 20240101}, ("start_date",)),
        ({"start_date": (dt.date.today() + dt.timedelta(days=2)).isoformat()}, ("start_date", "in the future")),
        ({"revision": "2025-13-01"}, ("revision",)),
        ({"revision": "latest"}, ("revision",)),
        ({"api_url": 5}, ("api_url",)),
        ({"api_url": "a.klaviyo.com"}, ("api_url", "not an http(s) URL")),
        ({"report_daily_requests": 0}, ("report_daily_requests must be between 1 and 225",)),
        ({"report_daily_requests": 500}, ("report_daily_requests must be between 1 and 225",)),
        ({"reporting_lookback_days": -1}, ("reporting_lookback_days must be between 0 and 365",)),
        ({"report_max_wait_seconds": -5}, ("report_max_wait_seconds must be at least 0",)),
        ({"conversion_metric": 7}, ("conversion_metric",)),
        ({"report_streams": ["flow_values_report"]}, ("'flow_values_report' is not a report stream", "Did you mean 'flow_values_reports'?")),
        ({"report_streams": "flow_values_reports"}, ("report_streams",)),
    ],
)
def test_more_bad_settings_fail_with_one_clear_line_and_no_request(emulator, tmp_path, override, fragments):
    result = run_cli(input_files={"--config": tap_config(emulator) | override}, tmp_path=tmp_path)
    assert_clean_failure(result, *fragments)
    assert not emulator.requests
    assert result.stdout == b""


@pytest.mark.parametrize(
    ("content", "fragments"),
    [
        ("{not json", ("--config file", "is not valid JSON")),
        ('["a list"]', ("--config file", "must hold a JSON object")),
        ("", ("--config file", "is not valid JSON")),
    ],
)
def test_a_malformed_config_file_is_one_line_naming_it(tmp_path, content, fragments):
    result = run_cli(input_files={"--config": content}, tmp_path=tmp_path)
    assert_clean_failure(result, *fragments)


def test_a_missing_config_file_is_one_line_naming_it(tmp_path):
    result = run_cli("--config", str(tmp_path / "absent.json"), tmp_path=tmp_path)
    assert_clean_failure(result, "absent.json", "cannot be read")


@pytest.mark.parametrize("api_url", ["http://127.0.0.1:9", "http://klaviyo.invalid"])
def test_an_unreachable_api_url_fails_fast_and_clearly(tmp_path, api_url):
    config = {"api_key": API_KEY, "api_url": api_url, "max_retries": 1, "backoff_base_seconds": 0.01}
    result = run_cli(input_files={"--config": config}, tmp_path=tmp_path, timeout=60)
    assert_clean_failure(result, "could not be reached at", api_url, "after 2 attempts")


def test_an_api_url_without_the_api_gives_the_404_in_one_line(emulator, tmp_path):
    config = tap_config(emulator, api_url=emulator.base_url + "/nothing")
    result = run_cli(input_files={"--config": config, "--catalog": catalog_for("lists")}, tmp_path=tmp_path)
    assert_clean_failure(result, "404", "/nothing/api/lists")


# --- State --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "fragments"),
    [
        ("{not json", ("--state file", "is not valid JSON")),
        ("[1, 2]", ("--state file", "must hold a JSON object, not list")),
        ({"bookmarks": "2024-01-01"}, ("'bookmarks' must be an object",)),
        ({"bookmarks": {"lists": "2024-01-01"}}, ("bookmark for stream 'lists'",)),
        ({"bookmarks": {"lists": {"partitions": "none"}}}, ("bookmark for stream 'lists'",)),
        (
            {"bookmarks": {"lists": {"replication_key": "updated", "replication_key_value": "last tuesday"}}},
            ("unreadable bookmark", "last tuesday"),
        ),
        (
            {"bookmarks": {"lists": {"replication_key": "updated", "replication_key_value": 12345}}},
            ("unreadable bookmark", "12345"),
        ),
        ({"bookmarks": {"AbC123": {"since": "yesterday"}}}, ("singer-io bookmark", "AbC123", "yesterday")),
        ({"bookmarks": {"lists": {"partitions": [1, "x"]}}}, ("bookmark for stream 'lists'",)),
        ({"bookmarks": {"lists": {"partitions": [{"replication_key_value": "x"}]}}}, ("bookmark for stream 'lists'",)),
        (
            {"bookmarks": {"receive": {"partitions": [{"context": {"metric_id": "A"}}, {"context": {"metric_id": "A"}}]}}},
            ("bookmark for stream 'receive'", "two partitions with the same context"),
        ),
    ],
)
def test_a_corrupt_state_is_one_clear_line_and_exit_1(emulator, tmp_path, state, fragments):
    files = {"--config": tap_config(emulator), "--state": state, "--catalog": catalog_for("lists")}
    result = run_cli(input_files=files, tmp_path=tmp_path)
    assert_clean_failure(result, *fragments)
    assert not any(m.get("type") == "RECORD" for m in parse_messages(result.stdout).messages)


def test_an_empty_state_file_means_no_bookmarks_and_says_so(emulator, account, tmp_path):
    files = {"--config": tap_config(emulator), "--state": "", "--catalog": catalog_for("lists")}
    result = run_cli(input_files=files, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert "is empty: starting without bookmarks" in result.stderr.decode()
    assert set(parse_messages(result.stdout).ids("lists")) == expected_keys(account, "lists")


def test_a_null_bookmarks_means_no_bookmarks_and_says_so(emulator, account, tmp_path):
    files = {"--config": tap_config(emulator), "--state": {"bookmarks": None}, "--catalog": catalog_for("lists")}
    result = run_cli(input_files=files, tmp_path=tmp_path)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr[-2000:]
    assert "'bookmarks' is null: starting without bookmarks" in stderr
    assert set(parse_messages(result.stdout).ids("lists")) == expected_keys(account, "lists")


def test_a_bookmark_beyond_the_last_utc_date_time_is_clamped_like_a_future_one(emulator, tmp_path):
    state = {"bookmarks": {"lists": {"replication_key": "updated", "replication_key_value": "9999-12-31T23:00:00-05:00"}}}
    files = {"--config": tap_config(emulator), "--state": state, "--catalog": catalog_for("lists")}
    result = run_cli(input_files=files, tmp_path=tmp_path)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr
    assert "Bookmark 9999-12-31T23:00:00-05:00 of stream 'lists' is in the future" in stderr
    assert parse_messages(result.stdout).records.get("lists", []) == []


def test_a_non_integer_setting_from_the_environment_is_one_line_naming_it(emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("TAP_KLAVIYO_API_KEY", API_KEY)
    monkeypatch.setenv("TAP_KLAVIYO_API_URL", emulator.base_url)
    monkeypatch.setenv("TAP_KLAVIYO_MAX_WORKERS", "x")
    result = run_cli("--config", "ENV", tmp_path=tmp_path)
    assert_clean_failure(result, "TAP_KLAVIYO_MAX_WORKERS must be an integer", "max_workers")
    assert not emulator.requests


def test_singer_io_metric_bookmarks_are_migrated_not_rejected(emulator, account, caplog):
    """singer-io's `{"bookmarks": {"<metric_id>": {"since": ...}}}` resumes the event stream there."""
    received = klaviyo_metric_ids(account, "Received Email")[0]
    events = sorted(account.events(metric_id=received), key=lambda e: e["attributes"]["datetime"])
    since = events[len(events) // 2]["attributes"]["datetime"]
    lookback = 30
    caplog.set_level(logging.INFO)
    result = run_tap(
        tap_config(emulator, lookback_minutes=lookback),
        state={"bookmarks": {received: {"since": since}, "other_tap_stream": {"since": since, "x": 1}}},
        streams=("receive",),
    )
    floor = timeutil.parse_datetime(since) - dt.timedelta(minutes=lookback)
    wanted = {e["id"] for e in events if timeutil.parse_datetime(e["attributes"]["datetime"]) >= floor}
    assert set(result.ids("receive")) == wanted
    assert 0 < len(wanted) < len(events)
    bookmarks = result.state["bookmarks"]
    assert received not in bookmarks, "the legacy entry is replaced by the stream's own bookmark"
    partition = next(p for p in bookmarks["receive"]["partitions"] if p["context"] == {"metric_id": received})
    assert partition["replication_key_value"] >= timeutil.to_rfc3339(timeutil.parse_datetime(since))
    assert "migrated singer-io bookmarks" in caplog.text


def test_a_future_bookmark_on_a_partitioned_stream_is_clamped_and_logged(emulator, account, caplog):
    received = klaviyo_metric_ids(account, "Received Email")[0]
    state = {"bookmarks": {"receive": {"partitions": [
        {"context": {"metric_id": received}, "replication_key": "datetime",
         "replication_key_value": "2999-01-01T00:00:00+00:00"},
    ]}}}
    caplog.set_level(logging.WARNING)
    result = run_tap(tap_config(emulator), state=state, streams=("receive",))
    assert "is in the future" in caplog.text
    # Clamped to now minus the lookback: only events of the last 3 hours (none in this account).
    assert result.records.get("receive", []) == []
    partition = result.state["bookmarks"]["receive"]["partitions"][0]
    assert partition["replication_key_value"] == "2999-01-01T00:00:00+00:00", "the bookmark is kept, not lost"


# --- Catalog ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("catalog", "fragments"),
    [
        ("{nope", ("--catalog file", "is not valid JSON")),
        ("[]", ("--catalog file", "must hold a JSON object, not list")),
        ({"streams": {"lists": {}}}, ("not a Singer catalog",)),
        ({"streams": [{"stream": "lists"}]}, ("not a Singer catalog", "tap_stream_id")),
    ],
)
def test_a_malformed_catalog_is_one_clear_line(emulator, tmp_path, catalog, fragments):
    result = run_cli(input_files={"--config": tap_config(emulator), "--catalog": catalog}, tmp_path=tmp_path)
    assert_clean_failure(result, *fragments)
    assert not emulator.requests


def unknown_entry(name: str) -> dict:
    return {
        "tap_stream_id": name,
        "stream": name,
        "schema": {"type": "object", "properties": {"id": {"type": "string"}}},
        "metadata": [{"breadcrumb": [], "metadata": {"selected": True}}],
    }


def test_unknown_catalog_streams_are_named_in_a_warning_and_the_rest_syncs(emulator, account, tmp_path):
    catalog = catalog_for("lists")
    catalog["streams"].append(unknown_entry("shipments"))
    result = run_cli(input_files={"--config": tap_config(emulator), "--catalog": catalog}, tmp_path=tmp_path)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr[-2000:]
    assert "stream(s) shipments that tap-klaviyo does not have" in stderr
    assert set(parse_messages(result.stdout).ids("lists")) == expected_keys(account, "lists")


def test_a_catalog_selecting_a_report_stream_that_report_streams_does_not_name_fails_before_any_request(emulator, tmp_path):
    result = run_cli(input_files={"--config": tap_config(emulator), "--catalog": catalog_for("lists", "flow_values_reports")}, tmp_path=tmp_path)
    assert_clean_failure(result, "selects the report stream(s) flow_values_reports", "add them to report_streams")
    assert not emulator.requests


def test_a_catalog_selecting_nothing_known_says_nothing_will_sync(emulator, tmp_path):
    catalog = {"streams": [unknown_entry("shipments")]}
    result = run_cli(input_files={"--config": tap_config(emulator), "--catalog": catalog}, tmp_path=tmp_path)
    stderr = result.stderr.decode()
    assert result.returncode == 0
    assert "selects no stream of tap-klaviyo" in stderr
    assert not emulator.requests


def test_a_catalog_naming_another_replication_key_warns_and_syncs(emulator, account, tmp_path):
    catalog = catalog_for("receive")
    entry = catalog["streams"][[e["tap_stream_id"] for e in catalog["streams"]].index("receive")]
    entry["replication_key"] = "timestamp"
    next(m for m in entry["metadata"] if m["breadcrumb"] == [])["metadata"]["replication-key"] = "timestamp"
    result = run_cli(input_files={"--config": tap_config(emulator), "--catalog": catalog}, tmp_path=tmp_path)
    stderr = result.stderr.decode()
    assert result.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr
    assert "names replication key 'timestamp' for stream 'receive'" in stderr
    assert set(parse_messages(result.stdout).ids("receive")) == expected_keys(account, "receive")


def deselect(catalog: dict, stream: str, *fields: str) -> dict:
    entry = next(e for e in catalog["streams"] if e["tap_stream_id"] == stream)
    for item in entry["metadata"]:
        if item["breadcrumb"] and item["breadcrumb"][-1] in fields:
            item["metadata"]["selected"] = False
    return catalog


def test_deselected_fields_are_left_out_but_keys_stay(emulator, account, config):
    from tap_klaviyo.tap import TapKlaviyo
    import contextlib as _c
    import io

    catalog = deselect(catalog_for("receive", "profiles"), "receive", "event_properties", "uuid", "id", "datetime")
    deselect(catalog, "profiles", "email", "location", "subscriptions")
    raw = io.BytesIO()
    out = io.TextIOWrapper(raw, encoding="utf-8")
    with _c.redirect_stdout(out):
        TapKlaviyo(config=config, catalog=catalog).sync_all()
        out.flush()
    result = parse_messages(raw.getvalue())
    events = result.records["receive"]
    assert {r["id"] for r in events} == expected_keys(account, "receive")
    for record in events:
        assert "event_properties" not in record and "uuid" not in record
        assert record["datetime"], "automatic fields (key, replication key) cannot be deselected"
    assert "event_properties" not in result.schemas["receive"]["properties"]
    profiles = result.records["profiles"]
    assert {r["id"] for r in profiles} == expected_keys(account, "profiles")
    assert not any({"email", "location", "subscriptions"} & set(r) for r in profiles)
    assert all("first_name" in r for r in profiles)


# --- API data -----------------------------------------------------------------------------


@contextlib.contextmanager
def mangled(emulator, path: str, change):
    """Let the emulator answer, then pass each 200 JSON body under `path` through `change(doc)`."""
    original = emulator.respond

    def respond(method, request_path, params, headers):
        status, response_headers, body = original(method, request_path, params, headers)
        if status == 200 and request_path.startswith(path):
            document = json.loads(body)
            change(document)
            body = json.dumps(document).encode()
        return status, response_headers, body

    emulator.respond = respond
    try:
        yield
    finally:
        emulator.respond = original


def for_ids(changes: dict):
    def change(document):
        for resource in document.get("data") or []:
            if resource["id"] in changes:
                changes[resource["id"]](resource)

    return change


def test_nulls_where_values_are_usual_are_emitted_as_nulls(emulator, account, config):
    ids = [item["id"] for item in account.lists()]

    def null_attributes(resource):
        resource["attributes"] = None

    def null_values(resource):
        resource["attributes"].update(name=None, created=None, updated=None, opt_in_process=None)

    def no_relationships(resource):
        resource.pop("relationships", None)
        resource["links"] = None

    with mangled(emulator, "/api/lists", for_ids({ids[0]: null_attributes, ids[1]: null_values, ids[2]: no_relationships})):
        result = run_tap(config, streams=("lists",))
    records = {r["id"]: r for r in result.records["lists"]}
    assert set(records) == expected_keys(account, "lists")
    assert records[ids[1]]["name"] is None and records[ids[1]]["updated"] is None
    assert {k: v for k, v in records[ids[0]].items() if k != "tag_ids"} == {"id": ids[0]}  # tags are relationships
    newest = max(item["attributes"]["updated"] for item in account.lists()[2:])
    assert result.state["bookmarks"]["lists"]["replication_key_value"] == newest


def test_events_with_null_relationships_and_fields_are_kept(emulator, account, config):
    received = klaviyo_metric_ids(account, "Received Email")[0]
    some = [e["id"] for e in account.events(metric_id=received)][5:8]

    def strip(resource):
        resource["relationships"] = None
        resource["attributes"]["event_properties"] = None
        resource["attributes"]["uuid"] = None

    with mangled(emulator, "/api/events", for_ids(dict.fromkeys(some, strip))):
        result = run_tap(config, streams=("receive",))
    records = {r["id"]: r for r in result.records["receive"]}
    assert set(records) == expected_keys(account, "receive")
    for event_id in some:
        assert records[event_id]["profile_id"] is None and records[event_id]["metric_id"] is None
        assert records[event_id]["event_properties"] is None


def test_attributes_not_in_the_schema_are_dropped_and_logged(emulator, account, config, caplog):
    def add(document):
        for resource in document["data"]:
            resource["attributes"]["brand_new_field"] = {"nested": [1, 2]}

    caplog.set_level(logging.DEBUG)
    with mangled(emulator, "/api/lists", add):
        result = run_tap(config, streams=("lists",))
    assert set(result.ids("lists")) == expected_keys(account, "lists")
    assert not any("brand_new_field" in r for r in result.records["lists"])
    assert "brand_new_field" in caplog.text


@pytest.mark.parametrize(("stream", "path"), [("lists", "/api/lists"), ("receive", "/api/events"), ("profiles", "/api/profiles")])
def test_unparseable_dates_become_null_with_a_warning_and_never_a_bookmark(emulator, account, config, caplog, stream, path):
    """A record with a garbage replication-key value is still emitted (it used to vanish), and
    the garbage never reaches the state, where it would break every later run."""
    key = {"lists": "updated", "receive": "datetime", "profiles": "updated"}[stream]
    other = {"lists": "created", "receive": None, "profiles": "created"}[stream]
    victims = sorted(expected_keys(account, stream))[:3]

    def garble(resource):
        resource["attributes"][key] = "not a date"
        if other:
            resource["attributes"][other] = 1700000000

    caplog.set_level(logging.WARNING)
    with mangled(emulator, path, for_ids(dict.fromkeys(victims, garble))):
        first = run_tap(config, streams=(stream,))
    records = {r["id"]: r for r in first.records[stream]}
    assert set(records) == expected_keys(account, stream)
    for victim in victims:
        assert records[victim][key] is None
        if other:
            assert records[victim][other] is None
    assert "'not a date' is not a date-time; emitted as null" in caplog.text
    bookmarks = json.dumps(first.state)
    assert "not a date" not in bookmarks
    second = run_tap(config, state=first.state, streams=(stream,))  # the state still works
    assert len(second.records.get(stream, [])) < len(records)


def test_an_event_date_time_beyond_utc_becomes_null_with_a_warning(emulator, account, config, caplog):
    victim = sorted(expected_keys(account, "receive"))[0]

    def far_future(resource):
        resource["attributes"]["datetime"] = "9999-12-31T23:00:00-05:00"

    caplog.set_level(logging.WARNING)
    with mangled(emulator, "/api/events", for_ids({victim: far_future})):
        result = run_tap(config, streams=("receive",))
    records = {r["id"]: r for r in result.records["receive"]}
    assert set(records) == expected_keys(account, "receive")
    assert records[victim]["datetime"] is None
    assert "'9999-12-31T23:00:00-05:00' is not a date-time; emitted as null" in caplog.text
    assert "9999" not in json.dumps(result.state)


def test_very_large_event_properties_arrive_intact(emulator, account, config):
    received = klaviyo_metric_ids(account, "Received Email")[0]
    profile = next(iter(account.profiles()))["id"]
    properties = {
        "items": [{"sku": f"SKU-{i}", "name": "x" * 200, "tags": ["a", "b", "c"], "price": i * 1.25} for i in range(4000)],
        "note": "é€😀" * 1000,
        "deep": {"a": {"b": {"c": {"d": {"e": list(range(100))}}}}},
    }
    assert len(json.dumps(properties)) > 1_000_000
    moment = account.now() - dt.timedelta(days=1)
    big = account.add_event(received, profile, moment, properties=properties)
    result = run_tap(config, streams=("receive",))
    records = {r["id"]: r for r in result.records["receive"]}
    assert set(records) == expected_keys(account, "receive")
    assert {k: v for k, v in records[big]["event_properties"].items() if not k.startswith("$")} == properties
