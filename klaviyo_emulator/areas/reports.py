"""Reporting API: the seven POST /api/*-values-reports and /api/*-series-reports endpoints.

Each report is validated as strictly as the real API and computed from the account's own data,
so a test can count the same facts independently (see ReportsData's helpers):

- campaign and flow reports from the message events (Received/Opened/Clicked/Bounced Email, ...):
  every such event names its message in `event_properties.$message` (and `$flow` for a flow's),
  exactly as GET /api/events renders it, and the conversion metric's events attributed to the
  message (the attributions of include=attributions);
- form reports from the account's form sessions (ReportsData.form_sessions);
- segment reports from the members' joined times and the departures the account records.

Facts relied on, with their sources (OAS = ../shared/klaviyo-openapi/stable-2026-07-15.json,
SUM = its endpoints-summary.json, DOC-REP = developers.klaviyo.com/en/reference/reporting,
DOC-RL = klaviyo-api.md §6.1):

- Paths, operation ids, request/response DTOs, statistics, group_by and interval enums, the
  required attributes (campaign/flow: statistics, timeframe, conversion_metric_id; series also
  interval; form/segment: statistics, timeframe[, interval]) [OAS *RequestDTO]. The enums below are
  copies; tests/klaviyo_emulator/test_reports.py fails when they drift from the spec.
- Rate limits 1/s, 2/m, 225/d; scopes campaigns:read, flows:read, forms:read, segments:read [SUM,
  OAS operation descriptions, DOC-REP]. Fixed windows [DOC-RL]; the daily window is the UTC day
  (the docs do not say where a day starts: chosen).
- timeframe: `{"key": <Timeframe enum>}` or `{"start", "end"}` date-times, "Max length: 1 year";
  for a custom timeframe "Offset is ignored and the company timezone is used" [OAS Timeframe,
  CustomTimeframe]. The company timezone is the account's (GET /api/accounts `timezone`).
- Series intervals: "If hourly is used, the timeframe cannot be longer than 7 days. If daily is
  used, the timeframe cannot be longer than 60 days. If monthly is used, the timeframe cannot be
  longer than 52 weeks." [OAS interval description]; weekly has no cap of its own beyond the year.
- Segment reports: "Data is unavailable before June 1st, 2023" [OAS segment timeframe]: a
  timeframe starting earlier is refused (the strict reading; the docs do not say what happens).
- Campaign/flow group_by: "The following group by attributes are required: campaign_id,
  campaign_message_id" (flow: flow_message_id, flow_id); default campaign_id, campaign_message_id,
  send_channel (flow_id, flow_message_id, send_channel) [OAS group_by].
  Form group_by: form_id, form_version_id, default form_id, "The prerequisites for form_version_id
  is form_id" [OAS]. Segment reports have no group_by [OAS].
- Campaign/flow filter: scalar attributes with equals and contains-any, list attributes (tag_id,
  tag_name) with contains-any and contains-all; "Only one filter can be used per attribute. Only AND
  can be used as a combination operator. Max of 100 items per list filter."; send_channel values
  email, sms, push-notification, whatsapp [OAS filter]. Form filter: form_id, form_version_id;
  segment filter: segment_id; operators equals and any, at most 100 items [OAS].
- "All rate statistics will be returned in fractional form [0.0, 1.0]" [OAS statistics].
- Open rate = unique opens / delivered, click rate = unique clicks / delivered, click-to-open rate =
  unique clicks / unique opens, unsubscribe rate = unique unsubscribes / delivered, campaigns
  "attributed by send date" [help.funnel.io/en/articles/2841011, third-party, matching Klaviyo's UI;
  Klaviyo's own pages in the search corpus do not define the statistics]. The other definitions
  follow the statistic's name and are listed once, in the tables below.
- Klaviyo computes campaign and flow performance by send date, not event date [DOC-REP "The Query
  Metrics Aggregates endpoint"].

Choices where the docs are silent (strict readings):
- Unknown attributes, a wrong `type`, a statistic outside the endpoint's enum, an empty statistics
  list, an unknown timeframe key, a timeframe with both `key` and `start`/`end`, end not after
  start, a conversion_metric_id that is no metric of the account: 400 naming the value.
- Preset keys resolve in the company timezone: `today` and `this_*` run to now; `yesterday`,
  `last_N_days` (N whole days before today), `last_week` (Monday to Monday), `last_month`,
  `last_3_months` and `last_12_months` (whole months before this one), `last_year` end at the start
  of the current day, week, month or year; `last_365_days` is 365 whole days.
- "Max length: 1 year" means end <= start plus one calendar year.
- Attributes the emulator cannot evaluate (variation, tag_id, text_message_format, ... in
  group_by or filter) are valid in the spec but answered with 400 "not supported by the emulator",
  never silently ignored.

Deviations, stated: scopes are not checked per key (the emulator's only 403 is its forbidden key
prefix). Statistics count the events whose datetime lies in the timeframe (the emulator's
events are not tied to a send date), so a rate of one series bucket can exceed 1 before its cap.
Series `date_times`: the timeframe's start, then each interval boundary after it (hours, midnights,
Mondays, first days of months) in the company timezone.
"""

from __future__ import annotations

import uuid
from bisect import bisect_left, bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Callable
from zoneinfo import ZoneInfo

import msgspec

from ..core import HandlerBase, PostEndpoint
from ..errors import body_error, request_attributes
from ..filters import FilterError, parse_datetime_us, parse_filter
from ..resources import T_END, mix
from .events import _buckets

UTC = timezone.utc
# ---- copies of the spec's enums (a test compares them with stable-2026-07-15.json)
MESSAGE_STATISTICS = (
    "average_order_value", "bounce_rate", "bounced", "bounced_or_failed", "bounced_or_failed_rate", "click_rate",
    "click_to_open_rate", "clicks", "clicks_unique", "conversion_rate", "conversion_uniques", "conversion_value", "conversions",
    "delivered", "delivery_rate", "failed", "failed_rate", "message_segment_count_sum", "open_rate", "opens", "opens_unique",
    "recipients", "revenue_per_recipient", "spam_complaint_rate", "spam_complaints", "text_message_credit_usage_amount",
    "text_message_roi", "text_message_spend", "unsubscribe_rate", "unsubscribe_uniques", "unsubscribes",
)  # fmt: skip
FORM_STATISTICS = (
    "closed_form", "closed_form_uniques", "qualified_form", "qualified_form_uniques", "submit_rate", "submits",
    "submitted_form_step", "submitted_form_step_uniques", "viewed_form", "viewed_form_step", "viewed_form_step_uniques", "viewed_form_uniques",
)  # fmt: skip
SEGMENT_STATISTICS = ("members_added", "members_removed", "net_members_changed", "total_members")
TIMEFRAME_KEYS = (
    "last_12_months", "last_30_days", "last_365_days", "last_3_months", "last_7_days", "last_90_days", "last_month",
    "last_week", "last_year", "this_month", "this_week", "this_year", "today", "yesterday",
)  # fmt: skip
INTERVALS = ("daily", "hourly", "monthly", "weekly")
CAMPAIGN_GROUP_BY = ("campaign_id", "campaign_message_id", "campaign_message_name", "group", "group_name", "send_channel", "tag_id",
                     "tag_name", "text_message_format", "variation", "variation_name")  # fmt: skip
FLOW_GROUP_BY = ("flow_id", "flow_message_id", "flow_message_name", "flow_name", "send_channel", "tag_id", "tag_name",
                 "text_message_format", "variation", "variation_name")  # fmt: skip
FORM_GROUP_BY = ("form_id", "form_version_id")
SEND_CHANNELS = ("email", "sms", "push-notification", "whatsapp")
# ---- limits from the docs
REPORT_RATE = (1, 2, 225)  # burst per second, steady per minute, daily
INTERVAL_CAPS = {"hourly": timedelta(days=7), "daily": timedelta(days=60), "monthly": timedelta(weeks=52)}
SEGMENT_DATA_START = datetime(2023, 6, 1)  # naive: in the company timezone
MAX_FILTER_ITEMS = 100
_INTERVAL_UNIT = {"hourly": "hour", "daily": "day", "weekly": "week", "monthly": "month"}


@dataclass(frozen=True)
class Report:
    """What one report endpoint accepts."""

    kind: str  # campaign | flow | form | segment
    series: bool
    statistics: tuple[str, ...]
    required: tuple[str, ...]
    group_by: tuple[str, ...] | None  # the spec's enum; None: no group_by attribute
    default_group: tuple[str, ...]
    required_group: tuple[str, ...]  # group-bys that must be present (form: form_version_id needs form_id)
    filters: dict[str, tuple[str, ...]]  # field -> operators the spec allows
    supported: frozenset[str]  # group-by and filter fields the emulator evaluates

    @property
    def type(self) -> str:
        return f"{self.kind}-{'series' if self.series else 'values'}-report"

    @property
    def attributes(self) -> frozenset[str]:
        names = {"statistics", "timeframe", "filter", *self.required}
        if self.group_by is not None:
            names.add("group_by")
        if self.kind in ("campaign", "flow"):
            names.add("conversion_metric_id")
        if self.series:
            names.add("interval")
        return frozenset(names)


def _message_filters(scalars: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    return {**{f: ("equals", "contains-any") for f in scalars}, "tag_id": ("contains-any", "contains-all"), "tag_name": ("contains-any", "contains-all")}


_CAMPAIGN_FILTERS = _message_filters(("send_channel", "campaign_id", "campaign_message_id", "campaign_message_name", "variation", "variation_name",
                                      "text_message_format"))  # fmt: skip
_FLOW_FILTERS = _message_filters(("flow_id", "flow_name", "send_channel", "flow_message_id", "flow_message_name", "text_message_format", "variation",
                                  "variation_name"))  # fmt: skip
_CAMPAIGN_SUPPORTED = frozenset({"campaign_id", "campaign_message_id", "campaign_message_name", "send_channel"})
_FLOW_SUPPORTED = frozenset({"flow_id", "flow_message_id", "flow_message_name", "flow_name", "send_channel"})


def _report(kind: str, series: bool) -> Report:
    required = ("statistics", "timeframe", *(("interval",) if series else ()))
    if kind == "campaign":
        return Report(kind, series, MESSAGE_STATISTICS, (*required, "conversion_metric_id"), CAMPAIGN_GROUP_BY,
                      ("campaign_id", "campaign_message_id", "send_channel"), ("campaign_id", "campaign_message_id"), _CAMPAIGN_FILTERS,
                      _CAMPAIGN_SUPPORTED)  # fmt: skip
    if kind == "flow":
        return Report(kind, series, MESSAGE_STATISTICS, (*required, "conversion_metric_id"), FLOW_GROUP_BY,
                      ("flow_id", "flow_message_id", "send_channel"), ("flow_id", "flow_message_id"), _FLOW_FILTERS, _FLOW_SUPPORTED)  # fmt: skip
    if kind == "form":
        return Report(kind, series, FORM_STATISTICS, required, FORM_GROUP_BY, ("form_id",), ("form_id",),
                      {"form_id": ("equals", "any"), "form_version_id": ("equals", "any")}, frozenset(FORM_GROUP_BY))  # fmt: skip
    return Report(kind, series, SEGMENT_STATISTICS, required, None, ("segment_id",), (), {"segment_id": ("equals", "any")}, frozenset({"segment_id"}))


REPORTS = {
    "/api/campaign-values-reports": ("query_campaign_values", _report("campaign", False)),
    "/api/flow-values-reports": ("query_flow_values", _report("flow", False)),
    "/api/flow-series-reports": ("query_flow_series", _report("flow", True)),
    "/api/form-values-reports": ("query_form_values", _report("form", False)),
    "/api/form-series-reports": ("query_form_series", _report("form", True)),
    "/api/segment-values-reports": ("query_segment_values", _report("segment", False)),
    "/api/segment-series-reports": ("query_segment_series", _report("segment", True)),
}
POST_ENDPOINTS = {
    path: PostEndpoint(operation, REPORT_RATE, "report", report.type, ("date_times", "id", "results") if report.series else ("id", "results"),
                       page_cursor=True)  # fmt: skip
    for path, (operation, report) in REPORTS.items()
}
REPORT_BY_TYPE = {report.type: (path, report) for path, (_, report) in REPORTS.items()}

# ---- which events make a message's statistics: role -> metric name, per send channel
MESSAGE_ROLES = {
    "email": {"delivered": "Received Email", "bounced": "Bounced Email", "failed": "Dropped Email", "opens": "Opened Email",
              "clicks": "Clicked Email", "spam_complaints": "Marked Email as Spam", "unsubscribes": "Unsubscribed from Email Marketing"},
    "sms": {"sent": "Sent SMS", "delivered": "Received SMS", "failed": "Failed to Deliver SMS", "clicks": "Clicked SMS",
            "unsubscribes": "Unsubscribed from SMS Marketing"},
}  # fmt: skip
CHANNEL_OF = {"email": "email", "sms": "sms", "mobile_push": "push-notification"}  # account channel -> send_channel


class Tally:
    """Facts of one report row (or one series bucket of it): events and distinct profiles per role, conversion value."""

    __slots__ = ("counts", "profiles", "value")

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.profiles: dict[str, set[int]] = {}
        self.value = 0.0

    def add(self, role: str, profile: int) -> None:
        self.counts[role] = self.counts.get(role, 0) + 1
        self.profiles.setdefault(role, set()).add(profile)

    def n(self, role: str) -> int:
        return self.counts.get(role, 0)

    def unique(self, role: str) -> int:
        return len(self.profiles.get(role, ()))


def _ratio(a: float, b: float) -> float:
    """A rate in the spec's [0.0, 1.0]; 0.0 when the denominator is zero. Counting by event time (not by send
    cohort), one series bucket can hold more opens than deliveries: such a rate is capped at 1.0."""
    return min(1.0, a / b) if b else 0.0


def _recipients(t: Tally) -> int:
    return t.n("delivered") + t.n("bounced") + t.n("failed")


# Every statistic, defined once. Email: delivered = Received Email, failed = Dropped Email; SMS: delivered =
# Received SMS, failed = Failed to Deliver SMS, segments and credits = Sent SMS events (the account's SMS bodies
# fit one segment, one credit each). The account holds no SMS prices, so spend and ROI are 0.0.
MESSAGE_STATISTIC_DEFINITIONS: dict[str, Callable[[Tally], float]] = {
    "delivered": lambda t: t.n("delivered"),
    "bounced": lambda t: t.n("bounced"),
    "failed": lambda t: t.n("failed"),
    "bounced_or_failed": lambda t: t.n("bounced") + t.n("failed"),
    "recipients": _recipients,
    "delivery_rate": lambda t: _ratio(t.n("delivered"), _recipients(t)),
    "bounce_rate": lambda t: _ratio(t.n("bounced"), _recipients(t)),
    "failed_rate": lambda t: _ratio(t.n("failed"), _recipients(t)),
    "bounced_or_failed_rate": lambda t: _ratio(t.n("bounced") + t.n("failed"), _recipients(t)),
    "opens": lambda t: t.n("opens"),
    "opens_unique": lambda t: t.unique("opens"),
    "open_rate": lambda t: _ratio(t.unique("opens"), t.n("delivered")),
    "clicks": lambda t: t.n("clicks"),
    "clicks_unique": lambda t: t.unique("clicks"),
    "click_rate": lambda t: _ratio(t.unique("clicks"), t.n("delivered")),
    "click_to_open_rate": lambda t: _ratio(t.unique("clicks"), t.unique("opens")),
    "spam_complaints": lambda t: t.n("spam_complaints"),
    "spam_complaint_rate": lambda t: _ratio(t.n("spam_complaints"), t.n("delivered")),
    "unsubscribes": lambda t: t.n("unsubscribes"),
    "unsubscribe_uniques": lambda t: t.unique("unsubscribes"),
    "unsubscribe_rate": lambda t: _ratio(t.unique("unsubscribes"), t.n("delivered")),
    "conversions": lambda t: t.n("conversions"),
    "conversion_uniques": lambda t: t.unique("conversions"),
    "conversion_value": lambda t: round(t.value, 2),
    "conversion_rate": lambda t: _ratio(t.unique("conversions"), _recipients(t)),
    "average_order_value": lambda t: round(t.value / t.n("conversions"), 2) if t.n("conversions") else 0.0,
    "revenue_per_recipient": lambda t: round(t.value / _recipients(t), 2) if _recipients(t) else 0.0,
    "message_segment_count_sum": lambda t: t.n("sent"),
    "text_message_credit_usage_amount": lambda t: t.n("sent"),
    "text_message_spend": lambda t: 0.0,
    "text_message_roi": lambda t: 0.0,
}
# Forms: a session is one profile qualifying for a form version (shown the chance to see it); it may be viewed,
# then submitted (which views the success step too) or closed. Roles: qualified, viewed, viewed_step, submitted, closed.
FORM_STATISTIC_DEFINITIONS: dict[str, Callable[[Tally], float]] = {
    "qualified_form": lambda t: t.n("qualified"),
    "qualified_form_uniques": lambda t: t.unique("qualified"),
    "viewed_form": lambda t: t.n("viewed"),
    "viewed_form_uniques": lambda t: t.unique("viewed"),
    "viewed_form_step": lambda t: t.n("viewed_step"),
    "viewed_form_step_uniques": lambda t: t.unique("viewed_step"),
    "submitted_form_step": lambda t: t.n("submitted"),
    "submitted_form_step_uniques": lambda t: t.unique("submitted"),
    "submits": lambda t: t.n("submitted"),
    "submit_rate": lambda t: _ratio(t.n("submitted"), t.n("viewed")),
    "closed_form": lambda t: t.n("closed"),
    "closed_form_uniques": lambda t: t.unique("closed"),
}
# Segments: "added" = members who joined in the window, "removed" = members who left in it,
# "total" = members at the window's end (Tally.counts only).
SEGMENT_STATISTIC_DEFINITIONS: dict[str, Callable[[Tally], float]] = {
    "members_added": lambda t: t.n("added"),
    "members_removed": lambda t: t.n("removed"),
    "net_members_changed": lambda t: t.n("added") - t.n("removed"),
    "total_members": lambda t: t.n("total"),
}
DEFINITIONS = {"campaign": MESSAGE_STATISTIC_DEFINITIONS, "flow": MESSAGE_STATISTIC_DEFINITIONS, "form": FORM_STATISTIC_DEFINITIONS,
               "segment": SEGMENT_STATISTIC_DEFINITIONS}  # fmt: skip
FORM_VIEWED, FORM_SUBMITTED, FORM_CLOSED = 1, 2, 4
FORM_SESSIONS_PER_1000_EVENTS = 2  # per live form version, at least FORM_MIN_SESSIONS
FORM_MIN_SESSIONS = 40


@dataclass(frozen=True)
class Message:
    """A campaign or flow message as a report groups it."""

    channel: str  # send_channel
    groupings: dict  # every supported grouping attribute -> value
    parent: str  # campaign or flow id


class ReportsData:
    """Account mixin: the messages that events belong to, form sessions, and the raw facts tests count."""

    # ---- messages
    def message_sources(self, channel: str) -> list[tuple[str | None, str | None, str]]:
        """(campaign id, flow id, message id) of the messages that send on `channel` ("email", "sms"): sent
        campaigns' messages and the messages of flows that are not drafts. Their events name them in `$message`."""
        out: list[tuple[str | None, str | None, str]] = []
        for row in self.campaign_rows:
            if row.extra["channel"] == channel and row.attrs["status"] == "Sent":
                out.extend((row.id, None, m.id) for m in self.campaign_messages[row.id])
        flows = {r.id: r for r in self.flow_rows}
        for m in self.flow_message_by_id.values():
            flow = flows[self.flow_action_by_id[m.extra["action"]].extra["flow"]]
            if m.attrs["channel"] == channel and flow.attrs.get("status") != "draft":
                out.append((None, flow.id, m.id))
        return out

    def message_of_event(self, metric_id: str, serial: int) -> str | None:
        """The `$message` of one stored event, as GET /api/events renders its properties."""
        store = self.events_store
        text = store.overrides.get(serial)
        if text is not None:
            value = msgspec.json.decode(text).get("$message")
            return value if isinstance(value, str) else None
        pool = store.properties.get(metric_id)
        if not pool:
            return None
        cache = self.__dict__.setdefault("_pool_messages", {})  # pools are fixed once generated
        messages = cache.get(metric_id)
        if messages is None:
            messages = cache[metric_id] = [msgspec.json.decode(p + "}").get("$message") for p in pool]
        return messages[serial % len(pool)]

    def message_events(self, message_id: str, metric_id: str) -> list[dict]:
        """Test helper, the raw facts: every visible event of `metric_id` whose `$message` is `message_id`
        ({"id", "timestamp", "profile_id"}). Tests count and divide these themselves; the report endpoints'
        arithmetic is not reused, so a wrong definition there cannot make its own test pass."""
        with self.lock:
            store = self.events_store
            events = store.by_metric.get(metric_id)
            hidden = store.hidden(int(self.now().timestamp()))
            out = []
            for j in range(len(events) if events is not None else 0):
                serial = events.serial[j]
                if (hidden is None or not hidden(serial)) and self.message_of_event(metric_id, serial) == message_id:
                    out.append({"id": store.event_id(serial), "timestamp": events.ts[j], "profile_id": self.profile_id(events.profile[j])})
            return out

    def attributed_events(self, message_id: str, metric_id: str) -> list[dict]:
        """Test helper, the raw facts: visible events of `metric_id` attributed now to the campaign or flow
        message `message_id` ({"id", "timestamp", "profile_id", "value"}: `$value` of its properties)."""
        from .events import _value_of

        with self.lock:
            store = self.events_store
            now = int(self.now().timestamp())
            hidden = store.hidden(now)
            events = store.by_metric.get(metric_id)
            out = []
            for j in range(len(events) if events is not None else 0):
                serial, ts = events.serial[j], events.ts[j]
                if hidden is not None and hidden(serial):
                    continue
                found = store.attribution(serial, metric_id, ts, now)
                if found is not None and message_id in (found[3], found[5]):
                    out.append({"id": store.event_id(serial), "timestamp": ts, "profile_id": self.profile_id(events.profile[j]),
                                "value": _value_of(store, metric_id, serial)})  # fmt: skip
            return out

    def report_messages(self, kind: str) -> dict[str, Message]:
        """Every campaign message (kind "campaign") or flow message ("flow") by id, with its grouping values."""
        out = {}
        if kind == "campaign":
            for row in self.campaign_rows:
                for m in self.campaign_messages[row.id]:
                    name = m.attrs["definition"].get("label") or row.attrs["name"]
                    channel = CHANNEL_OF[row.extra["channel"]]
                    out[m.id] = Message(channel, {"campaign_id": row.id, "campaign_message_id": m.id, "campaign_message_name": name,
                                                  "send_channel": channel}, row.id)  # fmt: skip
            return out
        flows = {r.id: r for r in self.flow_rows}
        for m in self.flow_message_by_id.values():
            flow = flows[self.flow_action_by_id[m.extra["action"]].extra["flow"]]
            channel = CHANNEL_OF[m.attrs["channel"]]
            out[m.id] = Message(channel, {"flow_id": flow.id, "flow_message_id": m.id, "flow_message_name": m.attrs["definition"]["name"],
                                          "flow_name": flow.attrs["name"], "send_channel": channel}, flow.id)  # fmt: skip
        return out

    # ---- forms
    def form_sessions(self, form_version_id: str) -> list[tuple[int, str, int]]:
        """Test helper and the form reports' source: (epoch seconds, profile id, flags) of every session of a
        form version, ascending; flags: 1 viewed, 2 submitted, 4 closed. Draft versions have none. Generated
        lazily from (seed, version) and kept, so a report reads each version once."""
        with self.lock:
            return [(ts, self.profile_id(p), flags) for ts, p, flags in self._sessions(form_version_id)]

    def _sessions(self, form_version_id: str) -> list[tuple[int, int, int]]:
        """(epoch seconds, profile index, flags), generated on first use."""
        cache = self.__dict__.setdefault("_form_sessions", {})
        if form_version_id not in cache:
            cache[form_version_id] = self._generate_form_sessions(form_version_id)
        return cache[form_version_id]

    def _form_version(self, form_version_id: str):
        for versions in self.form_versions.values():
            for v in versions:
                if v.id == form_version_id:
                    return v
        raise KeyError(f"unknown form version {form_version_id!r}")

    def _generate_form_sessions(self, form_version_id: str) -> list[tuple[int, int, int]]:
        version = self._form_version(form_version_id)
        n_profiles = self._profile_count()
        if version.attrs["status"] == "draft" or not n_profiles:
            return []
        start = version.keys["created_at"] // 1_000_000
        span = max(1, T_END - start)
        count = max(FORM_MIN_SESSIONS, len(self.events_store) * FORM_SESSIONS_PER_1000_EVENTS // 1000)
        salt = int(version.id) if version.id.isdigit() else sum(map(ord, version.id))
        sessions = []
        for i in range(count):
            h = mix(self.seed, salt, i, 80)
            flags = 0
            if h % 10 < 8:
                flags |= FORM_VIEWED
                if (h >> 8) % 100 < 12:
                    flags |= FORM_SUBMITTED
                elif (h >> 16) % 2:
                    flags |= FORM_CLOSED
            sessions.append((start + (h >> 20) % span, (h >> 40) % n_profiles, flags))
        sessions.sort()
        return sessions

    def company_timezone(self) -> ZoneInfo:
        return ZoneInfo(self.account_rows[0].attrs["timezone"])


class ReportsHandlers(HandlerBase):
    def report(self, body: bytes, base: str, rtype: str, fields: list[str] | None = None) -> bytes:
        """Validate one request to the report endpoint of resource type `rtype` and answer it from the account."""
        acc = self.account
        attrs, path, report = _request(body, rtype)
        zone = acc.company_timezone()
        start, end = _timeframe(attrs.get("timeframe"), acc.now().astimezone(zone), zone, report)
        starts = None
        if report.series:
            interval = attrs.get("interval")
            if interval not in INTERVALS:
                raise body_error(f"'{interval}' is not a valid choice for 'interval'; choose from {', '.join(INTERVALS)}.", "/data/attributes/interval")
            cap = INTERVAL_CAPS.get(interval)
            if cap is not None and end - start > cap:
                raise body_error(f"The timeframe cannot be longer than {_describe(cap)} when the interval is {interval}.", "/data/attributes/interval")
            starts = _buckets(start, end, _INTERVAL_UNIT[interval])
        statistics = _statistics(attrs.get("statistics"), report)
        groups = _group_by(attrs.get("group_by"), report)
        conditions = _filter(attrs.get("filter"), report)
        edges = [int(b.timestamp()) for b in (starts or [start])] + [int(end.timestamp())]
        if report.kind in ("campaign", "flow"):
            conversion_metric = attrs.get("conversion_metric_id")
            if not isinstance(conversion_metric, str) or conversion_metric not in acc.metric_by_id:
                raise body_error(f"'{conversion_metric}' is not a metric of this account: 'conversion_metric_id' must be a metric id.",
                                  "/data/attributes/conversion_metric_id")  # fmt: skip
            rows = _message_tallies(acc, report.kind, edges, conversion_metric, conditions)
        elif report.kind == "form":
            rows = _form_tallies(acc, edges, conditions, groups)
        else:
            rows = _segment_tallies(acc, edges, conditions)
        definitions = DEFINITIONS[report.kind]
        results = []
        for groupings, tallies in rows:
            values = {name: [float(definitions[name](t)) for t in tallies] for name in statistics}
            results.append({"groupings": {g: groupings[g] for g in groups},
                            "statistics": values if report.series else {name: v[0] for name, v in values.items()}})  # fmt: skip
        rid = str(uuid.uuid4())
        attributes = {"results": results}
        if report.series:
            attributes["date_times"] = [d.isoformat() for d in starts]
        resource = {"type": report.type, "id": rid, "attributes": attributes}
        link = f"{base}{path}/"
        relationships = _relationships(report.kind, [g for g, _ in rows], f"{base}{path}/{rid}")
        if relationships:
            resource["relationships"] = relationships
        resource = self.sparse(resource, tuple(fields) if fields else None)
        return msgspec.json.encode({"data": resource, "links": {"self": link}})


# ---------------------------------------------------------------- validation
def _request(body: bytes, rtype: str) -> tuple[dict, str, Report]:
    attrs = request_attributes(body, rtype, "'{given}' is not a valid choice for 'type': this endpoint takes '" + rtype + "'.")
    path, report = REPORT_BY_TYPE[rtype]
    for name in sorted(set(attrs) - report.attributes):
        raise body_error(f"'{name}' is not a valid field for the resource '{report.type}'.", f"/data/attributes/{name}")
    for name in report.required:
        if attrs.get(name) is None:
            raise body_error(f"'{name}' is a required field.", f"/data/attributes/{name}")
    return attrs, path, report


def _statistics(value, report: Report) -> list[str]:
    if not isinstance(value, list) or not value or not all(isinstance(s, str) for s in value):
        raise body_error("'statistics' must be a non-empty list of statistic names.", "/data/attributes/statistics")
    for name in value:
        if name not in report.statistics:
            raise body_error(f"'{name}' is not a valid statistic for {report.type}; choose from {', '.join(report.statistics)}.",
                              "/data/attributes/statistics")  # fmt: skip
    return list(dict.fromkeys(value))


def _timeframe(value, now: datetime, zone: ZoneInfo, report: Report) -> tuple[datetime, datetime]:
    """[start, end) in the company timezone."""
    pointer = "/data/attributes/timeframe"
    if not isinstance(value, dict):
        raise body_error("'timeframe' must be an object with 'key', or 'start' and 'end'.", pointer)
    if "key" in value:
        if set(value) != {"key"}:
            raise body_error("'timeframe' takes either 'key' or 'start' and 'end', not both.", pointer)
        start, end = _preset(value["key"], now)
    else:
        unknown = sorted(set(value) - {"start", "end"})
        if unknown:
            raise body_error(f"'{unknown[0]}' is not a valid field for 'timeframe'.", f"{pointer}/{unknown[0]}")
        moments = []
        for name in ("start", "end"):
            text = value.get(name)
            us = parse_datetime_us(text) if isinstance(text, str) and "T" in text else None
            if us is None:
                raise body_error(f"'{name}' must be a date-time (ISO 8601), got {text!r}.", f"{pointer}/{name}")
            local = _local_wall_time(text)
            moments.append(local.replace(tzinfo=zone))
        start, end = moments
        if end <= start:
            raise body_error("The timeframe's 'end' must be after its 'start'.", pointer)
        if end > _plus_year(start):
            raise body_error("The timeframe cannot be longer than 1 year.", pointer)
    if report.kind == "segment" and start.replace(tzinfo=None) < SEGMENT_DATA_START:
        raise body_error("Segment data is unavailable before June 1st, 2023: use a timeframe after this date.", pointer)
    return start, end


def _local_wall_time(text: str) -> datetime:
    """The date-time as written, its offset dropped ("Offset is ignored and the company timezone is used")."""
    wall = text.strip().replace(" ", "T")
    for marker in ("Z", "+"):
        wall = wall.split(marker)[0]
    date_part, _, time_part = wall.partition("T")
    if "-" in time_part:
        time_part = time_part.split("-")[0]
    return datetime.fromisoformat(f"{date_part}T{time_part}")


def _preset(key, now: datetime) -> tuple[datetime, datetime]:
    if key not in TIMEFRAME_KEYS:
        raise body_error(f"'{key}' is not a valid timeframe key; choose from {', '.join(TIMEFRAME_KEYS)}.", "/data/attributes/timeframe/key")
    zone = now.tzinfo
    today = now.replace(hour=0, minute=0, second=0, microsecond=0)
    week = today - timedelta(days=today.weekday())
    month = today.replace(day=1)
    year = month.replace(month=1)

    def days_back(n: int) -> datetime:
        return (today.replace(tzinfo=None) - timedelta(days=n)).replace(tzinfo=zone)

    def months_back(n: int) -> datetime:
        index = month.year * 12 + month.month - 1 - n
        return month.replace(year=index // 12, month=index % 12 + 1)

    spans = {
        "today": (today, now), "yesterday": (days_back(1), today),
        "last_7_days": (days_back(7), today), "last_30_days": (days_back(30), today), "last_90_days": (days_back(90), today),
        "last_365_days": (days_back(365), today),
        "this_week": (week, now), "last_week": ((week.replace(tzinfo=None) - timedelta(days=7)).replace(tzinfo=zone), week),
        "this_month": (month, now), "last_month": (months_back(1), month), "last_3_months": (months_back(3), month),
        "last_12_months": (months_back(12), month), "this_year": (year, now), "last_year": (year.replace(year=year.year - 1), year),
    }  # fmt: skip
    return spans[key]


def _plus_year(moment: datetime) -> datetime:
    try:
        return moment.replace(year=moment.year + 1)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + 1, day=28)


def _describe(cap: timedelta) -> str:
    return f"{cap.days // 7} weeks" if cap.days % 7 == 0 and cap.days > 7 else f"{cap.days} days"


def _group_by(value, report: Report) -> list[str]:
    pointer = "/data/attributes/group_by"
    if value is None:
        return list(report.default_group)
    if not isinstance(value, list) or not all(isinstance(g, str) for g in value):
        raise body_error("'group_by' must be a list of attribute names.", pointer)
    for name in value:
        if name not in report.group_by:
            raise body_error(f"'{name}' is not a valid choice for 'group_by'; choose from {', '.join(report.group_by)}.", pointer)
        if name not in report.supported:
            raise body_error(f"Grouping by '{name}' is not supported by the emulator.", pointer)
    missing = [g for g in report.required_group if g not in value]
    if missing:
        raise body_error(f"'group_by' must include {', '.join(report.required_group)} (missing {', '.join(missing)}).", pointer)
    return list(dict.fromkeys(value))


def _filter(value, report: Report) -> dict[str, frozenset[str]]:
    """field -> the values it may take, from the ANDed conditions."""
    pointer = "/data/attributes/filter"
    if value is None:
        return {}
    if not isinstance(value, str):
        raise body_error("'filter' must be a string.", pointer)
    try:
        conditions = parse_filter(value)
    except FilterError as exc:
        raise body_error(f"Invalid filter provided. {exc}", pointer) from None
    out: dict[str, frozenset[str]] = {}
    for c in conditions:
        if c.field not in report.filters:
            raise body_error(f"Invalid filter provided. '{c.field}' is not a valid filter field; allowed: {', '.join(report.filters)}.", pointer)
        if c.op not in report.filters[c.field]:
            raise body_error(f"Invalid filter provided. '{c.op}' is not a valid operator for '{c.field}'; allowed: {', '.join(report.filters[c.field])}.",
                              pointer)  # fmt: skip
        if c.field in out:
            raise body_error(f"Invalid filter provided. Only one filter can be used per attribute ('{c.field}').", pointer)
        listed = c.op != "equals"
        items = c.value if isinstance(c.value, tuple) else (c.value,)
        if listed != isinstance(c.value, tuple) or not all(i.kind == "string" for i in items):
            shape = "a list of quoted strings" if listed else "one quoted string"
            raise body_error(f"Invalid filter provided. '{c.op}({c.field},...)' takes {shape}.", pointer)
        if len(items) > MAX_FILTER_ITEMS:
            raise body_error(f"Invalid filter provided. Max of {MAX_FILTER_ITEMS} items per list filter ('{c.field}' has {len(items)}).", pointer)
        values = frozenset(i.value for i in items)
        if c.field == "send_channel" and not values <= set(SEND_CHANNELS):
            bad = sorted(values - set(SEND_CHANNELS))[0]
            raise body_error(f"Invalid filter provided. '{bad}' is not a send_channel; allowed: {', '.join(SEND_CHANNELS)}.", pointer)
        if c.field not in report.supported:
            raise body_error(f"Filtering on '{c.field}' is not supported by the emulator.", pointer)
        out[c.field] = values
    return out


# ---------------------------------------------------------------- computation
def _matches(groupings: dict, conditions: dict[str, frozenset[str]]) -> bool:
    return all(groupings.get(field) in values for field, values in conditions.items())


def _bucket(edges: list[int], ts: int) -> int:
    return bisect_right(edges, ts) - 1


def _message_tallies(acc, kind: str, edges: list[int], conversion_metric: str, conditions: dict) -> list[tuple[dict, list[Tally]]]:
    """One row per message with an event in [edges[0], edges[-1]): its groupings and a Tally per bucket.

    Scans only the role metrics' events inside the timeframe (binary search on the sorted timestamps),
    and the conversion metric's events there for attributions."""
    messages = {mid: m for mid, m in acc.report_messages(kind).items() if _matches(m.groupings, conditions)}
    store = acc.events_store
    now = int(acc.now().timestamp())
    hidden = store.hidden(now)
    buckets = len(edges) - 1
    tallies: dict[str, list[Tally]] = {}

    def tally(message: str) -> list[Tally]:
        found = tallies.get(message)
        if found is None:
            found = tallies[message] = [Tally() for _ in range(buckets)]
        return found

    channels = {m.channel for m in messages.values()}
    for channel, roles in MESSAGE_ROLES.items():
        if channel not in channels:
            continue
        for role, name in roles.items():
            for metric_id in acc.metric_ids(name):
                events = store.by_metric.get(metric_id)
                if events is None:
                    continue
                a, b = events.span(edges[0], edges[-1] - 1)
                for j in range(a, b):
                    serial = events.serial[j]
                    if hidden is not None and hidden(serial):
                        continue
                    message = acc.message_of_event(metric_id, serial)
                    if message in messages:
                        tally(message)[_bucket(edges, events.ts[j])].add(role, events.profile[j])
    from .events import _value_of

    index = 3 if kind == "campaign" else 5
    events = store.by_metric.get(conversion_metric)
    if events is not None and messages:
        a, b = events.span(edges[0], edges[-1] - 1)
        for j in range(a, b):
            serial, ts = events.serial[j], events.ts[j]
            if hidden is not None and hidden(serial):
                continue
            found = store.attribution(serial, conversion_metric, ts, now)
            if found is not None and found[index] in messages:
                t = tally(found[index])[_bucket(edges, ts)]
                t.add("conversions", events.profile[j])
                t.value += _value_of(store, conversion_metric, serial)
    order = sorted(tallies, key=lambda m: tuple(messages[m].groupings.values()))
    return [(messages[m].groupings, tallies[m]) for m in order]


def _form_tallies(acc, edges: list[int], conditions: dict, groups: list[str]) -> list[tuple[dict, list[Tally]]]:
    buckets = len(edges) - 1
    rows: dict[tuple, tuple[dict, list[Tally]]] = {}
    for form in acc.form_rows:
        for version in acc.form_versions[form.id]:
            groupings = {"form_id": form.id, "form_version_id": version.id}
            if not _matches(groupings, conditions):
                continue
            key = tuple(groupings[g] for g in groups)
            sessions = acc._sessions(version.id)
            a = bisect_right(sessions, (edges[0] - 1, 1 << 62, 0))
            for ts, profile, flags in sessions[a:]:
                if ts >= edges[-1]:
                    break
                if key not in rows:
                    rows[key] = ({g: groupings[g] for g in groups}, [Tally() for _ in range(buckets)])
                t = rows[key][1][_bucket(edges, ts)]
                t.add("qualified", profile)
                if flags & FORM_VIEWED:
                    t.add("viewed", profile)
                    t.add("viewed_step", profile)
                if flags & FORM_SUBMITTED:
                    t.add("submitted", profile)
                    t.add("viewed_step", profile)
                if flags & FORM_CLOSED:
                    t.add("closed", profile)
    return [rows[k] for k in sorted(rows)]


def _segment_tallies(acc, edges: list[int], conditions: dict) -> list[tuple[dict, list[Tally]]]:
    """Per segment: joins and departures per bucket, and members at each bucket's end (a departed member
    counts until it left). Current members' joined times are sorted, so each bucket costs two binary searches."""
    out = []
    buckets = len(edges) - 1
    for row in acc.segment_rows:
        groupings = {"segment_id": row.id}
        if not _matches(groupings, conditions):
            continue
        members = acc.members[row.id]
        joined = members.joined
        tallies = [Tally() for _ in range(buckets)]
        for k, t in enumerate(tallies):
            lo, hi = edges[k], edges[k + 1]
            t.counts["added"] = bisect_left(joined, hi) - bisect_left(joined, lo) + sum(1 for j, _ in members.departed if lo <= j < hi)
            t.counts["removed"] = sum(1 for _, left in members.departed if lo <= left < hi)
            t.counts["total"] = bisect_left(joined, hi) + sum(1 for j, left in members.departed if j < hi <= left)
        out.append((groupings, tallies))
    return out


def _relationships(kind: str, groupings: list[dict], base: str) -> dict:
    if kind == "campaign":
        names = (("campaigns", "campaign", "campaign_id"),)
    elif kind == "flow":
        names = (("flows", "flow", "flow_id"), ("flow-messages", "flow-message", "flow_message_id"))
    else:
        return {}
    out = {}
    for name, rtype, field in names:
        ids = sorted({g[field] for g in groupings})
        out[name] = {"data": [{"type": rtype, "id": i} for i in ids], "links": {"self": f"{base}/relationships/{name}/", "related": f"{base}/{name}/"}}
    return out
