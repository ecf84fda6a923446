"""Catalog streams: catalog items (with variant ids), variants (with item id) and categories.

(The full sync of every stream equals the account and validates against its schema:
tests/tap_klaviyo/test_streams.py. Here: linkage, what the next run brings, what it costs.)
"""

from __future__ import annotations

import pytest

from tests.conftest import assert_missing_scope_is_named, run_tap, tap_config

CATALOG = ("catalog_items", "catalog_variants", "catalog_categories")


def test_items_carry_their_variant_ids_and_variants_their_item(emulator, account):
    result = run_tap(tap_config(emulator), streams=CATALOG)
    items = {record["id"]: record for record in result.records["catalog_items"]}
    for row in account.catalog_rows:
        assert items[row.id]["variant_ids"] == [v.id for v in account.variants_of(row.id)]
    variants = result.records["catalog_variants"]
    assert {record["id"]: record["item_id"] for record in variants} == {v.id: v.extra["item"] for v in account.catalog_variant_rows}
    assert {False, True} == {record["published"] for record in result.records["catalog_items"]}
    assert all(record["created"].endswith("+00:00") for record in variants)


def test_a_full_read_costs_one_request_per_page_of_100(emulator, account):
    before = len(emulator.requests)
    run_tap(tap_config(emulator), streams=CATALOG)
    paths = [request.path.rstrip("/") for request in emulator.requests[before:]]
    assert paths.count("/api/catalog-items") == -(-len(account.catalog_rows) // 100) == 2
    assert paths.count("/api/catalog-variants") == -(-len(account.catalog_variant_rows) // 100) == 4  # 312 variants
    assert paths.count("/api/catalog-categories") == 1 and len(paths) == 7
    items = [r for r in emulator.requests[before:] if r.path.rstrip("/") == "/api/catalog-items"]
    assert items[0].query.get("include") == "variants" and items[0].query.get("page[size]") == "100"


def test_the_next_run_sees_added_changed_and_deleted_items(emulator, account):
    config = tap_config(emulator)
    first = run_tap(config, streams=CATALOG)
    gone = account.catalog_rows[3].id
    gone_variants = {v.id for v in account.variants_of(gone)}
    new = account.add_catalog_item("NEW-1", "Brand new", categories=("$custom:::$default:::CAT-NEW",), variants=("S", "M"))
    account.update_catalog_item(account.catalog_rows[0].id, title="Renamed")
    account.delete_catalog_item(gone)
    second = run_tap(config, state=first.state, streams=CATALOG)
    assert set(second.ids("catalog_items")) == set(first.ids("catalog_items")) - {gone} | {new}
    assert set(second.ids("catalog_variants")) == set(first.ids("catalog_variants")) - gone_variants | {new + "-S", new + "-M"}
    assert {r["id"]: r for r in second.records["catalog_items"]}[account.catalog_rows[0].id]["title"] == "Renamed"
    assert "catalog_items" not in (second.state.get("bookmarks") or {}) or not second.state["bookmarks"]["catalog_items"].get("replication_key_value")


@pytest.mark.parametrize("stream", CATALOG)
def test_a_key_without_the_scope_is_one_line_naming_it(emulator, tmp_path, stream):
    assert_missing_scope_is_named(emulator, tmp_path, stream, "catalogs:read")


# ------------------------------------------------------------ coupons, reviews, push tokens, accounts
COMMERCE = ("coupons", "coupon_codes", "reviews", "push_tokens", "accounts")


def test_coupon_codes_of_50_coupons_and_20000_codes_cost_201_requests():
    """One request lists the coupons' ids, then `any(coupon.id,[all 50])` pages the codes 100 at a time."""
    from klaviyo_emulator import Account, Emulator

    account = Account.generate(seed=5, size="tiny", coupons=50, coupon_codes=20000)
    with Emulator(account, rate_limits=False) as emulator:
        result = run_tap(tap_config(emulator), streams=("coupon_codes",))
        paths = [request.path.rstrip("/") for request in emulator.requests]
    assert paths.count("/api/coupons") == 1 and paths.count("/api/coupon-codes") == 200 and len(paths) == 201
    records = result.records["coupon_codes"]
    by_id = {row.id: row for row in account.coupon_code_rows}
    assert len(records) == len(by_id) == 20000 and {r["id"] for r in records} == set(by_id)
    for record in records:
        row = by_id[record["id"]]
        assert (record["coupon_id"], record["profile_id"], record["status"]) == (row.extra["coupon"], row.extra["profile"], row.attrs["status"])


def test_codes_of_more_than_100_coupons_are_read_100_coupons_a_walk():
    from klaviyo_emulator import Account, Emulator

    account = Account.generate(seed=6, size="tiny", coupons=150, coupon_codes=1000)
    with Emulator(account, rate_limits=False) as emulator:
        result = run_tap(tap_config(emulator), streams=("coupon_codes",))
        requests = [r for r in emulator.requests if r.path.rstrip("/") == "/api/coupon-codes"]
        coupon_pages = [r for r in emulator.requests if r.path.rstrip("/") == "/api/coupons"]
    order = [row.id for row in account.coupon_rows]  # /api/coupons lists them by id
    order.sort()
    walks = [set(order[:100]), set(order[100:])]
    per_walk = [sum(1 for row in account.coupon_code_rows if row.extra["coupon"] in walk) for walk in walks]
    assert len(coupon_pages) == 2 and len(requests) == sum(-(-n // 100) for n in per_walk)
    assert sorted(result.ids("coupon_codes")) == sorted(row.id for row in account.coupon_code_rows)


def test_a_first_commerce_run_costs_one_request_per_endpoint_here(emulator, account):
    before = len(emulator.requests)
    result = run_tap(tap_config(emulator), streams=COMMERCE)
    paths = sorted(request.path.rstrip("/") for request in emulator.requests[before:])
    # coupons twice: the coupons stream, and coupon_codes listing the coupon ids it filters on
    assert paths == sorted(["/api/coupons", "/api/coupons", "/api/coupon-codes", "/api/reviews", "/api/push-tokens", "/api/accounts"])
    (record,) = result.records["accounts"]
    assert record["id"] == account.account_rows[0].id and record["timezone"] and record["contact_information"]["organization_name"]
    tokens = {row.id: row.extra["profile"] for row in account.push_token_rows}
    assert {r["id"]: r["profile_id"] for r in result.records["push_tokens"]} == tokens
    reviews = {row.id: row.extra["item"] for row in account.review_rows}
    assert {r["id"]: r["item_id"] for r in result.records["reviews"]} == reviews
    assert [r["created"] for r in result.records["reviews"]] == sorted(r["created"] for r in result.records["reviews"])


def test_the_next_reviews_run_brings_the_new_review_but_not_an_edit_of_an_old_one(emulator, account):
    import time

    from tests.tap_klaviyo.streams.test_content import new_ids

    config = tap_config(emulator, lookback_minutes=0)
    first = run_tap(config, streams=("reviews",))
    assert len(first.ids("reviews")) == len(account.review_rows)
    time.sleep(1.1)  # the first run's end is fixed to the second it started
    new = account.add_review(account.catalog_rows[2].id, rating=3, content="Fine")
    old = account.review_rows[0].id
    account.update_review(old, status="rejected")  # moves `updated`, not `created`: not re-read incrementally
    time.sleep(1.1)
    second = run_tap(config, state=first.state, streams=("reviews",))
    assert new_ids(second, "reviews", first.state) == [new]
    assert old not in second.ids("reviews")
    assert second.state["bookmarks"]["reviews"]["replication_key_value"] == {r["id"]: r for r in second.records["reviews"]}[new]["created"]


def test_new_coupon_codes_show_on_the_next_run(emulator, account):
    config = tap_config(emulator)
    first = run_tap(config, streams=("coupon_codes",))
    code = account.add_coupon_code(account.coupon_rows[0].id, "NEWCODE1")
    second = run_tap(config, state=first.state, streams=("coupon_codes",))
    assert set(second.ids("coupon_codes")) == set(first.ids("coupon_codes")) | {code}


@pytest.mark.parametrize(("stream", "scope"), [("coupons", "coupons:read"), ("coupon_codes", "coupons:read"), ("reviews", "reviews:read"),
                                               ("push_tokens", "push-tokens:read"), ("accounts", "accounts:read")])  # fmt: skip
def test_a_commerce_key_without_the_scope_is_one_line_naming_it(emulator, tmp_path, stream, scope):
    """coupon_codes first lists the coupons, so a key without any scope fails there, naming coupons:read;
    a key with coupons:read alone fails on /api/coupon-codes, naming coupon-codes:read."""
    assert_missing_scope_is_named(emulator, tmp_path, stream, scope)
