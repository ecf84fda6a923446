"""Reporting API endpoints: contract against the spec, strict validation, statistics from the account's
raw facts, and the three rate limits on a virtual clock.

The statistics tests count the account's raw facts (Account.message_events, attributed_events,
form_sessions, members) with their own arithmetic, never through the endpoints' definitions table.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import requests

from klaviyo_emulator import Account, Emulator
from klaviyo_emulator.areas import reports

from .conftest import API_KEY, REVISION
from .test_contract import JSONAPI, SPEC, _nullable

jsonschema = pytest.importorskip("jsonschema")
SUMMARY = Path(SPEC).parent / "endpoints-summary.json"
POST_HEADERS = {"Authorization": f"Klaviyo-API-Key {API_KEY}", "revision": REVISION, "Content-Type": JSONAPI, "Accept": JSONAPI}
YEAR_2025 = {"start": "2025-01-01T00:00:00", "end": "2026-01-01T00:00:00"}
NY = timezone(timedelta(hours=-5))  # America/New_York in winter: the account's company timezone


class VirtualClock:
    """Epoch seconds that move only when a test says so."""

    def __init__(self, start: float):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def spec() -> dict:
    if not SPEC.exists():
        pytest.skip(f"official OpenAPI spec not found at {SPEC} (../shared/klaviyo-openapi/ is provided in CI)")
    return json.loads(SPEC.read_text())


@pytest.fixture(scope="module")
def acc() -> Account:
    return Account.generate(seed=3, size="tiny")


@pytest.fixture(scope="module")
def emu(acc):
    with Emulator(acc) as emulator:
        yield emulator


def post(emulator: Emulator, path: str, body, params: dict | None = None) -> requests.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return requests.post(emulator.base_url + path, data=data, headers=POST_HEADERS, params=params, timeout=10)


def body(rtype: str, **attributes) -> dict:
    return {"data": {"type": rtype, "attributes": attributes}}


def placed_order(account: Account) -> str:
    return account.metric_ids("Placed Order", "shopify")[0]


def valid_body(account: Account, path: str) -> dict:
    """A minimal valid request for each endpoint."""
    rtype = path.removeprefix("/api/").removesuffix("s")
    kind = rtype.split("-")[0]
    attrs: dict = {"timeframe": dict(YEAR_2025)}
    if kind in ("campaign", "flow"):
        attrs["statistics"] = ["recipients", "open_rate", "conversion_value"]
        attrs["conversion_metric_id"] = placed_order(account)
    elif kind == "form":
        attrs["statistics"] = ["viewed_form", "submits", "submit_rate"]
    else:
        attrs["statistics"] = ["members_added", "total_members"]
    if rtype.endswith("series-report"):
        attrs["interval"] = "weekly"
    return body(rtype, **attrs)


def schema_validator(spec: dict, schema: dict):
    document = {**_nullable(copy.deepcopy(schema)), "components": _nullable(spec["components"])}
    return jsonschema.Draft7Validator(document)


def assert_error(response: requests.Response, status: int, *words: str, pointer: str | None = None) -> dict:
    assert response.status_code == status, response.text
    (error,) = response.json()["errors"]
    assert set(error) >= {"id", "status", "code", "title", "detail"} and error["status"] == status
    for word in words:
        assert word in error["detail"], error["detail"]
    if pointer is not None:
        assert error["source"] == {"pointer": pointer}
    return error


# ---------------------------------------------------------------- the spec
def test_enums_and_requirements_are_the_specs(spec):
    schemas = spec["components"]["schemas"]
    for path, (operation, report) in reports.REPORTS.items():
        op = spec["paths"][path]["post"]
        assert op["operationId"] == operation
        name = op["requestBody"]["content"][JSONAPI]["schema"]["$ref"].split("/")[-1]
        resource = schemas[name + "ResourceObject"]
        attrs = resource["properties"]["attributes"]
        assert schemas[resource["properties"]["type"]["$ref"].split("/")[-1]]["enum"] == [report.type]
        assert tuple(attrs["properties"]["statistics"]["items"]["enum"]) == report.statistics
        assert tuple(attrs["required"]) == report.required
        assert set(attrs["properties"]) == report.attributes
        if report.group_by is not None:
            assert tuple(attrs["properties"]["group_by"]["items"]["enum"]) == report.group_by
        if report.series:
            assert tuple(attrs["properties"]["interval"]["enum"]) == reports.INTERVALS
    assert tuple(schemas["Timeframe"]["properties"]["key"]["enum"]) == reports.TIMEFRAME_KEYS


def test_rate_limits_and_fields_are_the_summarys(spec):
    if not SUMMARY.exists():
        pytest.skip(f"{SUMMARY} not found")
    summary = next(s for s in json.loads(SUMMARY.read_text())["specs"] if s["revision"] == "2026-07-15")["endpoints"]
    for path, endpoint in reports.POST_ENDPOINTS.items():
        entry = summary[path]
        limits = entry["rate_limit"]
        assert endpoint.rate == (int(limits["burst"][:-2]), int(limits["steady"][:-2]), int(limits["daily"][:-2]))
        assert endpoint.fields == tuple(entry["sparse_fieldsets"][f"fields[{endpoint.resource_type}]"])


@pytest.mark.parametrize("path", list(reports.REPORTS))
def test_response_validates_against_its_dto(spec, acc, emu, path):
    request = valid_body(acc, path)
    operation = spec["paths"][path]["post"]
    request_schema = operation["requestBody"]["content"][JSONAPI]["schema"]
    assert not list(schema_validator(spec, request_schema).iter_errors(request))  # the test's own body is spec-valid
    response = post(emu, path, request)
    assert response.status_code == 200, response.text
    doc = response.json()
    errors = list(schema_validator(spec, operation["responses"]["200"]["content"][JSONAPI]["schema"]).iter_errors(doc))
    assert not errors, [f"{list(e.absolute_path)}: {e.message[:200]}" for e in errors[:5]]
    results = doc["data"]["attributes"]["results"]
    assert results and all(set(r["statistics"]) == set(request["data"]["attributes"]["statistics"]) for r in results)
    if "series" in path:
        width = len(doc["data"]["attributes"]["date_times"])
        assert width > 1 and all(len(v) == width for r in results for v in r["statistics"].values())


def test_sparse_fieldset_and_unknown_parameters(acc, emu):
    path = "/api/flow-series-reports"
    doc = post(emu, path, valid_body(acc, path), {"fields[flow-series-report]": "date_times"}).json()
    assert set(doc["data"]["attributes"]) == {"date_times"}
    assert_error(post(emu, path, valid_body(acc, path), {"fields[flow-series-report]": "dates"}), 400, "fields[flow-series-report]")
    assert_error(post(emu, path, valid_body(acc, path), {"page_cursor": "abc"}), 400, "cursor")


# ---------------------------------------------------------------- validation
CAMPAIGN = "/api/campaign-values-reports"


def campaign_body(acc: Account, **changes) -> dict:
    doc = valid_body(acc, CAMPAIGN)
    attrs = doc["data"]["attributes"]
    for name, value in changes.items():
        if value is None:
            attrs.pop(name, None)
        else:
            attrs[name] = value
    return doc


@pytest.mark.parametrize(
    "make, words, pointer",
    [
        (lambda a: b"{not json", ("not valid JSON",), None),
        (lambda a: {"type": "campaign-values-report"}, ("'data'",), "/data"),
        (lambda a: body("flow-values-report", **campaign_body(a)["data"]["attributes"]), ("flow-values-report", "campaign-values-report"), "/data/type"),
        (lambda a: {"data": {"type": "campaign-values-report"}}, ("'attributes'",), "/data/attributes"),
        (lambda a: campaign_body(a, interval="daily"), ("'interval'",), "/data/attributes/interval"),
        (lambda a: campaign_body(a, statistics=None), ("'statistics'", "required"), "/data/attributes/statistics"),
        (lambda a: campaign_body(a, timeframe=None), ("'timeframe'", "required"), "/data/attributes/timeframe"),
        (lambda a: campaign_body(a, conversion_metric_id=None), ("'conversion_metric_id'", "required"), "/data/attributes/conversion_metric_id"),
        (lambda a: campaign_body(a, statistics=[]), ("non-empty",), "/data/attributes/statistics"),
        (lambda a: campaign_body(a, statistics="opens"), ("non-empty",), "/data/attributes/statistics"),
        (lambda a: campaign_body(a, timeframe="last_30_days"), ("object",), "/data/attributes/timeframe"),
        (lambda a: campaign_body(a, timeframe={"start": 1735689600, "end": "2025-02-01T00:00:00"}), ("'start'",), "/data/attributes/timeframe/start"),
        (lambda a: campaign_body(a, group_by="campaign_id"), ("list",), "/data/attributes/group_by"),
        (lambda a: campaign_body(a, statistics=["opens", "revenue"]), ("'revenue'",), "/data/attributes/statistics"),
        (lambda a: campaign_body(a, statistics=["total_members"]), ("'total_members'",), "/data/attributes/statistics"),
        (lambda a: campaign_body(a, timeframe={"key": "last_2_days"}), ("'last_2_days'",), "/data/attributes/timeframe/key"),
        (lambda a: campaign_body(a, timeframe={"key": "today", "start": "2025-01-01T00:00:00"}), ("either",), "/data/attributes/timeframe"),
        (lambda a: campaign_body(a, timeframe={"start": "2025-01-01T00:00:00"}), ("'end'",), "/data/attributes/timeframe/end"),
        (lambda a: campaign_body(a, timeframe={"start": "2025-01-01", "end": "2025-02-01"}), ("'start'", "date-time"), "/data/attributes/timeframe/start"),
        (lambda a: campaign_body(a, timeframe={"start": "2025-02-01T00:00:00", "end": "2025-01-01T00:00:00"}), ("after",), "/data/attributes/timeframe"),
        (lambda a: campaign_body(a, timeframe={"start": "2024-01-01T00:00:00", "end": "2025-01-01T00:00:01"}), ("1 year",), "/data/attributes/timeframe"),
        (lambda a: campaign_body(a, timeframe={"start": "2025-01-01T00:00:00", "end": "2025-02-01T00:00:00", "tz": "UTC"}), ("'tz'",),
         "/data/attributes/timeframe/tz"),
        (lambda a: campaign_body(a, conversion_metric_id="NoSuch"), ("'NoSuch'", "metric"), "/data/attributes/conversion_metric_id"),
        (lambda a: campaign_body(a, color="red"), ("'color'",), "/data/attributes/color"),
        (lambda a: campaign_body(a, group_by=["campaign_id"]), ("campaign_message_id",), "/data/attributes/group_by"),
        (lambda a: campaign_body(a, group_by=["campaign_id", "campaign_message_id", "flow_id"]), ("'flow_id'",), "/data/attributes/group_by"),
        (lambda a: campaign_body(a, group_by=["campaign_id", "campaign_message_id", "tag_id"]), ("'tag_id'", "emulator"), "/data/attributes/group_by"),
        (lambda a: campaign_body(a, filter='equals(flow_id,"x")'), ("'flow_id'",), "/data/attributes/filter"),
        (lambda a: campaign_body(a, filter='any(campaign_id,["x"])'), ("'any'",), "/data/attributes/filter"),
        (lambda a: campaign_body(a, filter='equals(campaign_id,["x"])'), ("one quoted string",), "/data/attributes/filter"),
        (lambda a: campaign_body(a, filter='contains-any(campaign_id,"x")'), ("a list",), "/data/attributes/filter"),
        (lambda a: campaign_body(a, filter='equals(send_channel,"fax")'), ("'fax'",), "/data/attributes/filter"),
        (lambda a: campaign_body(a, filter='equals(campaign_id,"a"),equals(campaign_id,"b")'), ("one filter",), "/data/attributes/filter"),
        (lambda a: campaign_body(a, filter='or(equals(campaign_id,"a"))'), ("Invalid filter",), "/data/attributes/filter"),
        (lambda a: campaign_body(a, filter="contains-any(campaign_id,[" + ",".join(f'"c{i}"' for i in range(101)) + "])"), ("100",),
         "/data/attributes/filter"),
        (lambda a: campaign_body(a, filter='contains-all(tag_id,["t"])'), ("'tag_id'", "emulator"), "/data/attributes/filter"),
        (lambda a: campaign_body(a, filter=["equals(campaign_id,'x')"]), ("string",), "/data/attributes/filter"),
    ],
)  # fmt: skip
def test_campaign_request_errors(acc, emu, make, words, pointer):
    response = post(emu, CAMPAIGN, make(acc))
    error = assert_error(response, 400, *words, pointer=pointer)
    assert error["code"] in ("invalid", "parse_error")


@pytest.mark.parametrize(
    "path, attrs, words, pointer",
    [
        ("/api/flow-series-reports", {"interval": None}, ("'interval'", "required"), "/data/attributes/interval"),
        ("/api/flow-series-reports", {"interval": "yearly"}, ("'yearly'",), "/data/attributes/interval"),
        ("/api/flow-series-reports", {"interval": "hourly", "timeframe": {"start": "2025-01-01T00:00:00", "end": "2025-01-08T00:00:01"}},
         ("7 days", "hourly"), "/data/attributes/interval"),
        ("/api/form-series-reports", {"interval": "daily", "timeframe": {"start": "2025-01-01T00:00:00", "end": "2025-03-02T00:00:01"}},
         ("60 days", "daily"), "/data/attributes/interval"),
        ("/api/segment-series-reports", {"interval": "monthly", "timeframe": {"start": "2025-01-01T00:00:00", "end": "2025-12-31T00:00:01"}},
         ("52 weeks", "monthly"), "/data/attributes/interval"),
        ("/api/flow-values-reports", {"group_by": ["flow_message_id"]}, ("flow_id",), "/data/attributes/group_by"),
        ("/api/flow-values-reports", {"filter": 'equals(campaign_id,"x")'}, ("'campaign_id'",), "/data/attributes/filter"),
        ("/api/form-values-reports", {"group_by": ["form_version_id"]}, ("form_id",), "/data/attributes/group_by"),
        ("/api/form-values-reports", {"conversion_metric_id": "x"}, ("'conversion_metric_id'",), "/data/attributes/conversion_metric_id"),
        ("/api/form-values-reports", {"filter": 'contains-any(form_id,["x"])'}, ("'contains-any'",), "/data/attributes/filter"),
        ("/api/form-values-reports", {"statistics": ["opens"]}, ("'opens'",), "/data/attributes/statistics"),
        ("/api/segment-values-reports", {"group_by": ["segment_id"]}, ("'group_by'",), "/data/attributes/group_by"),
        ("/api/segment-values-reports", {"filter": 'equals(list_id,"x")'}, ("'list_id'",), "/data/attributes/filter"),
        ("/api/segment-values-reports", {"timeframe": {"start": "2023-05-31T00:00:00", "end": "2023-07-01T00:00:00"}}, ("June 1st, 2023",),
         "/data/attributes/timeframe"),
    ],
)  # fmt: skip
def test_other_request_errors(acc, emu, path, attrs, words, pointer):
    doc = valid_body(acc, path)
    for name, value in attrs.items():
        if value is None:
            doc["data"]["attributes"].pop(name)
        else:
            doc["data"]["attributes"][name] = value
    assert_error(post(emu, path, doc), 400, *words, pointer=pointer)


def test_caps_are_inclusive(acc, emu):
    """Exactly 7 days hourly, 60 days daily and 52 weeks monthly are allowed; the errors above are one second over."""
    for path, interval, end in (("/api/flow-series-reports", "hourly", "2025-01-08T00:00:00"), ("/api/form-series-reports", "daily", "2025-03-02T00:00:00"),
                                ("/api/segment-series-reports", "monthly", "2025-12-31T00:00:00")):  # fmt: skip
        doc = valid_body(acc, path)
        doc["data"]["attributes"].update(interval=interval, timeframe={"start": "2025-01-01T00:00:00", "end": end})
        assert post(emu, path, doc).status_code == 200


def test_method_media_type_and_auth(acc, emu):
    url = emu.base_url + CAMPAIGN
    assert_error(requests.get(url, headers=POST_HEADERS, timeout=10), 405)
    assert_error(requests.post(url, data=json.dumps(campaign_body(acc)), headers={**POST_HEADERS, "Content-Type": "text/plain"}, timeout=10), 415)
    assert_error(requests.post(url, data=json.dumps(campaign_body(acc)), headers={**POST_HEADERS, "Authorization": "Klaviyo-API-Key nope"}, timeout=10), 401)
    assert_error(requests.post(url, data=json.dumps(campaign_body(acc)), headers={k: v for k, v in POST_HEADERS.items() if k != "revision"}, timeout=10), 400,
                 "revision")  # fmt: skip


# ---------------------------------------------------------------- statistics from the raw facts
def _in(events, start: datetime, end: datetime) -> list[dict]:
    return [e for e in events if start.timestamp() <= e["timestamp"] < end.timestamp()]


def test_campaign_statistics_count_the_messages_events(acc, emu):
    start, end = datetime(2025, 1, 1, tzinfo=NY), datetime(2026, 1, 1, tzinfo=NY)
    conversion = placed_order(acc)
    stats = ["recipients", "delivered", "bounced", "opens", "opens_unique", "open_rate", "clicks_unique", "click_to_open_rate",
             "conversions", "conversion_uniques", "conversion_value", "revenue_per_recipient"]  # fmt: skip
    doc = post(emu, CAMPAIGN, campaign_body(acc, statistics=stats, filter='equals(send_channel,"email")')).json()
    results = doc["data"]["attributes"]["results"]
    assert results and {r["groupings"]["send_channel"] for r in results} == {"email"}
    metric = {name: acc.metric_ids(name)[0] for name in ("Received Email", "Bounced Email", "Dropped Email", "Opened Email", "Clicked Email")}
    for row in results:
        message = row["groupings"]["campaign_message_id"]
        facts = {name: _in(acc.message_events(message, mid), start, end) for name, mid in metric.items()}
        converted = _in(acc.attributed_events(message, conversion), start, end)
        recipients = len(facts["Received Email"]) + len(facts["Bounced Email"]) + len(facts["Dropped Email"])
        openers = {e["profile_id"] for e in facts["Opened Email"]}
        clickers = {e["profile_id"] for e in facts["Clicked Email"]}
        value = sum(e["value"] for e in converted)
        s = row["statistics"]
        assert s["recipients"] == recipients and s["delivered"] == len(facts["Received Email"]) and s["bounced"] == len(facts["Bounced Email"])
        assert s["opens"] == len(facts["Opened Email"]) and s["opens_unique"] == len(openers)
        assert s["open_rate"] == pytest.approx(len(openers) / len(facts["Received Email"]))
        assert s["clicks_unique"] == len(clickers) and s["click_to_open_rate"] == pytest.approx(len(clickers) / len(openers) if openers else 0)
        assert s["conversions"] == len(converted) and s["conversion_uniques"] == len({e["profile_id"] for e in converted})
        assert s["conversion_value"] == pytest.approx(value) and s["revenue_per_recipient"] == pytest.approx(round(value / recipients, 2))
    assert any(r["statistics"]["conversions"] for r in results) and all(0 <= r["statistics"]["open_rate"] <= 1 for r in results)


def test_an_added_event_moves_exactly_its_message(acc):
    """Events name their message in `$message`: one more Opened Email of a campaign message is one more open of that row only."""
    fresh = Account.generate(seed=3, size="tiny")
    with Emulator(fresh) as emulator:
        before = post(emulator, CAMPAIGN, campaign_body(fresh, statistics=["opens"])).json()["data"]["attributes"]["results"]
        target = next(r for r in before if r["groupings"]["send_channel"] == "email")["groupings"]["campaign_message_id"]
        fresh.add_event(fresh.metric_ids("Opened Email")[0], fresh.profile_id(0), "2025-06-01T12:00:00Z", {"$message": target})
        after = post(emulator, CAMPAIGN, campaign_body(fresh, statistics=["opens"])).json()["data"]["attributes"]["results"]
    changed = {r["groupings"]["campaign_message_id"]: r["statistics"]["opens"] - b["statistics"]["opens"] for r, b in zip(after, before)}
    assert changed == {**{m: 0 for m in changed}, target: 1}


def test_events_api_shows_the_message_each_event_belongs_to(acc):
    opened = acc.metric_ids("Opened Email")[0]
    events = list(acc.events(opened))
    messages = {e["attributes"]["event_properties"]["$message"] for e in events}
    sent = {m for _, _, m in acc.message_sources("email")}
    assert messages == sent and any(f for _, f, _ in acc.message_sources("email"))
    flows = [e for e in events if "$flow" in e["attributes"]["event_properties"]]
    assert flows and all(acc.flow_message_by_id[e["attributes"]["event_properties"]["$message"]] for e in flows)


def test_flow_series_buckets_are_the_events_days(acc, emu):
    start = datetime(2025, 3, 1, tzinfo=NY)
    doc = post(emu, "/api/flow-series-reports", body("flow-series-report", statistics=["delivered"], interval="daily", conversion_metric_id=placed_order(acc),
               timeframe={"start": "2025-03-01T00:00:00", "end": "2025-03-31T00:00:00"}, filter='equals(send_channel,"email")')).json()  # fmt: skip
    attrs = doc["data"]["attributes"]
    assert attrs["date_times"][0] == start.isoformat() and len(attrs["date_times"]) == 30
    received = acc.metric_ids("Received Email")[0]
    assert attrs["results"]
    for row in attrs["results"]:
        days = [0] * 30
        for e in _in(acc.message_events(row["groupings"]["flow_message_id"], received), start, start + timedelta(days=30)):
            days[int((e["timestamp"] - start.timestamp()) // 86400)] += 1
        assert row["statistics"]["delivered"] == days


def test_flow_filter_and_group_by_names(acc, emu):
    flow_id = next(iter(acc.report_messages("flow").values())).groupings["flow_id"]
    doc = post(emu, "/api/flow-values-reports", body("flow-values-report", statistics=["delivered"], conversion_metric_id=placed_order(acc),
               timeframe=dict(YEAR_2025), filter=f'equals(flow_id,"{flow_id}")', group_by=["flow_id", "flow_message_id", "flow_name"])).json()  # fmt: skip
    rows = doc["data"]["attributes"]["results"]
    flow = next(r for r in acc.flow_rows if r.id == flow_id)
    assert rows and all(r["groupings"] == {"flow_id": flow_id, "flow_message_id": r["groupings"]["flow_message_id"], "flow_name": flow.attrs["name"]} for r in rows)
    assert doc["data"]["relationships"]["flows"]["data"] == [{"type": "flow", "id": flow_id}]


def test_form_statistics_count_the_sessions(acc, emu):
    start, end = datetime(2025, 1, 1, tzinfo=NY), datetime(2026, 1, 1, tzinfo=NY)
    doc = post(emu, "/api/form-values-reports", body("form-values-report", statistics=list(reports.FORM_STATISTICS), timeframe=dict(YEAR_2025),
               group_by=["form_id", "form_version_id"])).json()  # fmt: skip
    rows = doc["data"]["attributes"]["results"]
    assert rows
    for row in rows:
        sessions = [s for s in acc.form_sessions(row["groupings"]["form_version_id"]) if start.timestamp() <= s[0] < end.timestamp()]
        viewed = [s for s in sessions if s[2] & 1]
        submitted = [s for s in sessions if s[2] & 2]
        s = row["statistics"]
        assert s["qualified_form"] == len(sessions) and s["viewed_form"] == len(viewed) and s["submits"] == len(submitted)
        assert s["viewed_form_uniques"] == len({p for _, p, _ in viewed}) and s["viewed_form_step"] == len(viewed) + len(submitted)
        assert s["closed_form"] == len([x for x in sessions if x[2] & 4]) and s["submit_rate"] == pytest.approx(len(submitted) / len(viewed))
    drafts = {v.id for vs in acc.form_versions.values() for v in vs if v.attrs["status"] == "draft"}
    assert not drafts & {r["groupings"]["form_version_id"] for r in rows}


def test_segment_series_follow_joins_and_departures():
    account = Account.generate(seed=3, size="tiny")
    segment = account.segment_rows[0].id
    members = account.members[segment]
    account.set_clock(datetime(2025, 6, 10, 12, tzinfo=timezone.utc))  # 07:00 on 10 June in New York
    leaver = members.profile[0]
    left_at = account.now().timestamp()
    joined_at = dict(zip(members.profile, members.joined))
    newcomer = next(i for i in range(1000) if i not in joined_at)
    account.remove_segment_member(segment, account.profile_id(leaver))
    account.add_segment_member(segment, account.profile_id(newcomer), "2025-06-11T15:00:00Z")
    joined_at[newcomer] = datetime(2025, 6, 11, 15, tzinfo=timezone.utc).timestamp()
    with Emulator(account) as emulator:
        doc = post(emulator, "/api/segment-series-reports", body("segment-series-report", statistics=list(reports.SEGMENT_STATISTICS), interval="daily",
                   timeframe={"start": "2025-06-09T00:00:00", "end": "2025-06-13T00:00:00"}, filter=f'equals(segment_id,"{segment}")')).json()  # fmt: skip
    (row,) = doc["data"]["attributes"]["results"]
    s = row["statistics"]
    days = [datetime(2025, 6, 9 + k, tzinfo=NY).timestamp() for k in range(5)]
    added = [sum(1 for j in joined_at.values() if days[k] <= j < days[k + 1]) for k in range(4)]
    total = [sum(1 for p, j in joined_at.items() if j < days[k + 1] and (p != leaver or left_at >= days[k + 1])) for k in range(4)]
    assert s["members_added"] == added and added[2] >= 1
    assert s["members_removed"] == [0, 1, 0, 0]
    assert s["net_members_changed"] == [a - r for a, r in zip(added, s["members_removed"])]
    assert s["total_members"] == total and total[1] == total[0] + added[1] - 1


# ---------------------------------------------------------------- rate limits on a virtual clock
def test_limits_burst_steady_and_day_with_retry_after(acc):
    clock = VirtualClock(datetime(2026, 3, 2, 10, 0, 0, tzinfo=timezone.utc).timestamp())
    with Emulator(acc, rate_limits=True, clock=clock) as emulator:
        doc = valid_body(acc, CAMPAIGN)
        assert post(emulator, CAMPAIGN, doc).status_code == 200
        burst = post(emulator, CAMPAIGN, doc)
        assert_error(burst, 429, "Expected available in 1 seconds")
        assert burst.headers["Retry-After"] == "1" and "RateLimit-Limit" not in burst.headers
        clock.advance(1)
        second = post(emulator, CAMPAIGN, doc)
        assert second.status_code == 200 and second.headers["RateLimit-Limit"] == "2" and second.headers["RateLimit-Remaining"] == "0"
        clock.advance(1)
        steady = post(emulator, CAMPAIGN, doc)
        assert steady.status_code == 429 and steady.headers["Retry-After"] == "58"
        assert post(emulator, "/api/flow-values-reports", valid_body(acc, "/api/flow-values-reports")).status_code == 200  # its own bucket
        served = 2
        while served < 225:  # two a minute (a second apart), each minute a fresh window
            clock.advance(60 - clock.now % 60)
            for _ in range(min(2, 225 - served)):
                assert post(emulator, CAMPAIGN, doc).status_code == 200
                served += 1
                clock.advance(1)
        clock.advance(60 - clock.now % 60)
        daily = post(emulator, CAMPAIGN, doc)
        until_midnight = 86_400 - clock.now % 86_400
        assert daily.status_code == 429 and int(daily.headers["Retry-After"]) == pytest.approx(until_midnight, abs=1)
        assert int(daily.headers["Retry-After"]) > 3600
        clock.advance(until_midnight)
        assert post(emulator, CAMPAIGN, doc).status_code == 200
        times = [r.time for r in emulator.requests if r.path == CAMPAIGN]
    assert times[0] == datetime(2026, 3, 2, 10, 0, 0, tzinfo=timezone.utc).timestamp() and times[-1] == clock.now  # the log keeps the virtual times


def test_timeframe_keys_resolve_in_the_company_timezone():
    account = Account.generate(seed=3, size="tiny")
    account.set_clock(datetime(2026, 3, 4, 15, 30, tzinfo=timezone.utc))  # Wednesday 10:30 in New York
    cases = {  # key, interval -> first date_time, number of buckets
        ("last_7_days", "daily"): ("2026-02-25T00:00:00-05:00", 7),
        ("yesterday", "hourly"): ("2026-03-03T00:00:00-05:00", 24),
        ("today", "hourly"): ("2026-03-04T00:00:00-05:00", 11),
        ("this_week", "daily"): ("2026-03-02T00:00:00-05:00", 3),
        ("last_week", "daily"): ("2026-02-23T00:00:00-05:00", 7),
        ("last_month", "weekly"): ("2026-02-01T00:00:00-05:00", 5),
        ("last_3_months", "monthly"): ("2025-12-01T00:00:00-05:00", 3),
        ("this_year", "monthly"): ("2026-01-01T00:00:00-05:00", 3),
        ("last_365_days", "weekly"): ("2025-03-04T00:00:00-05:00", 53),
    }
    with Emulator(account) as emulator:
        for (key, interval), (first, count) in cases.items():
            doc = post(emulator, "/api/form-series-reports", body("form-series-report", statistics=["submits"], interval=interval, timeframe={"key": key})).json()
            dates = doc["data"]["attributes"]["date_times"]
            assert (dates[0], len(dates)) == (first, count), key
        refused = post(emulator, "/api/form-series-reports", body("form-series-report", statistics=["submits"], interval="monthly",
                                                                  timeframe={"key": "last_12_months"}))  # fmt: skip
        assert_error(refused, 400, "52 weeks")  # twelve whole months are longer than the monthly cap


def test_series_rates_stay_in_the_unit_interval():
    """Counting by event time, an hour can hold two openers of one delivery: the rate is capped at the spec's 1.0."""
    account = Account.generate(seed=3, size="tiny")
    message = next(m for _, flow, m in account.message_sources("email") if flow)
    at = "2026-05-01T12:10:00Z"
    account.add_event(account.metric_ids("Received Email")[0], account.profile_id(0), at, {"$message": message})
    for p in (0, 1):
        account.add_event(account.metric_ids("Opened Email")[0], account.profile_id(p), at, {"$message": message})
    with Emulator(account) as emulator:
        doc = post(emulator, "/api/flow-series-reports", body("flow-series-report", statistics=["open_rate", "opens_unique", "delivered"], interval="hourly",
                   conversion_metric_id=placed_order(account), timeframe={"start": "2026-05-01T08:00:00", "end": "2026-05-01T09:00:00"},
                   filter=f'equals(flow_message_id,"{message}")')).json()  # fmt: skip
    (row,) = doc["data"]["attributes"]["results"]
    assert row["statistics"] == {"open_rate": [1.0], "opens_unique": [2.0], "delivered": [1.0]}
