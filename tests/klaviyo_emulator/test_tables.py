"""Drift check: the emulator's hand-written endpoint tables against the spec-derived summary.

Reads ../shared/klaviyo-openapi/endpoints-summary.json (relative to the repository
root); skipped with a reason when absent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from klaviyo_emulator.endpoints import ENDPOINTS

SUMMARY = Path(__file__).resolve().parents[2] / ".." / "shared" / "klaviyo-openapi" / "endpoints-summary.json"


@pytest.fixture(scope="module")
def summary() -> dict:
    if not SUMMARY.exists():
        pytest.skip(f"endpoints summary not found at {SUMMARY} (../shared/klaviyo-openapi/ is provided in CI)")
    specs = json.loads(SUMMARY.read_text())["specs"]
    return next(s for s in specs if s["revision"] == "2026-07-15")["endpoints"]


def _rate(text: str) -> int:
    return int(text.split("/")[0])


@pytest.mark.parametrize("ep", ENDPOINTS, ids=[ep.path for ep in ENDPOINTS])
def test_table_matches_the_spec(summary, ep):
    spec = summary[ep.path]
    assert ep.operation == spec["operationId"]
    filters = spec.get("filters", {})
    assert set(ep.filters) == set(filters)
    for name, fs in ep.filters.items():
        ops = filters[name]["operators"]
        for shape in ("single", "list", "none"):
            assert set(fs.operators(shape)) == set(ops.get(shape, [])), (name, shape)
        value = filters[name].get("value", {})
        if shape_type := value.get("format") or value.get("type"):
            assert fs.type == shape_type, name
        assert (fs.enum and set(fs.enum)) == (value.get("enum") and set(value["enum"])), name
    assert [s for s in spec.get("sort") or [] if not s.startswith("-")] == list(ep.sort)
    page = spec.get("page_size")
    assert (ep.page_size is None) == (page is None)
    if page:
        assert ep.page_size == (page["default"], page["maximum"]) and page["minimum"] == 1
    assert set(ep.include) == set(spec.get("include") or [])
    assert {k: set(v) for k, v in ep.additional.items()} == {k: set(v) for k, v in (spec.get("additional_fields") or {}).items()}
    fieldsets = spec.get("sparse_fieldsets") or {}
    assert set(ep.fields) == set(fieldsets)
    for key, names in fieldsets.items():
        assert set(ep.fields[key]) == {n.split(".")[0] for n in names}, key
    assert ep.rate == (_rate(spec["rate_limit"]["burst"]), _rate(spec["rate_limit"]["steady"]))
    conditional = spec.get("conditional_rate_limits") or []
    assert ep.rate_predictive == (
        (_rate(conditional[0]["burst"]), _rate(conditional[0]["steady"])) if conditional else None
    )
    assert ep.filter_required == bool(spec.get("filter_required"))


def test_metrics_page_length_is_200_and_events_default_200(summary):
    by_path = {ep.path: ep for ep in ENDPOINTS}
    assert by_path["/api/metrics"].page_length == 200
    assert by_path["/api/events"].page_size == (200, 1000)


def test_generated_tables_are_current(summary):
    """klaviyo_emulator/spec_tables.py is exactly what scripts/gen_emulator_tables.py makes of the summary."""
    from scripts.gen_emulator_tables import TARGET, render

    assert TARGET.read_text() == render(json.loads(SUMMARY.read_text())), "stale: run python scripts/gen_emulator_tables.py"


def test_generated_tables_hold_facts_only():
    from klaviyo_emulator.spec_tables import TABLES

    flows = TABLES["/api/flows"]
    assert flows["operation"] == "get_flows" and flows["rate"] == (3, 60) and flows["page_size"] == (50, 50)
    assert flows["include"] == ("flow-actions", "tags") and "-name" not in flows["sort"]
    text = (Path(__file__).resolve().parents[2] / "klaviyo_emulator" / "spec_tables.py").read_text()
    assert "developers.klaviyo.com" not in text and "Rate limits" not in text  # no spec prose


@pytest.mark.parametrize(
    "path,params,status",
    [
        ("/api/profiles", {"fields[profile]": "email,location.city"}, 200),
        ("/api/profiles", {"fields[profile]": "location.bogus"}, 400),
        ("/api/flows", {"fields[flow]": "name.first"}, 400),
        ("/api/flows", {"include": "flow-actions", "fields[flow-action]": "definition.data.status"}, 200),
        ("/api/flows", {"include": "flow-actions", "fields[flow-action]": "definition.data.colour"}, 400),
    ],
)
def test_dotted_sparse_fields_are_those_the_spec_lists(client, path, params, status):
    r = client.get(path, params)
    assert r.status_code == status, r.text
    if status == 400:
        assert r.json()["errors"][0]["source"] == {"parameter": next(k for k in params if k.startswith("fields["))}
