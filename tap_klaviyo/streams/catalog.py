"""Catalog and commerce: catalog items (with their variant ids), variants (with their item id),
categories, coupons and their codes, reviews, push tokens and the account record.

Only reviews can be filtered on a time (`created`); every other endpoint here is read whole
every run (full table).
"""

from __future__ import annotations

import typing as t

from tap_klaviyo.client import KlaviyoStream
from tap_klaviyo.filters import literal
from tap_klaviyo.ratelimit import TIER_L, TIER_M, TIER_XL, Tier

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

    from tap_klaviyo.windows import Window

TIER_ACCOUNTS = Tier(1, 15)  # GET /api/accounts: burst 1/s, steady 15/m

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


class CouponsStream(KlaviyoStream):
    """Coupons (their id is the external id, e.g. SUMMER10)."""

    name = "coupons"
    path = "/api/coupons"
    scope = "coupons:read"
    primary_keys = ("id",)
    replication_key = None
    page_size = 100
    rate_tier = TIER_L

    def coupon_ids(self) -> list[str]:
        """Every coupon id in the account (their codes are read by coupon, every run)."""
        params = {"page[size]": str(self.page_size), "fields[coupon]": "external_id"}
        return [record["id"] for page in self.iter_pages(None, params) for record in page]


class CouponCodesStream(KlaviyoStream):
    """Coupon codes of every coupon, with their coupon and (once assigned) profile.

    Klaviyo requires a coupon or profile filter, and `coupon.id` takes `any` with a list, so one
    walk reads the codes of up to `coupons_per_request` coupons: the cost is the pages of codes
    (100 a page) plus one request per 100 coupons, not a request per coupon. The spec states no
    limit on the list's length; 100 keeps the URL short. The coupon's linkage comes with
    include=coupon (the included coupons cut to one field); the profile's with every code.
    """

    name = "coupon_codes"
    path = "/api/coupon-codes"
    scope = "coupon-codes:read"
    primary_keys = ("id",)
    replication_key = None
    page_size = 100
    rate_tier = TIER_XL
    extra_params: t.ClassVar[dict[str, str]] = {"include": "coupon", "fields[coupon]": "external_id"}
    to_one = ("coupon", "profile")
    date_time_fields = ("expires_at",)
    coupons_per_request = 100

    def _read(self, context: Context | None, window: Window | None) -> t.Iterator[dict]:  # noqa: ARG002
        coupon_ids = self._tap.streams["coupons"].coupon_ids()
        for start in range(0, len(coupon_ids), self.coupons_per_request):
            chunk = coupon_ids[start : start + self.coupons_per_request]
            params = self.base_params(context)
            params["filter"] = "any(coupon.id,[" + ",".join(literal(cid) for cid in chunk) + "])"
            for page in self.iter_pages(context, params):
                yield from page


class ReviewsStream(KlaviyoStream):
    """Reviews, questions and ratings (every status), with the catalog item reviewed.

    Incremental on `created`, the only time Klaviyo filters reviews on (greater-or-equal and
    less-or-equal; the run's end is cut client-side): a later edit or moderation of an old
    review (which moves `updated`) is not read again unless the stream runs full table.
    """

    name = "reviews"
    path = "/api/reviews"
    scope = "reviews:read"
    primary_keys = ("id",)
    replication_key = "created"
    filter_field = "created"
    lower_operator = "greater-or-equal"
    upper_operator = "less-or-equal"
    page_size = 100
    rate_tier = TIER_M
    to_one = ("item",)
    date_time_fields = ("created", "updated")


class PushTokensStream(KlaviyoStream):
    """Mobile push tokens with their profile (linked through include=profile, cut to one field)."""

    name = "push_tokens"
    path = "/api/push-tokens"
    scope = "push-tokens:read"
    primary_keys = ("id",)
    replication_key = None
    page_size = 100
    rate_tier = TIER_M
    extra_params: t.ClassVar[dict[str, str]] = {"include": "profile", "fields[profile]": "email"}
    to_one = ("profile",)
    date_time_fields = ("created",)


class AccountsStream(KlaviyoStream):
    """The account the API key belongs to: one record (name and address, timezone, currency, industry)."""

    name = "accounts"
    path = "/api/accounts"
    scope = "accounts:read"
    primary_keys = ("id",)
    replication_key = None
    rate_tier = TIER_ACCOUNTS
