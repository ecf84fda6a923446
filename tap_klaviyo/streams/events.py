"""Events: metrics and the events of each metric."""

from __future__ import annotations

import typing as t
from functools import cached_property

from tap_klaviyo.client import KlaviyoStream
from tap_klaviyo.filters import equals
from tap_klaviyo.ratelimit import TIER_M, TIER_XL

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

KLAVIYO_INTEGRATION = "klaviyo"


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


class EventStream(KlaviyoStream):
    """Events of Klaviyo's own metrics with the given names, one partition per metric id."""

    metric_names: tuple[str, ...]
    path = "/api/events"
    schema_name = "event"
    primary_keys = ("id",)
    replication_key = "datetime"
    filter_field = "datetime"
    page_size = 1000
    rate_tier = TIER_XL
    to_one = ("profile", "metric")
    date_time_fields = ("datetime",)
    raw_attributes = ("event_properties",)
    windowed = True

    @cached_property
    def partitions(self) -> list[dict]:
        ids = [
            metric["id"]
            for metric in self._tap.metrics
            if metric.get("name") in self.metric_names
            and ((metric.get("integration") or {}).get("key")) == KLAVIYO_INTEGRATION
        ]
        if not ids:
            self.logger.warning(
                "Stream '%s' has no records: the account has no Klaviyo metric named %s.",
                self.name,
                " or ".join(repr(n) for n in self.metric_names),
            )
        return [{"metric_id": metric_id} for metric_id in ids]

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        if not context:  # no metric resolved: the SDK still calls once without a partition
            return
        yield from super().get_records(context)

    def base_params(self, context: Context | None) -> dict[str, str]:
        params = super().base_params(context)
        params["filter"] = equals("metric_id", context["metric_id"])
        return params

    def legacy_bookmark(self, context: Context | None) -> str | None:
        """singer-io's tap kept `{"bookmarks": {"<metric_id>": {"since": ...}}}`; resume from it."""
        return self._tap.legacy_metric_bookmarks.get(context["metric_id"]) if context else None


def event_stream(stream_name: str, *names: str) -> type[EventStream]:
    """An event stream class for Klaviyo metrics with these names (singer-io's stream names)."""
    return type(
        f"{stream_name.title().replace('_', '')}Stream",
        (EventStream,),
        {"name": stream_name, "metric_names": names, "__doc__": f"Events of the metric(s) {', '.join(names)}."},
    )


EVENT_STREAMS = (
    event_stream("bounce", "Bounced Email"),
    event_stream("click", "Clicked Email"),
    event_stream("dropped_email", "Dropped Email"),
    event_stream("mark_as_spam", "Marked Email as Spam"),
    event_stream("receive", "Received Email"),
    event_stream("unsubscribe", "Unsubscribed", "Unsubscribed from Email Marketing"),
)
