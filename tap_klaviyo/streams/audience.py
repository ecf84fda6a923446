"""Audience: lists, their members, profiles and suppressions."""

from __future__ import annotations

import typing as t
from functools import cached_property

from tap_klaviyo import jsonapi
from tap_klaviyo.client import KlaviyoStream
from tap_klaviyo.ratelimit import TIER_L, TIER_M
from tap_klaviyo.timeutil import canonical

PROFILE_DATES = ("created", "updated", "last_event_date")


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
    extra_params: t.ClassVar[dict[str, str]] = {"include": "tags"}
    to_many: t.ClassVar[dict[str, str]] = {"tags": "tag_ids"}
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
