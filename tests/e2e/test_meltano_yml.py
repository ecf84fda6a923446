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
    # target-duckdb loads through DuckDB's CSV reader, whose sniffer drops a batch's first row in newer
    # duckdb (1.1.3 and 1.2.2 when every column is text, 1.3+ elsewhere too).
    assert sorted(duckdb["pip_url"].split()) == ["duckdb==1.0.0", "target-duckdb==0.8.0"]
    jsonl = plugin(meltano_yml, "loaders", "target-jsonl")
    assert jsonl["pip_url"] == "target-jsonl==0.1.4"
    # The newest release that installs on Python 3.11 with its own dependencies (singer-sdk 0.54.9, psycopg 3).
    postgres = plugin(meltano_yml, "loaders", "target-postgres")
    assert postgres["pip_url"] == "meltanolabs-target-postgres==0.8.1"
    assert (postgres["namespace"], postgres["executable"]) == ("target_postgres", "target-postgres")
    for loader in meltano_yml["plugins"]["loaders"]:
        assert loader["namespace"] and loader["executable"] and loader["settings"], loader["name"]
        assert "variant" not in loader and "inherit_from" not in loader, f"{loader['name']}: a full definition, no Hub"
        assert all(setting.get("kind") and setting.get("description") for setting in loader["settings"]), loader["name"]
        for requirement in loader["pip_url"].split():
            assert "==" in requirement, f"{loader['name']}: {requirement} is not pinned"


def test_postgres_loader_upserts_in_utc(meltano_yml):
    """Re-read records (the lookback) replace their row; date-times are written in a UTC session."""
    postgres = plugin(meltano_yml, "loaders", "target-postgres")
    assert postgres["config"]["load_method"] == "upsert"
    assert postgres["env"]["PGTZ"] == "UTC"
    assert {s["name"] for s in postgres["settings"] if s.get("sensitive")} == {"password", "sqlalchemy_url", "ssl_client_private_key"}


def test_inherited_extractors_jobs_and_schedules(meltano_yml):
    extractors = {p["name"]: p for p in meltano_yml["plugins"]["extractors"]}
    hashed = extractors["tap-klaviyo--hashed"]
    assert hashed["inherit_from"] == "tap-klaviyo"
    assert set(hashed["config"]["stream_maps"]) == {
        "profiles", "list_members", "segment_members", "global_exclusions", "list_exclusions", "reviews"
    }
    assert all(m["email"] == "md5(email) if email else None" for m in hashed["config"]["stream_maps"].values())
    weekly = extractors["tap-klaviyo--weekly-full"]
    assert weekly["inherit_from"] == "tap-klaviyo"
    assert weekly["config"]["emit_activate_version_messages"] is True
    streams = {"list_members", "segment_members", "profiles", "global_exclusions", "list_exclusions"}
    assert {s: m["replication-method"] for s, m in weekly["metadata"].items()} == dict.fromkeys(streams, "FULL_TABLE")
    assert {rule.split(".")[0] for rule in weekly["select"]} == streams
    jobs = {job["name"]: job["tasks"] for job in meltano_yml["jobs"]}
    assert jobs["klaviyo-to-postgres"] == ["tap-klaviyo target-postgres"]
    assert jobs["klaviyo-weekly-full"] == ["tap-klaviyo--weekly-full target-postgres"]
    schedules = {schedule["job"]: schedule["interval"] for schedule in meltano_yml["schedules"]}
    assert schedules == {"klaviyo-to-duckdb": "@hourly", "klaviyo-weekly-full": "@weekly"}


def test_extractor_declares_every_default(meltano_yml, about):
    """`meltano config list tap-klaviyo` shows the tap's own defaults, not `None (default)`."""
    extractor = plugin(meltano_yml, "extractors", "tap-klaviyo")
    declared = {setting["name"]: setting for setting in extractor["settings"]}
    for name, schema in about["settings"]["properties"].items():
        if "default" in schema:
            assert declared[name].get("value") == schema["default"], name
        else:
            assert "value" not in declared[name], name


def test_every_top_level_array_of_objects_loads_as_one_json_value(meltano_yml):
    """SQL targets built on the SDK (target-postgres) turn an array with typed `items` into an array column
    (`jsonb[]`), which JSON operators cannot query: meltano.yml's `schema:` override drops `items` from every
    such property of every stream, so a new one cannot slip past."""
    from tap_klaviyo.tap import TapKlaviyo

    override = plugin(meltano_yml, "extractors", "tap-klaviyo")["schema"]
    tap = TapKlaviyo(config={"api_key": "pk_test0123456789abcdef"}, validate_config=False)
    for stream in tap.streams.values():
        for name, schema in stream.schema["properties"].items():
            items = schema.get("items")
            if "array" in schema.get("type", []) and isinstance(items, dict) and "object" in items.get("type", []):
                assert override.get(stream.name, {}).get(name) == {"type": ["array", "null"]}, (stream.name, name)
