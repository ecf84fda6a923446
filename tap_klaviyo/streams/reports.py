"""Reports: Klaviyo's own campaign, flow, form and segment statistics (the Reporting API).

Each endpoint allows 1 request/s, 2/min and 225/day, so the request plan is the design: every
statistic the endpoint offers in one request, no filter (every campaign, flow, form or segment at
once), values over the widest preset timeframe (`last_365_days`), series per day in 60-day
chunks (the longest daily interval allowed). Before the sync the tap logs each report stream's
plan against what is left of the day's allowance; a plan that does not fit reads the most recent
days first and leaves the older ones, bookmarked, to the next run.

A series stream's state keeps the span of days it has read whole, `read_from` to `read_to`
(exclusive: `read_to` is the day of the run, read only so far); each run reads again from `read_to`
minus `reporting_lookback_days` (Klaviyo revises attribution for days after a send) up to today,
then the older days of the history not read yet. Every report
stream's state also keeps its requests of the last day per 10 minutes (`report_requests`), so that
the next run's plan counts them against the day's allowance.
"""

from __future__ import annotations

import datetime as dt
import json
import typing as t
from dataclasses import dataclass
from functools import cached_property

import requests
from singer_sdk.exceptions import RetriableAPIError

from tap_klaviyo import jsonapi, timeutil
from tap_klaviyo.client import JSONAPI, KlaviyoAPIError, KlaviyoStream, _retry_after, klaviyo_error_detail
from tap_klaviyo.ratelimit import TIER_REPORTS, Tier
from tap_klaviyo.streams.events import closest, describe, resolve_metrics

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

VALUES_TIMEFRAME = "last_365_days"  # the widest preset: Klaviyo allows at most a year per request
DAILY_CHUNK_DAYS = 60  # `interval: daily` allows timeframes of at most 60 days
DEFAULT_HISTORY_DAYS = 365  # series history read without start_date
PLACED_ORDER = "Placed Order"
ONE_DAY = dt.timedelta(days=1)
SEND_BUCKET = dt.timedelta(minutes=10)
SENDS_STATE = "report_requests"  # stream state: the requests of the last day per 10 minutes, for the next run's plan
COLUMNS_NOT_STATISTICS = frozenset({"timeframe", "date", "conversion_metric_id"})


class ReportStopped(Exception):  # noqa: N818 - reads as what happened
    """The day's allowance of a report endpoint is used up: the stream ends here with its state."""


@dataclass(frozen=True)
class Chunk:
    """One report request's days, [start, end) as calendar days of the account's timezone."""

    start: dt.date
    end: dt.date


def chunks_backward(start: dt.date, end: dt.date, days: int) -> list[Chunk]:
    """[start, end) cut into chunks of at most `days`, the most recent first."""
    chunks = []
    while end > start:
        chunk_start = max(start, end - dt.timedelta(days=days))
        chunks.append(Chunk(chunk_start, end))
        end = chunk_start
    return chunks


@dataclass
class SeriesPlan:
    """The chunks a series stream reads this run (most recent first), and those left for later."""

    chunks: list[Chunk]
    left: list[Chunk]
    previous: tuple[dt.date, dt.date] | None  # the span read before this run


def plan_series(
    first_day: dt.date,
    end: dt.date,
    previous: tuple[dt.date, dt.date] | None,
    lookback_days: int,
    allowance: int,
    chunk_days: int = DAILY_CHUNK_DAYS,
) -> SeriesPlan:
    """The days to read: from the last span's end minus the lookback up to `end`, then the history
    before the span back to `first_day`, the most recent first, as far as `allowance` requests go."""
    if previous is None or previous[1] < first_day or previous[0] >= end:
        chunks = chunks_backward(first_day, end, chunk_days)
    else:
        recent_from = max(first_day, min(previous[1], end) - dt.timedelta(days=lookback_days))
        chunks = chunks_backward(recent_from, end, chunk_days)
        chunks += chunks_backward(first_day, min(previous[0], recent_from), chunk_days)
    return SeriesPlan(chunks[:allowance], chunks[allowance:], previous)


def span_after(plan: SeriesPlan, read_from: dt.date, end: dt.date) -> tuple[dt.date, dt.date]:
    """The span of days read once this run read back from `end` to `read_from` without a gap:
    joined with the earlier span where they touch, else this run's alone (the earlier days are
    then read again, oldest last, rather than leaving a gap)."""
    previous = plan.previous
    if previous is not None and read_from <= previous[1]:
        return min(read_from, previous[0]), max(end, previous[1])
    return read_from, end


class ReportStream(KlaviyoStream):
    """One POST /api/<report>-reports endpoint: its request body and its rows."""

    report_type: str  # the JSON:API type of the request, e.g. "campaign-values-report"
    group_by: tuple[str, ...] = ()  # groupings requested (and the row's ids); () sends none
    needs_conversion_metric = False
    replication_key = None

    @property
    def required_scope(self) -> str:
        return self.scope or f"{self.path.removeprefix('/api/').split('-')[0]}s:read"

    @cached_property
    def statistics(self) -> list[str]:
        """Every statistic of the endpoint: the schema's columns that are neither ids nor dates."""
        return [name for name in self.schema["properties"] if name not in {*self.primary_keys, *COLUMNS_NOT_STATISTICS}]

    @cached_property
    def rate_limiter(self):
        """The endpoint's limiter, holding the sends of earlier runs in the last day (from the state)."""
        daily = int(self.config.get("report_daily_requests", TIER_REPORTS.daily))
        limiter = self._tap.rate_limiter(self.path, Tier(TIER_REPORTS.burst, TIER_REPORTS.steady, daily))
        now = self._tap.run_started_at
        for bucket, count in self._earlier_sends().items():
            # counted at the end of their 10 minutes: they leave the day no earlier than they really do
            ago = (now - dt.datetime.fromisoformat(bucket) - SEND_BUCKET).total_seconds()
            limiter.count_earlier(max(0.0, ago), count)
        return limiter

    def _earlier_sends(self) -> dict[str, int]:
        """The state's `report_requests` (start of 10 UTC minutes -> requests sent), those of the last day only."""
        since = self._tap.run_started_at - ONE_DAY - SEND_BUCKET
        kept = {}
        for bucket, count in (self.stream_state.get(SENDS_STATE) or {}).items():
            try:
                if dt.datetime.fromisoformat(bucket) >= since and int(count) > 0:
                    kept[bucket] = int(count)
            except (TypeError, ValueError):
                continue
        return kept

    def _count_send(self) -> None:
        now = timeutil.utcnow()
        bucket = timeutil.to_rfc3339(now.replace(minute=now.minute - now.minute % 10, second=0, microsecond=0))
        sends = self._earlier_sends()
        sends[bucket] = sends.get(bucket, 0) + 1
        self.stream_state[SENDS_STATE] = sends

    @cached_property
    def conversion_metric_id(self) -> str | None:
        return conversion_metric_id(self._tap.metrics, self.config.get("conversion_metric")) if self.needs_conversion_metric else None

    @property
    def requests_needed(self) -> int:
        return 1

    def log_plan(self) -> None:
        """Say before the sync how many requests this stream needs of what is left today."""
        left = self.rate_limiter.left_today()
        self.logger.info(
            "Stream %s needs %d report request(s) of the %d left today at POST %s (1/s, 2/min).",
            self.name, self.requests_needed, left, self.path,
        )

    def body(self, timeframe: dict, **attributes: t.Any) -> dict:
        attributes = {"statistics": self.statistics, "timeframe": timeframe, **attributes}
        if self.group_by:
            attributes["group_by"] = list(self.group_by)
        if self.needs_conversion_metric:
            attributes["conversion_metric_id"] = self.conversion_metric_id
        return {"data": {"type": self.report_type, "attributes": attributes}}

    def fetch(self, body: dict) -> dict:
        """One report request (retried on 5xx and short 429s): the response's `data.attributes`."""
        headers = {**self.http_headers, "Content-Type": JSONAPI}
        prepared = requests.Request("POST", self.url_base + self.path, headers=headers, data=json.dumps(body)).prepare()
        response = self.request_decorator(self._post)(prepared)
        try:
            document = jsonapi.decode_json(response.content)
            attributes = document["data"]["attributes"]
            if not isinstance(attributes.get("results"), list):
                raise TypeError("results is not a list")
        except (*jsonapi.DecodeError, KeyError, TypeError) as exc:
            msg = f"Klaviyo sent an unexpected body for POST {self.path}: {exc}"
            raise KlaviyoAPIError(msg) from exc
        if isinstance(document.get("links"), dict) and document["links"].get("next"):
            # The spec lists a page_cursor parameter, yet its answers link only `self`: no next page is expected.
            self.logger.warning(
                "Stream %s: Klaviyo's answer to POST %s links a next page, which its spec does not describe; "
                "the rows beyond this page are not read.", self.name, self.path,
            )
        return attributes

    def _post(self, prepared: requests.PreparedRequest) -> requests.Response:
        if not self.rate_limiter.left_today():
            msg = f"the {self.rate_limiter.tier.daily} requests a day at POST {self.path} are used up"
            raise ReportStopped(msg)
        self.rate_limiter.acquire(self._sleep)
        self._tap.request_stats.count(self.name)
        self._count_send()
        response = self.requests_session.send(self.authenticator(prepared), timeout=self.timeout)
        status = response.status_code
        message = self.redact(f"Klaviyo answered {status} for POST {self.path}: {klaviyo_error_detail(response)}")
        if status == 429:
            self._tap.request_stats.count_throttled(self.name)
            retry_after = _retry_after(response)
            most = float(self.config.get("report_max_wait_seconds", 300))
            if retry_after is not None and retry_after > most:
                msg = f"Klaviyo asks to wait {retry_after:.0f} s (more than report_max_wait_seconds, {most:.0f} s)"
                raise ReportStopped(msg)
            self.rate_limiter.pause(retry_after if retry_after is not None else 1.0)
        if status == 429 or status >= 500:
            raise RetriableAPIError(message, response)
        if status == 403:
            message += f". The api_key lacks a read scope this stream needs ({self.required_scope})"
        if status >= 400:
            raise KlaviyoAPIError(message)
        self._observe_quota(response)
        return response

    def row(self, groupings: dict) -> dict:
        """A row's ids from a result's groupings (only those the stream keys on), and the conversion metric's id."""
        ids = {name: groupings.get(name) for name in self.primary_keys if name not in COLUMNS_NOT_STATISTICS}
        if self.needs_conversion_metric:
            ids["conversion_metric_id"] = self.conversion_metric_id
        return ids

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        try:
            yield from self.report_rows()
        except ReportStopped as exc:
            self.logger.warning(
                "Stream %s stopped: %s. What it read is in its STATE; the next run continues from there.", self.name, exc
            )

    def report_rows(self) -> t.Iterator[dict]:
        raise NotImplementedError


class ValuesReportStream(ReportStream):
    """Statistics over the last 365 days per campaign/flow message, form version or segment, read whole every run."""

    def report_rows(self) -> t.Iterator[dict]:
        attributes = self.fetch(self.body({"key": VALUES_TIMEFRAME}))
        for result in attributes["results"]:
            statistics = result.get("statistics") or {}
            yield {
                **self.row(result.get("groupings") or {}),
                "timeframe": VALUES_TIMEFRAME,
                **{name: statistics.get(name) for name in self.statistics},
            }


class SeriesReportStream(ReportStream):
    """Statistics per day, incremental on `date` with `reporting_lookback_days` re-read every run."""

    replication_key = "date"
    first_available: dt.date | None = None  # Klaviyo has no report data before this day

    @cached_property
    def plan(self) -> SeriesPlan:
        state = self.stream_state
        previous = None
        try:
            if state.get("read_from") and state.get("read_to") and not self.reads_whole:
                previous = (dt.date.fromisoformat(state["read_from"]), dt.date.fromisoformat(state["read_to"]))
        except (TypeError, ValueError):
            self.logger.warning("Stream %s: the state's read_from/read_to are unreadable; reading the history afresh.", self.name)
        return plan_series(
            self.first_day,
            self.end_day,
            previous,
            int(self.config.get("reporting_lookback_days", 30)),
            self.rate_limiter.left_today() or 0,
        )

    @cached_property
    def end_day(self) -> dt.date:
        """The day after the run's start: today's figures so far are read, and read again next run."""
        return self._tap.run_started_at.date() + ONE_DAY

    @cached_property
    def first_day(self) -> dt.date:
        first = self.start_date.date() if self.start_date else self.end_day - dt.timedelta(days=DEFAULT_HISTORY_DAYS)
        return max(first, self.first_available) if self.first_available else first

    @property
    def requests_needed(self) -> int:
        return len(self.plan.chunks) + len(self.plan.left)

    def log_plan(self) -> None:
        super().log_plan()
        left = self.plan.left
        if left:
            self.logger.warning(
                "Stream %s: the day's allowance at POST %s covers %d of %d requests: this run reads the days from %s "
                "on; %s to %s are left to the next run.",
                self.name, self.path, len(self.plan.chunks), self.requests_needed,
                self.plan.chunks[-1].start if self.plan.chunks else self.end_day, left[-1].start, left[0].end - ONE_DAY,
            )

    def report_rows(self) -> t.Iterator[dict]:
        self.open_partition(None)
        state = self.stream_state
        for chunk in self.plan.chunks:
            timeframe = {"start": f"{chunk.start.isoformat()}T00:00:00", "end": f"{chunk.end.isoformat()}T00:00:00"}
            attributes = self.fetch(self.body(timeframe, interval="daily"))
            dates = [_day(value) for value in attributes.get("date_times") or []]
            if None in dates:
                msg = f"Klaviyo sent a date_times entry that is not a date-time for POST {self.path}: {attributes.get('date_times')!r:.200}"
                raise KlaviyoAPIError(msg)
            results = attributes["results"]
            for index, date in enumerate(dates):
                for result in results:
                    statistics = result.get("statistics") or {}
                    yield {
                        **self.row(result.get("groupings") or {}),
                        "date": date,
                        **{name: _at(statistics.get(name), index) for name in self.statistics},
                    }
            read_from, read_to = span_after(self.plan, chunk.start, self.end_day - ONE_DAY)  # today: so far only
            state["read_from"], state["read_to"] = read_from.isoformat(), read_to.isoformat()
            self.state_manager.is_flushed = False
            self._write_state_message()


def _day(date_time: t.Any) -> str | None:
    """The calendar day a series bucket starts on, as Klaviyo writes it (in the account's timezone)."""
    try:
        return dt.datetime.fromisoformat(date_time).date().isoformat()
    except (TypeError, ValueError):
        return None


def _at(values: t.Any, index: int) -> t.Any:
    return values[index] if isinstance(values, list) and index < len(values) else None


def conversion_metric_id(metrics: list[dict], selector: str | None) -> str:
    """The id of the metric `conversion_metric` names, by default the one "Placed Order"; else a one-line error naming the choices."""
    ids, _ = resolve_metrics(metrics, [selector or PLACED_ORDER])
    if len(ids) == 1:
        return ids[0]
    by_id = {metric["id"]: metric for metric in metrics}
    if ids:
        choices = ", ".join(f"{describe(by_id[i])} ({i})" for i in ids)
        what = f"conversion_metric {selector!r} names {len(ids)}" if selector else f"the account has {len(ids)} {PLACED_ORDER!r}"
        msg = f"{what} metrics: {choices}; set conversion_metric to one of their ids."
        raise KlaviyoAPIError(msg)
    near = closest(metrics, selector or PLACED_ORDER)
    hint = f" Closest: {', '.join(repr(name) for name in near)}." if near else ""
    what = f"conversion_metric {selector!r} matches no metric" if selector else f"the account has no {PLACED_ORDER!r} metric"
    msg = f"{what} (the report streams need one for conversions and revenue): set conversion_metric to a metric id, name or integration:name.{hint}"
    raise KlaviyoAPIError(msg)


class CampaignValuesReportsStream(ValuesReportStream):
    name = "campaign_values_reports"
    path = "/api/campaign-values-reports"
    report_type = "campaign-values-report"
    primary_keys = ("campaign_id", "campaign_message_id", "send_channel", "timeframe")
    group_by = ("campaign_id", "campaign_message_id", "send_channel")
    needs_conversion_metric = True


class FlowValuesReportsStream(ValuesReportStream):
    name = "flow_values_reports"
    path = "/api/flow-values-reports"
    report_type = "flow-values-report"
    primary_keys = ("flow_id", "flow_message_id", "send_channel", "timeframe")
    group_by = ("flow_id", "flow_message_id", "send_channel")
    needs_conversion_metric = True


class FlowSeriesReportsStream(SeriesReportStream):
    name = "flow_series_reports"
    path = "/api/flow-series-reports"
    report_type = "flow-series-report"
    primary_keys = ("flow_id", "flow_message_id", "send_channel", "date")
    group_by = ("flow_id", "flow_message_id", "send_channel")
    needs_conversion_metric = True


class FormValuesReportsStream(ValuesReportStream):
    name = "form_values_reports"
    path = "/api/form-values-reports"
    report_type = "form-values-report"
    primary_keys = ("form_id", "form_version_id", "timeframe")
    group_by = ("form_id", "form_version_id")


class FormSeriesReportsStream(SeriesReportStream):
    name = "form_series_reports"
    path = "/api/form-series-reports"
    report_type = "form-series-report"
    primary_keys = ("form_id", "form_version_id", "date")
    group_by = ("form_id", "form_version_id")


class SegmentValuesReportsStream(ValuesReportStream):
    name = "segment_values_reports"
    path = "/api/segment-values-reports"
    report_type = "segment-values-report"
    primary_keys = ("segment_id", "timeframe")


class SegmentSeriesReportsStream(SeriesReportStream):
    name = "segment_series_reports"
    path = "/api/segment-series-reports"
    report_type = "segment-series-report"
    primary_keys = ("segment_id", "date")
    first_available = dt.date(2023, 6, 1)  # the spec: segment report data starts on June 1st, 2023


REPORT_STREAMS = (
    CampaignValuesReportsStream,
    FlowValuesReportsStream,
    FlowSeriesReportsStream,
    FormValuesReportsStream,
    FormSeriesReportsStream,
    SegmentValuesReportsStream,
    SegmentSeriesReportsStream,
)
