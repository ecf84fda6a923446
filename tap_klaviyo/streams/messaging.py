"""Messaging: campaigns (and their messages)."""

from __future__ import annotations

import typing as t

from tap_klaviyo import jsonapi
from tap_klaviyo.client import KlaviyoStream
from tap_klaviyo.filters import equals, join
from tap_klaviyo.ratelimit import TIER_M

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

CAMPAIGN_CHANNELS = ("email", "sms", "mobile_push")


class CampaignsStream(KlaviyoStream):
    """Campaigns of every channel, archived or not, each with its campaign messages."""

    name = "campaigns"
    path = "/api/campaigns"
    primary_keys = ("id",)
    replication_key = "updated_at"
    filter_field = "updated_at"
    page_size = 100
    rate_tier = TIER_M
    extra_params: t.ClassVar[dict[str, str]] = {"include": "campaign-messages,tags"}
    to_many: t.ClassVar[dict[str, str]] = {"tags": "tag_ids"}
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
