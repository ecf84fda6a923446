"""meltano.yml stays in step with the tap: every setting declared with a matching kind, capabilities, pins.

Needs no Meltano: it reads meltano.yml and `tap-klaviyo --about --format=json`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from tests.conftest import REPO

# JSON Schema type (and format) of a tap setting -> Meltano setting kind.
KINDS = {"string": "string", "integer": "integer", "number": "decimal", "boolean": "boolean", "object": "object", "array": "array"}
# Capabilities Meltano 4.4 knows for an extractor (its meltano.schema.json).
MELTANO_EXTRACTOR_CAPABILITIES = {
    "properties", "catalog", "discover", "state", "about", "stream-maps", "activate-version", "batch", "test",
    "log-based", "schema-flattening", "structured-logging",
}  # fmt: skip


@pytest.fixture(scope="module")
def meltano_yml() -> dict:
    return yaml.safe_load((REPO / "meltano.yml").read_text())


@pytest.fixture(scope="module")
def about() -> dict:
    proc = subprocess.run(
        [sys.executable, "-m", "tap_klaviyo", "--about", "--format=json"], capture_output=True, text=True, timeout=120, check=True, cwd=REPO
    )
    return json.loads(proc.stdout)


def plugin(meltano_yml: dict, kind: str, name: str) -> dict:
    return next(p for p in meltano_yml["plugins"][kind] if p["name"] == name)


def test_extractor_declares_every_setting_with_its_kind(meltano_yml, about):
    extractor = plugin(meltano_yml, "extractors", "tap-klaviyo")
    declared = {setting["name"]: setting for setting in extractor["settings"]}
    properties = about["settings"]["properties"]
    assert set(declared) == set(properties), "meltano.yml settings differ from `tap-klaviyo --about`"
    for name, schema in properties.items():
        types = [t for t in ([schema["type"]] if isinstance(schema["type"], str) else schema["type"]) if t != "null"]
        want = "date_iso8601" if schema.get("format") == "date-time" else KINDS[types[0]]
        assert declared[name].get("kind") == want, name
        assert declared[name].get("description"), name
    assert declared["api_key"].get("sensitive") is True
    assert not any(setting.get("sensitive") for name, setting in declared.items() if name != "api_key")


def test_extractor_definition_is_complete(meltano_yml, about):
    extractor = plugin(meltano_yml, "extractors", "tap-klaviyo")
    assert extractor["pip_url"] == "-e ."
    assert extractor["namespace"] == "tap_klaviyo"
    assert extractor["executable"] == "tap-klaviyo"
    assert extractor.get("description")
    assert set(extractor["capabilities"]) == set(about["capabilities"]) & MELTANO_EXTRACTOR_CAPABILITIES
    assert "variant" not in extractor and "inherit_from" not in extractor, "a full custom definition: no Hub lookup"


def test_loaders_are_pinned(meltano_yml):
    duckdb = plugin(meltano_yml, "loaders", "target-duckdb")
    # target-duckdb loads through DuckDB's CSV reader; from duckdb 1.3 on it drops a batch's first row.
    assert sorted(duckdb["pip_url"].split()) == ["duckdb==1.2.2", "target-duckdb==0.8.0"]
    jsonl = plugin(meltano_yml, "loaders", "target-jsonl")
    assert jsonl["pip_url"] == "target-jsonl==0.1.4"
    for loader in (duckdb, jsonl):
        assert loader["namespace"] and loader["executable"] and loader["settings"]


def test_extractor_declares_every_default(meltano_yml, about):
    """`meltano config list tap-klaviyo` shows the tap's own defaults, not `None (default)`."""
    extractor = plugin(meltano_yml, "extractors", "tap-klaviyo")
    declared = {setting["name"]: setting for setting in extractor["settings"]}
    for name, schema in about["settings"]["properties"].items():
        if "default" in schema:
            assert declared[name].get("value") == schema["default"], name
        else:
            assert "value" not in declared[name], name
