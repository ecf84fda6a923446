"""Catalog: catalog items (with their variant ids), variants (with their item id) and categories.

None of the three endpoints filters on a time (items and variants filter on ids, title,
published; categories on ids, item and name), so each is read whole every run.
"""

from __future__ import annotations

import typing as t

from tap_klaviyo.client import KlaviyoStream
from tap_klaviyo.ratelimit import TIER_XL

CATALOG_DATES = ("created", "updated")


class CatalogItemsStream(KlaviyoStream):
    """Catalog items, published or not, each with the ids of its variants (include=variants: the
    relationship carries linkage only when included; the included variants are cut to one field)."""

    name = "catalog_items"
    path = "/api/catalog-items"
    scope = "catalogs:read"
    primary_keys = ("id",)
    replication_key = None
    page_size = 100
    rate_tier = TIER_XL
    extra_params: t.ClassVar[dict[str, str]] = {"include": "variants", "fields[catalog-variant]": "external_id"}
    to_many: t.ClassVar[dict[str, str]] = {"variants": "variant_ids"}
    date_time_fields = CATALOG_DATES


class CatalogVariantsStream(KlaviyoStream):
    """Catalog variants with the id of their item (linked on every variant: the endpoint has no include)."""

    name = "catalog_variants"
    path = "/api/catalog-variants"
    scope = "catalogs:read"
    primary_keys = ("id",)
    replication_key = None
    page_size = 100
    rate_tier = TIER_XL
    to_one = ("item",)
    date_time_fields = CATALOG_DATES


class CatalogCategoriesStream(KlaviyoStream):
    """Catalog categories."""

    name = "catalog_categories"
    path = "/api/catalog-categories"
    scope = "catalogs:read"
    primary_keys = ("id",)
    replication_key = None
    page_size = 100
    rate_tier = TIER_XL
    date_time_fields = ("updated",)
