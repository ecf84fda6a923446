"""Audience area: segments and their members, list suppressions on profiles, tags on lists and segments, audience mutations."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from klaviyo_emulator.resources import to_us

from .checks import attribute, check_filters, check_paging, check_sorts, ids

UTC = timezone.utc
LIST_SUPP = "subscriptions.email.marketing.list_suppressions"


def _member_value(record: dict, field: str):
    return record["id"] if field == "profile_id" else attribute(record, field)


def test_segments_include_tags(client, account):
    records, docs = client.all_pages("/api/segments", {"include": "tags,flow-triggers"})
    assert len(docs) >= 2
    linked = 0
    for doc in docs:
        included = {r["id"] for r in doc["included"] if r["type"] == "tag"}
        for seg in doc["data"]:
            tags = [t["id"] for t in seg["relationships"]["tags"]["data"]]
            assert tags == account.tags_of.get(("segment", seg["id"]), [])
            assert set(tags) <= included and seg["relationships"]["flow-triggers"]["data"] == []
            linked += len(tags)
    assert linked
    rel = client.get("/api/segments").json()["data"][0]["relationships"]["tags"]
    assert "data" not in rel and rel["links"]["related"].endswith("/tags/")


def test_lists_include_tags(client, account):
    doc = client.get("/api/lists", {"include": "tags", "fields[tag]": "name"}).json()
    tags = [t["id"] for item in doc["data"] for t in item["relationships"]["tags"]["data"]]
    assert tags and {r["id"] for r in doc["included"]} == set(tags)
    assert all(r["type"] == "tag" and set(r["attributes"]) == {"name"} for r in doc["included"])


def test_segment_members_paging_filters_sorts_and_subscriptions(client, account):
    seg = max(account.segment_rows, key=lambda r: len(account.members[r.id]))
    path = f"/api/segments/{seg.id}/profiles"
    params = {"additional-fields[profile]": "subscriptions"}
    everything, _ = client.all_pages(path, {**params, "page[size]": "100"})
    expected = [r["id"] for r in everything]
    assert expected == [account.profile_id(p) for p in account.members[seg.id].profile]
    assert all("subscriptions" in r["attributes"] and r["attributes"]["joined_group_at"] for r in everything)
    check_paging(client, path, "/api/segments/{id}/profiles", expected, size=7, params=params)
    check_filters(client, path, "/api/segments/{id}/profiles", everything, value_of=_member_value, valueless=("push_token", "_kx"))
    check_sorts(client, path, "/api/segments/{id}/profiles", expected, size=50)
    empty = next(r for r in account.segment_rows if r.attrs["name"] == "Empty Segment")
    assert client.get(f"/api/segments/{empty.id}/profiles").json() ["data"] == []


def test_a_profile_holds_list_suppressions_on_several_lists(client, account):
    doc = client.get("/api/profiles", {"additional-fields[profile]": "subscriptions", "filter": f"greater-than({LIST_SUPP}.timestamp,2000-01-01T00:00:00Z)",
                                       "sort": f"{LIST_SUPP}.timestamp", "page[size]": "100"}).json()  # fmt: skip
    supps = [p["attributes"]["subscriptions"]["email"]["marketing"]["list_suppressions"] for p in doc["data"]]
    assert all(supps) and max(len(s) for s in supps) >= 3
    multi = next(s for s in supps if len(s) >= 2)
    assert len({s["list_id"] for s in multi}) == len(multi) and all(set(s) == {"list_id", "reason", "timestamp"} for s in multi)
    latest = [max(to_us(s["timestamp"]) for s in supp) for supp in supps]
    assert latest == sorted(latest)
    second_list = account.list_rows[1].id
    on_second = ids(client, "/api/profiles", {"filter": f"equals({LIST_SUPP}.list_id,'{second_list}')"})
    assert on_second and len(on_second) < len(ids(client, "/api/profiles", {"filter": f"equals({LIST_SUPP}.list_id,'{account.list_rows[0].id}')"}))
    for op in ("greater-or-equal", "greater-than", "less-or-equal", "less-than"):
        assert client.get("/api/profiles", {"filter": f"{op}({LIST_SUPP}.timestamp,2025-06-01T00:00:00Z)"}).status_code == 200
    r = client.get("/api/profiles", {"filter": f"equals({LIST_SUPP}.timestamp,2025-06-01T00:00:00Z)"})
    assert r.status_code == 400 and r.json()["errors"][0]["source"] == {"parameter": "filter"}


def test_audience_mutations_show_on_the_next_read(fresh):
    emu, client = fresh
    account = emu.account
    account.set_clock(datetime(2026, 11, 20, 8, 0, tzinfo=UTC))
    seg = account.segment_rows[0]
    pid = account.add_profile(email="joiner@example.com")
    account.add_segment_member(seg.id, pid)
    path = f"/api/segments/{seg.id}/profiles"
    (joined,) = client.get(path, {"filter": "greater-than(joined_group_at,2026-11-01T00:00:00Z)"}).json()["data"]
    assert joined["id"] == pid and joined["attributes"]["joined_group_at"] == "2026-11-20T08:00:00+00:00"
    account.remove_segment_member(seg.id, pid)
    assert pid not in ids(client, path, {"page[size]": "100"})

    lst = account.list_rows[0]
    leaver = account.list_member_ids(lst.id)[0][0]
    account.remove_list_member(lst.id, leaver)
    assert leaver not in ids(client, f"/api/lists/{lst.id}/relationships/profiles", {"page[size]": "100"})
    with pytest.raises(KeyError):
        account.remove_list_member(lst.id, leaver)

    before = client.get("/api/profiles", {"filter": f'equals(id,"{pid}")'}).json()["data"][0]["attributes"]["updated"]
    account.set_clock(datetime(2026, 11, 21, 8, 0, tzinfo=UTC))
    account.suppress_profile_on_list(pid, lst.id, "UNSUBSCRIBE")
    account.suppress_profile_on_list(pid, account.list_rows[1].id)
    got = ids(client, "/api/profiles", {"filter": f"greater-than({LIST_SUPP}.timestamp,2026-11-01T00:00:00Z)"})
    assert got == [pid]
    profile = client.get("/api/profiles", {"filter": f'equals(id,"{pid}")', "additional-fields[profile]": "subscriptions"}).json()["data"][0]
    supp = profile["attributes"]["subscriptions"]["email"]["marketing"]["list_suppressions"]
    assert [(s["list_id"], s["reason"]) for s in supp] == [(lst.id, "UNSUBSCRIBE"), (account.list_rows[1].id, "USER_SUPPRESSED")]
    assert profile["attributes"]["updated"] == before  # suppressions do not bump `updated`
    with pytest.raises(ValueError):
        account.suppress_profile_on_list(pid, lst.id, "BORED")
    with pytest.raises(KeyError):
        account.add_segment_member("nope00", pid)


def test_a_new_segment_is_listed_empty_and_takes_members(fresh):
    emu, client = fresh
    account = emu.account
    account.set_clock(datetime(2026, 11, 22, 8, 0, tzinfo=UTC))
    sid = account.add_segment("Fresh Segment")
    assert sid not in {r.id for r in account.segment_rows[:-1]}
    (seg,) = client.get("/api/segments", {"filter": "greater-than(updated,2026-11-01T00:00:00Z)"}).json()["data"]
    assert seg["id"] == sid and seg["attributes"]["name"] == "Fresh Segment"
    assert seg["attributes"]["created"] == seg["attributes"]["updated"] == "2026-11-22T08:00:00+00:00"
    group = seg["attributes"]["definition"]["condition_groups"][0]["conditions"][0]["group_ids"]
    assert group == [account.list_rows[0].id]
    path = f"/api/segments/{sid}/profiles"
    assert client.get(path).json()["data"] == []
    pid = account.profile_id(0)
    account.add_segment_member(sid, pid)
    assert ids(client, path, {}) == [pid]
