"""Content: templates, universal content blocks, sign-up forms and their versions, images, tags."""

from __future__ import annotations

import typing as t

from tap_klaviyo.client import KlaviyoStream
from tap_klaviyo.ratelimit import TIER_L, TIER_M, TIER_S


class TemplatesStream(KlaviyoStream):
    """Email templates with their html, text and (drag-and-drop templates) definition."""

    name = "templates"
    path = "/api/templates"
    scope = "templates:read"
    primary_keys = ("id",)
    replication_key = "updated"
    filter_field = "updated"
    page_size = 10
    rate_tier = TIER_L
    extra_params: t.ClassVar[dict[str, str]] = {"additional-fields[template]": "definition"}
    date_time_fields = ("created", "updated")


class UniversalContentStream(KlaviyoStream):
    """Universal content blocks shared between templates."""

    name = "universal_content"
    path = "/api/template-universal-content"
    scope = "templates:read"
    primary_keys = ("id",)
    replication_key = "updated"
    filter_field = "updated"
    page_size = 100
    rate_tier = TIER_L
    date_time_fields = ("created", "updated")


class FormsStream(KlaviyoStream):
    """Sign-up forms (live and draft)."""

    name = "forms"
    path = "/api/forms"
    scope = "forms:read"
    primary_keys = ("id",)
    replication_key = "updated_at"
    filter_field = "updated_at"
    page_size = 100
    rate_tier = TIER_S
    date_time_fields = ("created_at", "updated_at")


class ImagesStream(KlaviyoStream):
    """Images uploaded to the account's library."""

    name = "images"
    path = "/api/images"
    scope = "images:read"
    primary_keys = ("id",)
    replication_key = "updated_at"
    filter_field = "updated_at"
    page_size = 100
    rate_tier = TIER_M
    date_time_fields = ("updated_at",)


class TagsStream(KlaviyoStream):
    """Tags, each with its tag group; the API has no time to filter on, so it is read whole."""

    name = "tags"
    path = "/api/tags"
    scope = "tags:read"
    primary_keys = ("id",)
    replication_key = None
    page_size = 50
    rate_tier = TIER_S
    extra_params: t.ClassVar[dict[str, str]] = {"include": "tag-group"}
    to_one = ("tag-group",)


class TagGroupsStream(KlaviyoStream):
    """Tag groups; read whole, like tags."""

    name = "tag_groups"
    path = "/api/tag-groups"
    scope = "tags:read"
    primary_keys = ("id",)
    replication_key = None
    page_size = 25
    rate_tier = TIER_S
