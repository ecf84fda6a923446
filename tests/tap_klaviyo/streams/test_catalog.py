"""Catalog streams: catalog items (with variant ids), variants (with item id) and categories.

(The full sync of every stream equals the account and validates against its schema:
tests/tap_klaviyo/test_streams.py. Here: linkage, what the next run brings, what it costs.)
"""

from __future__ import annotations

import pytest

from tests.conftest import catalog_for, run_cli, run_tap, tap_config

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
    key = "pk_noscope_0123456789abcdef"
    result = run_cli(input_files={"--config": tap_config(emulator, api_key=key), "--catalog": catalog_for(stream)}, tmp_path=tmp_path)
    stderr = result.stderr.decode()
    assert result.returncode == 1
    assert "lacks a read scope this stream needs (catalogs:read)" in stderr
    assert "Traceback" not in stderr and key not in stderr
