"""Events: metrics, the events of every metric, and per-metric event streams.

Every event stream reads GET /api/events once per metric id (one partition and one bookmark
each) with the concurrent window reader, and takes each conversion's attribution from
include=attributions. Which metrics feed a stream is a list of selectors, each a metric id, a
name, or `integration:name` (e.g. `shopify:Placed Order`); several names keep a stream fed
across a metric rename, since the metric id (and so its bookmark) stays the same.
"""

from __future__ import annotations

import collections
import datetime as dt
import difflib
import json
import re
import typing as t
from functools import cached_property

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_klaviyo import jsonapi, timeutil
from tap_klaviyo.client import JSONAPI, Deduplicator, KlaviyoAPIError, KlaviyoStream, _retry_after, klaviyo_error_detail
from tap_klaviyo.filters import equals
from tap_klaviyo.ratelimit import TIER_M, TIER_S, TIER_XL
from tap_klaviyo.windows import Window

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

KLAVIYO_INTEGRATION = "klaviyo"
# Event columns taken from the conversion's attribution (include=attributions): column -> relationship.
ATTRIBUTION_COLUMNS = {
    "attributed_campaign_id": "campaign",
    "attributed_campaign_message_id": "campaign-message",
    "attributed_flow_id": "flow",
    "attributed_flow_message_id": "flow-message",
    "attributed_event_id": "attributed-event",
}
NO_ATTRIBUTION = dict.fromkeys(ATTRIBUTION_COLUMNS)
AGGREGATES_PATH = "/api/metric-aggregates"
ONE_DAY = dt.timedelta(days=1)
LATE_STATE = "late_events"  # partition state key: {"from": ..., "days": {day: count}, "tail": {day: count}}


class MetricsStream(KlaviyoStream):
    """Metrics (event types) of every integration; the event streams resolve their ids here."""

    name = "metrics"
    path = "/api/metrics"
    primary_keys = ("id",)
    replication_key = None
    rate_tier = TIER_M
    date_time_fields = ("created", "updated")

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        yield from self._tap.metrics


def integration_key(metric: dict) -> str | None:
    return (metric.get("integration") or {}).get("key")


def describe(metric: dict) -> str:
    return f"{integration_key(metric)}:{metric.get('name')}"


def resolve_metrics(
    metrics: list[dict], selectors: t.Iterable[str], *, default_integration: str | None = None
) -> tuple[list[str], list[str]]:
    """Metric ids the selectors name, in the account's metric order, and the selectors that name none.

    A selector is a metric id, `integration:name`, or a name: of `default_integration` only
    when given (the built-in streams read Klaviyo's own metrics), else of any integration.
    """
    by_id = {metric["id"]: metric for metric in metrics}
    chosen: set[str] = set()
    unmatched = []
    for selector in selectors:
        found = set()
        if selector in by_id:
            found = {selector}
        else:
            integration, sep, name = selector.partition(":")
            if sep and any(integration_key(m) == integration for m in metrics):
                found = {m["id"] for m in metrics if integration_key(m) == integration and m.get("name") == name}
            if not found:
                found = {
                    m["id"]
                    for m in metrics
                    if m.get("name") == selector and default_integration in (None, integration_key(m))
                }
        if not found:
            unmatched.append(selector)
        chosen |= found
    return [metric["id"] for metric in metrics if metric["id"] in chosen], unmatched


def closest(metrics: list[dict], selector: str) -> list[str]:
    """Up to three metric names (or `integration:name`) that look like a selector matching nothing."""
    names = sorted({m.get("name") or "" for m in metrics} | {describe(m) for m in metrics})
    return difflib.get_close_matches(selector, names, n=3, cutoff=0.6)


def read_late_state(late: dict, keep: str) -> tuple[dict[str, int], dict[str, int], dt.datetime | None]:
    """The counts per day from `keep` on, their tails, and `from` of a partition's late-event state."""
    counts = {d: int(n) for d, n in (late.get("days") or {}).items() if d >= keep}
    tail = {d: int(n) for d, n in (late.get("tail") or {}).items() if d >= keep}
    return counts, tail, timeutil.parse_datetime(late["from"]) if late.get("from") else None


class EventStream(KlaviyoStream):
    """Events of the metrics `metric_selectors` names, one partition per metric id."""

    metric_selectors: tuple[str, ...] = ()
    default_integration: str | None = None  # plain names match metrics of this integration only
    path = "/api/events"
    schema_name = "event"
    primary_keys = ("id",)
    replication_key = "datetime"
    filter_field = "datetime"
    page_size = 1000
    rate_tier = TIER_XL
    to_one = ("profile", "metric")
    other_relationships = ("attributions",)
    derived_columns = tuple(ATTRIBUTION_COLUMNS)
    extra_params: t.ClassVar[dict[str, str]] = {"include": "attributions"}
    date_time_fields = ("datetime",)
    raw_attributes = ("event_properties",)
    windowed = True
    prefetch_partitions = True

    def selectors(self) -> tuple[str, ...]:
        return self.metric_selectors

    @cached_property
    def partitions(self) -> list[dict]:
        metrics = self._tap.metrics
        selectors = self.selectors()
        ids, unmatched = resolve_metrics(metrics, selectors, default_integration=self.default_integration)
        self.warn_unmatched(metrics, unmatched, matched=bool(ids))
        return [{"metric_id": metric_id} for metric_id in ids]

    def warn_unmatched(self, metrics: list[dict], unmatched: list[str], *, matched: bool) -> None:
        """Built-in streams say so only when nothing matched (Klaviyo accounts differ); others name every miss."""
        if matched and self.default_integration is not None:
            return
        if not matched and self.default_integration is not None:
            self.logger.warning(
                "Stream '%s' has no records: the account has no Klaviyo metric named %s.",
                self.name,
                " or ".join(repr(n) for n in self.selectors()),
            )
            return
        for selector in unmatched:
            near = closest(metrics, selector)
            hint = f" Closest: {', '.join(repr(n) for n in near)}." if near else ""
            self.logger.warning(
                "Stream '%s': %r matches no metric of the account (by id, name or integration:name).%s",
                self.name, selector, hint,
            )

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        if not context:  # no metric resolved: the SDK still calls once without a partition
            return
        days = int(self.config.get("late_event_days", 7))
        if days <= 0:
            yield from super().get_records(context)
            return
        yield from self._get_records_counted(context, days)

    # --- Late events: per-day counts compared with Klaviyo's own ---------------------------
    #
    # The partition state keeps, for the last `late_event_days` UTC days, how many events this
    # stream emitted per day (`days`), how many of them lie at or after `from` (`tail`), and
    # `from`: where the next run starts reading (its bookmark minus the lookback). The next run
    # starts exactly there, so a day's events before `from` are counts[day] - tail[day]. Once per
    # run and metric, Klaviyo's counts of those days (POST /api/metric-aggregates, count by day,
    # up to `from`) are compared with them, and only a day whose counts differ is read again.
    # Metrics that had no event in those days are not asked about.

    def counted_from(self, context: Context | None) -> dt.datetime | None:
        """Where the last run's counts end (`from`), when late events are counted and it is readable."""
        if not context or int(self.config.get("late_event_days", 7)) <= 0:
            return None
        try:
            return read_late_state(self.get_context_state(context).get(LATE_STATE) or {}, "")[2]
        except (AttributeError, TypeError, ValueError):
            return None

    def sync_window(self, context: Context | None) -> Window | None:
        """The base window, starting where the last run's counts end when there are counts."""
        window = super().sync_window(context)
        resume = self.counted_from(context)
        if window is None or resume is None or resume >= window.end:
            return window
        start = max(resume, self.start_date) if self.start_date else resume
        return Window(start, window.end)

    def _get_records_counted(self, context: Context, days: int) -> t.Iterator[dict]:
        state = self.get_context_state(context)
        late = state.get(LATE_STATE) or {}
        end = self._tap.run_started_at
        first_day = end.date() - dt.timedelta(days=days - 1)
        keep = first_day.isoformat()
        try:
            counts, tail, previous_from = read_late_state(late, keep)
        except (AttributeError, TypeError, ValueError):
            self.logger.warning(
                "Stream '%s' metric %s: the state's %r is unreadable; late events are counted afresh.",
                self.name, context["metric_id"], LATE_STATE,
            )
            counts, tail, previous_from = {}, {}, None
        # A metric without an event in those days is not checked: on the 60/min tier, asking for the
        # counts of every dormant metric would cost minutes per run for the rarest of late events.
        if previous_from is not None and any(counts.values()):
            yield from self._reread_differing_days(context, counts, tail, previous_from, first_day)
        window = self.sync_window(context)
        seen: collections.Counter[str] = collections.Counter()
        recent: collections.deque[str] = collections.deque()
        lookback = dt.timedelta(minutes=float(self.config["lookback_minutes"]))
        for n, record in enumerate(super().get_records(context), 1):
            value = record.get("datetime")
            if value is not None:
                seen[value[:10]] += 1
                recent.append(value)
                if n % 4096 == 0:  # keep only what may fall in the next run's lookback
                    threshold = timeutil.to_rfc3339(timeutil.parse_datetime(value) - lookback)
                    while recent and recent[0] < threshold:
                        recent.popleft()
            yield record
        if window is None or window.start >= window.end:
            return
        bookmark = state.get("replication_key_value")
        if bookmark is None:  # no event yet: the next run reads the whole range again anyway
            state.pop(LATE_STATE, None)
            return
        next_from = max(min(timeutil.parse_datetime(bookmark), end) - lookback, window.start)
        new_counts = {}
        day = first_day
        while day <= end.date():
            key = day.isoformat()
            start = dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)
            if start >= window.start:  # read whole (up to the run's end) in this run
                new_counts[key] = seen.get(key, 0)
            elif start + ONE_DAY <= window.start:  # not read in this run
                if key in counts:
                    new_counts[key] = counts[key]
            elif key in counts and previous_from == window.start:  # before `from` counted earlier, the rest now
                new_counts[key] = counts[key] - tail.get(key, 0) + seen.get(key, 0)
            day += ONE_DAY
        boundary = timeutil.to_rfc3339(next_from)
        new_tail = collections.Counter(value[:10] for value in recent if value >= boundary)
        state[LATE_STATE] = {"from": boundary, "days": new_counts, "tail": {d: n for d, n in new_tail.items() if d >= keep}}

    def _reread_differing_days(
        self, context: Context, counts: dict, tail: dict, until: dt.datetime, first_day: dt.date
    ) -> t.Iterator[dict]:
        """Read again the days before `until` whose emitted counts differ from Klaviyo's; update their counts."""
        start = dt.datetime.combine(first_day, dt.time(), tzinfo=dt.timezone.utc)
        if until <= start:
            return  # every counted day lies in this run's window: read anyway
        try:
            theirs = self._klaviyo_counts(context["metric_id"], start, until)
        except KlaviyoAPIError as exc:
            self.logger.warning(
                "Stream '%s' metric %s: Klaviyo's event counts could not be read (%s); late events of the last "
                "days are not checked in this run.", self.name, context["metric_id"], exc,
            )
            return
        self.open_partition(context)
        for key in sorted(counts):
            ours = counts[key] - tail.get(key, 0)
            if key not in theirs or theirs[key] == ours:
                continue
            day_start = dt.datetime.fromisoformat(key).replace(tzinfo=dt.timezone.utc)
            window = Window(day_start, min(day_start + ONE_DAY, until))
            self.logger.info(
                "Stream '%s' metric %s: %s holds %d events at Klaviyo, %d emitted; reading the day again.",
                self.name, context["metric_id"], key, theirs[key], ours,
            )
            read = 0
            for record in self._read_range(context, window):
                read += 1
                yield record
            counts[key] = read + tail.get(key, 0)

    def _read_range(self, context: Context, window: Window) -> t.Iterator[dict]:
        """Every event of [start, end), with the concurrent reader, repeated ties dropped."""
        dedup = Deduplicator(self.replication_key, self.primary_keys)
        end = timeutil.to_rfc3339(window.end)
        for record in self._read(context, window):
            value = record.get(self.replication_key)
            if value is not None and value >= end:
                continue
            if dedup.is_new(record):
                yield record

    @cached_property
    def _aggregates_limiter(self):
        return self._tap.rate_limiter(AGGREGATES_PATH, TIER_S)

    def _klaviyo_counts(self, metric_id: str, start: dt.datetime, end: dt.datetime) -> dict[str, int]:
        """Klaviyo's count of the metric's events per UTC day of [start, end): one POST /api/metric-aggregates."""
        body = {"data": {"type": "metric-aggregate", "attributes": {
            "metric_id": metric_id, "measurements": ["count"], "interval": "day", "timezone": "UTC",
            "filter": [f"greater-or-equal(datetime,{timeutil.to_filter_value(start)})",
                       f"less-than(datetime,{timeutil.to_filter_value(end)})"],
        }}}  # fmt: skip
        headers = {**self.http_headers, "Content-Type": JSONAPI}
        url = self.url_base + AGGREGATES_PATH
        prepared = requests.Request("POST", url, headers=headers, data=json.dumps(body)).prepare()
        response = self.request_decorator(self._post_aggregates)(prepared)
        try:
            attributes = jsonapi.decode_json(response.content)["data"]["attributes"]
            values = attributes["data"][0]["measurements"]["count"] if attributes["data"] else [0] * len(attributes["dates"])
            return {date[:10]: int(count) for date, count in zip(attributes["dates"], values)}
        except (*jsonapi.DecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
            msg = f"Klaviyo sent an unexpected body for POST {AGGREGATES_PATH}: {exc}"
            raise KlaviyoAPIError(msg) from exc

    def _post_aggregates(self, prepared: requests.PreparedRequest) -> requests.Response:
        self._aggregates_limiter.acquire()
        self._tap.request_stats.count(self.name)
        response = self.requests_session.send(self.authenticator(prepared), timeout=self.timeout)
        status = response.status_code
        message = f"Klaviyo answered {status} for POST {AGGREGATES_PATH}: {klaviyo_error_detail(response)}"
        if status == 429:
            retry_after = _retry_after(response)
            self._aggregates_limiter.pause(retry_after if retry_after is not None else 1.0)
            self._tap.request_stats.count_throttled(self.name)
        if status == 429 or status >= 500:
            raise RetriableAPIError(message, response)
        if status == 403:
            message += ". The api_key lacks the metrics:read scope the late-event check needs"
        if status >= 400:
            raise KlaviyoAPIError(message)
        return response

    def base_params(self, context: Context | None) -> dict[str, str]:
        params = super().base_params(context)
        params["filter"] = equals("metric_id", context["metric_id"])
        return params

    def records_of(self, document: jsonapi.Document) -> list[dict]:
        """Records with the columns of each event's attribution (the first, when Klaviyo lists several)."""
        records = super().records_of(document)
        attributions = {item.id: item for item in document.included or () if item.type == "attribution"}
        if not attributions:
            for record in records:
                record.update(NO_ATTRIBUTION)
            return records
        for record, resource in zip(records, document.data or ()):
            refs = jsonapi.related(resource, "attributions")
            attribution = attributions.get(refs[0].id) if refs else None
            if attribution is None:
                record.update(NO_ATTRIBUTION)
                continue
            for column, relationship in ATTRIBUTION_COLUMNS.items():
                ref = jsonapi.related(attribution, relationship)
                record[column] = ref.id if isinstance(ref, jsonapi.Ref) else None
        return records

    def legacy_bookmark(self, context: Context | None) -> str | None:
        """singer-io's tap kept `{"bookmarks": {"<metric_id>": {"since": ...}}}`; resume from it."""
        return self._tap.legacy_metric_bookmarks.get(context["metric_id"]) if context else None


class EventsStream(EventStream):
    """Every event of every metric of every integration (or of the metrics `event_metrics` names)."""

    name = "events"

    def legacy_bookmark(self, context: Context | None) -> str | None:  # noqa: ARG002
        """singer-io had no such table: its bookmarks belong to the per-metric streams, not to this one."""
        return None

    def selectors(self) -> tuple[str, ...]:
        chosen = self.config.get("event_metrics") or []
        return tuple(chosen) if chosen else tuple(metric["id"] for metric in self._tap.metrics)


def event_stream(stream_name: str, *names: str, integration: str | None = KLAVIYO_INTEGRATION) -> type[EventStream]:
    """An event stream class for the metrics these selectors name (singer-io's stream names for the built-ins)."""
    return type(
        f"{stream_name.title().replace('_', '')}Stream",
        (EventStream,),
        {
            "name": stream_name,
            "metric_selectors": names,
            "default_integration": integration,
            "__doc__": f"Events of the metric(s) {', '.join(names)}.",
        },
    )


# singer-io/tap-klaviyo 1.2.0's per-metric streams (its EVENT_MAPPINGS), with Klaviyo's own metric
# names. The SMS streams carry 1.2.0's "text message" names and match both the 2026 "Text Message"
# metric names and the older "SMS" ones (the same metric ids, renamed by Klaviyo in July 2026), so
# a table keeps filling across the rename. `unsubscribe` also takes the legacy "Unsubscribed".
EVENT_STREAMS = (
    event_stream("bounce", "Bounced Email"),
    event_stream("click", "Clicked Email"),
    event_stream("dropped_email", "Dropped Email"),
    event_stream("mark_as_spam", "Marked Email as Spam"),
    event_stream("receive", "Received Email"),
    event_stream("unsubscribe", "Unsubscribed", "Unsubscribed from Email Marketing"),
    event_stream("open", "Opened Email"),
    event_stream("unsub_list", "Unsubscribed from List"),
    event_stream("subscribed_to_email", "Subscribed to Email Marketing"),
    event_stream("subscribe_list", "Subscribed to List"),
    event_stream("update_email_preferences", "Updated Email Preferences"),
    event_stream("clicked_text_message", "Clicked Text Message", "Clicked SMS"),
    event_stream("subscribed_to_text_message", "Subscribed to Text Messaging Marketing", "Subscribed to SMS Marketing"),
    event_stream("failed_to_deliver_text_message", "Failed to Deliver Text Message", "Failed to Deliver SMS"),
    event_stream(
        "failed_to_deliver_automated_response_text_message",
        "Failed to Deliver Automated Response Text Message",
        "Failed to deliver Automated Response SMS",
        "Failed to Deliver Automated Response SMS",
    ),
    event_stream(
        "received_automated_response_text_message",
        "Received Automated Response Text Message",
        "Received Automated Response SMS",
    ),
    event_stream("received_text_message", "Received Text Message", "Received SMS"),
    event_stream("sent_text_message", "Sent Text Message", "Sent SMS"),
    event_stream("unsubscribed_from_text_message", "Unsubscribed from Text Messaging Marketing", "Unsubscribed from SMS Marketing"),
    event_stream("subscribed_to_text_message_transactional", "Subscribed to Text Messaging Transactional"),
    event_stream("unsubscribed_from_text_message_transactional", "Unsubscribed from Text Messaging Transactional"),
)


STREAM_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


def metric_stream_errors(config: t.Mapping[str, t.Any], builtin: t.Collection[str]) -> list[str]:
    """One line per problem of the `metric_streams` setting (a name clash, a bad name, no metric names)."""
    streams = config.get("metric_streams") or {}
    if not isinstance(streams, dict):
        return ["metric_streams must be an object: stream name -> list of metric ids, names or integration:name."]
    errors = []
    for name, selectors in streams.items():
        if name in builtin:
            errors.append(f"metric_streams: {name!r} is the name of a built-in stream; choose another name.")
        elif not STREAM_NAME.match(name):
            errors.append(f"metric_streams: {name!r} is not a stream name (lowercase letters, digits and _, starting with a letter).")
        if not isinstance(selectors, list) or not selectors or not all(isinstance(s, str) and s.strip() for s in selectors):
            errors.append(f"metric_streams: {name!r} must list at least one metric id, name or integration:name.")
    return errors


def metric_streams(config: t.Mapping[str, t.Any]) -> list[type[EventStream]]:
    """The user-defined event streams of `metric_streams` (checked with metric_stream_errors first)."""
    return [event_stream(name, *selectors, integration=None) for name, selectors in (config.get("metric_streams") or {}).items()]
