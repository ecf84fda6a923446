"""Commerce area: coupons, coupon codes, reviews, push tokens and the account record."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import pytest

from .checks import attribute, check_filters, check_paging, check_sorts, ids

UTC = timezone.utc
CODE_STATUSES = {"UNASSIGNED", "PROCESSING", "ASSIGNED_TO_PROFILE", "VERSION_NOT_ACTIVE", "DELETING", "USED"}


def linked(record: dict, name: str):
    data = (record.get("relationships", {}).get(name) or {}).get("data")
    return data["id"] if isinstance(data, dict) else None


class AllCoupons:
    """A client that ANDs `any(coupon.id,[every coupon])` into each first-page filter: /api/coupon-codes
    requires a coupon or profile filter, and that one keeps every code, so the shared checks apply."""

    def __init__(self, client, account):
        self.client = client
        self.base = "any(coupon.id,[" + ",".join(f"'{c.id}'" for c in account.coupon_rows) + "])"

    def get(self, path, params=None, **kwargs):
        if not path.startswith("http"):
            params = dict(params or {})
            params["filter"] = self.base + ("," + params["filter"] if "filter" in params else "")
        return self.client.get(path, params, **kwargs)

    def all_pages(self, path, params=None):
        docs = []
        response = self.get(path, params)
        while True:
            assert response.status_code == 200, response.text
            docs.append(response.json())
            if docs[-1]["links"]["next"] is None:
                return [r for d in docs for r in d["data"]], docs
            response = self.get(docs[-1]["links"]["next"])


def test_coupons_paging_and_sorts(client, account):
    everything, _ = client.all_pages("/api/coupons", {})
    expected = [r.id for r in account.coupon_rows]
    assert sorted(r["id"] for r in everything) == sorted(expected) and len(expected) == 4
    check_paging(client, "/api/coupons", "/api/coupons", expected, size=1)
    check_sorts(client, "/api/coupons", "/api/coupons", expected, size=1)  # no sort allowed: `-nope` is a 400
    assert client.get("/api/coupons", {"filter": "equals(id,'x')"}).json()["errors"][0]["source"] == {"parameter": "filter"}


def test_coupon_codes_paging_filters(client, account):
    codes = AllCoupons(client, account)
    everything, _ = codes.all_pages("/api/coupon-codes", {"include": "coupon"})
    expected = [r.id for r in account.coupon_code_rows]
    assert sorted(r["id"] for r in everything) == sorted(expected)

    def value_of(record, field):
        if field in ("coupon.id", "profile.id"):
            return linked(record, field.split(".")[0])
        return attribute(record, field)

    check_paging(codes, "/api/coupon-codes", "/api/coupon-codes", expected, size=7)
    check_filters(codes, "/api/coupon-codes", "/api/coupon-codes", everything, value_of=value_of)
    check_sorts(codes, "/api/coupon-codes", "/api/coupon-codes", expected, size=7)


def test_coupon_codes_need_a_coupon_or_profile_filter(client, account):
    for params in ({}, {"filter": "equals(status,'USED')"}):
        r = client.get("/api/coupon-codes", params)
        assert r.status_code == 400 and r.json()["errors"][0]["source"] == {"parameter": "filter"}
    coupon = account.coupon_rows[1]
    assert ids(client, "/api/coupon-codes", {"filter": f"equals(coupon.id,['{coupon.id}'])"}) == [r.id for r in account.coupon_codes_of(coupon.id)]
    profile = next(r.extra["profile"] for r in account.coupon_code_rows if r.extra["profile"])
    got = ids(client, "/api/coupon-codes", {"filter": f"any(profile.id,['{profile}'])"})
    assert got == [r.id for r in account.coupon_code_rows if r.extra["profile"] == profile]


def test_coupon_codes_link_coupon_when_included_and_profile_when_assigned(client, account):
    codes = AllCoupons(client, account)
    records, docs = codes.all_pages("/api/coupon-codes", {"include": "coupon", "fields[coupon]": "external_id"})
    by_id = {r.id: r for r in account.coupon_code_rows}
    for record in records:
        row = by_id[record["id"]]
        assert linked(record, "coupon") == row.extra["coupon"] and linked(record, "profile") == row.extra["profile"]
        assert record["id"] == f"{row.extra['coupon']}-{record['attributes']['unique_code']}"
    included = {r["id"]: r for d in docs for r in d["included"]}
    assert set(included) == {r.id for r in account.coupon_rows} and all(set(r["attributes"]) == {"external_id"} for r in included.values())
    plain, _ = codes.all_pages("/api/coupon-codes", {})
    assert all(linked(r, "coupon") is None for r in plain)


def test_generated_codes_cover_every_status_unevenly(account):
    statuses = Counter(r.attrs["status"] for r in account.coupon_code_rows)
    assert set(statuses) == CODE_STATUSES
    assert all((r.extra["profile"] is not None) == (r.attrs["status"] in ("ASSIGNED_TO_PROFILE", "USED")) for r in account.coupon_code_rows)
    per_coupon = Counter(r.extra["coupon"] for r in account.coupon_code_rows)
    assert len(set(per_coupon.values())) > 1 and {r.attrs["expires_at"] is None for r in account.coupon_code_rows} == {True, False}


def test_code_counts_are_controllable():
    from klaviyo_emulator import Account

    big = Account.generate(seed=3, size="tiny", coupons=50, coupon_codes=20000)
    assert len(big.coupon_rows) == 50 and len({r.id for r in big.coupon_code_rows}) == 20000
    assert [r.id for r in big.coupon_code_rows] == sorted(r.id for r in big.coupon_code_rows)
    assert len(Account.generate(seed=3, size="tiny").coupon_code_rows) == 60


def review_value(record, field):
    if field == "status":
        return record["attributes"]["status"]["value"]
    if field == "item.id":
        return linked(record, "item")
    return attribute(record, field)


def test_reviews_paging_filters_and_sorts(client, account):
    everything, _ = client.all_pages("/api/reviews", {"page[size]": "100"})
    expected = [r.id for r in account.review_rows]
    assert sorted(r["id"] for r in everything) == sorted(expected)
    check_paging(client, "/api/reviews", "/api/reviews", expected, size=9)
    check_filters(client, "/api/reviews", "/api/reviews", everything, value_of=review_value)
    check_sorts(client, "/api/reviews", "/api/reviews", expected, value_of=review_value, size=9)
    assert sorted(ids(client, "/api/reviews", {"filter": "equals(status,'all')"})) == sorted(expected)
    assert client.get("/api/reviews", {"filter": "greater-than(created,2025-01-01T00:00:00Z)"}).status_code == 400
    assert client.get("/api/reviews", {"filter": "equals(rating,4.5)"}).status_code == 400


def test_generated_reviews(account):
    rows = account.review_rows
    assert {r.keys["review_type"] for r in rows} == {"review", "rating", "question", "store"}
    assert {r.keys["status"] for r in rows} == {"published", "featured", "unpublished", "pending", "rejected"}
    assert all(r.attrs["status"]["rejection_reason"]["reason"] for r in rows if r.keys["status"] == "rejected")
    assert {r.attrs["rating"] for r in rows if r.keys["review_type"] != "question"} <= {1, 2, 3, 4, 5}
    assert all(r.attrs["rating"] is None for r in rows if r.keys["review_type"] == "question")
    assert all((r.extra["item"] is None) == (r.keys["review_type"] == "store") for r in rows)
    assert any("public_reply" in r.attrs for r in rows)


def test_reviews_link_their_item_and_events_when_included(client, account):
    doc = client.get("/api/reviews", {"include": "events", "page[size]": "100"}).json()
    by_id = {r.id: r for r in account.review_rows}
    for record in doc["data"]:
        assert linked(record, "item") == by_id[record["id"]].extra["item"]
        assert record["relationships"]["events"]["data"] == []
    assert doc["included"] == []


def test_push_tokens_paging_filters(client, account):
    everything, _ = client.all_pages("/api/push-tokens", {"include": "profile", "page[size]": "100"})
    expected = [r.id for r in account.push_token_rows]
    assert sorted(r["id"] for r in everything) == sorted(expected) and len(expected) >= 10

    def value_of(record, field):
        return linked(record, "profile") if field == "profile.id" else attribute(record, field)

    check_paging(client, "/api/push-tokens", "/api/push-tokens", expected, size=5)
    check_filters(client, "/api/push-tokens", "/api/push-tokens", everything, value_of=value_of)
    check_sorts(client, "/api/push-tokens", "/api/push-tokens", expected, size=5)
    assert {r["attributes"]["platform"] for r in everything} == {"ios", "android"}


def test_push_tokens_include_their_profiles(client, account):
    doc = client.get("/api/push-tokens", {"include": "profile", "fields[profile]": "email", "page[size]": "100"}).json()
    profiles = {r["id"]: r for r in doc["included"]}
    assert {linked(r, "profile") for r in doc["data"]} == set(profiles)
    assert all(set(p["attributes"]) == {"email"} and p["type"] == "profile" for p in profiles.values())
    assert all(linked(r, "profile") is None for r in client.get("/api/push-tokens").json()["data"])
    assert len(client.get("/api/push-tokens").json()["data"]) == 20  # default page size


def test_accounts_is_one_record_without_paging_filters_or_sorts(client, account):
    doc = client.get("/api/accounts").json()
    (record,) = doc["data"]
    assert record["id"] == account.account_rows[0].id == record["attributes"]["public_api_key"] and doc["links"]["next"] is None
    assert {"timezone", "preferred_currency", "industry", "contact_information"} <= set(record["attributes"])
    for name, value in (("page[size]", "1"), ("filter", "equals(id,'x')"), ("sort", "id"), ("include", "x")):
        r = client.get("/api/accounts", {name: value})
        assert r.status_code == 400 and r.json()["errors"][0]["source"] == {"parameter": name}, name
    assert set(client.get("/api/accounts", {"fields[account]": "timezone"}).json()["data"][0]["attributes"]) == {"timezone"}


def test_commerce_tiers(account):
    from klaviyo_emulator import Emulator

    from .conftest import Client

    with Emulator(account, rate_limits=True) as emu:
        client = Client(emu.base_url)
        assert [client.get("/api/accounts").status_code for _ in range(2)] == [200, 429]  # 1/s
        assert client.get("/api/coupons").headers["RateLimit-Limit"] == "750"
        assert client.get("/api/coupon-codes", {"filter": "equals(coupon.id,['x'])"}).headers["RateLimit-Limit"] == "3500"
        assert client.get("/api/reviews").headers["RateLimit-Limit"] == "150"
        assert client.get("/api/push-tokens").headers["RateLimit-Limit"] == "150"


def test_commerce_mutations_show_on_the_next_read(fresh):
    emu, client = fresh
    account = emu.account
    account.set_clock(datetime(2026, 11, 20, 8, 0, tzinfo=UTC))
    coupon = account.add_coupon("NEWYEAR30", "30% off")
    code = account.add_coupon_code(coupon, "ABC123")
    assert ids(client, "/api/coupon-codes", {"filter": f"equals(coupon.id,['{coupon}'])"}) == [code] == ["NEWYEAR30-ABC123"]
    profile = account.profile_id(3)
    account.update_coupon_code(code, "ASSIGNED_TO_PROFILE", profile_id=profile)
    assert code in ids(client, "/api/coupon-codes", {"filter": f"equals(profile.id,['{profile}']),equals(status,'ASSIGNED_TO_PROFILE')"})
    account.delete_coupon_code(code)
    assert ids(client, "/api/coupon-codes", {"filter": f"equals(coupon.id,['{coupon}'])"}) == []

    item = account.catalog_rows[1].id
    rid = account.add_review(item, rating=4, content="Arrived quickly")
    (review,) = client.get("/api/reviews", {"filter": "greater-or-equal(created,2026-11-01T00:00:00Z)"}).json()["data"]
    assert review["id"] == rid and review["attributes"]["created"] == "2026-11-20T08:00:00+00:00" and linked(review, "item") == item
    old = account.review_rows[0]
    account.set_clock(datetime(2026, 11, 21, 9, 0, tzinfo=UTC))
    account.update_review(old.id, status="rejected", public_reply="Sorry to hear that", content="edited")
    got = client.get("/api/reviews", {"filter": f"equals(id,'{old.id}')"}).json()["data"][0]["attributes"]
    assert got["status"]["value"] == "rejected" and got["updated"] == "2026-11-21T09:00:00+00:00" and got["created"] == old.attrs["created"]
    assert got["public_reply"]["content"] == "Sorry to hear that" and got["content"] == "edited"

    token = account.add_push_token(profile, platform="android")
    assert token in ids(client, "/api/push-tokens", {"filter": f"equals(profile.id,'{profile}')"})
    account.delete_push_token(token)
    assert token not in ids(client, "/api/push-tokens", {"filter": f"equals(profile.id,'{profile}')"})
    account.delete_review(rid)
    assert ids(client, "/api/reviews", {"filter": "greater-or-equal(created,2026-11-01T00:00:00Z)"}) == []
    gone = account.coupon_rows[0].id
    account.delete_coupon(gone)
    assert gone not in ids(client, "/api/coupons", {})
    assert ids(client, "/api/coupon-codes", {"filter": f"equals(coupon.id,['{gone}'])"}) == []
    account.update_account(timezone="Europe/Berlin", preferred_currency="EUR")
    assert client.get("/api/accounts").json()["data"][0]["attributes"]["timezone"] == "Europe/Berlin"
    with pytest.raises(KeyError):
        account.update_account(public_api_key="x")
    with pytest.raises(KeyError):
        account.add_coupon_code("NOPE")
    with pytest.raises(ValueError):
        account.add_coupon_code(coupon, status="LOST")
    with pytest.raises(KeyError):
        account.update_review("nope", status="published")
