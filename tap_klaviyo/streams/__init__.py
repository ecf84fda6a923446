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
    ImagesStream,
    TagGroupsStream,
    TagsStream,
    TemplatesStream,
    UniversalContentStream,
)
from tap_klaviyo.streams.events import EVENT_STREAMS, EventsStream, MetricsStream, metric_stream_errors, metric_streams
from tap_klaviyo.streams.messaging import CampaignsStream

STREAMS = (
    ListsStream,
    ListMembersStream,
    CampaignsStream,
    ProfilesStream,
    GlobalExclusionsStream,
    MetricsStream,
    EventsStream,
    *EVENT_STREAMS,
    TemplatesStream,
    UniversalContentStream,
    FormsStream,
    ImagesStream,
    TagsStream,
    TagGroupsStream,
)

__all__ = ["STREAMS", "metric_stream_errors", "metric_streams"]
