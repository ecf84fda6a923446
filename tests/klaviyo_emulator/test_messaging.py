"""Messaging area: flows, flow actions and flow messages (and tags on campaigns), served as strictly as the spec says."""

from __future__ import annotations

import time
from datetime import datetime, timezone

import pytest

from klaviyo_emulator import Account

from .checks import attribute, check_filters, check_paging, check_sorts, ids

UTC = timezone.utc


def _all_flows(client) -> list[dict]:
    unarchived, _ = client.all_pages("/api/flows", {"filter": "equals(archived,false)"})
    archived, _ = client.all_pages("/api/flows", {"filter": "equals(archived,true)"})
    return unarchived + archived


def _biggest_flow(account):
    return max(account.flow_rows, key=lambda r: len(account.flow_actions[r.id]))


def _action_value(flows_by_id):
    def value(record: dict, field: str):
        if field == "action_type":
            return record["attributes"]["definition"]["type"]
        if field == "status":
            data = record["attributes"]["definition"]["data"]
            return data.get("status") if isinstance(data.get("status"), str) else flows_by_id[record["relationships"]["flow"]["data"]["id"]]
        return attribute(record, field)

    return value


def _message_value(record: dict, field: str):
    return record["attributes"]["definition"]["name"] if field == "name" else attribute(record, field)


# ------------------------------------------------------------------ data
def test_flows_cover_statuses_archived_and_action_kinds(account):
    statuses = {r.attrs["status"] for r in account.flow_rows}
    assert statuses == {"draft", "manual", "live"}
    assert {r.attrs["archived"] for r in account.flow_rows} == {True, False}
    kinds = {a.keys["action_type"] for acts in account.flow_actions.values() for a in acts}
    assert kinds == {"send-email", "send-sms", "time-delay", "conditional-split", "ab-test"}
    assert max(len(acts) for acts in account.flow_actions.values()) >= 4
    channels = {m.attrs["channel"] for msgs in account.flow_messages.values() for m in msgs}
    assert channels == {"email", "sms"}
    silent = [a for acts in account.flow_actions.values() for a in acts if not account.flow_messages[a.id]]
    assert {a.keys["action_type"] for a in silent} == {"time-delay", "conditional-split"}
    assert max(len(m) for m in account.flow_messages.values()) == 2  # the A/B test's main message and variation


def test_sizes_are_controllable_and_deterministic():
    started = time.perf_counter()
    big = Account.generate(seed=3, size="tiny", profiles=50, events=100, flows=200, flow_actions=1000)
    assert time.perf_counter() - started < 3
    assert len(big.flow_rows) == 200 and sum(len(a) for a in big.flow_actions.values()) == 1000
    assert len({r.id for r in big.flow_rows}) == 200 and len(big.flow_action_by_id) == 1000
    again = Account.generate(seed=3, size="tiny", profiles=50, events=100, flows=200, flow_actions=1000)
    assert [a.attrs for a in again.flow_action_by_id.values()] == [a.attrs for a in big.flow_action_by_id.values()]
    tiny = Account.generate(seed=1)
    assert [r.attrs["name"] for r in tiny.flow_rows][:3] == ["Welcome Series", "Abandoned Cart", "Browse Abandonment"]
    with pytest.raises(TypeError):
        Account.generate(seed=1, flowz=3)


# ------------------------------------------------------------------ /api/flows
def test_archived_flows_are_hidden_unless_the_filter_asks(client, account):
    visible = ids(client, "/api/flows", {})
    assert sorted(visible) == sorted(r.id for r in account.flow_rows if not r.attrs["archived"])
    archived = ids(client, "/api/flows", {"filter": "equals(archived,true)"})
    assert archived and sorted(archived) == sorted(r.id for r in account.flow_rows if r.attrs["archived"])


def test_flows_paging_filters_and_sorts(client, account):
    everything = _all_flows(client)
    visible = [r["id"] for r in everything if not r["attributes"]["archived"]]
    check_paging(client, "/api/flows", "/api/flows", visible, size=2)
    check_filters(client, "/api/flows", "/api/flows", everything, visible=lambda r, field: field == "archived" or not r["attributes"]["archived"])
    check_sorts(client, "/api/flows", "/api/flows", visible)


def test_flows_include_flow_actions_and_tags(client, account):
    doc = client.get("/api/flows", {"include": "flow-actions,tags", "fields[flow-action]": "definition"}).json()
    included = {(r["type"], r["id"]): r for r in doc["included"]}
    assert len(included) == len(doc["included"])  # no duplicates
    tagged = 0
    for flow in doc["data"]:
        actions = flow["relationships"]["flow-actions"]["data"]
        assert [a["id"] for a in actions] == [a.id for a in account.flow_actions[flow["id"]]]
        for a in actions:
            assert set(included[("flow-action", a["id"])]["attributes"]) == {"definition"}
        for t in flow["relationships"]["tags"]["data"]:
            assert included[("tag", t["id"])]["attributes"]["name"]
            tagged += 1
    assert tagged
    plain = client.get("/api/flows").json()
    assert "included" not in plain and all("data" not in f["relationships"]["flow-actions"] for f in plain["data"])


# ----------------------------------------------------- /api/flows/{id}/flow-actions
def test_flow_actions_paging_filters_and_sorts(client, account):
    flow = _biggest_flow(account)
    path = f"/api/flows/{flow.id}/flow-actions"
    everything, _ = client.all_pages(path, {})
    assert [r["id"] for r in everything] == [a.id for a in account.flow_actions[flow.id]]  # default order: id, which is path order
    check_paging(client, path, "/api/flows/{id}/flow-actions", [a.id for a in account.flow_actions[flow.id]], size=2)
    value = _action_value({r.id: r.attrs["status"] for r in account.flow_rows})
    check_filters(client, path, "/api/flows/{id}/flow-actions", everything, value_of=value)
    check_sorts(client, path, "/api/flows/{id}/flow-actions", [r["id"] for r in everything], value_of=value, size=2)
    assert client.get(path, {"include": "flow-messages"}).json()["errors"][0]["source"] == {"parameter": "include"}
    assert client.get("/api/flows/NOPE00/flow-actions").status_code == 404


def test_flow_action_definitions(client, account):
    actions = [a for acts in account.flow_actions.values() for a in acts]
    by_kind = {a.keys["action_type"]: a for a in actions}
    delay = by_kind["time-delay"].attrs["definition"]
    assert delay["data"]["unit"] in ("days", "hours") and delay["data"]["value"] >= 1
    split = by_kind["conditional-split"].attrs["definition"]
    assert set(split["links"]) == {"next_if_true", "next_if_false"} and split["data"]["profile_filter"]["condition_groups"]
    email = by_kind["send-email"].attrs["definition"]["data"]
    assert email["status"] in ("draft", "live", "manual") and email["message"]["subject_line"]
    sms = by_kind["send-sms"].attrs["definition"]["data"]["message"]
    assert "STOP" in sms["body"]
    flow = _biggest_flow(account)
    chain = account.flow_actions[flow.id]
    for a, b in zip(chain, chain[1:]):
        links = a.attrs["definition"]["links"]
        assert b.id in links.values()


# ------------------------------------------------ /api/flow-actions/{id}/flow-messages
def test_flow_messages_paging_filters_and_sorts(client, account):
    ab = next(a for acts in account.flow_actions.values() for a in acts if a.keys["action_type"] == "ab-test")
    path = f"/api/flow-actions/{ab.id}/flow-messages"
    expected = [m.id for m in account.flow_messages[ab.id]]
    check_paging(client, path, "/api/flow-actions/{id}/flow-messages", expected, size=1)
    everything, _ = client.all_pages(path, {})
    check_filters(client, path, "/api/flow-actions/{id}/flow-messages", everything, value_of=_message_value)
    check_sorts(client, path, "/api/flow-actions/{id}/flow-messages", expected, value_of=_message_value, size=1)
    doc = client.get(path).json()
    assert all(m["relationships"]["flow-action"]["data"] == {"type": "flow-action", "id": ab.id} for m in doc["data"])
    assert {m["attributes"]["channel"] for m in doc["data"]} == {"email"}
    delay = next(a for acts in account.flow_actions.values() for a in acts if a.keys["action_type"] == "time-delay")
    assert client.get(f"/api/flow-actions/{delay.id}/flow-messages").json()["data"] == []
    assert client.get("/api/flow-actions/0/flow-messages").status_code == 404


# ------------------------------------------------------------------ tiers
@pytest.mark.parametrize("path", ["/api/flows", "/api/flows/{flow}/flow-actions", "/api/flow-actions/{action}/flow-messages"])
def test_flow_endpoints_are_on_the_small_tier(account, path):
    from klaviyo_emulator import Emulator

    flow = _biggest_flow(account)
    path = path.format(flow=flow.id, action=account.flow_actions[flow.id][0].id)
    with Emulator(account, rate_limits=True) as emu:
        from .conftest import Client

        client = Client(emu.base_url)
        statuses = [client.get(path).status_code for _ in range(4)]
        assert statuses[:3] == [200, 200, 200] and statuses[3] == 429  # 3/s burst
        assert client.get(path).headers.get("Retry-After")


# ------------------------------------------------------------------ mutations
def test_flow_mutations_show_on_the_next_read(fresh):
    emu, client = fresh
    account = emu.account
    account.set_clock(datetime(2026, 11, 20, 8, 0, tzinfo=UTC))
    cutoff = "2026-11-01T00:00:00Z"
    flow = _biggest_flow(account)
    assert ids(client, "/api/flows", {"filter": f"greater-than(updated,{cutoff})"}) == []
    account.update_flow(flow.id, name="Renamed flow", status="live")
    (changed,) = client.get("/api/flows", {"filter": f"greater-than(updated,{cutoff})"}).json()["data"]
    assert changed["id"] == flow.id and changed["attributes"]["name"] == "Renamed flow"
    assert changed["attributes"]["updated"] == "2026-11-20T08:00:00+00:00"
    account.update_flow(flow.id, archived=True)
    assert flow.id not in ids(client, "/api/flows", {})
    assert flow.id in ids(client, "/api/flows", {"filter": "equals(archived,true)"})

    delay = next(a for a in account.flow_actions[flow.id] if a.keys["action_type"] == "time-delay")
    account.update_flow_action(delay.id, value=9, unit="hours")
    path = f"/api/flows/{flow.id}/flow-actions"
    (seen,) = client.get(path, {"filter": f"greater-than(updated,{cutoff})"}).json()["data"]
    assert seen["id"] == delay.id and seen["attributes"]["definition"]["data"]["value"] == 9
    send = next(a for a in account.flow_actions[flow.id] if a.keys["action_type"] in ("send-email", "send-sms"))
    account.update_flow_action(send.id, status="disabled")
    assert ids(client, path, {"filter": "equals(status,'disabled')"}) == [send.id]

    (message,) = account.flow_messages[send.id]
    field = "subject_line" if message.attrs["channel"] == "email" else "body"
    account.update_flow_message(message.id, **{field: "Changed between syncs"}, name="Changed message")
    (msg,) = client.get(f"/api/flow-actions/{send.id}/flow-messages", {"filter": f"greater-than(updated,{cutoff})"}).json()["data"]
    assert msg["attributes"]["definition"][field] == "Changed between syncs"
    assert ids(client, f"/api/flow-actions/{send.id}/flow-messages", {"filter": "equals(name,'Changed message')"}) == [message.id]
    action_doc = client.get(path, {"filter": f'any(id,["{send.id}"])'}).json()["data"][0]
    assert action_doc["attributes"]["definition"]["data"]["message"][field] == "Changed between syncs"
    with pytest.raises(KeyError):
        account.update_flow("nope00", name="x")
    with pytest.raises(KeyError):
        account.update_flow_action(delay.id, status="live")  # a delay has no status
    with pytest.raises(KeyError):
        account.update_flow_message(message.id, colour="red")


# ------------------------------------------------------------------ campaigns + tags
def test_campaigns_include_tags(client, account):
    doc = client.get("/api/campaigns", {"filter": "equals(messages.channel,'email')", "include": "tags,campaign-messages", "fields[tag]": "name"}).json()
    tags = {r["id"]: r for r in doc["included"] if r["type"] == "tag"}
    linked = [t["id"] for c in doc["data"] for t in c["relationships"]["tags"]["data"]]
    assert linked and set(linked) == set(tags)
    for c in doc["data"]:
        assert [t["id"] for t in c["relationships"]["tags"]["data"]] == account.tags_of.get(("campaign", c["id"]), [])
    assert all(set(t["attributes"]) == {"name"} for t in tags.values())


def test_a_200_flow_1000_action_account_pages_with_its_actions_included():
    from klaviyo_emulator import Emulator

    from .conftest import Client

    account = Account.generate(seed=5, size="tiny", profiles=30, events=60, flows=200, flow_actions=1000)
    with Emulator(account) as emu:
        client = Client(emu.base_url)
        flows, docs = client.all_pages("/api/flows", {"include": "flow-actions", "filter": "equals(archived,false)"})
        assert len(docs) >= 4 and all(len(d["data"]) == 50 for d in docs[:-1])
        included = [r["id"] for d in docs for r in d["included"]]
        live_flows = [r for r in account.flow_rows if not r.attrs["archived"]]
        assert sorted(f["id"] for f in flows) == sorted(r.id for r in live_flows)
        assert sorted(included) == sorted(a.id for r in live_flows for a in account.flow_actions[r.id])
        assert len(set(included)) == len(included) > 800


# ---- revision 2026-10-15 (omni campaigns): shapes checked against schemas built from the facts of
# shared/docs/klaviyo-2026-10-15.md §2 (SDK 25.0.0 models), not from spec or SDK text.
OMNI = {"revision": "2026-10-15"}
_S, _SN, _BN, _IN = {"type": "string"}, {"type": ["string", "null"]}, {"type": ["boolean", "null"]}, {"type": ["integer", "null"]}


def _obj(props: dict, required=(), nullable=False) -> dict:
    return {"type": ["object", "null"] if nullable else "object", "properties": props, "required": list(required), "additionalProperties": False}


def _resource(rtype: str, attributes: dict) -> dict:
    return _obj({"type": {"const": rtype}, "id": _S, "attributes": attributes, "relationships": {"type": "object"},
                 "links": _obj({"self": _S}, ("self",))}, ("type", "id", "attributes", "links"))  # fmt: skip


OMNI_SCHEMAS = {
    "campaign": _resource("campaign", _obj({"created_at": _SN, "updated_at": _SN, "definition": _obj({
        "name": _SN, "builder": _SN, "archived": _BN, "color": _SN, "description": _SN,
        "send_settings": _obj({"send_timezone": _SN, "send_strategy": _SN, "send_passed_rltz_immediately": _BN, "exit_condition_enabled": _BN,
                               "exit_condition_conversion_metric_id": _SN}, nullable=True)})}, ("definition",))),
    "campaign-message": _resource("campaign-message", _obj({"created": _S, "updated": _S, "definition": _obj({
        "name": _SN, "status": {"enum": ["cancelled", "draft", "scheduled", "sending", "sent", None]},
        "tracking_options": _obj({"is_add_utm": _BN, "is_tracking_clicks": _BN, "is_tracking_opens": _BN}, nullable=True),
        "send_options": _obj({"send_time": _SN, "send_times": {"type": ["object", "null"]}, "send_strategy": _SN, "recipient_percentage": _IN,
                              "throttling_type": {"enum": ["none", "throttle-for-campaigns", "throttle-for-campaigns-and-flows", "throttle-for-flows", None]},
                              "throttle_unit": {"enum": ["hour", "minute", None]}, "is_ignoring_unsubscribes": _BN}, nullable=True),
        "ab_test": _obj({"winner_metric": {"enum": ["clicks_unique", "opens_unique", "placed_orders_unique", None]}, "winner_percentage": _IN,
                         "winner_wait_hours": _IN})})}, ("created", "updated", "definition"))),
    "campaign-audience": _resource("campaign-audience", _obj({"created": _S, "updated": _S, "definition": _obj({
        "name": _SN, "included": {"type": ["array", "null"], "items": _S}, "excluded": {"type": ["array", "null"], "items": _S}, "priority": _IN})},
        ("created", "updated", "definition"))),
    "campaign-variation": _resource("campaign-variation", _obj({"created": _S, "updated": _S, "definition": _obj({
        "name": _SN, "details": {"type": ["object", "null"], "properties": {"channel": {"enum": ["email", "sms", "push", "whatsapp"]}},
                                 "propertyNames": {"enum": list(__import__("klaviyo_emulator.areas.messaging", fromlist=["x"]).VARIATION_DETAILS)},
                                 "required": ["channel"]}})}, ("created", "updated", "definition"))),
}  # fmt: skip


def _valid(resource: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(resource, OMNI_SCHEMAS[resource["type"]])


def test_omni_responses_match_the_2026_10_15_models(client, account):
    doc = client.get("/api/campaigns", {"include": "campaign-messages,campaign-audiences,tags"}, headers=OMNI).json()
    for resource in doc["data"] + [r for r in doc["included"] if r["type"] != "tag"]:
        _valid(resource)
    messages = client.get("/api/campaign-messages", {"page[size]": "100"}, headers=OMNI).json()["data"]
    assert len(messages) == sum(len(m) for m in account.campaign_messages.values())
    for message in messages:
        _valid(message)
        for variation in client.get(f"/api/campaign-messages/{message['id']}/campaign-variations", headers=OMNI).json()["data"]:
            _valid(variation)
    cid = account.campaign_rows[0].id
    for audience in client.get(f"/api/campaigns/{cid}/campaign-audiences", headers=OMNI).json()["data"]:
        _valid(audience)


def test_omni_archived_campaigns_follow_the_account_switch(client, account):
    archived = {r.id for r in account.campaign_rows if r.attrs["archived"]}
    assert archived
    shown = {c["id"] for c in client.get("/api/campaigns", headers=OMNI).json()["data"]}
    assert not shown & archived  # hidden by default (omni_hides_archived_campaigns)
    account.omni_hides_archived_campaigns = False
    try:
        shown = {c["id"] for c in client.get("/api/campaigns", headers=OMNI).json()["data"]}
        assert archived <= shown
    finally:
        account.omni_hides_archived_campaigns = True
    only = {c["id"] for c in client.get("/api/campaigns", {"filter": "equals(archived,true)"}, headers=OMNI).json()["data"]}
    assert only == archived


def test_omni_message_filters_and_revision_gating(client, account):
    cid = account.campaign_rows[0].id
    one = client.get("/api/campaign-messages", {"filter": f"equals(campaign_id,'{cid}')"}, headers=OMNI).json()["data"]
    assert [m["id"] for m in one] == [m.id for m in account.campaign_messages[cid]]
    assert client.get("/api/campaign-messages", {"filter": "equals(status,'bogus')"}, headers=OMNI).status_code == 400
    assert client.get("/api/campaign-messages", {"page[size]": "101"}, headers=OMNI).status_code == 400
    assert client.get("/api/campaign-messages", headers={"revision": "2026-07-15"}).status_code == 404
    assert client.get("/api/campaigns", {"sort": "scheduled_at"}, headers=OMNI).status_code == 400
