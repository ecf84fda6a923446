"""One class per Klaviyo object: each declares its endpoint, keys, cursor and filters."""

from __future__ import annotations

import typing as t
from functools import cached_property

from tap_klaviyo import jsonapi
from tap_klaviyo.client import KlaviyoStream
from tap_klaviyo.filters import equals, join
from tap_klaviyo.ratelimit import TIER_L, TIER_M, TIER_XL
from tap_klaviyo.timeutil import canonical

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

PROFILE_DATES = ("created", "updated", "last_event_date")
CAMPAIGN_CHANNELS = ("email", "sms", "mobile_push")
KLAVIYO_INTEGRATION = "klaviyo"


class ListsStream(KlaviyoStream):
    """Lists. Klaviyo filters `updated` with greater-than only, so the run's end is cut client-side."""

    name = "lists"
    path = "/api/lists"
    primary_keys = ("id",)
    replication_key = "updated"
    filter_field = "updated"
    lower_operator = "greater-than"
    upper_operator = None
    page_size = 10
    rate_tier = TIER_L
    date_time_fields = ("created", "updated")

    def list_ids(self) -> list[str]:
        """Every list id in the account (list members are read per list, every run)."""
        params = {"sort": "id", "page[size]": str(self.page_size), "fields[list]": "id"}
        return [record["id"] for page in self.iter_pages(None, params) for record in page]


class ListMembersStream(KlaviyoStream):
    """Profiles of every list, bookmarked per list: joining a list does not bump the list's `updated`."""

    name = "list_members"
    path = "/api/lists/{list_id}/profiles"
    rate_bucket = "/api/lists/{id}/profiles"
    primary_keys = ("list_id", "id")
    replication_key = "joined_group_at"
    filter_field = "joined_group_at"
    page_size = 100
    rate_tier = TIER_L
    date_time_fields = ("joined_group_at", *PROFILE_DATES)

    @cached_property
    def partitions(self) -> list[dict]:
        return [{"list_id": list_id} for list_id in self._tap.streams["lists"].list_ids()]


class CampaignsStream(KlaviyoStream):
    """Campaigns of every channel, archived or not, each with its campaign messages."""

    name = "campaigns"
    path = "/api/campaigns"
    primary_keys = ("id",)
    replication_key = "updated_at"
    filter_field = "updated_at"
    page_size = 100
    rate_tier = TIER_M
    extra_params: t.ClassVar[dict[str, str]] = {"include": "campaign-messages"}
    date_time_fields = ("created_at", "scheduled_at", "updated_at", "send_time")

    # Klaviyo requires one channel per request before revision 2026-10-15 and hides archived
    # campaigns unless asked, so every (channel, archived) pair is its own partition.
    partitions: t.ClassVar[list[dict]] = [
        {"channel": channel, "archived": archived} for channel in CAMPAIGN_CHANNELS for archived in (False, True)
    ]

    def base_params(self, context: Context | None) -> dict[str, str]:
        params = super().base_params(context)
        params["filter"] = join(
            equals("messages.channel", context["channel"]), equals("archived", context["archived"])
        )
        return params

    def flatten(self, resource: jsonapi.Resource, included: list[jsonapi.Resource] | None) -> dict:
        record = super().flatten(resource, included)
        messages = {item.id: item.attributes or {} for item in included or () if item.type == "campaign-message"}
        refs = jsonapi.related(resource, "campaign-messages")
        record["campaign_messages"] = [
            {"id": ref.id, **messages.get(ref.id, {})} for ref in (refs if isinstance(refs, list) else ())
        ]
        return record


class ProfilesStream(KlaviyoStream):
    """Profiles with their subscriptions (and, on request, predictive analytics)."""

    name = "profiles"
    path = "/api/profiles"
    primary_keys = ("id",)
    replication_key = "updated"
    filter_field = "updated"
    lower_operator = "greater-than"
    page_size = 100
    date_time_fields = PROFILE_DATES
    windowed = True
    window_pages = 10

    @property
    def predictive(self) -> bool:
        return bool(self.config.get("predictive_analytics"))

    @property
    def extra_params(self) -> dict[str, str]:  # type: ignore[override]
        fields = "subscriptions,predictive_analytics" if self.predictive else "subscriptions"
        return {"additional-fields[profile]": fields}

    @property
    def rate_bucket(self) -> str:  # type: ignore[override]
        # predictive_analytics moves the request to a far lower limit (10/s, 150/m).
        return "/api/profiles?predictive_analytics" if self.predictive else self.path

    @property
    def rate_tier(self):  # type: ignore[override]
        return TIER_M if self.predictive else TIER_L


class GlobalExclusionsStream(KlaviyoStream):
    """Globally suppressed profiles, read incrementally on the suppression timestamp.

    Suppressing a profile does not bump its `updated`, so filtering and sorting on the
    suppression timestamp is the only way to get new suppressions without a full scan.
    """

    name = "global_exclusions"
    path = "/api/profiles"
    primary_keys = ("id",)
    replication_key = "suppression_timestamp"
    filter_field = "subscriptions.email.marketing.suppression.timestamp"
    page_size = 100
    rate_tier = TIER_L
    extra_params: t.ClassVar[dict[str, str]] = {"additional-fields[profile]": "subscriptions"}
    date_time_fields = ("consent_timestamp", "created", "updated")

    def flatten(self, resource: jsonapi.Resource, included: list[jsonapi.Resource] | None) -> dict:  # noqa: ARG002
        attributes = resource.attributes or {}
        marketing = ((attributes.get("subscriptions") or {}).get("email") or {}).get("marketing") or {}
        suppression = marketing.get("suppression") or []
        stamps = [canonical(item["timestamp"]) for item in suppression if isinstance(item.get("timestamp"), str)]
        stamps = [stamp for stamp in stamps if stamp is not None]  # an unreadable stamp must not become the bookmark
        record = {
            "id": resource.id,
            "email": attributes.get("email"),
            "phone_number": attributes.get("phone_number"),
            "suppression_timestamp": max(stamps) if stamps else None,
            "suppression": suppression,
            "list_suppressions": marketing.get("list_suppressions") or [],
            "can_receive_email_marketing": marketing.get("can_receive_email_marketing"),
            "consent": marketing.get("consent"),
            "consent_timestamp": marketing.get("consent_timestamp"),
            "created": attributes.get("created"),
            "updated": attributes.get("updated"),
        }
        return self.canonical_dates(record)


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

STREAMS = (
    ListsStream,
    ListMembersStream,
    CampaignsStream,
    ProfilesStream,
    GlobalExclusionsStream,
    MetricsStream,
    *EVENT_STREAMS,
)
