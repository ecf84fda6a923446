"""The streams, one module per area of Klaviyo's data model; each class declares its endpoint, keys,
cursor and filters."""

from __future__ import annotations

from tap_klaviyo.streams.audience import (
    GlobalExclusionsStream,
    ListMembersStream,
    ListsStream,
    ProfilesStream,
)
from tap_klaviyo.streams.content import (
    FormsStream,
    FormVersionsStream,
    ImagesStream,
    TagGroupsStream,
    TagsStream,
    TemplatesStream,
    UniversalContentStream,
)
from tap_klaviyo.streams.events import EVENT_STREAMS, MetricsStream
from tap_klaviyo.streams.messaging import CampaignMessagesStream, CampaignsStream, FlowActionsStream, FlowMessagesStream, FlowsStream

STREAMS = (
    ListsStream,
    ListMembersStream,
    CampaignsStream,
    CampaignMessagesStream,
    FlowsStream,
    FlowActionsStream,
    FlowMessagesStream,
    ProfilesStream,
    GlobalExclusionsStream,
    MetricsStream,
    *EVENT_STREAMS,
    TemplatesStream,
    UniversalContentStream,
    FormsStream,
    FormVersionsStream,
    ImagesStream,
    TagsStream,
    TagGroupsStream,
)
