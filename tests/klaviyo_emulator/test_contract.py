"""Contract test: emulator responses validate against the official OpenAPI response schemas.

Reads ../shared/klaviyo-openapi/stable-2026-07-15.json (relative to the repository
root); skipped with a reason when that file is absent. OpenAPI 3.0 `nullable` is
converted to JSON Schema type unions. One documented deviation: the spec types
CollectionLinks.next/prev as plain URIs while real responses send null on the
last page (klaviyo-api.md §2.1), so those two are treated as nullable.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

jsonschema = pytest.importorskip("jsonschema")

SPEC = Path(__file__).resolve().parents[2] / ".." / "shared" / "klaviyo-openapi" / "stable-2026-07-15.json"
JSONAPI = "application/vnd.api+json"


def _nullable(node):
    """Recursively turn OpenAPI 3.0 `nullable: true` into JSON Schema unions.

    `oneOf` becomes `anyOf`: several spec unions have indistinguishable
    alternatives (e.g. Email/SMS/PushSendOptions are all `{use_smart_sending}`),
    which no response could satisfy "exactly once".
    """
    if isinstance(node, list):
        return [_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {("anyOf" if k == "oneOf" else k): _nullable(v) for k, v in node.items()}
    if node.pop("nullable", False):
        if "$ref" in node or "oneOf" in node or "anyOf" in node or "allOf" in node:
            return {"anyOf": [node, {"type": "null"}]}
        if "type" in node:
            node["type"] = [node["type"], "null"]
        if "enum" in node:
            node["enum"] = [*node["enum"], None]
    return node


@pytest.fixture(scope="module")
def spec() -> dict:
    if not SPEC.exists():
        pytest.skip(f"official OpenAPI spec not found at {SPEC} (../shared/klaviyo-openapi/ is provided in CI)")
    raw = json.loads(SPEC.read_text())
    links = raw["components"]["schemas"]["CollectionLinks"]["properties"]
    for name in ("next", "prev"):
        links[name] = {**links[name], "nullable": True}
    return raw


def validator_for(spec: dict, path: str):
    operation = spec["paths"][path]["get"]
    schema = copy.deepcopy(operation["responses"]["200"]["content"][JSONAPI]["schema"])
    document = {**_nullable(schema), "components": _nullable(spec["components"])}
    return jsonschema.Draft7Validator(document)


def _check(spec, client, spec_path, url, params, min_docs=1):
    validator = validator_for(spec, spec_path)
    response = client.get(url, params)
    assert response.status_code == 200, response.text
    docs = [response.json()]
    while docs[-1]["links"]["next"] and len(docs) < 2:
        docs.append(client.get(docs[-1]["links"]["next"]).json())
    assert len(docs) >= min_docs
    for doc in docs:
        errors = [jsonschema.exceptions.best_match([e]) for e in validator.iter_errors(doc)]
        assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors[:5])
        assert doc["data"]


CASES = [
    ("/api/lists", "/api/lists", {"include": "tags,flow-triggers"}),
    ("/api/segments", "/api/segments", {"include": "tags,flow-triggers"}),
    ("/api/profiles", "/api/profiles", {"additional-fields[profile]": "subscriptions,predictive_analytics", "include": "push-tokens,conversations", "page[size]": "100"}),
    ("/api/profiles", "/api/profiles", {"additional-fields[profile]": "subscriptions", "sort": "subscriptions.email.marketing.suppression.timestamp"}),
    ("/api/metrics", "/api/metrics", {"include": "flow-triggers"}),
    ("/api/events", "/api/events", {"include": "metric,profile,attributions", "page[size]": "1000"}),
    ("/api/events", "/api/events", {"page[size]": "1000", "sort": "-datetime"}),
    ("/api/events", "/api/events", {"include": "attributions", "page[size]": "1000"}),
    ("/api/flows", "/api/flows", {"include": "flow-actions,tags"}),
    ("/api/flows", "/api/flows", {"filter": "equals(archived,true)", "include": "flow-actions", "fields[flow-action]": "definition,updated"}),
    ("/api/template-universal-content", "/api/template-universal-content", {"page[size]": "3"}),
    ("/api/forms", "/api/forms", {"page[size]": "2", "sort": "-updated_at"}),
    ("/api/images", "/api/images", {"sort": "size"}),
    ("/api/tag-groups", "/api/tag-groups", {"page[size]": "2"}),
    ("/api/templates", "/api/templates", {"additional-fields[template]": "definition"}),
    ("/api/templates", "/api/templates", {}),
    ("/api/tags", "/api/tags", {"include": "tag-group"}),
    ("/api/catalog-items", "/api/catalog-items", {"include": "variants"}),
    ("/api/catalog-items", "/api/catalog-items", {}),
    ("/api/catalog-variants", "/api/catalog-variants", {}),
    ("/api/catalog-categories", "/api/catalog-categories", {"page[size]": "2"}),
    ("/api/coupons", "/api/coupons", {"page[size]": "2"}),
    ("/api/coupon-codes", "/api/coupon-codes", {"filter": "any(coupon.id,['SUMMER5','FREESHIP5','VIP25','WELCOME25'])", "include": "coupon", "page[size]": "7"}),
    ("/api/coupon-codes", "/api/coupon-codes", {"filter": "equals(coupon.id,['SUMMER5'])"}),
    ("/api/reviews", "/api/reviews", {"page[size]": "100"}),
    ("/api/reviews", "/api/reviews", {"include": "events", "filter": "equals(status,'rejected')"}),
    ("/api/push-tokens", "/api/push-tokens", {"include": "profile"}),
    ("/api/push-tokens", "/api/push-tokens", {"include": "profile", "fields[profile]": "email"}),
    ("/api/accounts", "/api/accounts", {}),
] + [
    ("/api/campaigns", "/api/campaigns", {"filter": f"equals(messages.channel,'{channel}'){archived}", "include": "campaign-messages,tags"})
    for channel in ("email", "sms", "mobile_push")
    for archived in ("", ",equals(archived,true)")
]


@pytest.mark.parametrize("spec_path,url,params", CASES, ids=[f"{c[1]}?{'&'.join(c[2])}" for c in CASES])
def test_collection_responses_match_the_spec(spec, client, spec_path, url, params):
    _check(spec, client, spec_path, url, params)


@pytest.mark.parametrize(
    "spec_path,kind,suffix,params",
    [
        ("/api/lists/{id}/profiles", "list", "profiles", {"additional-fields[profile]": "subscriptions,predictive_analytics", "page[size]": "100"}),
        ("/api/lists/{id}/relationships/profiles", "list", "relationships/profiles", {"page[size]": "100"}),
        ("/api/segments/{id}/profiles", "segment", "profiles", {"additional-fields[profile]": "subscriptions,predictive_analytics"}),
    ],
)
def test_member_responses_match_the_spec(spec, client, account, spec_path, kind, suffix, params):
    rows = account.list_rows if kind == "list" else account.segment_rows
    biggest = max(rows, key=lambda r: len(account.members[r.id]))
    _check(spec, client, spec_path, f"/api/{kind}s/{biggest.id}/{suffix}", params, min_docs=2)


def _nested_cases(account):
    flow = max(account.flow_rows, key=lambda r: len(account.flow_actions[r.id]))
    email = next(a for acts in account.flow_actions.values() for a in acts if a.keys["action_type"] == "send-email")
    sms = next(a for acts in account.flow_actions.values() for a in acts if a.keys["action_type"] == "send-sms")
    form = max(account.form_rows, key=lambda r: len(account.form_versions[r.id]))
    return [
        ("/api/flows/{id}/flow-actions", f"/api/flows/{flow.id}/flow-actions", {"page[size]": "2"}),
        ("/api/flow-actions/{id}/flow-messages", f"/api/flow-actions/{email.id}/flow-messages", {}),
        ("/api/flow-actions/{id}/flow-messages", f"/api/flow-actions/{sms.id}/flow-messages", {}),
        ("/api/forms/{id}/form-versions", f"/api/forms/{form.id}/form-versions", {"page[size]": "1"}),
    ]


NESTED = ("/api/flows/{id}/flow-actions", "/api/flow-actions/{id}/flow-messages", "/api/forms/{id}/form-versions")


def test_nested_responses_match_the_spec(spec, client, account):
    for spec_path, url, params in _nested_cases(account):
        _check(spec, client, spec_path, url, params, min_docs=2 if params.get("page[size]") else 1)


def test_every_emulated_endpoint_is_covered(spec):
    from klaviyo_emulator.endpoints import ENDPOINTS

    covered = {c[0] for c in CASES} | {"/api/lists/{id}/profiles", "/api/lists/{id}/relationships/profiles", "/api/segments/{id}/profiles", *NESTED}
    assert {ep.path for ep in ENDPOINTS} == covered
    assert covered <= set(spec["paths"])


def test_metric_aggregates_response_matches_the_spec(spec, emulator, account):
    import requests

    from tests.klaviyo_emulator.conftest import headers

    operation = spec["paths"]["/api/metric-aggregates"]["post"]
    schema = copy.deepcopy(operation["responses"]["200"]["content"][JSONAPI]["schema"])
    validator = jsonschema.Draft7Validator({**_nullable(schema), "components": _nullable(spec["components"])})
    request_schema = copy.deepcopy(operation["requestBody"]["content"][JSONAPI]["schema"])
    request_validator = jsonschema.Draft7Validator({**_nullable(request_schema), "components": _nullable(spec["components"])})
    body = {"data": {"type": "metric-aggregate", "attributes": {
        "metric_id": account.metric_ids("Received Email")[0], "measurements": ["count", "unique", "sum_value"], "interval": "day",
        "filter": ["greater-or-equal(datetime,2025-01-01T00:00:00Z)", "less-than(datetime,2025-01-08T00:00:00Z)"], "timezone": "UTC"}}}  # fmt: skip
    assert not list(request_validator.iter_errors(body)), "the tap's kind of request is one the spec describes"
    response = requests.post(f"{emulator.base_url}/api/metric-aggregates", json=body,
                             headers={**headers(), "Content-Type": JSONAPI}, timeout=10)  # fmt: skip
    assert response.status_code == 200, response.text
    errors = [jsonschema.exceptions.best_match([e]) for e in validator.iter_errors(response.json())]
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message[:300]}" for e in errors[:5])
    error = requests.post(f"{emulator.base_url}/api/metric-aggregates", json={"data": {}}, headers={**headers(), "Content-Type": JSONAPI}, timeout=10)
    client_error = _nullable(spec["components"]["responses"]["ClientError"]["content"][JSONAPI]["schema"])
    assert error.status_code == 400
    assert not list(jsonschema.Draft7Validator({**client_error, "components": _nullable(spec["components"])}).iter_errors(error.json()))


def test_error_bodies_match_the_spec(spec, client):
    validator = jsonschema.Draft7Validator({**_nullable(spec["components"]["responses"]["ClientError"]["content"][JSONAPI]["schema"]), "components": _nullable(spec["components"])})
    for params in ({"filter": "bogus"}, {"sort": "nope"}):
        body = client.get("/api/profiles", params).json()
        assert not list(validator.iter_errors(body))
