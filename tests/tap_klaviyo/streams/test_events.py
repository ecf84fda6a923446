"""The `events` stream, metric selection, attribution, user-defined metric streams and late events.

(The full sync of every stream equals the account and validates against its schema:
tests/tap_klaviyo/test_streams.py. Here: what selection, attribution and the next run bring.)
"""

from __future__ import annotations

import datetime as dt
import logging
import time


from tap_klaviyo import timeutil
from tests.conftest import run_tap, tap_config
from tests.tap_klaviyo.expected import event_ids, listed_metric_ids

LOOKBACK = 60


def partition_bookmarks(state: dict, stream: str) -> dict[str, str]:
    """Metric id -> bookmark, for the metrics that had events."""
    partitions = state["bookmarks"][stream]["partitions"]
    return {p["context"]["metric_id"]: p["replication_key_value"] for p in partitions if "replication_key_value" in p}


def test_events_equals_every_event_of_every_listed_metric(emulator, account):
    result = run_tap(tap_config(emulator), streams=("events",))
    ids = result.ids("events")
    assert len(ids) == len(set(ids))
    assert set(ids) == event_ids(account, listed_metric_ids(account))
    metrics = {m["id"]: m["attributes"] for m in account.metrics()}
    integrations = {metrics[r["metric_id"]]["integration"]["key"] for r in result.records["events"]}
    assert {"klaviyo", "api", "shopify", "woocommerce", "segment"} <= integrations
    custom = [m for m, a in metrics.items() if a["name"].startswith("Custom Metric")]
    assert {r["metric_id"] for r in result.records["events"]} >= {m for m in custom if list(account.events(m))}
    assert set(partition_bookmarks(result.state, "events")) == {m for m in metrics if list(account.events(m))}


def test_a_second_run_brings_only_new_and_late_events(emulator, account):
    config = tap_config(emulator, lookback_minutes=LOOKBACK, late_event_days=0)
    first = run_tap(config, streams=("events",))
    marks = partition_bookmarks(first.state, "events")
    placed = account.metric_ids("Placed Order", "shopify")[0]
    custom = account.metric_ids("Custom Metric 007", "api")[0]
    profile = next(account.profiles())["id"]
    fresh = account.add_event(custom, profile, account.now() - dt.timedelta(minutes=2))
    mark = timeutil.parse_datetime(marks[placed])
    late = account.add_event(placed, profile, mark - dt.timedelta(minutes=LOOKBACK / 2))
    time.sleep(1.1)

    second = run_tap(config, state=first.state, streams=("events",))

    ids = set(second.ids("events"))
    assert {fresh, late} <= ids
    expected = set()
    for metric_id, value in marks.items():
        since = timeutil.parse_datetime(value) - dt.timedelta(minutes=LOOKBACK)
        expected |= {e["id"] for e in account.events(metric_id) if timeutil.parse_datetime(e["attributes"]["datetime"]) >= since}
    expected |= {fresh}
    assert ids == expected, "only the lookback window of each metric, and what is new"


def test_event_metrics_select_by_id_name_and_integration(emulator, account, caplog):
    shopify_order = account.metric_ids("Placed Order", "shopify")[0]
    woo_order = account.metric_ids("Placed Order", "woocommerce")[0]
    bounced = account.metric_ids("Bounced Email")[0]
    opened = account.metric_ids("Opened Email")[0]
    config = tap_config(emulator, event_metrics=["shopify:Placed Order", "Bounced Email", opened])
    result = run_tap(config, streams=("events",))
    assert {r["metric_id"] for r in result.records["events"]} == {shopify_order, bounced, opened}
    assert set(result.ids("events")) == event_ids(account, [shopify_order, bounced, opened])
    # A bare name takes every integration's metric of that name.
    result = run_tap(tap_config(emulator, event_metrics=["Placed Order"]), streams=("events",))
    assert {r["metric_id"] for r in result.records["events"]} == {shopify_order, woo_order}


def test_an_event_metric_that_matches_nothing_warns_with_the_closest_names(emulator, caplog):
    caplog.set_level(logging.WARNING)
    result = run_tap(tap_config(emulator, event_metrics=["Placed Ordr", "Opened Email"]), streams=("events",))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("'Placed Ordr' matches no metric" in w and "'Placed Order'" in w for w in warnings), warnings
    assert result.records["events"], "the other metric is still read"


def test_attribution_columns_equal_the_accounts_attributions(emulator, account):
    conversions = [m for name in ("Placed Order", "Ordered Product", "Started Checkout") for m in account.metric_ids(name, "shopify")]
    received = account.metric_ids("Received Email")[0]
    result = run_tap(tap_config(emulator, event_metrics=[*conversions, received]), streams=("events",))
    truth = account.attributions()
    columns = ("attributed_campaign_id", "attributed_campaign_message_id", "attributed_flow_id", "attributed_flow_message_id", "attributed_event_id")
    attributed = 0
    for record in result.records["events"]:
        expected = truth.get(record["id"])
        got = {column: record[column] for column in columns}
        if expected is None:
            assert got == dict.fromkeys(columns), record["id"]
            continue
        attributed += 1
        assert got == {
            "attributed_campaign_id": expected["campaign_id"],
            "attributed_campaign_message_id": expected["campaign_message_id"],
            "attributed_flow_id": expected["flow_id"],
            "attributed_flow_message_id": expected["flow_message_id"],
            "attributed_event_id": expected["attributed_event_id"],
        }
    assert attributed == len([e for e in truth if e in set(result.ids("events"))]) > 0


def test_attribution_that_lands_late_is_caught_by_the_lookback(emulator, account):
    config = tap_config(emulator, event_metrics=["shopify:Placed Order"], late_event_days=0)
    placed = account.metric_ids("Placed Order", "shopify")[0]
    profile = next(account.profiles())["id"]
    flow_message = next(iter(account.flow_message_by_id))
    now = account.now()
    event = account.add_event(placed, profile, now - dt.timedelta(minutes=10), attribution={"flow_message": flow_message},
                              attributed_at=now + dt.timedelta(seconds=3))  # fmt: skip
    first = run_tap(config, streams=("events",))
    (before,) = [r for r in first.records["events"] if r["id"] == event]
    assert before["attributed_flow_message_id"] is None, "not attributed yet"
    time.sleep(3.2)
    second = run_tap(config, state=first.state, streams=("events",))
    (after,) = [r for r in second.records["events"] if r["id"] == event]
    assert after["attributed_flow_message_id"] == flow_message


def test_singer_ios_per_metric_streams_are_all_built_in():
    from tap_klaviyo.streams import STREAMS
    from tests.tap_klaviyo.expected import SINGER_IO_EVENT_STREAMS

    names = {stream.name for stream in STREAMS}
    assert set(SINGER_IO_EVENT_STREAMS) <= names


def test_a_renamed_sms_metric_keeps_feeding_its_stream_and_bookmark(emulator, account):
    config = tap_config(emulator, late_event_days=0)
    sent = account.metric_ids("Sent SMS")[0]
    first = run_tap(config, streams=("sent_text_message",))
    assert set(first.ids("sent_text_message")) == event_ids(account, [sent])
    account.rename_metric(sent, "Sent Text Message")
    profile = next(account.profiles())["id"]
    new = account.add_event(sent, profile, account.now() - dt.timedelta(minutes=1))
    time.sleep(1.1)
    second = run_tap(config, state=first.state, streams=("sent_text_message",))
    assert new in second.ids("sent_text_message")
    assert list(partition_bookmarks(second.state, "sent_text_message")) == [sent]
    assert len(second.ids("sent_text_message")) < len(first.ids("sent_text_message")), "resumed from its bookmark"


# ---- metric_streams

MY_STREAMS = {"placed_order": ["shopify:Placed Order"], "sms_received": ["Received SMS", "Received Text Message"]}


def run_streams(config: dict, *streams: str, state: dict | None = None):
    """A sync of these streams, with a catalog discovered from this config (so it holds its metric_streams)."""
    import contextlib
    import io

    from tap_klaviyo.tap import TapKlaviyo
    from tests.conftest import parse_messages

    catalog = TapKlaviyo(config=config, validate_config=False).catalog_dict
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] in streams
    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="utf-8")
    with contextlib.redirect_stdout(stdout):
        TapKlaviyo(config=config, state=state, catalog=catalog).sync_all()
        stdout.flush()
    return parse_messages(raw.getvalue())


def test_metric_streams_select_exactly_what_they_name(emulator, account):
    config = tap_config(emulator, metric_streams=MY_STREAMS, late_event_days=0)
    result = run_streams(config, "placed_order", "sms_received")
    assert set(result.ids("placed_order")) == event_ids(account, account.metric_ids("Placed Order", "shopify"))
    assert set(result.ids("sms_received")) == event_ids(account, account.metric_ids("Received SMS"))
    assert result.schemas["placed_order"]["properties"] == result.schemas["sms_received"]["properties"]
    assert "attributed_campaign_id" in result.schemas["placed_order"]["properties"]
    assert set(partition_bookmarks(result.state, "placed_order")) == set(account.metric_ids("Placed Order", "shopify"))


def test_a_metric_stream_keeps_its_bookmark_across_a_rename(emulator, account):
    config = tap_config(emulator, metric_streams=MY_STREAMS, late_event_days=0)
    first = run_streams(config, "sms_received")
    received = account.metric_ids("Received SMS")[0]
    account.rename_metric(received, "Received Text Message")
    new = account.add_event(received, next(account.profiles())["id"], account.now() - dt.timedelta(minutes=1))
    time.sleep(1.1)
    second = run_streams(config, "sms_received", state=first.state)
    assert new in second.ids("sms_received")
    assert set(second.ids("sms_received")) < set(first.ids("sms_received")) | {new}, "resumed, not read again"
    assert list(partition_bookmarks(second.state, "sms_received")) == [received]


def test_discovery_lists_metric_streams_and_a_clash_is_a_one_line_error(tmp_path):
    import json

    from tests.conftest import API_KEY, run_cli

    found = run_cli("--discover", input_files={"--config": {"api_key": API_KEY, "metric_streams": MY_STREAMS}}, tmp_path=tmp_path)
    assert found.returncode == 0, found.stderr[-2000:]
    entries = {entry["tap_stream_id"]: entry for entry in json.loads(found.stdout)["streams"]}
    assert {"placed_order", "sms_received", "events", "receive"} <= set(entries)
    assert entries["placed_order"]["key_properties"] == ["id"]
    assert entries["placed_order"]["replication_key"] == "datetime"
    plain = run_cli("--discover", input_files={"--config": {"api_key": API_KEY}}, tmp_path=tmp_path)
    assert "placed_order" not in {entry["tap_stream_id"] for entry in json.loads(plain.stdout)["streams"]}
    for bad, says in (({"receive": ["Received Email"]}, "'receive' is the name of a built-in stream"),
                      ({"Bad Name": ["x"]}, "'Bad Name' is not a stream name"), ({"empty": []}, "'empty' must list")):  # fmt: skip
        for args in (("--discover",), ()):
            run = run_cli(*args, input_files={"--config": {"api_key": API_KEY, "metric_streams": bad}}, tmp_path=tmp_path)
            assert run.returncode == 1
            errors = [line for line in run.stderr.decode().splitlines() if says in line]
            assert len(errors) == 1, run.stderr.decode()[-1500:]
            assert "Traceback" not in run.stderr.decode()


# ---- late events: per-day counts against Klaviyo's metric aggregates


def event_requests(emulator, since: int) -> tuple[list, list]:
    """(GET /api/events, POST /api/metric-aggregates) requests served after index `since`."""
    served = emulator.requests[since:]
    gets = [r for r in served if r.method == "GET" and r.path.rstrip("/") == "/api/events"]
    posts = [r for r in served if r.method == "POST" and r.path.rstrip("/") == "/api/metric-aggregates"]
    return gets, posts


def test_an_event_visible_five_days_late_is_emitted_next_run_and_unchanged_days_cost_no_read(emulator, account):
    placed = account.metric_ids("Placed Order", "shopify")[0]
    bounced = account.metric_ids("Bounced Email")[0]
    config = tap_config(emulator, lookback_minutes=LOOKBACK, event_metrics=[placed, bounced])
    profile = next(account.profiles())["id"]
    now = account.now()
    five_days_ago = now - dt.timedelta(days=5)
    late = account.add_event(placed, profile, five_days_ago, visible_at=now + dt.timedelta(seconds=2))
    on_time = account.add_event(bounced, profile, now - dt.timedelta(days=3))
    recent = {account.add_event(metric, profile, now - dt.timedelta(minutes=10)) for metric in (placed, bounced)}

    first = run_tap(config, streams=("events",))
    assert late not in first.ids("events") and on_time in first.ids("events")
    late_state = {p["context"]["metric_id"]: p["late_events"] for p in first.state["bookmarks"]["events"]["partitions"]}
    assert all(len(entry["days"]) <= 7 for entry in late_state.values()), "N numbers per metric"
    assert late_state[bounced]["days"][(now - dt.timedelta(days=3)).date().isoformat()] == 1
    time.sleep(2.2)

    before = len(emulator.requests)
    second = run_tap(config, state=first.state, streams=("events",))
    gets, posts = event_requests(emulator, before)
    assert late in second.ids("events")
    assert set(second.ids("events")) == {late} | recent, "nothing else is new; the lookback holds the recent ones"
    assert len(posts) == 2, "one count request per metric"
    day = five_days_ago.date().isoformat()
    rereads = [r for r in gets if f"greater-or-equal(datetime,{day}T00:00:00Z)" in r.query.get("filter", "")]
    assert len(rereads) == 1 and f'equals(metric_id,"{placed}")' in rereads[0].query["filter"]
    assert len(gets) == 3, "one window read per metric, and the one day that changed"

    before = len(emulator.requests)
    third = run_tap(config, state=second.state, streams=("events",))
    gets, posts = event_requests(emulator, before)
    assert set(third.ids("events")) == recent and len(posts) == 2 and len(gets) == 2, "an unchanged day costs no read"


def test_late_events_of_several_days_and_the_lookback_day_are_all_caught(emulator, account):
    placed = account.metric_ids("Placed Order", "shopify")[0]
    config = tap_config(emulator, lookback_minutes=LOOKBACK, event_metrics=[placed])
    profile = next(account.profiles())["id"]
    now = account.now()
    account.add_event(placed, profile, now - dt.timedelta(minutes=30))  # the bookmark is recent
    first = run_tap(config, streams=("events",))
    mark = timeutil.parse_datetime(partition_bookmarks(first.state, "events")[placed])
    # Before the lookback: on its day, the day before, and early on the oldest of the 7 tracked days (relative
    # to the bookmark, 6 days back would leave the tracked days when the test runs just after midnight UTC).
    oldest_tracked_day = dt.datetime.combine(now.date() - dt.timedelta(days=6), dt.time(0, 30), tzinfo=dt.timezone.utc)
    late = {
        *(account.add_event(placed, profile, mark - dt.timedelta(days=days, minutes=LOOKBACK + 5)) for days in (0, 1)),
        account.add_event(placed, profile, oldest_tracked_day),
    }
    too_old = account.add_event(placed, profile, now - dt.timedelta(days=9))
    time.sleep(1.1)
    second = run_tap(config, state=first.state, streams=("events",))
    assert late <= set(second.ids("events"))
    assert too_old not in second.ids("events"), "older than late_event_days: the residual risk"
    before = len(emulator.requests)
    third = run_tap(config, state=second.state, streams=("events",))
    gets, _ = event_requests(emulator, before)
    assert not (late & set(third.ids("events"))) and len(gets) == 1


def test_late_event_days_zero_turns_the_check_off(emulator, account):
    placed = account.metric_ids("Placed Order", "shopify")[0]
    config = tap_config(emulator, event_metrics=[placed], late_event_days=0, lookback_minutes=LOOKBACK)
    profile = next(account.profiles())["id"]
    recent = account.add_event(placed, profile, account.now() - dt.timedelta(minutes=10))
    first = run_tap(config, streams=("events",))
    account.add_event(placed, profile, account.now() - dt.timedelta(days=2))
    before = len(emulator.requests)
    second = run_tap(config, state=first.state, streams=("events",))
    _, posts = event_requests(emulator, before)
    assert posts == [] and second.ids("events") == [recent], "the late event is missed without the check"
    assert all("late_events" not in p for p in second.state["bookmarks"]["events"]["partitions"])


def test_end_to_end_through_the_cli(tmp_path, emulator, account):
    """A target's view: stdout ends with STATE and holds every record the log counts, on both runs."""
    from tests.tap_klaviyo.test_target_view import cli

    config = tap_config(emulator, lookback_minutes=LOOKBACK, metric_streams=MY_STREAMS)
    placed = account.metric_ids("Placed Order", "shopify")[0]
    profile = next(account.profiles())["id"]
    now = account.now()
    recent = account.add_event(placed, profile, now - dt.timedelta(minutes=10))
    # Stored late: visible from an hour on, which the emulator's clock reaches only between the two runs.
    late = account.add_event(placed, profile, now - dt.timedelta(days=5), visible_at=now + dt.timedelta(hours=1))
    first = cli(tmp_path, config)
    first.check()
    assert {"events", "placed_order", "sms_received", "receive"} <= set(first.records)
    assert {r["id"] for r in first.records["events"]} == event_ids(account, listed_metric_ids(account)) - {late}
    assert {r["id"] for r in first.records["placed_order"]} >= {recent}
    account.set_clock(now + dt.timedelta(hours=2))
    try:
        second = cli(tmp_path, config, state=first.state)
    finally:
        account.set_clock(None)
    second.check()
    for stream in ("events", "placed_order"):
        assert late in {r["id"] for r in second.records[stream]}, stream
    assert "reading the day again" in second.stderr


def test_an_unreadable_late_state_is_counted_afresh(emulator, account, caplog):
    placed = account.metric_ids("Placed Order", "shopify")[0]
    config = tap_config(emulator, event_metrics=[placed])
    first = run_tap(config, streams=("events",))
    state = first.state
    for partition in state["bookmarks"]["events"]["partitions"]:
        partition["late_events"] = {"from": "not a time", "days": {"2026-01-01": "x"}}
    caplog.set_level(logging.WARNING)
    second = run_tap(config, state=state, streams=("events",))
    assert any("unreadable; late events are counted afresh" in r.getMessage() for r in caplog.records)
    (partition,) = second.state["bookmarks"]["events"]["partitions"]
    assert timeutil.parse_datetime(partition["late_events"]["from"])
