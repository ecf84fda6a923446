"""A full sync of every stream against the emulator returns exactly the account's records."""

from __future__ import annotations

import contextlib
import datetime as dt
import gzip
import io
import json
import re

import jsonschema
import msgspec
import pytest

from tap_klaviyo.streams import REPORT_STREAMS, STREAMS
from tap_klaviyo.tap import TapKlaviyo
from klaviyo_emulator import Account, Emulator
from tests.conftest import API_KEY, catalog_for, run_tap, tap_config
from tests.tap_klaviyo.expected import EVENT_STREAM_METRICS, expected_keys, klaviyo_metric_ids, record_keys

STREAM_NAMES = [stream.name for stream in STREAMS]  # the report streams: test_reports


@pytest.fixture(scope="module")
def module_emulator():
    with Emulator(Account.generate(seed=7, size="tiny"), rate_limits=False) as emu:
        yield emu


@pytest.fixture(scope="module")
def full_sync(module_emulator):
    return run_tap(tap_config(module_emulator))


@pytest.fixture
def account(module_emulator):
    return module_emulator.account


@pytest.mark.parametrize("stream", STREAM_NAMES)
def test_full_sync_returns_exactly_the_accounts_records(full_sync, account, stream):
    keys = record_keys(stream, full_sync.records.get(stream, []))
    assert len(keys) == len(set(keys)), f"{stream} emitted a primary key twice"
    assert set(keys) == expected_keys(account, stream)


@pytest.mark.parametrize("stream", STREAM_NAMES)
def test_every_record_validates_against_its_schema_with_formats(full_sync, stream):
    schema = full_sync.schemas[stream]
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    records = full_sync.records.get(stream, [])
    assert records, f"the tiny account should have {stream} records"
    for record in records:
        errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in validator.iter_errors(record)]
        assert not errors, f"{stream} record {record.get('id')}: {errors[:3]}"


def test_report_streams_are_offered_only_when_report_streams_names_them(full_sync):
    """Their daily allowance is scarce: a catalog that selects every stream must not spend it."""
    reports = {stream.name for stream in REPORT_STREAMS}
    assert reports == {f"{kind}_{shape}_reports" for kind in ("campaign", "flow", "form", "segment") for shape in ("values", "series")} - {"campaign_series_reports"}
    assert set(STREAM_NAMES) == set(full_sync.schemas), "without a catalog every other stream is synced"
    assert not reports & {entry["tap_stream_id"] for entry in TapKlaviyo(config={"api_key": API_KEY}).catalog_dict["streams"]}
    offered = TapKlaviyo(config={"api_key": API_KEY, "report_streams": ["form_values_reports"]}).catalog_dict["streams"]
    (entry,) = [entry for entry in offered if entry["tap_stream_id"] in reports]
    root = next(item["metadata"] for item in entry["metadata"] if item["breadcrumb"] == [])
    assert entry["tap_stream_id"] == "form_values_reports" and root["selected-by-default"] is True


def test_records_are_flat_with_relationship_ids_and_rfc3339_datetimes(full_sync, account):
    event = full_sync.records["receive"][0]
    assert {"id", "datetime", "timestamp", "event_properties", "uuid", "profile_id", "metric_id"} <= set(event)
    assert "attributes" not in event and "links" not in event and "relationships" not in event
    assert event["datetime"][10] == "T", "the API's space-separated datetime must be emitted as RFC 3339"
    assert isinstance(event["event_properties"], dict)
    raw = next(e for e in account.events(metric_id=event["metric_id"]) if e["id"] == event["id"])
    assert raw["attributes"]["datetime"].replace(" ", "T") == event["datetime"]
    assert raw["relationships"]["profile"]["data"]["id"] == event["profile_id"]


def test_streams_emit_in_replication_key_order(full_sync):
    for stream in ("profiles", "global_exclusions", "receive", "lists"):
        values = [r[{"profiles": "updated", "lists": "updated", "global_exclusions": "suppression_timestamp"}.get(stream, "datetime")]
                  for r in full_sync.records[stream]]
        assert values == sorted(values), stream


def test_click_ignores_a_same_named_metric_of_another_integration(full_sync, account):
    other = [
        m["id"]
        for m in account.metrics()
        if m["attributes"]["name"] == "Clicked Email" and m["attributes"]["integration"]["key"] != "klaviyo"
    ]
    assert other, "the account must carry a same-named custom metric"
    metric_ids = {record["metric_id"] for record in full_sync.records["click"]}
    assert metric_ids == set(klaviyo_metric_ids(account, "Clicked Email"))
    assert not metric_ids & set(other)


def test_unsubscribe_reads_both_metric_names(full_sync, account):
    metric_ids = {record["metric_id"] for record in full_sync.records["unsubscribe"]}
    assert metric_ids == set(klaviyo_metric_ids(account, *EVENT_STREAM_METRICS["unsubscribe"]))
    assert len(metric_ids) == 2


def test_global_exclusions_carry_all_five_reasons(full_sync):
    records = full_sync.records["global_exclusions"]
    reasons = {item["reason"] for record in records for item in record["suppression"]}
    assert reasons == {"HARD_BOUNCE", "INVALID_EMAIL", "SPAM_COMPLAINT", "UNSUBSCRIBE", "USER_SUPPRESSED"}
    for record in records:
        assert record["suppression_timestamp"] == max(i["timestamp"] for i in record["suppression"]).replace(" ", "T")
        assert "email" in record and "phone_number" in record


def test_campaigns_cover_every_channel_archived_or_not_with_messages(full_sync):
    records = full_sync.records["campaigns"]
    seen = {(record["channel"], record["archived"]) for record in records}
    assert seen == {(c, a) for c in ("email", "sms", "mobile_push") for a in (True, False)}
    assert all(record["campaign_messages"] for record in records)
    assert all(message["id"] and "definition" in message for r in records for message in r["campaign_messages"])


def test_list_members_are_read_a_page_of_full_profiles_at_a_time(emulator, config, account):
    result = run_tap(config, streams=("list_members",))
    member_requests = [r for r in emulator.requests if r.path.startswith("/api/lists/") and r.path.rstrip("/").endswith("/profiles")]
    assert len(member_requests) < len(result.records["list_members"]) / 5
    assert all(r.query.get("page[size]") == "100" for r in member_requests)
    assert all(record.get("email") is not None or record.get("phone_number") is not None for record in result.records["list_members"])


def test_an_account_without_the_metric_gets_the_schema_no_records_and_a_reason(caplog):
    # As when Klaviyo renames a metric: the stream's metric name is no longer in the account.
    account = Account.generate(seed=11, size="tiny")
    for metric_id in klaviyo_metric_ids(account, "Dropped Email"):
        account.metric_by_id[metric_id].attrs["name"] = "Dropped Email (renamed)"
    with Emulator(account, rate_limits=False) as emulator, caplog.at_level("WARNING"):
        result = run_tap(tap_config(emulator), streams=("dropped_email",))
    assert "dropped_email" in result.schemas
    assert result.records.get("dropped_email", []) == []
    assert "no Klaviyo metric named 'Dropped Email'" in caplog.text
    assert not [r for r in emulator.requests if r.path.startswith("/api/events")]


def test_stream_maps_see_event_properties_as_objects(module_emulator, full_sync):
    """event_properties pass through undecoded only while nothing reads them: a map does."""
    config = tap_config(module_emulator, stream_maps={"receive": {"subject": "event_properties['Subject']"}})
    mapped = run_tap(config, streams=("receive",)).records["receive"]
    plain = {record["id"]: record for record in full_sync.records["receive"]}
    assert [record["id"] for record in mapped] == list(plain)
    for record in mapped:
        assert record["subject"] == plain[record["id"]]["event_properties"]["Subject"]
        assert record["event_properties"] == plain[record["id"]]["event_properties"]


def test_flattening_serializes_event_properties(module_emulator, full_sync):
    """The SDK's flattening writes an object without declared properties as a JSON string."""
    config = tap_config(module_emulator, flattening_enabled=True, flattening_max_depth=1)
    flat = run_tap(config, streams=("receive",)).records["receive"]
    plain = {record["id"]: record for record in full_sync.records["receive"]}
    assert len(flat) == len(plain)
    for record in flat:
        assert json.loads(record["event_properties"]) == plain[record["id"]]["event_properties"]


@pytest.mark.parametrize("indent", [None, 2])
def test_event_pages_decode_to_the_same_single_line_records_compact_or_pretty(module_emulator, account, indent):
    """Undecoded JSON is written out as it is, so a body with line breaks is made single-line
    first (else one RECORD would span several lines of the Singer stream)."""
    from tap_klaviyo.tap import TapKlaviyo

    stream = TapKlaviyo(config=tap_config(module_emulator), parse_env_config=False).streams["receive"]
    metric_id = klaviyo_metric_ids(account, "Received Email")[0]
    events = list(account.events(metric_id=metric_id))[:3]
    body = json.dumps({"data": events, "links": {"next": None}}, indent=indent).encode()
    records = stream.records_of(stream.decode(body))
    assert [record["id"] for record in records] == [event["id"] for event in events]
    for record, event in zip(records, events):
        line = msgspec.json.encode(record)
        assert b"\n" not in line
        assert msgspec.json.decode(line)["event_properties"] == event["attributes"]["event_properties"]


def record_lines(config: dict, catalog: dict) -> tuple[list[bytes], bool]:
    """The RECORD lines of an in-process sync as written, and whether its one stream wrote its
    records straight as built."""
    from tap_klaviyo.tap import TapKlaviyo

    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="utf-8")
    with contextlib.redirect_stdout(stdout):
        tap = TapKlaviyo(config=config, catalog=catalog)
        tap.sync_all()
        stdout.flush()
    (stream,) = (stream for stream in tap.streams.values() if stream.selected)
    lines = [line for line in raw.getvalue().splitlines() if line.startswith(b'{"type":"RECORD"')]
    return lines, stream._records_go_out_as_built


@pytest.mark.parametrize("full_table", [False, True], ids=["incremental", "FULL_TABLE, records with a version"])
@pytest.mark.parametrize("stream", ["receive", "events"])
def test_records_written_as_built_are_the_bytes_of_the_sdks_path(module_emulator, stream, full_table):
    """Without maps, with every field, events go from the passthrough decoder straight into their
    RECORD lines; a stream map that changes nothing takes the SDK's path (decoded event_properties,
    its mapper and RecordMessage). Both write the same bytes, attributions included, but for
    time_extracted and the version (a run's start time)."""
    catalog = catalog_for(stream)
    if full_table:
        (entry,) = (entry for entry in catalog["streams"] if entry["tap_stream_id"] == stream)
        entry["replication_method"] = "FULL_TABLE"
    config = tap_config(module_emulator, emit_activate_version_messages=True)
    fast, as_built = record_lines(config, catalog)
    sdk, sdk_as_built = record_lines({**config, "stream_maps": {stream: {"id": "id"}}}, catalog)
    assert as_built and not sdk_as_built
    assert len(fast) > 1000
    assert all((b',"version":' in line) == full_table and b',"time_extracted":"' in line for line in fast + sdk)
    run_specific = re.compile(rb',"version":\d+|,"time_extracted":"[^"]+"')
    assert [run_specific.sub(b"", line) for line in fast] == [run_specific.sub(b"", line) for line in sdk]
    if stream == "events":
        assert any(b'"attributed_campaign_id":"' in line for line in fast)


def test_batch_files_hold_the_same_event_records(module_emulator, full_sync, tmp_path):
    batch = {"encoding": {"format": "jsonl", "compression": "gzip"}, "storage": {"root": tmp_path.as_uri()}}
    result = run_tap(tap_config(module_emulator, batch_config=batch), streams=("receive",))
    assert "receive" not in result.records
    files = [name.removeprefix("file://") for m in result.messages if m["type"] == "BATCH" for name in m["manifest"]]
    assert files
    records = [json.loads(line) for name in files for line in gzip.open(name, "rt")]
    assert records == full_sync.records["receive"]


def test_records_carry_the_time_they_were_extracted(module_emulator):
    before = dt.datetime.now(dt.timezone.utc)
    result = run_tap(tap_config(module_emulator), streams=("receive", "lists"))
    after = dt.datetime.now(dt.timezone.utc)
    stamps = [dt.datetime.fromisoformat(m["time_extracted"]) for m in result.messages if m["type"] == "RECORD"]
    assert stamps and all(before <= stamp <= after for stamp in stamps)
    assert stamps == sorted(stamps)
