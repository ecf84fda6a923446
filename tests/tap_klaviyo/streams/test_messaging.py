"""Messaging streams: flows, flow_actions, flow_messages, campaign_messages, and form_versions (content).

(The full sync of every stream equals the account and validates against its schema:
tests/tap_klaviyo/test_streams.py. Here: what the next run brings, what a killed run resumes,
and what each run costs in requests, the small rate tier being the design constraint.)
"""

from __future__ import annotations

import collections
import copy
import json
import math
import random
import sys
import time

import pytest

from klaviyo_emulator import Account, Emulator
from tap_klaviyo.streams.messaging import holds_messages
from tests.conftest import (
    assert_missing_scope_is_named,
    catalog_for,
    parse_messages,
    run_tap,
    run_until_killed,
    tap_config,
)
from tests.tap_klaviyo.expected import expected_keys

FLOW_STREAMS = ("flows", "flow_actions", "flow_messages")
STREAMS = (*FLOW_STREAMS, "campaigns", "campaign_messages", "forms", "form_versions")
# The campaign tests here are about the 2026-07-15 shape (messages embedded in their campaigns, one
# read per channel and archived flag); 2026-10-15: tests/tap_klaviyo/streams/test_omni.py.
LEGACY = "2026-07-15"


def bookmark_values(state: dict, stream: str) -> set[str]:
    """Every bookmark value of a stream, of the stream and of each of its partitions."""
    entry = state["bookmarks"][stream]
    values = {entry.get("replication_key_value")} | {p.get("replication_key_value") for p in entry.get("partitions", [])}
    return values - {None}


def new_ids(result, stream: str, previous_state: dict, key: str) -> list[str]:
    """Ids a run emitted beyond the previous bookmarks (records at a bookmark are always read again)."""
    marks = bookmark_values(previous_state, stream)
    return [record["id"] for record in result.records.get(stream, []) if record[key] not in marks]


def paths(emulator: Emulator, since: int) -> collections.Counter:
    """Requests since index `since` of the request log, by endpoint (ids replaced by {id})."""
    counter: collections.Counter = collections.Counter()
    for request in emulator.requests[since:]:
        parts = request.path.rstrip("/").split("/")
        if len(parts) > 4:
            parts[3] = "{id}"
        counter["/".join(parts)] += 1
    return counter


def hide_from_action(account: Account, message_id: str) -> None:
    """Make a flow message's definition its own copy, so that an edit of it does not show in its action's
    `definition.data.message` (as Klaviyo might: it does not document that the two stay the same)."""
    row = account.flow_message_by_id[message_id]
    row.attrs["definition"] = copy.deepcopy(row.attrs["definition"])


def message_of_unchanged_action(account: Account, avoid: set[str]) -> tuple[str, str]:
    action = next(
        row for row in account.flow_action_by_id.values()
        if account.flow_messages[row.id] and row.id not in avoid and row.attrs["definition"]["type"] == "send-email"
    )  # fmt: skip
    return action.id, account.flow_messages[action.id][0].id


def test_the_next_run_brings_exactly_the_changed_records(emulator, account):
    config = tap_config(emulator, lookback_minutes=0, revision=LEGACY)
    first = run_tap(config, streams=STREAMS)
    flow = account.flow_rows[2].id
    delay = next(row.id for row in account.flow_action_by_id.values() if row.attrs["definition"]["type"] == "time-delay")
    action, message = message_of_unchanged_action(account, {delay})
    form = account.form_rows[1].id
    campaign = account.campaign_rows[4].id
    time.sleep(1.1)  # the first run's end is fixed to the second it started
    account.update_flow(flow, name="Renamed flow")
    account.update_flow_action(delay, value=9)
    account.update_flow_message(message, subject_line="A new subject")  # the action's own `updated` stays
    version = account.add_form_version(form)
    account.update_campaign(campaign, name="Renamed campaign")
    time.sleep(1.1)
    before = len(emulator.requests)

    second = run_tap(config, state=copy.deepcopy(first.state), streams=STREAMS)

    assert new_ids(second, "flows", first.state, "updated") == [flow]
    assert {r["id"]: r for r in second.records["flows"]}[flow]["name"] == "Renamed flow"
    assert new_ids(second, "flow_actions", first.state, "updated") == [delay]
    assert {r["id"]: r for r in second.records["flow_actions"]}[delay]["definition"]["data"]["value"] == 9
    # The edit shows in the action's definition.data.message: read without waiting for the sweep.
    assert second.ids("flow_messages") == [message]
    edited = second.records["flow_messages"][0]
    assert edited["definition"]["subject_line"] == "A new subject"
    assert (edited["flow_action_id"], edited["flow_id"]) == (action, account.flow_action_by_id[action].extra["flow"])
    assert new_ids(second, "form_versions", first.state, "updated_at") == [version]
    assert {r["id"]: r["form_id"] for r in second.records["form_versions"]}[version] == form
    assert new_ids(second, "campaigns", first.state, "updated_at") == [campaign]
    # campaign_messages comes with its campaign: the renamed campaign's, and those of the campaigns at a bookmark.
    at_bookmark = {r["id"] for r in first.records["campaigns"] if r["updated_at"] in bookmark_values(first.state, "campaigns")}
    emitted = {r["campaign_id"] for r in second.records["campaign_messages"]}
    assert emitted - at_bookmark == {campaign}
    # One fan-out request (the edited message's action), one for the changed form; flows, actions,
    # campaign messages and the other forms cost no request beyond their collections.
    assert paths(emulator, before) == {
        "/api/flows": 2, "/api/flow-actions/{id}/flow-messages": 1, "/api/campaigns": 6,
        "/api/forms": 2, "/api/forms/{id}/form-versions": 1,
    }  # fmt: skip


@pytest.mark.parametrize("sweep_due", [False, True])
def test_an_edit_its_parent_does_not_show_waits_for_the_sweep(emulator, account, sweep_due):
    streams = ("flow_messages", "form_versions", "campaign_messages")
    first = run_tap(tap_config(emulator, lookback_minutes=0, revision=LEGACY), streams=streams)
    _, message = message_of_unchanged_action(account, set())
    hide_from_action(account, message)
    form = account.form_rows[2]
    version = account.form_versions[form.id][0]
    at_bookmark = bookmark_values(first.state, "campaign_messages")
    campaign = next(row for row in account.campaign_rows if row.attrs["updated_at"] not in at_bookmark)
    campaign_message = account.campaign_messages[campaign.id][0]
    time.sleep(1.1)
    account.update_flow_message(message, subject_line="Edited where the action does not show it")
    account._bump(version, "updated_at", micro=True)  # a version edit that leaves its form's updated_at alone
    campaign_message.attrs["definition"]["label"] = "Relabelled"  # a message edit that leaves its campaign alone
    account._bump(campaign_message, "updated_at")
    time.sleep(1.1)
    before = len(emulator.requests)

    config = tap_config(emulator, lookback_minutes=0, sweep_hours=0 if sweep_due else 24, revision=LEGACY)
    second = run_tap(config, state=copy.deepcopy(first.state), streams=streams)
    assert paths(emulator, before)["/api/campaigns"] == 6
    assert (campaign_message.id in second.ids("campaign_messages")) is sweep_due

    fan_out = paths(emulator, before)
    if sweep_due:
        assert new_ids(second, "flow_messages", first.state, "updated") == [message]
        assert new_ids(second, "form_versions", first.state, "updated_at") == [version.id]
        senders = sum(holds_messages({"definition": row.attrs["definition"]}) for row in account.flow_action_by_id.values())
        assert fan_out["/api/flow-actions/{id}/flow-messages"] == senders
        assert fan_out["/api/forms/{id}/form-versions"] == len(account.form_rows)
        assert second.state["bookmarks"]["flow_messages"]["swept_at"] > first.state["bookmarks"]["flow_messages"]["swept_at"]
    else:
        assert second.records.get("flow_messages", []) == []
        assert new_ids(second, "form_versions", first.state, "updated_at") == []
        assert fan_out["/api/flow-actions/{id}/flow-messages"] == 0
        assert fan_out["/api/forms/{id}/form-versions"] == 0
        assert second.state["bookmarks"]["flow_messages"]["swept_at"] == first.state["bookmarks"]["flow_messages"]["swept_at"]
        # The next sweep brings it.
        third = run_tap(tap_config(emulator, lookback_minutes=0, sweep_hours=0), state=copy.deepcopy(second.state), streams=("flow_messages",))
        assert message in third.ids("flow_messages")


def test_request_cost_of_200_flows_and_1000_actions():
    """The requests of a first run, an unchanged run and an unchanged run with the sweep due, counted
    from the emulator's log, for an account with 200 flows and 1,000 flow actions."""
    account = Account.generate(seed=1, size="tiny", flows=200, flow_actions=1000)
    archived = sum(row.attrs["archived"] for row in account.flow_rows)
    senders = sum(holds_messages({"definition": row.attrs["definition"]}) for row in account.flow_action_by_id.values())
    flow_pages = math.ceil((200 - archived) / 50) + math.ceil(archived / 50)
    assert (archived, senders, flow_pages) == (22, 569, 5)
    with Emulator(account, rate_limits=False) as emulator:
        config = tap_config(emulator, respect_rate_limits=False)  # 571 requests would take 10 minutes at 60/min
        first = run_tap(config, streams=FLOW_STREAMS)
        assert paths(emulator, 0) == {"/api/flows": 5, "/api/flow-actions/{id}/flow-messages": 569}
        assert {name: len(first.records[name]) for name in FLOW_STREAMS} == {"flows": 200, "flow_actions": 1000, "flow_messages": len(account.flow_message_by_id)}
        assert len(account.flow_message_by_id) == 711

        before = len(emulator.requests)
        unchanged = run_tap(config, state=copy.deepcopy(first.state), streams=FLOW_STREAMS)
        assert paths(emulator, before) == {"/api/flows": 5}  # every flow and action; no fan-out
        assert len(unchanged.records.get("flow_messages", [])) == 0

        before = len(emulator.requests)
        run_tap({**config, "sweep_hours": 0}, state=copy.deepcopy(unchanged.state), streams=FLOW_STREAMS)
        assert paths(emulator, before) == {"/api/flows": 5, "/api/flow-actions/{id}/flow-messages": 569}

        # flows alone reads only what changed, two requests (one per archived flag) when nothing did.
        before = len(emulator.requests)
        run_tap(config, state=copy.deepcopy(first.state), streams=("flows",))
        assert paths(emulator, before) == {"/api/flows": 2}


@pytest.mark.parametrize("streams", [("campaign_messages",), ("campaigns", "campaign_messages")])
def test_campaign_messages_cost_no_request_of_their_own(emulator, account, streams):
    result = run_tap(tap_config(emulator, revision=LEGACY), streams=streams)
    assert paths(emulator, 0) == {"/api/campaigns": 6}  # one per channel and archived flag
    assert set(result.ids("campaign_messages")) == expected_keys(account, "campaign_messages")
    campaigns = {row.id: row.extra["channel"] for row in account.campaign_rows}
    for record in result.records["campaign_messages"]:
        assert record["channel"] == campaigns[record["campaign_id"]]
    if "campaigns" in streams:  # emitted after the campaigns, schema first
        types = [(m["type"], m.get("stream")) for m in result.messages if m["type"] in ("SCHEMA", "RECORD")]
        first_message = types.index(("SCHEMA", "campaign_messages"))
        assert all(stream == "campaign_messages" for _, stream in types[first_message:])
    # Its bookmarks are its campaigns' updated_at: the same as the campaigns stream's.
    marks = {
        name: {json.dumps(p["context"], sort_keys=True): p.get("replication_key_value") for p in entry["partitions"]}
        for name, entry in result.state["bookmarks"].items()
    }
    campaign_times = {row.keys["updated_at"] for row in account.campaign_rows}
    assert len(marks["campaign_messages"]) == 6 and all(marks["campaign_messages"].values())
    if "campaigns" in streams:
        assert marks["campaign_messages"] == marks["campaigns"]
    assert len(campaign_times) == len(account.campaign_rows)


@pytest.mark.parametrize(("stream", "scope"), [("flows", "flows:read"), ("flow_actions", "flows:read"), ("flow_messages", "flows:read"),
                                               ("form_versions", "forms:read"), ("campaign_messages", "campaigns:read")])  # fmt: skip
def test_a_key_without_the_scope_is_one_line_naming_it(emulator, tmp_path, stream, scope):
    assert_missing_scope_is_named(emulator, tmp_path, stream, scope)


def test_a_killed_run_resumes_with_nothing_lost(tmp_path):
    """SIGKILL at random points, resume from the last STATE printed: every record arrives. flow_actions
    and flow_messages (over 1,000 records each) write a STATE in the middle of their sync (every
    1,000 records), at bookmarks covering every record before it."""
    account = Account.generate(seed=5, size="tiny", flows=200, flow_actions=1500)
    streams = ("campaigns", "campaign_messages", *FLOW_STREAMS, "form_versions")
    expected = {stream: expected_keys(account, stream) for stream in streams}
    rng = random.Random(4)
    with Emulator(account, rate_limits=False, latency_ms=2) as emulator:
        (tmp_path / "config.json").write_text(json.dumps(tap_config(emulator, lookback_minutes=0, respect_rate_limits=False)))
        (tmp_path / "catalog.json").write_text(json.dumps(catalog_for(*streams)))
        base = [sys.executable, "-m", "tap_klaviyo", "--config", str(tmp_path / "config.json"),
                "--catalog", str(tmp_path / "catalog.json")]  # fmt: skip
        state: dict = {}
        seen: dict[str, set] = collections.defaultdict(set)
        total = sum(len(keys) for keys in expected.values())
        for run in range(6):
            argv = list(base)
            if state:
                (tmp_path / f"state{run}.json").write_text(json.dumps(state))
                argv += ["--state", str(tmp_path / f"state{run}.json")]
            output, completed = run_until_killed(argv, None if run == 5 else rng.randint(1, total))
            result = parse_messages(output)
            last_state = max((i for i, m in enumerate(result.messages) if m["type"] == "STATE"), default=-1)
            for message in result.messages[: last_state + 1] if not completed else result.messages:
                if message["type"] == "RECORD":
                    seen[message["stream"]].add(message["record"]["id"])
            state = result.state or state
            if completed:
                break
    assert run > 1, "the test should have killed at least two runs"
    for stream in streams:
        assert seen[stream] == expected[stream], stream
