"""The streams, one module per area of Klaviyo's data model; each class declares its endpoint, keys,
cursor and filters."""

from __future__ import annotations

from tap_klaviyo.streams.audience import (
    GlobalExclusionsStream,
    ListExclusionsStream,
    ListMembersStream,
    ListsStream,
    ProfilesStream,
    SegmentMembersStream,
    SegmentsStream,
)
from tap_klaviyo.streams.catalog import (
    AccountsStream,
    CatalogCategoriesStream,
    CatalogItemsStream,
    CatalogVariantsStream,
    CouponCodesStream,
    CouponsStream,
    PushTokensStream,
    ReviewsStream,
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
from tap_klaviyo.streams.events import EVENT_STREAMS, EventsStream, MetricsStream, metric_stream_errors, metric_streams
from tap_klaviyo.streams.messaging import (
    CampaignAudiencesStream,
    CampaignMessagesStream,
    CampaignsStream,
    CampaignVariationsStream,
    FlowActionsStream,
    FlowMessagesStream,
    FlowsStream,
)
from tap_klaviyo.streams.reports import REPORT_STREAMS, ReportStream

STREAMS = (
    ListsStream,
    ListMembersStream,
    CampaignsStream,
    CampaignMessagesStream,
    CampaignVariationsStream,
    CampaignAudiencesStream,
    FlowsStream,
    FlowActionsStream,
    FlowMessagesStream,
    ProfilesStream,
    GlobalExclusionsStream,
    SegmentsStream,
    SegmentMembersStream,
    ListExclusionsStream,
    MetricsStream,
    EventsStream,
    *EVENT_STREAMS,
    TemplatesStream,
    UniversalContentStream,
    FormsStream,
    FormVersionsStream,
    ImagesStream,
    TagsStream,
    TagGroupsStream,
    CatalogItemsStream,
    CatalogVariantsStream,
    CatalogCategoriesStream,
    CouponsStream,
    CouponCodesStream,
    ReviewsStream,
    PushTokensStream,
    AccountsStream,
)

__all__ = ["REPORT_STREAMS", "STREAMS", "ReportStream", "metric_stream_errors", "metric_streams"]
