"""Revision 2026-10-15 (omni campaigns) fills the same campaigns and campaign_messages tables as 2026-07-15.

The emulator serves the same account in both shapes (klaviyo_emulator/areas/messaging.py); the
columns whose concept exists in both revisions must hold the same values, the new columns are
null at 2026-07-15, and campaign_variations / campaign_audiences hold exactly the emulator's.
"""

from __future__ import annotations

import copy
import time

import pytest
import requests

from klaviyo_emulator import Account, Emulator
from tests.conftest import run_tap, tap_config

OMNI = ("campaigns", "campaign_messages", "campaign_variations", "campaign_audiences")
# Columns with no 2026-10-15 source (null there): send_options (smart sending), scheduled_at.
CAMPAIGN_SHARED = ("id", "name", "status", "archived", "audiences", "tracking_options", "created_at", "updated_at", "send_time", "channel", "tag_ids", "campaign_messages")
MESSAGE_SHARED = ("id", "definition", "send_times", "created_at", "updated_at", "campaign_id", "template_id", "image_id", "channel")
CAMPAIGN_NEW = ("builder", "color", "description", "send_settings")
MESSAGE_NEW = ("name", "status", "send_options", "tracking_options", "ab_test", "variation_ids")


def by_id(records):
    return {r["id"]: r for r in records}


@pytest.mark.parametrize("hide_archived", [True, False])
def test_both_revisions_fill_the_same_columns(emulator, account, hide_archived):
    account.omni_hides_archived_campaigns = hide_archived
    old = run_tap(tap_config(emulator, revision="2026-07-15"), streams=OMNI)
    start = len(emulator.requests)
    new = run_tap(tap_config(emulator, revision="2026-10-15"), streams=OMNI)
    old_c, new_c = by_id(old.records["campaigns"]), by_id(new.records["campaigns"])
    assert set(new_c) == set(old_c) == {r.id for r in account.campaign_rows}  # archived ones too, in either emulator mode
    for cid, legacy in old_c.items():
        omni = new_c[cid]
        for column in CAMPAIGN_SHARED:
            assert omni.get(column) == legacy.get(column), (cid, column)
        assert omni["send_strategy"]["method"] == legacy["send_strategy"]["method"]
        assert omni["send_strategy"]["options"] == legacy["send_strategy"]["options"]
        if legacy["status"] != "Draft":  # a draft has no send time at 2026-10-15
            assert omni["send_strategy"]["datetime"] == legacy["send_strategy"]["datetime"]
        else:
            assert "datetime" not in omni["send_strategy"]
        assert omni["send_options"] is None and omni["scheduled_at"] is None
        assert all(legacy.get(column) is None for column in CAMPAIGN_NEW) and omni["builder"] in ("wizard", "canvas")
    old_m, new_m = by_id(old.records["campaign_messages"]), by_id(new.records["campaign_messages"])
    assert set(new_m) == set(old_m)
    for mid, legacy in old_m.items():
        for column in MESSAGE_SHARED:
            assert new_m[mid].get(column) == legacy.get(column), (mid, column)
        assert all(legacy.get(column) is None for column in MESSAGE_NEW) and new_m[mid]["status"]
    # The 2026-10-15-only streams: exactly the emulator's variations and audiences; nothing at 2026-07-15.
    assert "campaign_variations" not in old.records and "campaign_audiences" not in old.records
    variations = {v.id: (mid, v) for mid, vs in account.omni_variations_by_message().items() for v in vs}
    got = by_id(new.records["campaign_variations"])
    assert set(got) == set(variations)
    for vid, (mid, row) in variations.items():
        assert got[vid]["campaign_message_id"] == mid and got[vid]["details"] == row.attrs["definition"]["details"]
    audiences = {a.id: (r.id, a) for r in account.campaign_rows for a in account.omni_audiences_of(r.id)}
    got = by_id(new.records["campaign_audiences"])
    assert set(got) == set(audiences)
    for aid, (cid, row) in audiences.items():
        assert got[aid]["campaign_id"] == cid and got[aid]["included"] == row.attrs["definition"]["included"]
    # Requests: campaigns 1 read when the API returns archived campaigns, 2 when it hides them; audiences 2;
    # messages 1 page; variations one per message, shared by the three streams.
    counts: dict[str, int] = {}
    for request in emulator.requests[start:]:
        key = "variations" if request.path.rstrip("/").endswith("campaign-variations") else request.path.rstrip("/")
        counts[key] = counts.get(key, 0) + 1
    n = len(account.campaign_rows)
    assert counts["variations"] == n
    assert counts["/api/campaigns"] == (2 if hide_archived else 1) + 2
    assert counts["/api/campaign-messages"] == 2  # campaign_messages' incremental read, campaign_variations' listing


def test_channel_filter_is_rejected_at_2026_10_15_and_builder_at_2026_07_15():
    with Emulator(Account.generate(seed=7, size="tiny"), rate_limits=False) as emu:
        key = {"Authorization": "Klaviyo-API-Key pk_test0123456789abcdefghijklmnop"}
        new = requests.get(f"{emu.base_url}/api/campaigns", params={"filter": "equals(messages.channel,'email')"}, headers={**key, "revision": "2026-10-15"})
        old = requests.get(f"{emu.base_url}/api/campaigns", params={"filter": "equals(builder,'canvas')"}, headers={**key, "revision": "2026-07-15"})
        gone = requests.get(f"{emu.base_url}/api/campaign-messages", headers={**key, "revision": "2026-07-15"})
    assert new.status_code == 400 and new.json()["errors"][0]["source"] == {"parameter": "filter"}
    assert old.status_code == 400
    assert gone.status_code == 404 and gone.json()["errors"][0]["detail"] == "No valid revisions found for method"


def test_the_next_run_at_2026_10_15_brings_the_changed_campaign_and_message(emulator, account):
    config = tap_config(emulator, lookback_minutes=0, revision="2026-10-15")
    streams = ("campaigns", "campaign_messages")
    first = run_tap(config, streams=streams)
    assert first.state["bookmarks"]["campaign_messages"]["replication_key_value"] == max(r["updated_at"] for r in first.records["campaign_messages"])
    renamed = account.campaign_rows[4].id
    email = next(r for r in account.campaign_rows if r.extra["channel"] == "email" and r.id != renamed)
    message = account.campaign_messages[email.id][0].id
    time.sleep(1.1)
    account.update_campaign(renamed, name="Renamed campaign")
    account.update_campaign_message(message, subject="A new subject")
    time.sleep(1.1)
    before = len(emulator.requests)
    second = run_tap(config, state=copy.deepcopy(first.state), streams=streams)
    marks = {first.state["bookmarks"][s]["replication_key_value"] for s in streams}
    assert [r["id"] for r in second.records["campaigns"] if r["updated_at"] not in marks] == [renamed]
    assert second.records["campaigns"][-1]["name"] == "Renamed campaign"
    messages = [r for r in second.records["campaign_messages"] if r["updated_at"] not in marks]
    assert [r["id"] for r in messages] == [message] and messages[0]["definition"]["content"]["subject"] == "A new subject"
    # campaigns: an unfiltered read and an archived one (the emulator hides archived campaigns here);
    # campaign_messages: one page; one variation read per message emitted (the renamed campaign's and the edited one).
    counts = {}
    for request in emulator.requests[before:]:
        key = "variations" if request.path.rstrip("/").endswith("campaign-variations") else request.path.rstrip("/")
        counts[key] = counts.get(key, 0) + 1
    emitted = {m["id"] for c in second.records["campaigns"] for m in c["campaign_messages"]} | {r["id"] for r in second.records["campaign_messages"]}
    assert counts == {"/api/campaigns": 2, "/api/campaign-messages": 1, "variations": len(emitted)}


def test_campaign_variations_reads_only_the_messages_that_changed_until_the_sweep(emulator, account):
    config = tap_config(emulator, lookback_minutes=0, revision="2026-10-15")
    streams = ("campaign_variations",)

    def variation_reads(since: int) -> int:
        return sum(1 for r in emulator.requests[since:] if r.path.rstrip("/").endswith("campaign-variations"))

    before = len(emulator.requests)
    first = run_tap(config, streams=streams)
    messages = len(account.omni_message_rows())
    assert variation_reads(before) == messages and len(first.records["campaign_variations"]) == messages

    before = len(emulator.requests)
    unchanged = run_tap(config, state=copy.deepcopy(first.state), streams=streams)
    assert variation_reads(before) == 0 and not unchanged.records.get("campaign_variations")

    email = next(r for r in account.campaign_rows if r.extra["channel"] == "email")
    message = account.campaign_messages[email.id][0].id
    time.sleep(1.1)
    account.update_campaign_message(message, subject="A new subject")
    time.sleep(1.1)
    before = len(emulator.requests)
    changed = run_tap(config, state=copy.deepcopy(unchanged.state), streams=streams)
    assert variation_reads(before) == 1
    (row,) = changed.records["campaign_variations"]
    assert row["campaign_message_id"] == message and row["details"]["subject"] == "A new subject"

    before = len(emulator.requests)
    swept = run_tap(tap_config(emulator, lookback_minutes=0, revision="2026-10-15", sweep_hours=0), state=copy.deepcopy(changed.state), streams=streams)
    assert variation_reads(before) == messages, "the sweep reads every message's variations"
    marks = {p["context"]["campaign_message_id"]: p["replication_key_value"] for p in changed.state["bookmarks"]["campaign_variations"]["partitions"]}
    assert all(row["updated"] == marks[row["campaign_message_id"]] for row in swept.records["campaign_variations"]), (
        "and emits nothing older than each message's bookmark (the bookmark's own rows again: the lower bound is inclusive)"
    )
