"""Events beyond the plain listing: attributions, events stored late, renamed and added metrics, metric aggregates."""

from __future__ import annotations

import datetime as dt
import time

import pytest
import requests

from klaviyo_emulator import Account, Emulator
from tests.klaviyo_emulator.conftest import Client, headers

UTC = dt.timezone.utc


def aggregate_body(metric_id: str, start: str, end: str, **attributes) -> dict:
    attrs = {"metric_id": metric_id, "measurements": ["count"], "interval": "day",
             "filter": [f"greater-or-equal(datetime,{start})", f"less-than(datetime,{end})"], **attributes}  # fmt: skip
    return {"data": {"type": "metric-aggregate", "attributes": attrs}}


def post(base_url: str, body, **kwargs) -> requests.Response:
    h = {**headers(), "Content-Type": "application/vnd.api+json", **kwargs.pop("extra_headers", {})}
    return requests.post(f"{base_url}/api/metric-aggregates", json=body, headers=h, timeout=10, **kwargs)


def placed_order(account: Account) -> str:
    return account.metric_ids("Placed Order", "shopify")[0]


def test_include_attributions_links_each_conversion_to_its_attribution_resource(client, account):
    metric = placed_order(account)
    events, docs = client.all_pages("/api/events", {"filter": f'equals(metric_id,"{metric}")', "include": "attributions", "page[size]": "50"})
    truth = account.attributions(metric)
    assert truth and len(truth) < len(events), "some, not all, conversions are attributed"
    included = {item["id"]: item for doc in docs for item in doc["included"]}
    for event in events:
        linkage = event["relationships"]["attributions"]["data"]
        expected = truth.get(event["id"])
        assert [ref["id"] for ref in linkage] == ([expected["id"]] if expected else [])
        if expected:
            rels = included[expected["id"]]["relationships"]
            assert included[expected["id"]]["type"] == "attribution"
            assert rels["event"]["data"] == {"type": "event", "id": event["id"]}
            for name, key in (("campaign", "campaign_id"), ("campaign-message", "campaign_message_id"), ("flow", "flow_id"),
                              ("flow-message", "flow_message_id"), ("attributed-event", "attributed_event_id")):  # fmt: skip
                assert (rels[name].get("data") or {}).get("id") == expected[key]
    kinds = {bool(a["campaign_id"]) for a in truth.values()}
    assert kinds == {True, False}, "attributions to campaigns and to flows"


def test_events_of_other_metrics_have_empty_attributions_and_no_include_leaves_them_out(client, account):
    received = account.metric_ids("Received Email")[0]
    doc = client.get("/api/events", {"filter": f'equals(metric_id,"{received}")', "include": "attributions"}).json()
    assert doc["included"] == [] and all(e["relationships"]["attributions"]["data"] == [] for e in doc["data"])
    plain = client.get("/api/events", {"filter": f'equals(metric_id,"{received}")'}).json()
    assert "included" not in plain and "data" not in plain["data"][0]["relationships"]["attributions"]


def test_an_attribution_lands_after_its_event(fresh):
    emu, client = fresh
    account = emu.account
    profile = next(account.profiles())["id"]
    message = account.campaign_messages[next(r.id for r in account.campaign_rows if r.extra["channel"] == "email")][0].id
    now = account.now()
    event = account.add_event(placed_order(account), profile, now - dt.timedelta(minutes=30),
                              attribution={"campaign_message": message}, attributed_at=now + dt.timedelta(hours=2))  # fmt: skip
    params = {"filter": f'equals(metric_id,"{placed_order(account)}"),greater-or-equal(datetime,{(now - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")})',
              "include": "attributions"}  # fmt: skip
    first = client.get("/api/events", params).json()
    assert [e["relationships"]["attributions"]["data"] for e in first["data"] if e["id"] == event] == [[]]
    account.set_clock(now + dt.timedelta(hours=3))
    second = client.get("/api/events", params).json()
    (linkage,) = [e["relationships"]["attributions"]["data"] for e in second["data"] if e["id"] == event]
    assert len(linkage) == 1 and account.attributions()[event]["campaign_message_id"] == message


def test_an_event_stored_late_is_served_only_once_visible(fresh):
    emu, client = fresh
    account = emu.account
    metric, profile = placed_order(account), next(account.profiles())["id"]
    now = account.now()
    event = account.add_event(metric, profile, now - dt.timedelta(days=5), visible_at=now + dt.timedelta(hours=1))
    ids = lambda: {e["id"] for e in client.all_pages("/api/events", {"filter": f'equals(metric_id,"{metric}")', "page[size]": "1000"})[0]}  # noqa: E731
    assert event not in ids() and event not in {e["id"] for e in account.events(metric)}
    account.set_clock(now + dt.timedelta(hours=2))
    assert event in ids() and event in {e["id"] for e in account.events(metric)}


def test_a_renamed_metric_keeps_its_id_and_events(fresh):
    emu, client = fresh
    account = emu.account
    sent = account.metric_ids("Sent SMS")[0]
    before = [e["id"] for e in account.events(sent)]
    account.rename_metric(sent, "Sent Text Message")
    metrics = {m["id"]: m for m in client.all_pages("/api/metrics")[0]}
    assert metrics[sent]["attributes"]["name"] == "Sent Text Message"
    assert account.metric_ids("Sent SMS") == [] and account.metric_ids("Sent Text Message") == [sent]
    assert [e["id"] for e in account.events(sent)] == before


def test_custom_metrics_of_several_integrations(client, account):
    metrics = client.all_pages("/api/metrics")[0]
    keys = {m["attributes"]["integration"]["key"] for m in metrics}
    assert {"klaviyo", "api", "shopify", "woocommerce", "segment"} <= keys
    woo = account.metric_ids("Placed Order", "woocommerce")
    assert woo and account.metric_ids("Placed Order", "shopify") != woo and list(account.events(woo[0]))


def test_add_metric(fresh):
    emu, client = fresh
    metric = emu.account.add_metric("Gift Card Redeemed", "segment")
    found = [m for m in client.all_pages("/api/metrics")[0] if m["id"] == metric]
    assert found[0]["attributes"]["name"] == "Gift Card Redeemed" and found[0]["attributes"]["integration"]["key"] == "segment"


# ---- POST /api/metric-aggregates


def test_metric_aggregates_count_the_visible_events_of_each_day(emulator, account):
    metric = account.metric_ids("Received Email")[0]
    response = post(emulator.base_url, aggregate_body(metric, "2025-03-01T00:00:00Z", "2025-03-15T00:00:00Z", measurements=["count", "unique"]))
    assert response.status_code == 200, response.text
    attrs = response.json()["data"]["attributes"]
    assert len(attrs["dates"]) == 14 and attrs["dates"][0] == "2025-03-01T00:00:00+00:00"
    per_day: dict[str, int] = {}
    for event in account.events(metric):
        day = event["attributes"]["datetime"][:10]
        if "2025-03-01" <= day < "2025-03-15":
            per_day[day] = per_day.get(day, 0) + 1
    (row,) = attrs["data"]
    assert row["dimensions"] == []
    assert row["measurements"]["count"] == [float(per_day.get(d[:10], 0)) for d in attrs["dates"]]
    assert all(u <= c for u, c in zip(row["measurements"]["unique"], row["measurements"]["count"]))


def test_metric_aggregates_count_a_late_event_once_visible(fresh):
    emu, _ = fresh
    account = emu.account
    metric, profile = placed_order(account), next(account.profiles())["id"]
    now = account.now().replace(microsecond=0)
    day = (now - dt.timedelta(days=5)).replace(hour=12, minute=0, second=0)
    start, end = (day.replace(hour=0)).strftime("%Y-%m-%dT%H:%M:%SZ"), (day.replace(hour=0) + dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    count = lambda: post(emu.base_url, aggregate_body(metric, start, end)).json()["data"]["attributes"]["data"][0]["measurements"]["count"]  # noqa: E731
    assert count() == [0.0]
    account.add_event(metric, profile, day, visible_at=now + dt.timedelta(minutes=1))
    assert count() == [0.0]
    account.set_clock(now + dt.timedelta(minutes=2))
    assert count() == [1.0]


@pytest.mark.parametrize(
    "change,pointer",
    [
        ({"type": "metric"}, "/data/type"),
        ({"attributes": {"measurements": ["count"], "filter": []}}, "/data/attributes/metric_id"),
        ({"measurements": ["total"]}, "/data/attributes/measurements"),
        ({"measurements": []}, "/data/attributes/measurements"),
        ({"interval": "minute"}, "/data/attributes/interval"),
        ({"timezone": "Mars/Olympus"}, "/data/attributes/timezone"),
        ({"page_size": 0}, "/data/attributes/page_size"),
        ({"colour": "red"}, "/data/attributes/colour"),
        ({"filter": ["greater-or-equal(datetime,2025-01-01T00:00:00Z)"]}, "/data/attributes/filter"),
        ({"filter": ["greater-or-equal(datetime,2024-01-01T00:00:00Z)", "less-than(datetime,2025-06-01T00:00:00Z)"]}, "/data/attributes/filter"),
        ({"filter": ["greater-or-equal(datetime,2025-01-01T00:00:00Z)", "less-than(datetime,2025-01-02T00:00:00Z)", "equals(profile_id,'x')"]}, "/data/attributes/filter"),
        ({"filter": "greater-or-equal(datetime,2025-01-01T00:00:00Z)"}, "/data/attributes/filter"),
    ],
)
def test_metric_aggregates_validate_the_request_strictly(emulator, account, change, pointer):
    body = aggregate_body(placed_order(account), "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z")
    if "type" in change:
        body["data"]["type"] = change["type"]
    elif "attributes" in change:
        body["data"]["attributes"] = change["attributes"]
    else:
        body["data"]["attributes"].update(change)
    response = post(emulator.base_url, body)
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["source"] == {"pointer": pointer}


def test_metric_aggregates_errors_beyond_the_body(emulator, account):
    body = aggregate_body("NoSuch", "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z")
    assert post(emulator.base_url, body).status_code == 404
    assert requests.get(f"{emulator.base_url}/api/metric-aggregates", headers=headers(), timeout=10).status_code == 405
    good = aggregate_body(placed_order(account), "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z")
    assert post(emulator.base_url, good, extra_headers={"Authorization": "Klaviyo-API-Key nope"}).status_code == 401
    assert requests.post(f"{emulator.base_url}/api/metric-aggregates", data=b"{", headers={**headers(), "Content-Type": "application/json"}, timeout=10).status_code == 400
    assert requests.post(f"{emulator.base_url}/api/metric-aggregates", data=b"x", headers={**headers(), "Content-Type": "text/plain"}, timeout=10).status_code == 415
    assert post(emulator.base_url, good, params={"page[size]": "2"}).status_code == 400


def test_metric_aggregates_have_their_own_rate_tier():
    with Emulator(Account.generate(seed=7, size="tiny"), rate_limits=True) as emu:
        body = aggregate_body(placed_order(emu.account), "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z")
        while time.time() % 1 > 0.5:  # four requests inside one second
            time.sleep(0.05)
        statuses = [post(emu.base_url, body).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        assert Client(emu.base_url).get("/api/metrics").status_code == 200, "a separate bucket from GET /api/metrics"
        assert [r.body for r in emu.requests if r.method == "POST"][0].startswith(b'{"data"')


def test_metric_aggregates_in_a_timezone_and_by_hour(emulator, account):
    metric = account.metric_ids("Received Email")[0]
    body = aggregate_body(metric, "2025-03-01T05:00:00Z", "2025-03-03T05:00:00Z", timezone="America/New_York")
    dates = post(emulator.base_url, body).json()["data"]["attributes"]["dates"]
    assert dates == ["2025-03-01T00:00:00-05:00", "2025-03-02T00:00:00-05:00"]
    hourly = post(emulator.base_url, aggregate_body(metric, "2025-03-01T00:00:00Z", "2025-03-01T06:00:00Z", interval="hour")).json()
    assert len(hourly["data"]["attributes"]["dates"]) == 6
