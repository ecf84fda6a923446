"""The synthetic account: determinism, size, the real-world quirks, and mutations between syncs."""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timezone

import pytest

from klaviyo_emulator import Account
from klaviyo_emulator.account import SUPPRESSION_REASONS
from klaviyo_emulator.resources import T_END, fmt_us, to_us

UTC = timezone.utc


def test_tiny_is_fast_and_deterministic():
    started = time.perf_counter()
    a = Account.generate(seed=1)
    assert time.perf_counter() - started < 0.5
    b = Account.generate(seed=1)
    assert a.metrics() == b.metrics()
    assert list(a.events())[:50] == list(b.events())[:50]
    assert next(a.profiles()) == next(b.profiles())
    assert Account.generate(seed=2).metrics() != a.metrics()


def test_explicit_sizes(account):
    small = Account.generate(seed=3, profiles=50, events=2500)
    assert small._profile_count() == 50
    assert len(small.events_store) == 2500
    with pytest.raises(ValueError):
        Account.generate(size="huge")


def test_a_large_account_has_more_lists_segments_and_metrics_and_the_named_ones_stay(account):
    large = Account.generate(seed=1, lists=1000, segments=100, custom_metrics=266)
    assert (len(large.list_rows), len(large.segment_rows), len(large.metrics())) == (1000, 100, 300)
    assert (len(account.list_rows), len(account.segment_rows), len(account.metrics())) == (13, 12, 234)
    assert [r.id for r in large.list_rows[:13]] == [r.id for r in account.list_rows]
    assert len({r.id for r in large.list_rows + large.segment_rows + large.metric_rows}) == 1400
    assert all(large.list_member_ids(r.id) for r in large.list_rows[13:]), "every extra list has members"
    end = fmt_us(T_END * 1_000_000)
    assert all(r.attrs[name] < end for r in large.list_rows + large.segment_rows for name in ("created", "updated"))


def test_synthetic_timestamps_lie_in_the_past(account):
    now = datetime.now(UTC).isoformat()
    for event in list(account.events())[:: 97]:
        assert "2024-01-01" <= event["attributes"]["datetime"][:10] <= "2026-06-30"
    for profile in account.profiles():
        assert profile["attributes"]["updated"] < now


def test_ids_have_the_real_shapes(account):
    profile = next(account.profiles())
    assert len(profile["id"]) == 26 and profile["id"].isalnum()
    assert all(len(m["id"]) == 6 for m in account.metrics())
    assert all(len(item["id"]) == 6 for item in account.lists())
    assert all(len(c["id"]) == 26 for c in account.campaigns())
    event = next(account.events())
    assert 6 <= len(event["id"]) <= 12 and event["id"].isalnum()


def test_event_rendering_quirks(account):
    event = next(account.events())
    attrs = event["attributes"]
    assert attrs["datetime"][10] == " " and attrs["datetime"].endswith("+00:00")
    assert isinstance(attrs["timestamp"], int)
    assert to_us(attrs["datetime"]) == attrs["timestamp"] * 1_000_000
    assert event["relationships"]["profile"]["data"]["type"] == "profile"
    assert event["relationships"]["metric"]["data"]["type"] == "metric"


def test_microsecond_timestamps_on_campaigns_and_suppressions(account):
    campaign = account.campaigns()[0]["attributes"]
    assert len(campaign["created_at"]) == len("2024-04-01T17:09:03.603888+00:00")
    suppressed = [p for p in account.profiles() if p["attributes"]["subscriptions"]["email"]["marketing"]["suppression"]]
    assert all("." in s["timestamp"] for p in suppressed for s in p["attributes"]["subscriptions"]["email"]["marketing"]["suppression"])


def test_metric_quirks(account):
    metrics = account.metrics()
    assert len(metrics) > 200
    assert len(account.metric_ids("Clicked Email", "klaviyo")) == 1
    assert len(account.metric_ids("Clicked Email", "api")) == 1
    with_events = set(account.all_event_metric_ids())
    for name in ("Unsubscribed", "Unsubscribed from Email Marketing", "Received Email", "Bounced Email", "Dropped Email",
                 "Marked Email as Spam", "Opened Email", "Clicked Email"):  # fmt: skip
        (mid,) = account.metric_ids(name)
        assert mid in with_events and next(account.events(mid), None), name
    listed = {m["id"] for m in metrics}
    unresolved = [m for m in with_events if m not in listed]
    assert unresolved and next(account.events(unresolved[0]), None)


def test_received_email_ties_straddle_page_boundaries(account):
    (mid,) = account.metric_ids("Received Email")
    datetimes = [e["attributes"]["datetime"] for e in account.events(mid)]
    assert len(datetimes) > 1000
    for boundary in (100, 200, 1000):
        assert datetimes[boundary - 1] == datetimes[boundary], boundary  # last of a page == first of the next


def test_suppression_quirks(account):
    reasons = Counter()
    newer_than_updated = 0
    for p in account.profiles():
        supp = p["attributes"]["subscriptions"]["email"]["marketing"]["suppression"]
        reasons.update(s["reason"] for s in supp)
        if supp and max(to_us(s["timestamp"]) for s in supp) > to_us(p["attributes"]["updated"]):
            newer_than_updated += 1
        if supp:
            assert p["attributes"]["subscriptions"]["email"]["marketing"]["can_receive_email_marketing"] is False
    assert set(reasons) == set(SUPPRESSION_REASONS)
    assert newer_than_updated > 0


def test_campaign_quirks(account):
    campaigns = account.campaigns()
    for channel in ("email", "sms", "mobile_push"):
        rows = [r for r in account.campaign_rows if r.extra["channel"] == channel]
        assert {r.attrs["archived"] for r in rows} == {True, False}, channel
        for r in rows:
            (message,) = account.campaign_message_resources(r.id)
            assert message["attributes"]["definition"]["channel"] == channel
    assert len(campaigns) == len(account.campaign_rows)


def test_list_quirks(account):
    lists = account.lists()
    assert len(lists) > 10
    sizes = {item["id"]: len(account.list_member_ids(item["id"])) for item in lists}
    assert 0 in sizes.values() and max(sizes.values()) > 100
    memberships = Counter(pid for item in lists for pid, _ in account.list_member_ids(item["id"]))
    assert max(memberships.values()) >= 3


def test_clock_is_settable():
    a = Account.generate()
    pinned = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    a.set_clock(pinned)
    assert a.now() == pinned
    a.set_clock(None)
    assert abs((a.now() - datetime.now(UTC)).total_seconds()) < 5


def test_mutations():
    a = Account.generate(seed=11)
    a.set_clock(datetime(2026, 11, 20, 8, 0, tzinfo=UTC))
    pid = a.add_profile(email="new.person@example.com", first_name="New")
    new = [p for p in a.profiles() if p["id"] == pid][0]
    assert new["attributes"]["email"] == "new.person@example.com"
    assert new["attributes"]["created"] == new["attributes"]["updated"] == "2026-11-20T08:00:00+00:00"

    old = next(a.profiles())
    a.set_clock(datetime(2026, 11, 20, 9, 0, tzinfo=UTC))
    a.update_profile(old["id"], first_name="Renamed")
    updated = next(a.profiles())
    assert updated["attributes"]["first_name"] == "Renamed"
    assert updated["attributes"]["updated"] == "2026-11-20T09:00:00+00:00"

    a.set_clock(datetime(2026, 11, 20, 10, 0, tzinfo=UTC))
    a.suppress_profile(pid, "SPAM_COMPLAINT")
    suppressed = [p for p in a.profiles() if p["id"] == pid][0]
    assert suppressed["attributes"]["updated"] == "2026-11-20T08:00:00+00:00"  # not bumped: the real quirk
    assert suppressed["attributes"]["subscriptions"]["email"]["marketing"]["suppression"][-1]["reason"] == "SPAM_COMPLAINT"

    list_id = a.add_list("Fresh List")
    before = [x for x in a.lists() if x["id"] == list_id][0]["attributes"]["updated"]
    a.add_list_member(list_id, pid)
    assert a.list_member_ids(list_id) == [(pid, "2026-11-20T10:00:00+00:00")]
    assert [x for x in a.lists() if x["id"] == list_id][0]["attributes"]["updated"] == before

    (mid,) = a.metric_ids("Opened Email")
    eid = a.add_event(mid, pid, datetime(2025, 3, 1, tzinfo=UTC), {"Subject": "late"})
    late = [e for e in a.events(mid) if e["id"] == eid][0]
    assert late["attributes"]["datetime"] == "2025-03-01 00:00:00+00:00"
    assert late["attributes"]["event_properties"] == {"Subject": "late"}

    cid = a.campaigns()[0]["id"]
    a.update_campaign(cid, name="Renamed campaign")
    campaign = [c for c in a.campaigns() if c["id"] == cid][0]
    assert campaign["attributes"]["name"] == "Renamed campaign"
    assert campaign["attributes"]["updated_at"] == "2026-11-20T10:00:00.000000+00:00"

    with pytest.raises(KeyError):
        a.update_profile("01NOTAPROFILE0000000000000", first_name="x")
    with pytest.raises(ValueError):
        a.suppress_profile(pid, "BORED")
