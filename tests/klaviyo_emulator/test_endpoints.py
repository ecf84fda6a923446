"""Query semantics per endpoint: pagination, filters, sorts, includes, sparse fields and every class of 400."""

from __future__ import annotations

import base64
from datetime import datetime, timezone
from urllib.parse import parse_qs, urlsplit

import pytest

PAGED = [
    ("/api/lists", {}, 10),
    ("/api/segments", {}, 10),
    ("/api/metrics", {}, 200),
    ("/api/templates", {}, 10),
    ("/api/catalog-items", {}, 100),
    ("/api/campaigns", {"filter": "equals(messages.channel,'email')", "page[size]": "2"}, 2),
    ("/api/profiles", {"page[size]": "100"}, 100),
    ("/api/events", {"page[size]": "1000"}, 1000),
    ("/api/flows", {"page[size]": "3"}, 3),
    ("/api/tags", {"page[size]": "4"}, 4),
]


@pytest.mark.parametrize("path,params,size", PAGED)
def test_following_next_links_visits_everything_once(client, path, params, size):
    records, docs = client.all_pages(path, params)
    ids = [r["id"] for r in records]
    assert len(docs) >= 2, "the tiny account must span more than one page here"
    assert len(ids) == len(set(ids))
    assert all(len(d["data"]) == size for d in docs[:-1])
    assert 1 <= len(docs[-1]["data"]) <= size
    assert docs[-1]["links"]["next"] is None
    for doc in docs[:-1]:
        nxt = urlsplit(doc["links"]["next"])
        assert nxt.scheme == "http" and nxt.netloc == urlsplit(client.base_url).netloc
        q = parse_qs(nxt.query)
        for key, value in params.items():
            assert q[key] == [value]
        assert base64.urlsafe_b64decode(q["page[cursor]"][0] + "==")  # opaque but well-formed


def test_list_members_pages_of_100(client, account):
    big = max(account.list_rows, key=lambda r: len(account.members[r.id]))
    assert len(account.members[big.id]) > 100
    for suffix in ("profiles", "relationships/profiles"):
        records, docs = client.all_pages(f"/api/lists/{big.id}/{suffix}", {"page[size]": "100"})
        assert [r["id"] for r in records] == [pid for pid, _ in account.list_member_ids(big.id)]
        assert len(docs) >= 2


@pytest.mark.parametrize(
    "path,params,parameter",
    [
        ("/api/profiles", {"filter": "equals(nickname,'x')"}, "filter"),  # unknown field
        ("/api/profiles", {"filter": "greater-or-equal(updated,2025-01-01T00:00:00Z)"}, "filter"),  # real API refuses this
        ("/api/profiles", {"filter": "equals(email,bob@example.com)"}, "filter"),  # unquoted string
        ("/api/profiles", {"filter": "greater-than(updated,'2025-01-01')"}, "filter"),  # quoted datetime
        ("/api/profiles", {"filter": "greater-than(updated,2025-01-01T00:00:00Z"}, "filter"),  # syntax
        ("/api/events", {"filter": "equals(datetime,2025-01-01T00:00:00Z)"}, "filter"),  # bad operator
        ("/api/events", {"filter": "greater-than(timestamp,2025-01-01)"}, "filter"),  # bad value type
        ("/api/lists", {"filter": "equals(name,'Newsletter')"}, "filter"),  # single form where only list is allowed
        ("/api/campaigns", {"filter": "equals(messages.channel,'fax')"}, "filter"),  # enum
        ("/api/campaigns", {}, "filter"),  # channel filter required
        ("/api/campaigns", {"filter": "equals(archived,true)"}, "filter"),
        ("/api/profiles", {"sort": "name"}, "sort"),
        ("/api/events", {"sort": "--datetime"}, "sort"),
        ("/api/metrics", {"sort": "name"}, "sort"),
        ("/api/lists", {"page[size]": "11"}, "page[size]"),
        ("/api/profiles", {"page[size]": "0"}, "page[size]"),
        ("/api/events", {"page[size]": "1001"}, "page[size]"),
        ("/api/events", {"page[size]": "ten"}, "page[size]"),
        ("/api/metrics", {"page[size]": "10"}, "page[size]"),
        ("/api/profiles", {"page[cursor]": "garbage!"}, "page[cursor]"),
        ("/api/campaigns", {"filter": "equals(messages.channel,'sms')", "include": "profiles"}, "include"),
        ("/api/events", {"include": "metric,campaign"}, "include"),
        ("/api/profiles", {"additional-fields[profile]": "subscriptions,lifetime_value"}, "additional-fields[profile]"),
        ("/api/events", {"additional-fields[profile]": "subscriptions"}, "additional-fields[profile]"),
        ("/api/profiles", {"fields[profile]": "email,nickname"}, "fields[profile]"),
        ("/api/profiles", {"fields[event]": "datetime"}, "fields[event]"),
        ("/api/profiles", {"page[number]": "2"}, "page[number]"),
    ],
)
def test_invalid_queries_are_400_with_klaviyo_error_body(client, path, params, parameter):
    r = client.get(path, params)
    assert r.status_code == 400, r.text
    err = r.json()["errors"][0]
    assert err["code"] == "invalid"
    assert err["title"] == "Invalid input."
    assert err["status"] == 400
    assert err["source"] == {"parameter": parameter}
    assert err["links"] == {} and err["meta"] == {}
    if parameter == "filter":
        assert err["detail"].startswith("Invalid filter provided")


# ------------------------------------------------------------------ semantics
def _ids(client, path, params):
    records, _ = client.all_pages(path, params)
    return [r["id"] for r in records]


def test_profile_updated_filter_and_sort(client, account):
    cutoff = "2025-06-01T00:00:00Z"
    records, _ = client.all_pages("/api/profiles", {"filter": f"greater-than(updated,{cutoff})", "sort": "updated", "page[size]": "100"})
    updated = [r["attributes"]["updated"] for r in records]
    assert updated == sorted(updated) and all(u > "2025-06-01T00:00:00+00:00" for u in updated)
    expected = sum(1 for p in account.profiles() if p["attributes"]["updated"] > "2025-06-01T00:00:00+00:00")
    assert len(records) == expected
    desc = _ids(client, "/api/profiles", {"filter": f"greater-than(updated,{cutoff})", "sort": "-updated", "page[size]": "100"})
    assert desc == [r["id"] for r in reversed(records)]


def test_subscriptions_only_when_requested(client):
    plain = client.get("/api/profiles").json()["data"][0]["attributes"]
    assert "subscriptions" not in plain and "predictive_analytics" not in plain
    both = client.get("/api/profiles", {"additional-fields[profile]": "subscriptions,predictive_analytics"}).json()["data"][0]["attributes"]
    assert "marketing" in both["subscriptions"]["email"] and "historic_clv" in both["predictive_analytics"]


def test_suppression_filter_and_sort_return_only_suppressed_profiles(client, account):
    field = "subscriptions.email.marketing.suppression.timestamp"
    params = {"additional-fields[profile]": "subscriptions", "sort": field, "page[size]": "20",
              "filter": f"greater-than({field},2024-01-01T00:00:00Z)"}  # fmt: skip
    records, docs = client.all_pages("/api/profiles", params)
    assert len(docs) >= 2
    latest = [max(s["timestamp"] for s in r["attributes"]["subscriptions"]["email"]["marketing"]["suppression"]) for r in records]
    assert latest == sorted(latest)
    assert len(records) == sum(1 for p in account.profiles() if p["attributes"]["subscriptions"]["email"]["marketing"]["suppression"])
    sorted_only = _ids(client, "/api/profiles", {"sort": f"-{field}", "page[size]": "100"})
    assert sorted_only == [r["id"] for r in reversed(records)]
    bounced = client.get("/api/profiles", {"filter": "equals(subscriptions.email.marketing.suppression.reason,'HARD_BOUNCE')",
                                           "additional-fields[profile]": "subscriptions"}).json()["data"]  # fmt: skip
    assert bounced and all(
        any(s["reason"] == "HARD_BOUNCE" for s in p["attributes"]["subscriptions"]["email"]["marketing"]["suppression"]) for p in bounced
    )


def test_profile_id_and_email_filters(client, account):
    profiles = list(account.profiles())[:3]
    got = client.get("/api/profiles", {"filter": 'any(id,["%s","%s"])' % (profiles[0]["id"], profiles[2]["id"])}).json()["data"]
    assert [p["id"] for p in got] == [profiles[0]["id"], profiles[2]["id"]]
    email = profiles[1]["attributes"]["email"]
    got = client.get("/api/profiles", {"filter": f'equals(email,"{email}")'}).json()["data"]
    assert [p["id"] for p in got] == [profiles[1]["id"]]


def test_sparse_fieldsets(client):
    attrs = client.get("/api/profiles", {"fields[profile]": "email,location.city"}).json()["data"][0]["attributes"]
    assert set(attrs) == {"email", "location"} and set(attrs["location"]) == {"city"}
    event = client.get("/api/events", {"fields[event]": "datetime", "include": "metric", "fields[metric]": "name"}).json()
    assert set(event["data"][0]["attributes"]) == {"datetime"}
    assert all(set(m["attributes"]) == {"name"} for m in event["included"])


def test_events_datetime_window_metric_filter_and_includes(client, account):
    (mid,) = account.metric_ids("Received Email")
    params = {"filter": f'equals(metric_id,"{mid}"),greater-or-equal(datetime,2025-01-01T00:00:00Z),less-than(datetime,2025-07-01)',
              "sort": "datetime", "page[size]": "100", "include": "metric,profile"}  # fmt: skip
    records, docs = client.all_pages("/api/events", params)
    truth = [e for e in account.events(mid) if "2025-01-01" <= e["attributes"]["datetime"] < "2025-07-01"]
    assert [r["id"] for r in records] == [e["id"] for e in truth]
    for doc in docs:
        included = [(i["type"], i["id"]) for i in doc["included"]]
        assert len(included) == len(set(included))  # de-duplicated
        assert ("metric", mid) in included
        assert {r["relationships"]["profile"]["data"]["id"] for r in doc["data"]} == {i for t, i in included if t == "profile"}
    newest_first = _ids(client, "/api/events", {**params, "sort": "-datetime"})
    assert newest_first == [r["id"] for r in reversed(records)]
    and_form = _ids(client, "/api/events", {**params, "filter": f'and(equals(metric_id,"{mid}"),greater-or-equal(datetime,2025-01-01 00:00:00+00:00),less-than(datetime,2025-07-01T00:00:00.000000Z))'})
    assert and_form == [r["id"] for r in records]
    by_timestamp = _ids(client, "/api/events", {"filter": f'equals(metric_id,"{mid}"),greater-or-equal(timestamp,1735689600),less-than(timestamp,1751328000)', "page[size]": "1000"})
    assert by_timestamp == [r["id"] for r in records]


@pytest.mark.parametrize("size", [100, 200, 1000])
def test_equal_datetimes_across_page_boundaries_are_neither_lost_nor_repeated(client, account, size):
    (mid,) = account.metric_ids("Received Email")
    records, docs = client.all_pages("/api/events", {"filter": f'equals(metric_id,"{mid}")', "sort": "datetime", "page[size]": str(size)})
    assert [r["id"] for r in records] == [e["id"] for e in account.events(mid)]
    assert docs[0]["data"][-1]["attributes"]["datetime"] == docs[1]["data"][0]["attributes"]["datetime"]


def test_events_has_metric_excludes_unresolvable_metrics(client, account):
    listed = {m["id"] for m in account.metrics()}
    everything = client.all_pages("/api/events", {"page[size]": "1000"})[0]
    resolvable = client.all_pages("/api/events", {"page[size]": "1000", "filter": "has(metric)"})[0]
    unresolved = [e for e in everything if e["relationships"]["metric"]["data"]["id"] not in listed]
    assert unresolved and len(resolvable) == len(everything) - len(unresolved)
    assert len(everything) == len(account.events_store)


def test_campaigns_channel_and_archived(client, account):
    for channel in ("email", "sms", "mobile_push"):
        live = client.all_pages("/api/campaigns", {"filter": f"equals(messages.channel,'{channel}')"})[0]
        archived = client.all_pages("/api/campaigns", {"filter": f"equals(messages.channel,'{channel}'),equals(archived,true)"})[0]
        truth = [r for r in account.campaign_rows if r.extra["channel"] == channel]
        assert {c["id"] for c in live} == {r.id for r in truth if not r.attrs["archived"]}
        assert {c["id"] for c in archived} == {r.id for r in truth if r.attrs["archived"]}
    doc = client.get("/api/campaigns", {"filter": "equals(messages.channel,'sms')", "include": "campaign-messages"}).json()
    linked = {d["id"] for c in doc["data"] for d in c["relationships"]["campaign-messages"]["data"]}
    assert linked == {m["id"] for m in doc["included"]} and all(m["type"] == "campaign-message" for m in doc["included"])


def test_omni_campaigns_at_2026_10_15(client):
    r = client.get("/api/campaigns", headers={"revision": "2026-10-15"})
    assert r.status_code == 200
    attrs = r.json()["data"][0]["attributes"]
    assert set(attrs) == {"created_at", "updated_at", "definition"} and "archived" in attrs["definition"]
    assert client.get("/api/campaigns", {"filter": "equals(messages.channel,'email')"}, headers={"revision": "2026-10-15"}).status_code == 400


def test_cursor_from_another_sort_is_400(client):
    doc = client.get("/api/lists", {"sort": "created"}).json()
    cursor = parse_qs(urlsplit(doc["links"]["next"]).query)["page[cursor]"][0]
    r = client.get("/api/lists", {"sort": "name", "page[cursor]": cursor})
    assert r.status_code == 400 and r.json()["errors"][0]["source"] == {"parameter": "page[cursor]"}


def test_page_size_is_revision_dependent(fresh):
    emu, client = fresh
    emu.account.set_clock(datetime(2026, 11, 23, tzinfo=timezone.utc))  # revision support windows follow the emulator clock
    assert client.get("/api/events", {"page[size]": "500"}, headers={"revision": "2025-10-15"}).status_code == 400
    legacy = client.get("/api/events", headers={"revision": "2025-10-15"}).json()
    assert len(legacy["data"]) == 200
    assert client.get("/api/lists", {"page[size]": "5"}, headers={"revision": "2026-01-15"}).status_code == 400
    assert client.get("/api/lists", {"page[size]": "5"}, headers={"revision": "2026-04-15"}).status_code == 200


def test_other_filters(client, account):
    assert [r["id"] for r in client.get("/api/flows", {"filter": "starts-with(name,'Welcome')"}).json()["data"]] == [
        r.id for r in account.flow_rows if r.attrs["name"].startswith("Welcome")
    ]
    assert client.get("/api/metrics", {"filter": "equals(integration.category,'eCommerce')"}).json()["data"]
    names = [r["attributes"]["name"] for r in client.all_pages("/api/lists", {"sort": "-name"})[0]]
    assert names == sorted(names, reverse=True)
    newsletter = client.get("/api/lists", {"filter": "any(name,['Newsletter','Nope'])"}).json()["data"]
    assert [x["attributes"]["name"] for x in newsletter] == ["Newsletter"]
    assert client.get("/api/tags", {"filter": "contains(name,'er')", "include": "tag-group"}).json()["included"]
    assert client.get("/api/templates", {"additional-fields[template]": "definition"}).json()["data"][0]["attributes"].keys() >= {"definition"}
    members = client.get(f"/api/lists/{account.list_rows[0].id}/profiles", {"filter": "greater-or-equal(joined_group_at,2025-01-01T00:00:00Z)", "sort": "-joined_group_at"}).json()["data"]
    joined = [m["attributes"]["joined_group_at"] for m in members]
    assert joined == sorted(joined, reverse=True) and all(j >= "2025-01-01" for j in joined)


# ------------------------------------------------------------- between syncs
def test_keyset_cursor_survives_updates_and_inserts_mid_pagination(fresh):
    emu, client = fresh
    account = emu.account
    params = {"sort": "updated", "page[size]": "50"}
    first = client.get("/api/profiles", params).json()
    seen = [p["id"] for p in first["data"]]
    moved = seen[10]
    account.update_profile(moved, first_name="Moved")  # its `updated` is now: it must reappear at the end
    new_id = account.add_profile(email="late@example.com")
    next_url = first["links"]["next"]
    while next_url:
        doc = client.get(next_url).json()
        seen += [p["id"] for p in doc["data"]]
        next_url = doc["links"]["next"]
    assert seen.count(moved) == 2 and seen[-2:] in ([moved, new_id], [new_id, moved])
    assert len(seen) == account._profile_count() + 1


def test_changes_between_two_incremental_syncs(fresh):
    emu, client = fresh
    account = emu.account
    cutoff = "2026-07-01T00:00:00Z"
    assert client.get("/api/profiles", {"filter": f"greater-than(updated,{cutoff})"}).json()["data"] == []
    victim = next(account.profiles())["id"]
    account.update_profile(victim, title="CEO")
    added = account.add_profile(email="added@example.com")
    account.suppress_profile(added, "USER_SUPPRESSED")
    changed = _ids(client, "/api/profiles", {"filter": f"greater-than(updated,{cutoff})", "sort": "updated"})
    assert changed == [victim, added]
    field = "subscriptions.email.marketing.suppression.timestamp"
    assert _ids(client, "/api/profiles", {"filter": f"greater-than({field},{cutoff})"}) == [added]
    (mid,) = account.metric_ids("Clicked Email")
    late = account.add_event(mid, added, "2025-02-02T02:02:02+00:00")
    window = _ids(client, "/api/events", {"filter": f'equals(metric_id,"{mid}"),greater-or-equal(datetime,2025-02-02T00:00:00Z),less-than(datetime,2025-02-03)'})
    assert late in window
    list_id = account.list_rows[-1].id  # the empty list
    account.add_list_member(list_id, added)
    assert _ids(client, f"/api/lists/{list_id}/relationships/profiles", {}) == [added]
