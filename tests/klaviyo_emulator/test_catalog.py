"""Catalog area: catalog items (with their variants), variants and categories."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from .checks import attribute, check_filters, check_paging, check_sorts, ids

UTC = timezone.utc


def keyed(rows):
    """value_of for fields that are no attribute (`ids`, `item.id`, `category.id`): the account's filter keys."""
    by_id = {r.id: r for r in rows}

    def value_of(record: dict, field: str):
        if field == "ids":
            return record["id"]
        if "." in field:
            return by_id[record["id"]].keys.get(field)
        return attribute(record, field)

    return value_of


def test_catalog_items_paging_filters_and_sorts(client, account):
    everything, _ = client.all_pages("/api/catalog-items", {})
    expected = [r.id for r in account.catalog_rows]
    assert sorted(r["id"] for r in everything) == sorted(expected)
    check_paging(client, "/api/catalog-items", "/api/catalog-items", expected, size=40)
    check_filters(client, "/api/catalog-items", "/api/catalog-items", everything, value_of=_one_category(account))
    check_sorts(client, "/api/catalog-items", "/api/catalog-items", expected, size=50)


def _one_category(account):
    """category.id holds a list per item (an item is in one to two categories): compare against the first."""
    base = keyed(account.catalog_rows)

    def value_of(record, field):
        value = base(record, field)
        return value[0] if field == "category.id" else value

    return value_of


def test_items_of_a_category_include_those_in_two(client, account):
    sale = "$custom:::$default:::CAT-SALE"
    got = ids(client, "/api/catalog-items", {"filter": f"equals(category.id,'{sale}')"})
    assert sorted(got) == sorted(r.id for r in account.catalog_rows if sale in r.keys["category.id"]) and got


@pytest.mark.parametrize("path,size", [("/api/catalog-variants", 60), ("/api/catalog-categories", 2)])
def test_variants_and_categories_paging_filters_and_sorts(client, account, path, size):
    rows = account.catalog_variant_rows if path == "/api/catalog-variants" else account.catalog_category_rows
    everything, _ = client.all_pages(path, {})
    expected = [r.id for r in rows]
    assert sorted(r["id"] for r in everything) == sorted(expected) and len(expected) >= 2
    check_paging(client, path, path, expected, size=size)
    value_of = keyed(rows)
    if path == "/api/catalog-categories":
        value_of = _first_item(value_of)
    check_filters(client, path, path, everything, value_of=value_of)
    check_sorts(client, path, path, expected, value_of=lambda r, f: value_of(r, f) if f != "created" else rows_created(rows, r), size=size)


def rows_created(rows, record):
    """Categories render no `created`, yet sort on it: the emulator's key, rendered for the check."""
    from klaviyo_emulator.resources import fmt_us

    return fmt_us(next(r for r in rows if r.id == record["id"]).keys["created"])


def _first_item(base):
    def value_of(record, field):
        value = base(record, field)
        if field == "item.id":
            return value[0] if value else None
        return value

    return value_of


def test_a_category_of_an_item(client, account):
    item = account.catalog_rows[0]  # in CAT-0 and Sale
    got = ids(client, "/api/catalog-categories", {"filter": f"equals(item.id,'{item.id}')"})
    assert sorted(got) == sorted(item.keys["category.id"]) and len(got) == 2


def test_include_variants_links_and_includes_every_variant(client, account):
    records, docs = client.all_pages("/api/catalog-items", {"include": "variants", "fields[catalog-variant]": "sku,published"})
    by_item = {}
    for v in account.catalog_variant_rows:
        by_item.setdefault(v.extra["item"], []).append(v.id)
    for record in records:
        assert [d["id"] for d in record["relationships"]["variants"]["data"]] == by_item[record["id"]]
    included = [r for d in docs for r in d["included"]]
    assert sorted(r["id"] for r in included) == sorted(v.id for v in account.catalog_variant_rows)
    assert all(set(r["attributes"]) == {"sku", "published"} and r["relationships"]["item"]["data"]["type"] == "catalog-item" for r in included)
    plain = client.get("/api/catalog-items").json()["data"][0]
    assert "data" not in plain["relationships"]["variants"]  # linkage only when included


def test_variants_always_link_their_item(client, account):
    records, _ = client.all_pages("/api/catalog-variants", {})
    items = {r.id for r in account.catalog_rows}
    assert all(r["relationships"]["item"]["data"]["id"] in items for r in records)
    assert client.get("/api/catalog-variants", {"include": "item"}).json()["errors"][0]["source"] == {"parameter": "include"}


def test_generated_catalog(account):
    assert {r.attrs["published"] for r in account.catalog_rows} == {True, False}
    counts = [len(account.variants_of(r.id)) for r in account.catalog_rows]
    assert min(counts) == 1 and max(counts) == 4
    unpublished_items = {r.id for r in account.catalog_rows if not r.attrs["published"]}
    assert all(not v.attrs["published"] for v in account.catalog_variant_rows if v.extra["item"] in unpublished_items)
    assert any(not v.attrs["published"] for v in account.catalog_variant_rows if v.extra["item"] not in unpublished_items)
    assert len(account.catalog_category_rows) == 6


def test_catalog_tiers(account):
    from klaviyo_emulator import Emulator

    from .conftest import Client

    with Emulator(account, rate_limits=True) as emu:
        client = Client(emu.base_url)
        for path in ("/api/catalog-items", "/api/catalog-variants", "/api/catalog-categories"):
            assert client.get(path).headers["RateLimit-Limit"] == "3500", path  # XL


def test_catalog_mutations_show_on_the_next_read(fresh):
    emu, client = fresh
    account = emu.account
    account.set_clock(datetime(2026, 11, 20, 8, 0, tzinfo=UTC))
    item_id = account.add_catalog_item("NEW-1", "Brand new", price=19.5, categories=("$custom:::$default:::CAT-NEW",), variants=("S", "M"))
    (item,) = client.get("/api/catalog-items", {"filter": f'any(ids,["{item_id}"])', "include": "variants"}).json()["data"]
    assert item["attributes"]["created"] == "2026-11-20T08:00:00+00:00"
    assert [d["id"] for d in item["relationships"]["variants"]["data"]] == [item_id + "-S", item_id + "-M"]
    assert sorted(ids(client, "/api/catalog-variants", {"filter": f"equals(item.id,'{item_id}')"})) == [item_id + "-M", item_id + "-S"]
    assert ids(client, "/api/catalog-categories", {"filter": f"equals(item.id,'{item_id}')"}) == ["$custom:::$default:::CAT-NEW"]
    account.update_catalog_item(item_id, title="Renamed", published=False)
    (item,) = client.get("/api/catalog-items", {"filter": "contains(title,'Renamed')"}).json()["data"]
    assert item["attributes"]["published"] is False
    old = account.catalog_rows[5].id
    account.delete_catalog_item(old)
    assert old not in ids(client, "/api/catalog-items", {})
    assert ids(client, "/api/catalog-variants", {"filter": f"equals(item.id,'{old}')"}) == []
    assert ids(client, "/api/catalog-categories", {"filter": f"equals(item.id,'{old}')"}) == []
    cid = account.add_catalog_category("CAT-GIFTS", "Gifts", items=(item_id,))
    assert cid in ids(client, "/api/catalog-categories", {"filter": f"equals(item.id,'{item_id}')"})
    variant = account.variants_of(item_id)[0].id
    account.delete_catalog_variant(variant)
    assert ids(client, "/api/catalog-variants", {"filter": f"equals(item.id,'{item_id}')"}) == [item_id + "-M"]
    account.delete_catalog_category(cid)
    assert cid not in ids(client, "/api/catalog-categories", {})
    assert item_id not in ids(client, "/api/catalog-items", {"filter": f"equals(category.id,'{cid}')"})
    with pytest.raises(KeyError):
        account.delete_catalog_item(old)
    with pytest.raises(KeyError):
        account.update_catalog_item(item_id, sku="x")
    with pytest.raises(ValueError):
        account.add_catalog_item("NEW-1", "again")


def test_catalog_size_is_controllable():
    from klaviyo_emulator import Account

    big = Account.generate(seed=3, size="tiny", catalog_items=450)
    assert len(big.catalog_rows) == 450 and len(big.catalog_variant_rows) > 450
    assert all(len(Account.generate(seed=3, size=size, profiles=10, events=0).catalog_rows) == 120 for size in ("tiny", "demo"))
