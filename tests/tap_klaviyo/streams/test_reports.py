"""Report streams: the request plan, the conversion metric, and rows against the emulator's account."""

from __future__ import annotations

import collections
import datetime as dt
import logging
import time
from functools import cache

import pytest
import requests

from klaviyo_emulator import Account, Emulator
from tap_klaviyo import timeutil
from tap_klaviyo.client import KlaviyoAPIError
from tap_klaviyo.streams.reports import Chunk, chunks_backward, conversion_metric_id, plan_series, span_after
from tap_klaviyo.tap import TapKlaviyo
from tests.conftest import assert_missing_scope_is_named, run_tap, tap_config, with_reports

D = dt.date


def days(chunks: list[Chunk]) -> set[dt.date]:
    return {chunk.start + dt.timedelta(days=i) for chunk in chunks for i in range((chunk.end - chunk.start).days)}


def test_chunks_are_at_most_60_days_most_recent_first_and_cover_the_range_once():
    chunks = chunks_backward(D(2026, 1, 1), D(2026, 12, 3), 60)
    assert chunks[0].end == D(2026, 12, 3) and chunks[-1].start == D(2026, 1, 1)
    assert all(0 < (c.end - c.start).days <= 60 for c in chunks)
    assert all(newer.start == older.end for newer, older in zip(chunks, chunks[1:]))
    assert len(chunks) == 6  # 336 days


def test_first_run_reads_the_most_recent_chunks_the_allowance_covers():
    plan = plan_series(D(2025, 12, 3), D(2026, 12, 3), None, 30, allowance=2)
    assert [c.end for c in plan.chunks] == [D(2026, 12, 3), D(2026, 10, 4)]
    assert len(plan.left) == 5 and plan.left[-1].start == D(2025, 12, 3)
    assert days(plan.chunks) | days(plan.left) == days([Chunk(D(2025, 12, 3), D(2026, 12, 3))])


def test_a_later_run_reads_the_lookback_then_the_older_history_left():
    # the last run read 2026-08-05 .. 2026-12-01 (exclusive); two days later, lookback 30
    plan = plan_series(D(2025, 12, 3), D(2026, 12, 3), (D(2026, 8, 5), D(2026, 12, 1)), 30, allowance=3)
    recent, *older = plan.chunks
    assert recent == Chunk(D(2026, 11, 1), D(2026, 12, 3))
    assert older[0].end == D(2026, 8, 5) and all((c.end - c.start).days == 60 for c in older)
    assert days(plan.chunks) | days(plan.left) == days([Chunk(D(2025, 12, 3), D(2026, 8, 5)), recent])


def test_span_joins_the_earlier_span_only_where_the_run_reached_it():
    plan = plan_series(D(2025, 1, 1), D(2026, 12, 3), (D(2026, 8, 5), D(2026, 12, 1)), 30, allowance=9)
    assert span_after(plan, D(2026, 11, 1), D(2026, 12, 3)) == (D(2026, 8, 5), D(2026, 12, 3))
    assert span_after(plan, D(2026, 6, 6), D(2026, 12, 3)) == (D(2026, 6, 6), D(2026, 12, 3))
    # a run that stopped short of the earlier span (not run for months): the span is this run's alone
    stale = plan_series(D(2025, 1, 1), D(2026, 12, 3), (D(2026, 1, 1), D(2026, 3, 1)), 30, allowance=1)
    assert span_after(stale, stale.chunks[0].start, D(2026, 12, 3)) == (stale.chunks[0].start, D(2026, 12, 3))


def test_with_no_lookback_the_day_read_so_far_is_read_again():
    """The span ends at the day of the run (read only so far): the next run starts there even with a lookback of 0."""
    plan = plan_series(D(2026, 1, 1), D(2026, 12, 4), (D(2026, 6, 1), D(2026, 12, 2)), 0, allowance=5)
    assert plan.chunks[0] == Chunk(D(2026, 12, 2), D(2026, 12, 4))


def test_start_after_the_earlier_span_reads_afresh():
    plan = plan_series(D(2026, 6, 1), D(2026, 12, 3), (D(2025, 1, 1), D(2025, 3, 1)), 30, allowance=10)
    assert days(plan.chunks) == days([Chunk(D(2026, 6, 1), D(2026, 12, 3))]) and not plan.left


METRICS = [
    {"id": "PO1", "name": "Placed Order", "integration": {"key": "shopify"}},
    {"id": "AO1", "name": "Active on Site", "integration": {"key": "api"}},
]


def test_conversion_metric_defaults_to_the_one_placed_order_and_takes_ids_and_names():
    assert conversion_metric_id(METRICS, None) == "PO1"
    assert conversion_metric_id(METRICS, "AO1") == "AO1"
    assert conversion_metric_id(METRICS, "api:Active on Site") == "AO1"


@pytest.mark.parametrize(
    ("metrics", "selector", "says"),
    [
        (METRICS[1:], None, "the account has no 'Placed Order' metric"),
        ([*METRICS, {"id": "PO2", "name": "Placed Order", "integration": {"key": "woocommerce"}}], None, "shopify:Placed Order (PO1), woocommerce:Placed Order (PO2)"),
        (METRICS, "Active on Sit", "Closest: 'Active on Site'"),
    ],
)
def test_conversion_metric_errors_are_one_line_naming_the_choices(metrics, selector, says):
    with pytest.raises(KlaviyoAPIError) as error:
        conversion_metric_id(metrics, selector)
    assert says in str(error.value) and "\n" not in str(error.value)


# ------------------------------------------------------------------ against the emulator, on a virtual clock

REPORTS = ("campaign_values_reports", "flow_values_reports", "flow_series_reports", "form_values_reports",
           "form_series_reports", "segment_values_reports", "segment_series_reports")  # fmt: skip
PATHS = {name: "/api/" + name.replace("_", "-") for name in REPORTS}
HISTORY_START = "2026-05-01T00:00:00Z"  # the account's events end on 2026-06-30: four 60-day chunks reach them


class VirtualClock:
    """Epoch seconds shared by the tap's limiters and the emulator's; the tap's waits advance it."""

    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@pytest.fixture
def clock(monkeypatch) -> VirtualClock:
    clock = VirtualClock()

    def wait(tap, seconds):
        clock.advance(seconds)
        return tap.cancelled.is_set()

    monkeypatch.setattr(TapKlaviyo, "clock", staticmethod(clock))
    monkeypatch.setattr(TapKlaviyo, "wait", wait)
    monkeypatch.setattr(timeutil, "utcnow", lambda: dt.datetime.fromtimestamp(clock.now, dt.timezone.utc))
    return clock


@pytest.fixture(scope="module")
def report_account() -> Account:
    return Account.generate(seed=7, size="tiny")


@pytest.fixture
def limited(report_account, clock):
    """The emulator with Klaviyo's rate limits (1/s, 2/min, 225/day per report endpoint) on the virtual clock."""
    with Emulator(report_account, rate_limits=True, clock=clock) as emulator:
        yield emulator


def report_config(emulator, **overrides) -> dict:
    return with_reports(tap_config(emulator, **{"conversion_metric": "shopify:Placed Order", "start_date": HISTORY_START, **overrides}))


def report_requests(emulator, path: str) -> list:
    return [r for r in emulator.requests if r.method == "POST" and r.path == path]


def assert_within_klaviyo_limits(emulator, daily: int = 225) -> None:
    """No endpoint got more than 2 report requests in any 60 s or 225 (`daily`) in any day; none was refused."""
    for path in PATHS.values():
        times = sorted(r.time for r in report_requests(emulator, path))
        for i, start in enumerate(times):
            assert sum(1 for t in times[i:] if t < start + 1) <= 1, f"{path}: two requests in one second"
            assert sum(1 for t in times[i:] if t < start + 60) <= 2, f"{path}: three requests in 60 s"
            assert sum(1 for t in times[i:] if t < start + 86_400) <= daily, f"{path}: more than {daily} in a day"
    assert not [r for r in emulator.requests if r.status == 429]


@pytest.fixture
def synced(limited):
    return run_tap(report_config(limited), streams=REPORTS), limited


# Statistics as the account implies them: recounted here from the raw facts (each message's events per
# role, the conversions attributed to it), not taken from the emulator's report arithmetic.
ROLE_METRICS = {
    "email": {"delivered": "Received Email", "bounced": "Bounced Email", "failed": "Dropped Email", "opens": "Opened Email",
              "clicks": "Clicked Email", "spam_complaints": "Marked Email as Spam", "unsubscribes": "Unsubscribed from Email Marketing"},
    "sms": {"sent": "Sent SMS", "delivered": "Received SMS", "failed": "Failed to Deliver SMS", "clicks": "Clicked SMS",
            "unsubscribes": "Unsubscribed from SMS Marketing"},
}  # fmt: skip


@cache
def message_facts(account: Account, message_id: str, channel: str) -> dict[str, list[dict]]:
    facts = {}
    for role, name in ROLE_METRICS.get(channel, {}).items():
        facts[role] = [event for metric in account.metric_ids(name) for event in account.message_events(message_id, metric)]
    facts["conversions"] = account.attributed_events(message_id, account.metric_ids("Placed Order", "shopify")[0])
    return facts


def message_statistics(facts: dict[str, list[dict]], start: float, end: float) -> dict[str, float]:
    inside = {role: [e for e in events if start <= e["timestamp"] < end] for role, events in facts.items()}
    n = {role: len(events) for role, events in inside.items()}
    unique = {role: len({e["profile_id"] for e in events}) for role, events in inside.items()}
    get, uniq = (lambda role: n.get(role, 0)), (lambda role: unique.get(role, 0))
    rate = lambda a, b: a / b if b else 0.0  # noqa: E731
    recipients = get("delivered") + get("bounced") + get("failed")
    value = sum(e["value"] for e in inside["conversions"])
    return {
        "delivered": get("delivered"), "bounced": get("bounced"), "failed": get("failed"),
        "bounced_or_failed": get("bounced") + get("failed"), "recipients": recipients,
        "delivery_rate": rate(get("delivered"), recipients), "bounce_rate": rate(get("bounced"), recipients),
        "failed_rate": rate(get("failed"), recipients), "bounced_or_failed_rate": rate(get("bounced") + get("failed"), recipients),
        "opens": get("opens"), "opens_unique": uniq("opens"), "open_rate": rate(uniq("opens"), get("delivered")),
        "clicks": get("clicks"), "clicks_unique": uniq("clicks"), "click_rate": rate(uniq("clicks"), get("delivered")),
        "click_to_open_rate": rate(uniq("clicks"), uniq("opens")),
        "spam_complaints": get("spam_complaints"), "spam_complaint_rate": rate(get("spam_complaints"), get("delivered")),
        "unsubscribes": get("unsubscribes"), "unsubscribe_uniques": uniq("unsubscribes"),
        "unsubscribe_rate": rate(uniq("unsubscribes"), get("delivered")),
        "conversions": get("conversions"), "conversion_uniques": uniq("conversions"), "conversion_value": round(value, 2),
        "conversion_rate": rate(uniq("conversions"), recipients), "average_order_value": round(rate(value, get("conversions")), 2),
        "revenue_per_recipient": round(rate(value, recipients), 2),
        "message_segment_count_sum": get("sent"), "text_message_credit_usage_amount": get("sent"),
        "text_message_spend": 0.0, "text_message_roi": 0.0,
    }  # fmt: skip


def form_statistics(sessions: list[tuple], start: float, end: float) -> dict[str, float]:
    inside = [(profile, flags) for at, profile, flags in sessions if start <= at < end]
    viewed = [p for p, flags in inside if flags & 1]
    submitted = [p for p, flags in inside if flags & 2]
    closed = [p for p, flags in inside if flags & 4]
    return {
        "qualified_form": len(inside), "qualified_form_uniques": len({p for p, _ in inside}),
        "viewed_form": len(viewed), "viewed_form_uniques": len(set(viewed)),
        "viewed_form_step": len(viewed) + len(submitted), "viewed_form_step_uniques": len(set(viewed) | set(submitted)),
        "submitted_form_step": len(submitted), "submitted_form_step_uniques": len(set(submitted)), "submits": len(submitted),
        "submit_rate": len(submitted) / len(viewed) if viewed else 0.0, "closed_form": len(closed), "closed_form_uniques": len(set(closed)),
    }  # fmt: skip


def segment_statistics(account: Account, segment_id: str, start: float, end: float) -> dict[str, float]:
    members = account.members[segment_id]
    stays = [(joined, None) for joined in members.joined] + list(members.departed)
    added = sum(1 for joined, _ in stays if start <= joined < end)
    removed = sum(1 for _, left in stays if left is not None and start <= left < end)
    total = sum(1 for joined, left in stays if joined < end and (left is None or left >= end))
    return {"members_added": added, "members_removed": removed, "net_members_changed": added - removed, "total_members": total}


def last_365_days(account: Account) -> tuple[float, float]:
    """The timeframe of the values rows: the 365 whole days before today, in the account's timezone."""
    zone = account.company_timezone()
    today = account.now().astimezone(zone).date()
    return day_bounds(account, today - dt.timedelta(days=365))[0], day_bounds(account, today)[0]


def day_bounds(account: Account, day: dt.date) -> tuple[float, float]:
    zone = account.company_timezone()
    start = dt.datetime.combine(day, dt.time(), tzinfo=zone)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), tzinfo=zone)
    return start.timestamp(), end.timestamp()


def expected_statistics(account: Account, stream: str, row: dict) -> dict[str, float]:
    start, end = day_bounds(account, dt.date.fromisoformat(row["date"])) if "date" in row else last_365_days(account)
    if stream.startswith(("campaign", "flow")):
        message = row.get("campaign_message_id") or row["flow_message_id"]
        return message_statistics(message_facts(account, message, row["send_channel"]), start, end)
    if stream.startswith("form"):
        return form_statistics(account.form_sessions(row["form_version_id"]), start, end)
    return segment_statistics(account, row["segment_id"], start, end)


@pytest.mark.parametrize("stream", REPORTS)
def test_every_statistic_of_every_row_is_what_the_account_implies(synced, report_account, stream):
    result, _ = synced
    rows = result.records.get(stream, [])
    assert rows, f"{stream}: the tiny account has report rows"
    statistics = [name for name in result.schemas[stream]["properties"] if name not in {"conversion_metric_id", *TapKlaviyo(
        config=with_reports({"api_key": "pk_test0123456789abcdefghijklmnop"}), validate_config=False).streams[stream].primary_keys}]
    for row in rows:
        expected = expected_statistics(report_account, stream, row)
        assert set(statistics) == set(expected)
        assert {name: row[name] for name in statistics} == pytest.approx(expected), row
    keys = [tuple(v for k, v in row.items() if k not in statistics and k != "conversion_metric_id") for row in rows]
    assert len(keys) == len(set(keys)), f"{stream} emitted a key twice"
    if stream.startswith(("campaign", "flow")):
        assert {row["conversion_metric_id"] for row in rows} == set(report_account.metric_ids("Placed Order", "shopify"))
        assert any(row["conversion_value"] for row in rows), "some message made revenue"


def test_rows_cover_every_message_and_day_with_activity(synced, report_account):
    """Values rows: every message with an event in the last 365 days; series rows: every day of the history."""
    result, _ = synced
    start, end = last_365_days(report_account)
    for stream, kind, key in (("campaign_values_reports", "campaign", "campaign_message_id"), ("flow_values_reports", "flow", "flow_message_id")):
        active = {
            message for message, info in report_account.report_messages(kind).items()
            if any(start <= e["timestamp"] < end for events in message_facts(report_account, message, info.channel).values() for e in events)
        }  # fmt: skip
        assert {row[key] for row in result.records[stream]} == active
    today = timeutil.utcnow().date()
    history = {(dt.date(2026, 5, 1) + dt.timedelta(days=i)).isoformat() for i in range((today - dt.date(2026, 5, 1)).days + 1)}
    assert {row["date"] for row in result.records["segment_series_reports"]} == history
    assert {row["date"] for row in result.records["flow_series_reports"]} <= history


def test_one_request_per_values_report_and_per_60_days_of_series_within_the_limits(synced):
    result, emulator = synced
    days = (timeutil.utcnow().date() + dt.timedelta(days=1) - dt.date(2026, 5, 1)).days
    series_requests = -(-days // 60)
    for stream, path in PATHS.items():
        sent = report_requests(emulator, path)
        assert len(sent) == (series_requests if "series" in stream else 1), stream
    assert_within_klaviyo_limits(emulator)
    flow_series = result.state["bookmarks"]["flow_series_reports"]
    assert flow_series["read_from"] == "2026-05-01" and flow_series["read_to"] == timeutil.utcnow().date().isoformat(), "today is not read whole"


def test_a_budget_too_small_for_the_history_reads_the_newest_days_and_the_next_runs_continue(limited, clock, report_account, caplog):
    config = report_config(limited, report_daily_requests=2, start_date="2025-12-10T00:00:00Z")
    state, seen, runs = None, collections.Counter(), 0
    while True:
        runs += 1
        result = run_tap(config, state=state, streams=("segment_series_reports",))
        days = {row["date"] for row in result.records.get("segment_series_reports", [])}
        if runs == 1:
            assert "covers 2 of 6 requests" in caplog.text
            assert min(days) > "2026-06-01", "the first run reads the most recent days"
        seen.update(days)
        state = result.state
        span = state["bookmarks"]["segment_series_reports"]
        if span["read_from"] == "2025-12-10" or runs == 6:
            break
        assert not report_requests(limited, PATHS["segment_series_reports"])[-1].status == 429
        clock.advance(86_400 + 600)  # a day and the 10 minutes the state counts sends in: a new allowance
    assert runs == 5, "6 chunks at 2 a day: the two newest, then the lookback chunk and one older one per run"
    end = timeutil.utcnow().date() + dt.timedelta(days=1)  # four days later than the first run's
    assert set(seen) == {(dt.date(2025, 12, 10) + dt.timedelta(days=i)).isoformat() for i in range((end - dt.date(2025, 12, 10)).days)}
    assert span["read_to"] == (end - dt.timedelta(days=1)).isoformat()
    assert_within_klaviyo_limits(limited, daily=2)
    # every row of a day is what the account implies, whichever run read it
    assert all(
        {k: row[k] for k in ("members_added", "total_members")} == pytest.approx(
            {k: expected_statistics(report_account, "segment_series_reports", row)[k] for k in ("members_added", "total_members")})
        for row in result.records["segment_series_reports"]
    )  # fmt: skip


def test_a_second_run_the_same_day_plans_with_what_the_first_one_used(limited, clock, caplog):
    config = report_config(limited, report_daily_requests=5)
    first = run_tap(config, streams=("form_series_reports",))
    assert len(report_requests(limited, PATHS["form_series_reports"])) == 4
    clock.advance(60)
    caplog.clear()
    caplog.set_level(logging.INFO)
    second = run_tap(config, state=first.state, streams=("form_series_reports",))
    assert "needs 1 report request(s) of the 1 left today" in caplog.text
    assert len(report_requests(limited, PATHS["form_series_reports"])) == 5
    assert second.state["bookmarks"]["form_series_reports"]["read_from"] == "2026-05-01"


def test_a_long_retry_after_ends_that_report_stream_with_its_state_and_the_sync_goes_on(limited, caplog):
    limited.script(PATHS["flow_series_reports"], 429, {"errors": [{"status": 429, "detail": "Daily limit"}]}, headers={"Retry-After": "36000"})
    result = run_tap(report_config(limited), streams=("flow_series_reports", "segment_values_reports"))
    assert "Stream flow_series_reports stopped: Klaviyo asks to wait 36000 s" in caplog.text
    assert "flow_series_reports" not in result.records and result.records["segment_values_reports"]
    assert "read_from" not in result.state["bookmarks"]["flow_series_reports"]
    # a short one is waited out (on the virtual clock) and the stream reads on
    limited.script(PATHS["flow_series_reports"], 429, {"errors": []}, headers={"Retry-After": "30"})
    again = run_tap(report_config(limited), state=result.state, streams=("flow_series_reports",))
    assert again.state["bookmarks"]["flow_series_reports"]["read_from"] == "2026-05-01"


def test_lookback_rereads_the_last_days_and_revised_figures_replace_them(limited, clock, report_account):
    first = run_tap(report_config(limited), streams=("segment_series_reports",))
    clock.advance(60)
    report_account.add_segment_member(report_account.segment_rows[0].id, report_account.profile_id(2), timeutil.to_rfc3339(timeutil.utcnow() - dt.timedelta(days=3)))
    try:
        second = run_tap(report_config(limited, reporting_lookback_days=10), state=first.state, streams=("segment_series_reports",))
    finally:
        report_account.remove_segment_member(report_account.segment_rows[0].id, report_account.profile_id(2))
    days = sorted({row["date"] for row in second.records["segment_series_reports"]})
    today = timeutil.utcnow().date()
    assert days[0] == (today - dt.timedelta(days=10)).isoformat() and days[-1] == today.isoformat()
    joined_day = (timeutil.utcnow() - dt.timedelta(days=3)).astimezone(report_account.company_timezone()).date().isoformat()
    added = {row["date"]: row["members_added"] for row in second.records["segment_series_reports"] if row["segment_id"] == report_account.segment_rows[0].id}
    assert added[joined_day] >= 1
    assert len(report_requests(limited, PATHS["segment_series_reports"])) == 4 + 1


def test_the_conversion_metric_is_checked_before_any_record_and_only_when_needed(limited):
    from tests.conftest import run_catalog, catalog_for

    config = with_reports(tap_config(limited, start_date=HISTORY_START))  # two "Placed Order" metrics: shopify and woocommerce
    with pytest.raises(KlaviyoAPIError, match="the account has 2 'Placed Order' metrics: .*shopify:Placed Order"):
        run_tap(config, streams=("flow_values_reports",))
    assert not report_requests(limited, PATHS["flow_values_reports"])
    limited.requests.clear()
    assert run_catalog(config, catalog_for("form_values_reports")).records["form_values_reports"]
    assert not [r for r in limited.requests if r.path == "/api/metrics"], "no conversion metric needed, none looked up"


@pytest.mark.parametrize(
    ("attributes", "says"),
    [
        ({"results": [], "date_times": ["yesterday"]}, "date_times entry that is not a date-time"),
        ({"results": {"a": 1}}, "unexpected body"),
    ],
)
def test_a_malformed_report_body_fails_with_one_line(limited, attributes, says):
    limited.script(PATHS["segment_series_reports"], 200, {"data": {"type": "segment-series-report", "attributes": attributes}})
    with pytest.raises(KlaviyoAPIError, match=says):
        run_tap(report_config(limited), streams=("segment_series_reports",))


def test_a_history_beyond_the_day_takes_exactly_the_225_requests_the_day_allows(limited, clock, caplog):
    """A form history since 1970 needs about 350 chunks: the first run sends 225, paced by the 2/min window; the next
    day's run the lookback chunk and the rest."""
    config = report_config(limited, start_date="1970-01-01T00:00:00Z")
    end = timeutil.utcnow().date() + dt.timedelta(days=1)
    chunks = -(-(end - dt.date(1970, 1, 1)).days // 60)
    first = run_tap(config, streams=("form_series_reports",))
    assert f"covers 225 of {chunks} requests" in caplog.text
    assert len(report_requests(limited, PATHS["form_series_reports"])) == 225
    assert_within_klaviyo_limits(limited)
    clock.advance(86_400 + 600)
    second = run_tap(config, state=first.state, streams=("form_series_reports",))
    assert len(report_requests(limited, PATHS["form_series_reports"])) == 225 + 1 + (chunks - 225)
    assert second.state["bookmarks"]["form_series_reports"]["read_from"] == "1970-01-01"
    assert_within_klaviyo_limits(limited)


@pytest.mark.parametrize(("stream", "scope"), [("form_values_reports", "forms:read"), ("segment_series_reports", "segments:read")])
def test_a_key_without_the_report_scope_is_named(emulator, tmp_path, stream, scope):
    assert_missing_scope_is_named(emulator, tmp_path, stream, scope)


def test_a_day_used_up_by_another_client_ends_the_stream_with_its_state_and_the_next_day_continues(limited, clock, caplog):
    """Another integration on the same key sent 224 of the day's 225: the tap's second request gets a 429 until
    midnight (beyond report_max_wait_seconds), the stream stops with the chunk it read, the sync goes on."""
    clock.now = clock.now // 86_400 * 86_400 + 3600  # 01:00 UTC: the other client's 224 requests end well before midnight
    path = PATHS["segment_series_reports"]
    other = {"data": {"type": "segment-series-report", "attributes": {
        "statistics": ["total_members"], "timeframe": {"key": "last_7_days"}, "interval": "daily"}}}  # fmt: skip
    headers = {"Authorization": f"Klaviyo-API-Key {tap_config(limited)['api_key']}", "revision": "2026-07-15", "Content-Type": "application/vnd.api+json"}
    for _ in range(224):
        assert requests.post(limited.base_url + path, json=other, headers=headers, timeout=10).status_code == 200
        clock.advance(31)
    first = run_tap(report_config(limited), streams=("segment_series_reports", "form_values_reports"))
    assert "Stream segment_series_reports stopped: Klaviyo asks to wait" in caplog.text
    assert first.records["form_values_reports"], "the rest of the sync goes on"
    span = first.state["bookmarks"]["segment_series_reports"]
    end = timeutil.utcnow().date() + dt.timedelta(days=1)
    assert (span["read_from"], span["read_to"]) == ((end - dt.timedelta(days=60)).isoformat(), (end - dt.timedelta(days=1)).isoformat())
    assert [r.status for r in report_requests(limited, path)][224:] == [200, 429]
    clock.now = clock.now // 86_400 * 86_400 + 86_400 + 3600  # tomorrow
    second = run_tap(report_config(limited), state=first.state, streams=("segment_series_reports",))
    assert second.state["bookmarks"]["segment_series_reports"]["read_from"] == "2026-05-01"
    assert [r.status for r in report_requests(limited, path)][226:] == [200] * 4


def test_an_undocumented_next_page_is_named_in_a_warning(limited, caplog):
    page = {"data": {"type": "segment-values-report", "attributes": {"results": []}}, "links": {"self": "x", "next": "y"}}
    limited.script(PATHS["segment_values_reports"], 200, page)
    run_tap(report_config(limited), streams=("segment_values_reports",))
    assert "links a next page, which its spec does not describe" in caplog.text
