"""Events and metrics: endpoint tables, handlers, attributions and metric aggregates.

The event store lives in events.py and the generated events in account.py; this module adds
what is derived from them: the attributions of conversion events (include=attributions), the
counts of POST /api/metric-aggregates, and the mutations tests use between syncs (metrics
renamed or added, events stored late).
"""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from ..core import HandlerBase, PostEndpoint, Query, _literal, _second_bounds, from_spec
from ..errors import ApiError, body_error, invalid, request_attributes
from ..filters import FilterError, parse_filter
from ..resources import fmt_us, mix, render_row

UTC = timezone.utc
# Metrics whose events Klaviyo attributes to the campaign or flow message that led to them.
CONVERSION_METRICS = ("Placed Order", "Ordered Product", "Started Checkout")
ATTRIBUTION_DELAY = 3 * 3600  # attribution lands up to 3 hours after its event (klaviyo-api.md §8.3)
# Metrics added after generation (so the generated data of every other metric is unchanged):
# Klaviyo's 2026 "Text Message" names without an older "SMS" twin in the account, and custom
# metrics of integrations beyond the API and Shopify ones. (name, integration key, events per 1,000).
LATER_METRICS = (
    ("Failed to Deliver Automated Response Text Message", "klaviyo", 1),
    ("Received Automated Response Text Message", "klaviyo", 1),
    ("Subscribed to Text Messaging Transactional", "klaviyo", 1),
    ("Unsubscribed from Text Messaging Transactional", "klaviyo", 1),
    ("Placed Order", "woocommerce", 2),
    ("Loyalty Points Earned", "woocommerce", 1),
    ("Checkout Abandoned", "segment", 1),
)
# POST /api/metric-aggregates (MetricAggregateQuery): what the spec allows.
AGGREGATE_MEASUREMENTS = ("count", "sum_value", "unique")
AGGREGATE_INTERVALS = ("day", "hour", "month", "week")
AGGREGATE_ATTRIBUTES = frozenset({"metric_id", "page_cursor", "measurements", "interval", "page_size", "by", "return_fields", "filter", "timezone", "sort"})
AGGREGATE_RATE = (3, 60)  # burst per second, steady per minute (tier S)
AGGREGATE_MAX_DAYS = 366


class EventsData:
    """Account mixin: attributions, metric renames and additions, late-stored events."""

    @staticmethod
    def later_metric_counts(total_events: int) -> list[int]:
        """Events of each of LATER_METRICS in an account of `total_events` (part of that total)."""
        if total_events < 100:
            return [0] * len(LATER_METRICS)
        return [max(4, total_events * per_mille // 1000) for _, _, per_mille in LATER_METRICS]

    def _build_later_metrics(self, total_events: int) -> None:
        rng = random.Random(mix(self.seed, 2026))
        n_profiles = self._profile_count()
        for i, ((name, integration, _), count) in enumerate(zip(LATER_METRICS, self.later_metric_counts(total_events))):
            created = (1704067200 - 30 * 86400 + i * 3600) * 1_000_000
            mid = self._new_metric(name, integration, created=created, salt=5000 + i)
            span = 1782777600 - 1704067200
            ts = sorted(1704067200 + int(rng.random() * span) for _ in range(count))
            profiles = [int(rng.random() * n_profiles) for _ in ts] if n_profiles else [0] * count
            self.events_store.extend_sorted(mid, ts, profiles)
            self.events_store.properties[mid] = self._property_pool(mid)

    def _new_metric(self, name: str, integration: str, created: int | None = None, salt: int | None = None) -> str:
        from ..account import INTEGRATIONS
        from ..resources import Row

        if integration not in INTEGRATIONS:
            raise KeyError(f"unknown integration {integration!r}; choose from {sorted(INTEGRATIONS)}")
        mid = self._short_id(salt if salt is not None else 9000 + len(self.metric_rows), self._ids)
        created = created if created is not None else self.now_us() // 1_000_000 * 1_000_000
        info = INTEGRATIONS[integration]
        attrs = {"name": name, "created": fmt_us(created), "updated": fmt_us(created), "integration": dict(info)}
        row = Row(mid, attrs, {"id": mid, "integration.name": info["name"], "integration.category": info["category"]})
        self.metric_rows.append(row)
        self.metric_rows.sort(key=lambda r: r.id)
        self.metric_by_id[mid] = row
        return mid

    def add_metric(self, name: str, integration: str = "api") -> str:
        """A new metric (created now) of this integration; its events come from add_event."""
        with self.lock:
            return self._new_metric(name, integration)

    def rename_metric(self, metric_id: str, name: str) -> None:
        """Give a metric a new name, keeping its id and events (as Klaviyo's 2026 SMS -> Text Message rename did)."""
        with self.lock:
            row = self.metric_by_id[metric_id]
            row.attrs["name"] = name
            self._bump(row)

    # ---- attributions
    def _build_attributions(self) -> None:
        """Generated events of conversion metrics: a quarter attributed to a sent campaign's message, a quarter to a flow message."""
        self._conversion_ids = {r.id for r in self.metric_rows if r.attrs["name"] in CONVERSION_METRICS}
        sources = self.message_sources("email") + self.message_sources("sms")  # messages that were sent
        self._attribution_campaigns = [(campaign, message) for campaign, _, message in sources if campaign is not None]
        self._attribution_flow_messages = [(flow, message) for _, flow, message in sources if flow is not None]
        clicked = self.metric_ids("Clicked Email")
        self._attribution_touches = self.events_store.by_metric.get(clicked[0]) if clicked else None
        self.events_store.attribution_of = self._generated_attribution

    def _generated_attribution(self, serial: int, mid: str, ts: int) -> tuple | None:
        if mid not in self._conversion_ids:
            return None
        h = mix(self.seed, serial, 70)
        kind = h % 4
        if kind >= 2 or (kind == 0 and not self._attribution_campaigns) or (kind == 1 and not self._attribution_flow_messages):
            return None
        aid = f"{mix(self.seed, serial, 71):016x}{mix(self.seed, serial, 72):016x}"
        touches = self._attribution_touches
        touch = self.events_store.event_id(touches.serial[(h >> 8) % len(touches)]) if touches is not None and len(touches) else None
        visible = ts + (h >> 24) % ATTRIBUTION_DELAY
        if kind == 0:
            campaign, message = self._attribution_campaigns[(h >> 16) % len(self._attribution_campaigns)]
            return (aid, touch, campaign, message, None, None, visible)
        flow, message = self._attribution_flow_messages[(h >> 16) % len(self._attribution_flow_messages)]
        return (aid, touch, None, None, flow, message, visible)

    def _explicit_attribution(self, serial: int, attribution: dict | None, visible: int) -> tuple | None:
        if not attribution:
            return None
        unknown = set(attribution) - {"campaign_message", "flow_message", "attributed_event"}
        if unknown or ("campaign_message" in attribution) == ("flow_message" in attribution):
            raise KeyError("attribution takes campaign_message or flow_message, and optionally attributed_event")
        aid = f"{mix(self.seed, serial, 73):016x}{mix(self.seed, serial, 74):016x}"
        touch = attribution.get("attributed_event")
        if "campaign_message" in attribution:
            message = attribution["campaign_message"]
            campaign = next(cid for cid, rows in self.campaign_messages.items() if any(r.id == message for r in rows))
            return (aid, touch, campaign, message, None, None, visible)
        message = attribution["flow_message"]
        flow = self.flow_action_by_id[self.flow_message_by_id[message].extra["action"]].extra["flow"]
        return (aid, touch, None, None, flow, message, visible)

    def attributions(self, metric_id: str | None = None) -> dict[str, dict]:
        """Ground truth: event id -> its attribution as GET /api/events?include=attributions shows it now."""
        now = int(self.now().timestamp())
        store = self.events_store
        with self.lock:
            ids = [metric_id] if metric_id else self.all_event_metric_ids()
            out = {}
            for ts, serial, mid, _ in store.iter_sorted(ids, now):
                found = store.attribution(serial, mid, ts, now)
                if found is not None:
                    out[store.event_id(serial)] = dict(zip(
                        ("id", "attributed_event_id", "campaign_id", "campaign_message_id", "flow_id", "flow_message_id"), found
                    ))  # fmt: skip
            return out

    # ---- metric aggregates
    def event_counts(self, metric_id: str, start: datetime, end: datetime, interval: str = "day", tz: str = "UTC") -> tuple[list[datetime], dict]:
        """Bucket starts of [start, end) and the visible events' count, unique profiles and value sum per bucket."""
        zone = ZoneInfo(tz)
        starts = _buckets(start.astimezone(zone), end.astimezone(zone), interval)
        edges = [int(b.timestamp()) for b in starts] + [int(end.timestamp())]
        counts, uniques, sums = [0] * len(starts), [set() for _ in starts], [0.0] * len(starts)
        store = self.events_store
        now = int(self.now().timestamp())
        hidden = store.hidden(now)
        events = store.by_metric.get(metric_id)
        if events is not None and starts:
            from bisect import bisect_right

            a, b = events.span(edges[0], edges[-1] - 1)
            for j in range(a, b):
                serial = events.serial[j]
                if hidden is not None and hidden(serial):
                    continue
                k = bisect_right(edges, events.ts[j]) - 1
                counts[k] += 1
                uniques[k].add(events.profile[j])
                sums[k] += _value_of(store, metric_id, serial)
        return starts, {"count": [float(c) for c in counts], "unique": [float(len(u)) for u in uniques], "sum_value": [round(s, 2) for s in sums]}

ENDPOINTS = (
    from_spec("/api/metrics", "metric", "metrics", page_length=200),
    from_spec("/api/events", "event", "events", page_length=200, page_size_since="2026-01-15", default_sort="datetime"),
)


class EventsHandlers(HandlerBase):
    def metrics(self, q: Query, base: str) -> bytes:
        empty = self._empty_rel_data(q, ("flow-triggers",))
        data, _, nxt = self.rows_page(q, self.account.metric_rows, base, "metrics", ("flow-triggers",), lambda r: empty)
        return self.document(q, base, data, nxt)

    # ---- events
    def events(self, q: Query, base: str) -> bytes:
        acc = self.account
        metric_ids = acc.all_event_metric_ids()
        for c in q.values("metric_id"):
            wanted = _literal(c)
            wanted = wanted if isinstance(wanted, frozenset) else {wanted}
            metric_ids = [m for m in metric_ids if m in wanted]
        if any(c.op == "has" for c in q.values("metric")):
            metric_ids = [m for m in metric_ids if m in acc.metric_by_id]
        profile = None
        for c in q.values("profile_id"):
            profile = acc.profile_index(_literal(c))
            if profile is None:
                metric_ids = []
        lo, hi = _second_bounds(q.conditions)
        after = None
        if q.after is not None:
            if len(q.after) != 2 or not all(isinstance(v, int) for v in q.after):
                raise invalid("Invalid page cursor.", "page[cursor]")
            after = q.after
        now = int(acc.now().timestamp())
        rows, more = acc.events_store.page(metric_ids, lo=lo, hi=hi, profile=profile, after=after, desc=q.desc, size=q.size, now=now)
        attributions: list[str] | None = [] if "attributions" in q.include else None
        text = acc.events_store.render(rows, base, acc.profile_id, attributions, now)
        next_key = rows[-1][:2] if more else None
        if not q.fields and set(q.include) <= {"attributions"}:  # the fast path: text only
            links = msgspec.json.encode(self.links(q, base, next_key))
            tail = b',"included":[' + ",".join(attributions).encode() + b"]" if attributions is not None else b""
            return b'{"data":[' + text.encode() + b'],"links":' + links + tail + b"}"
        data = msgspec.json.decode("[" + text + "]")
        included = [msgspec.json.decode(item) for item in attributions or ()]
        if "metric" in q.include:
            seen = {r[2] for r in rows}
            names = q.fields.get("metric")
            included += [self.sparse(render_row(m, "metric", "metrics", base, ("flow-triggers",)), names) for m in acc.metric_rows if m.id in seen]
        if "profile" in q.include:
            names = q.fields.get("profile")
            for idx in sorted({r[3] for r in rows}):
                res = acc.render_profile(idx, base)
                del res["relationships"]["conversations"]
                included.append(self.sparse(res, names))
        names = q.fields.get("event")
        data = [self.sparse(res, names) for res in data]
        return self.document(q, base, data, next_key, included)


    # ---- POST /api/metric-aggregates
    def metric_aggregates(self, body: bytes, base: str, rtype: str, fields: list[str] | None = None) -> bytes:
        """Counts of one metric's events by interval, validated like MetricAggregateQuery in the spec."""
        acc = self.account
        attrs = request_attributes(body, rtype, f"'type' must be '{rtype}'.")
        for name in sorted(set(attrs) - AGGREGATE_ATTRIBUTES):
            raise body_error(f"'{name}' is not a valid field for the resource 'metric-aggregate'.", f"/data/attributes/{name}")
        for name in ("metric_id", "measurements", "filter"):
            if name not in attrs:
                raise body_error(f"'{name}' is a required field.", f"/data/attributes/{name}")
        metric_id = attrs["metric_id"]
        if not isinstance(metric_id, str) or not metric_id:
            raise body_error("'metric_id' must be a string.", "/data/attributes/metric_id")
        measurements = attrs["measurements"]
        if not isinstance(measurements, list) or not measurements or any(m not in AGGREGATE_MEASUREMENTS for m in measurements):
            raise body_error(f"'measurements' must be a non-empty list of {', '.join(AGGREGATE_MEASUREMENTS)}.", "/data/attributes/measurements")
        interval = attrs.get("interval") or "day"
        if interval not in AGGREGATE_INTERVALS:
            raise body_error(f"'{interval}' is not a valid choice for 'interval'.", "/data/attributes/interval")
        tz = attrs.get("timezone") or "UTC"
        if not _is_timezone(tz):
            raise body_error(f"'{tz}' is not a valid timezone.", "/data/attributes/timezone")
        page_size = attrs.get("page_size")
        if page_size is not None and (not isinstance(page_size, int) or isinstance(page_size, bool) or not 1 <= page_size <= 500):
            raise body_error("'page_size' must be an integer between 1 and 500.", "/data/attributes/page_size")
        for name in ("by", "return_fields"):
            value = attrs.get(name)
            if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
                raise body_error(f"'{name}' must be a list of strings.", f"/data/attributes/{name}")
        if attrs.get("by"):
            raise body_error("The emulator aggregates without 'by' dimensions only.", "/data/attributes/by")
        start, end = _aggregate_range(attrs["filter"])
        if end <= start:
            raise body_error("The time range is empty: 'less-than(datetime,...)' must be after 'greater-or-equal(datetime,...)'.", "/data/attributes/filter")
        if end - start > timedelta(days=AGGREGATE_MAX_DAYS):
            raise body_error(f"The time range must be at most {AGGREGATE_MAX_DAYS} days.", "/data/attributes/filter")
        if metric_id not in acc.metric_by_id:
            raise ApiError(404, "not_found", f"Metric {metric_id!r} was not found.", {"pointer": "/data/attributes/metric_id"})
        starts, values = acc.event_counts(metric_id, start, end, interval, tz)
        row = {"dimensions": [], "measurements": {m: values[m] for m in measurements}}
        dates = [d.isoformat() for d in starts]
        link = f"{base}/api/metric-aggregates/"
        resource = {"type": "metric-aggregate", "id": str(uuid.uuid4()), "attributes": {"dates": dates, "data": [row]}, "links": {"self": link}}
        out = {"data": self.sparse(resource, tuple(fields) if fields else None), "links": {"self": link}}
        return msgspec.json.encode(out)


POST_ENDPOINTS = {
    "/api/metric-aggregates": PostEndpoint("query_metric_aggregates", AGGREGATE_RATE, "metric_aggregates", "metric-aggregate", ("data", "dates", "id")),
}


def _is_timezone(name) -> bool:
    if not isinstance(name, str) or not name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _aggregate_range(filters) -> tuple[datetime, datetime]:
    """[start, end) from the required greater-or-equal and less-than `datetime` filters."""
    if not isinstance(filters, list) or not all(isinstance(f, str) for f in filters):
        raise body_error("'filter' must be a list of strings.", "/data/attributes/filter")
    start = end = None
    for text in filters:
        try:
            conditions = parse_filter(text)
        except FilterError as exc:
            raise body_error(f"Invalid filter provided. {exc}", "/data/attributes/filter") from None
        for c in conditions:
            if c.field != "datetime":
                raise body_error(f"The emulator filters aggregates on 'datetime' only, not '{c.field}'.", "/data/attributes/filter")
            if c.op not in ("greater-or-equal", "less-than") or c.value is None or isinstance(c.value, tuple) or c.value.kind != "datetime":
                raise body_error(f"'{c.op}' is not a valid operator for 'datetime': use greater-or-equal and less-than.", "/data/attributes/filter")
            moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=c.value.value)
            if c.op == "greater-or-equal":
                start = moment
            else:
                end = moment
    if start is None or end is None:
        raise body_error("The filter must include a time range: greater-or-equal(datetime,...) and less-than(datetime,...).", "/data/attributes/filter")
    return start, end


def _buckets(start: datetime, end: datetime, interval: str) -> list[datetime]:
    """Starts of the interval buckets covering [start, end): the first at `start` truncated to the interval."""
    zone = start.tzinfo
    if interval == "hour":
        first = start.replace(minute=0, second=0, microsecond=0)
    elif interval == "month":
        first = start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    else:
        first = start.replace(hour=0, minute=0, second=0, microsecond=0)
        if interval == "week":
            first -= timedelta(days=first.weekday())
    out = []
    current = first
    while current < end:
        out.append(max(current, start) if not out else current)
        if interval == "hour":
            current = (current.astimezone(UTC) + timedelta(hours=1)).astimezone(zone)
        elif interval == "month":
            current = current.replace(year=current.year + current.month // 12, month=current.month % 12 + 1)
        else:
            naive = current.replace(tzinfo=None) + timedelta(days=7 if interval == "week" else 1)
            current = naive.replace(tzinfo=zone)
    return out


def _value_of(store, metric_id: str, serial: int) -> float:
    text = store.overrides.get(serial)
    if text is None:
        pool = store.properties.get(metric_id)
        if not pool:
            return 0.0
        text = pool[serial % len(pool)] + "}"
    value = msgspec.json.decode(text).get("$value")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
