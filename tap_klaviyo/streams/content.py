"""Content: templates, universal content blocks, sign-up forms and their versions, images, tags."""

from __future__ import annotations

import typing as t
from functools import cached_property

from tap_klaviyo.client import FanOutStream, KlaviyoStream
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

    @cached_property
    def all_forms(self) -> dict[str, dict]:
        """Every form by id (form_versions reads the versions of those that changed)."""
        params = {"page[size]": str(self.page_size), "sort": "updated_at"}
        return {record["id"]: record for page in self.iter_pages(None, params) for record in page}


class FormVersionsStream(FanOutStream):
    """Versions of every sign-up form, one partition per form, read only for forms whose `updated_at` moved.

    A new version moves its form's `updated_at`; an edit of a version that does not is read by
    the sweep of every form every `sweep_hours`.
    """

    name = "form_versions"
    path = "/api/forms/{form_id}/form-versions"
    rate_bucket = "/api/forms/{id}/form-versions"
    scope = "forms:read"
    primary_keys = ("id",)
    replication_key = "updated_at"
    filter_field = "updated_at"
    page_size = 100
    rate_tier = TIER_S
    to_one = ("form",)
    date_time_fields = ("created_at", "updated_at")

    @cached_property
    def partitions(self) -> list[dict]:
        return [{"form_id": form_id} for form_id in self._tap.streams["forms"].all_forms]

    def parent_changed_at(self, context) -> str | None:
        return (self._tap.streams["forms"].all_forms.get(context["form_id"]) or {}).get("updated_at")

    def get_records(self, context) -> t.Iterable[dict]:
        for record in super().get_records(context):
            record["form_id"] = record.get("form_id") or context["form_id"]
            yield record


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
