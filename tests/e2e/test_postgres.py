"""End to end into a real PostgreSQL: `meltano run tap-klaviyo target-postgres` against an in-process emulator.

The server is PostgreSQL itself (tests/e2e/postgres_server.py, started and stopped by the `postgres` fixture);
the loader is the one meltano.yml pins (MeltanoLabs' target-postgres), installed by `meltano install`.
Checked: exact row counts per table against the emulator's account, a second incremental run from Meltano's
state (upserts: no duplicates from the lookback), the column types (date-times holding the right instant,
objects and arrays of objects as queryable jsonb), the opt-in email-hashing extractor, and that the weekly full
run (FULL_TABLE with ACTIVATE_VERSION) drops a removed list membership.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
from dataclasses import dataclass

import pytest
import yaml

from klaviyo_emulator import Account, Emulator
from tests.conftest import REPO
from tests.e2e.meltano_project import MeltanoProject, find_meltano, tap_env
from tests.e2e.postgres_server import SUPERUSER, PostgresServer
from tests.e2e.test_meltano_run import (
    EVENT_STREAMS,
    LOOKBACK_MINUTES,
    LOWER_BOUND,
    STREAMS,
    assert_second_run_bounded,
    change_account,
    expected_counts,
    metric_of,
    parse_time,
)
from tap_klaviyo.streams import STREAMS as TAP_STREAMS
from tap_klaviyo.tap import TapKlaviyo
from tests.tap_klaviyo.expected import expected_keys

pytestmark = pytest.mark.slow

SCHEMA = "tap_klaviyo"  # default_target_schema of target-postgres in meltano.yml
# Streams whose records carry a profile's email, keyed by the profile (reviews carry the reviewer's too; the
# hashed extractor hashes it, and the search of every table below checks it).
EMAIL_STREAMS = ("profiles", "list_members", "segment_members", "global_exclusions", "list_exclusions")
# Arrays of objects: one jsonb value each (meltano.yml's `schema:` override), not jsonb[].
OBJECT_ARRAYS = {("campaigns", "campaign_messages"), ("global_exclusions", "suppression"), ("global_exclusions", "list_suppressions")}
PLUGINS = ("tap-klaviyo", "tap-klaviyo--hashed", "tap-klaviyo--weekly-full", "target-postgres")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> MeltanoProject:
    meltano = find_meltano()
    if meltano is None:
        pytest.skip("meltano is not installed (`make test` installs it into .venv-meltano; or set MELTANO_BIN)")
    project = MeltanoProject.create(tmp_path_factory.mktemp("meltano-postgres"), meltano)
    project.run("install", *PLUGINS)
    return project


def postgres_env(project: MeltanoProject, postgres: PostgresServer, database: str, emulator_url: str, **extra: str) -> dict:
    """Settings for a run into `database` (created here), given as a deployment gives them: the environment.
    Each database keeps its own state in Meltano (the state ID ends in `:<database>`)."""
    postgres.create_database(database)
    return project.env(
        MELTANO_RUN_STATE_ID_SUFFIX=database,
        **tap_env(emulator_url),
        TAP_KLAVIYO_LOOKBACK_MINUTES=str(LOOKBACK_MINUTES),
        TARGET_POSTGRES_HOST=postgres.host,
        TARGET_POSTGRES_PORT=str(postgres.port),
        TARGET_POSTGRES_USER=SUPERUSER,
        TARGET_POSTGRES_PASSWORD="unused-with-trust-auth",
        TARGET_POSTGRES_DATABASE=database,
        **extra,
    )


def table_counts(postgres: PostgresServer, database: str) -> dict[str, int]:
    tables = [row["table_name"] for row in postgres.query(
        f"select table_name from information_schema.tables where table_schema = '{SCHEMA}'", database
    )]  # fmt: skip
    if not tables:
        return {}
    union = " union all ".join(f"select '{name}' as name, count(*) as n from {SCHEMA}.{name}" for name in tables)
    return {row["name"]: row["n"] for row in postgres.query(union, database)}


def columns(postgres: PostgresServer, database: str) -> dict[tuple[str, str], str]:
    """{(table, column): PostgreSQL type}, arrays as `<element>[]`."""
    rows = postgres.query(
        "select c.table_name, c.column_name, format_type(a.atttypid, a.atttypmod) as type "
        "from information_schema.columns c join pg_attribute a "
        f"on a.attrelid = format('%I.%I', c.table_schema, c.table_name)::regclass and a.attname = c.column_name "
        f"where c.table_schema = '{SCHEMA}'",
        database,
    )
    return {(row["table_name"], row["column_name"]): row["type"] for row in rows}


def epoch(value: str) -> float:
    return parse_time(value).timestamp()


@dataclass
class Load:
    project: MeltanoProject
    postgres: PostgresServer
    database: str
    account: Account
    schemas: dict[str, dict]  # the tap's own stream schemas (tap_klaviyo/schemas)


@pytest.fixture(scope="module")
def full_load(project, postgres) -> Load:
    """One full `meltano run tap-klaviyo target-postgres` into database `klaviyo`, shared by the read-only tests."""
    account = Account.generate(seed=23, size="tiny")
    with Emulator(account, rate_limits=False) as emulator:
        env = postgres_env(project, postgres, "klaviyo", emulator.base_url)
        project.run("run", "tap-klaviyo", "target-postgres", env=env)
    tap = TapKlaviyo(config={"api_key": "pk_test0123456789abcdef"}, validate_config=False)
    schemas = {stream: tap.streams[stream].schema for stream in STREAMS}
    return Load(project, postgres, "klaviyo", account, schemas)


def test_postgres_row_counts_equal_the_account(full_load: Load):
    expected = expected_counts(full_load.account)
    assert all(expected.values()), f"the test account should fill every stream: {expected}"
    assert table_counts(full_load.postgres, full_load.database) == expected


def test_postgres_primary_keys_are_the_streams_keys(full_load: Load):
    """Upserts merge on these: the tables' primary keys are the streams' key properties."""
    rows = full_load.postgres.query(
        "select tc.table_name, array_agg(kcu.column_name::text order by kcu.ordinal_position) as keys "
        "from information_schema.table_constraints tc join information_schema.key_column_usage kcu "
        "on kcu.constraint_name = tc.constraint_name and kcu.table_schema = tc.table_schema "
        f"where tc.table_schema = '{SCHEMA}' and tc.constraint_type = 'PRIMARY KEY' group by tc.table_name",
        full_load.database,
    )
    keys = {row["table_name"]: row["keys"] for row in rows}
    expected = {stream.name: list(stream.primary_keys) for stream in TAP_STREAMS}
    assert keys == expected


def test_postgres_date_times_hold_the_right_instant(full_load: Load):
    """Every date-time column holds the instant the emulator serves, although the server's TimeZone is not UTC."""
    types = columns(full_load.postgres, full_load.database)
    checked = 0
    for stream, schema in full_load.schemas.items():
        for name, prop in schema["properties"].items():
            if prop.get("format") != "date-time":
                continue
            assert types[(stream, name)] in ("timestamp without time zone", "timestamp with time zone"), (stream, name)
    # Compare values with the emulator's, for a profile's `updated` and an event's `datetime`.
    profile = next(p for p in full_load.account.profiles() if p["attributes"].get("updated"))
    row = full_load.postgres.query(
        f"select extract(epoch from updated)::float8 as e from {SCHEMA}.profiles where id = '{profile['id']}'", full_load.database
    )
    assert row and row[0]["e"] == pytest.approx(epoch(profile["attributes"]["updated"]), abs=1e-3), (profile, row)
    checked += 1
    stream = EVENT_STREAMS[0]
    ids = expected_keys(full_load.account, stream)
    events = {e["id"]: e for e in full_load.account.events() if e["id"] in ids}
    rows = full_load.postgres.query(f"select id, extract(epoch from datetime)::float8 as e from {SCHEMA}.{stream}", full_load.database)
    assert len(rows) == len(events)
    for row in rows:
        assert row["e"] == pytest.approx(epoch(events[row["id"]]["attributes"]["datetime"]), abs=1e-3), row
        checked += 1
    assert checked > 1


@pytest.mark.xfail(
    strict=True,
    reason="target-postgres 0.8.1 maps format date-time to TIMESTAMP (without time zone) and has no setting for "
    "timestamptz; meltano.yml keeps the session in UTC (PGTZ) instead. Passes once the pinned loader creates timestamptz.",
)
def test_postgres_date_times_are_timestamptz(full_load: Load):
    types = columns(full_load.postgres, full_load.database)
    assert types[("profiles", "updated")] == "timestamp with time zone"


def test_postgres_objects_and_arrays_of_objects_are_queryable_jsonb(full_load: Load):
    types = columns(full_load.postgres, full_load.database)
    for stream, schema in full_load.schemas.items():
        for name, prop in schema["properties"].items():
            kinds = set([prop["type"]] if isinstance(prop.get("type"), str) else prop.get("type", []))
            if "object" in kinds or (stream, name) in OBJECT_ARRAYS:
                assert types[(stream, name)] == "jsonb", (stream, name, types[(stream, name)])
    assert not [key for key, kind in types.items() if kind.endswith("[]") and kind.startswith("jsonb")], "no jsonb[] column"

    pg, db = full_load.postgres, full_load.database
    # ->> on an array of objects: the first suppression's reason, as the emulator has it.
    rows = pg.query(f"select id, suppression->0->>'reason' as reason, jsonb_array_length(suppression) as n from {SCHEMA}.global_exclusions", db)
    profiles = {p["id"]: p for p in full_load.account.profiles()}
    assert rows
    for row in rows:
        suppression = profiles[row["id"]]["attributes"]["subscriptions"]["email"]["marketing"]["suppression"]
        assert (row["reason"], row["n"]) == (suppression[0]["reason"], len(suppression)), row
    rows = pg.query(
        f"select id, m->>'id' as message_id from {SCHEMA}.campaigns, jsonb_array_elements(campaign_messages) m "
        "where campaign_messages is not null",
        db,
    )
    assert rows and all(row["message_id"] for row in rows)
    # ->> on an object column.
    rows = pg.query(f"select id, location->>'city' as city from {SCHEMA}.profiles where location->>'city' is not null", db)
    assert rows
    for row in rows[:20]:
        assert row["city"] == profiles[row["id"]]["attributes"]["location"]["city"]


def test_postgres_loader_settings_are_the_targets(full_load: Load):
    """meltano.yml declares only settings target-postgres has, with matching kinds."""
    python = full_load.project.plugin_python("loaders", "target-postgres")
    about = json.loads(subprocess.run(
        [str(python.parent / "target-postgres"), "--about", "--format=json"], capture_output=True, text=True, timeout=120, check=True
    ).stdout)["settings"]["properties"]  # fmt: skip
    loader = next(p for p in yaml.safe_load((REPO / "meltano.yml").read_text())["plugins"]["loaders"] if p["name"] == "target-postgres")
    kinds = {"string": {"string", "options"}, "integer": {"integer"}, "boolean": {"boolean"}, "object": {"object"}}
    for setting in loader["settings"]:
        assert setting["name"] in about, setting["name"]
        types = [t for t in about[setting["name"]]["type"] if t != "null"]
        assert setting["kind"] in kinds[types[0]], setting["name"]
        if "value" in setting:
            assert setting["value"] == about[setting["name"]].get("default"), setting["name"]


def test_postgres_incremental_second_run(project, postgres):
    account = Account.generate(seed=23, size="tiny")
    with Emulator(account, rate_limits=False) as emulator:
        env = postgres_env(project, postgres, "klaviyo_incremental", emulator.base_url)
        project.run("run", "tap-klaviyo", "target-postgres", env=env)
        assert table_counts(postgres, "klaviyo_incremental") == expected_counts(account)
        first_requests = list(emulator.requests)
        assert any(r.path == "/api/events" and not LOWER_BOUND.search(r.query["filter"]) for r in first_requests)
        state = project.state("dev:tap-klaviyo-to-target-postgres:klaviyo_incremental", env=env)["singer_state"]
        first_loaded = loaded_before(postgres, "klaviyo_incremental")

        new = change_account(account)
        emulator.clear_requests()
        project.run("run", "tap-klaviyo", "target-postgres", env=env)
        second_requests = list(emulator.requests)

    assert_second_run_bounded(second_requests, state)
    assert len(second_requests) < len(first_requests), "the second run read fewer pages"
    assert {metric_of(r) for r in second_requests if r.path == "/api/events"}, "the second run read events"
    # Exact counts again: the records the lookback re-read were upserted, not appended.
    assert table_counts(postgres, "klaviyo_incremental") == expected_counts(account)
    for stream, keys in new.items():
        if stream == "list_members":
            rows = postgres.query(f"select list_id, id from {SCHEMA}.{stream}", "klaviyo_incremental")
            assert keys <= {(row["list_id"], row["id"]) for row in rows}, stream
        else:
            rows = postgres.query(f"select id from {SCHEMA}.{stream}", "klaviyo_incremental")
            assert keys <= {row["id"] for row in rows}, stream
    # Rows the second run wrote (upserted) carry a newer _sdc_received_at: the streams read incrementally
    # brought only part of their rows again, the new ones among them.
    rewritten = {
        stream: {row["id"] for row in postgres.query(
            f"select id from {SCHEMA}.{stream} where _sdc_received_at > '{first_loaded}'", "klaviyo_incremental"
        )}
        for stream in (*EVENT_STREAMS, "profiles")
    }  # fmt: skip
    counts = expected_counts(account)
    for stream, ids in rewritten.items():
        assert new[stream] <= ids, stream
        assert len(ids) < counts[stream], f"{stream}: the second run re-read all {counts[stream]} rows"
    newcomer = postgres.query(f"select first_name from {SCHEMA}.profiles where id = '{next(iter(new['profiles']))}'", "klaviyo_incremental")
    assert newcomer == [{"first_name": "Newcomer"}]


def loaded_before(postgres: PostgresServer, database: str) -> str:
    """The newest _sdc_received_at in the database's tables (a UTC timestamp, as text)."""
    tables = [row["table_name"] for row in postgres.query(
        f"select table_name from information_schema.tables where table_schema = '{SCHEMA}'", database
    )]  # fmt: skip
    union = " union all ".join(f"select max(_sdc_received_at) as t from {SCHEMA}.{name}" for name in tables)
    return postgres.query(f"select max(t)::text as t from ({union}) u", database)[0]["t"]


def md5(value: str) -> str:
    return hashlib.md5(value.encode()).hexdigest()


def test_postgres_hashed_extractor_loads_no_plain_email(project, postgres):
    account = Account.generate(seed=23, size="tiny")
    emails = {p["attributes"]["email"] for p in account.profiles() if p["attributes"].get("email")}
    assert emails
    with Emulator(account, rate_limits=False) as emulator:
        env = postgres_env(project, postgres, "klaviyo_hashed", emulator.base_url)
        project.run("run", "tap-klaviyo--hashed", "target-postgres", env=env)

    db = "klaviyo_hashed"
    assert table_counts(postgres, db) == expected_counts(account), "hashing drops no row"
    profiles = {p["id"]: p["attributes"].get("email") for p in account.profiles()}
    for stream in EMAIL_STREAMS:
        rows = postgres.query(f"select id, email from {SCHEMA}.{stream}", db)
        assert rows, stream
        for row in rows:
            want = md5(profiles[row["id"]]) if profiles[row["id"]] else None
            assert row["email"] == want, (stream, row)
    # No profile's email anywhere in the database, in any column of any table (jsonb included).
    tables = [row["table_name"] for row in postgres.query(
        f"select table_name from information_schema.tables where table_schema = '{SCHEMA}'", db
    )]  # fmt: skip
    for table in tables:
        text = postgres.psql(f"select t::text from {SCHEMA}.{table} t", db).lower()
        leaked = [email for email in emails if email.lower() in text]
        assert not leaked, f"{table}: plain emails {leaked[:3]}"


def test_meltano_config_list_weekly_full(project):
    """The inherited extractor parses and resolves: its own config and metadata, the parent's settings and schema."""
    out = project.run("config", "list", "tap-klaviyo--weekly-full", "--all").stdout
    assert re.search(r"^emit_activate_version_messages .* current value: True \(from `meltano.yml`\)$", out, re.MULTILINE), out
    assert re.search(r"^api_url .* current value: 'https://a.klaviyo.com' \(default\)$", out, re.MULTILINE), out
    for stream in EMAIL_STREAMS:
        assert re.search(rf"^_metadata\.{stream}\.replication-method .* current value: 'FULL_TABLE'", out, re.MULTILINE), out
    assert re.search(r"^_schema\.campaigns\.campaign_messages\.type .* \(inherited from 'tap-klaviyo'\)$", out, re.MULTILINE), out
    definition = next(
        p for p in yaml.safe_load((project.root / "meltano.yml").read_text())["plugins"]["extractors"] if p["name"] == "tap-klaviyo--weekly-full"
    )
    assert {stream: rule["replication-method"] for stream, rule in definition["metadata"].items()} == dict.fromkeys(EMAIL_STREAMS, "FULL_TABLE")


def test_postgres_weekly_full_drops_a_removed_list_membership(project, postgres):
    account = Account.generate(seed=23, size="tiny")
    with Emulator(account, rate_limits=False) as emulator:
        env = postgres_env(project, postgres, "klaviyo_weekly", emulator.base_url)
        project.run("run", "klaviyo-weekly-full", env=env)
        db = "klaviyo_weekly"
        counts = table_counts(postgres, db)
        assert {s: counts.get(s) for s in EMAIL_STREAMS} == {s: len(expected_keys(account, s)) for s in EMAIL_STREAMS}

        list_id = next(item["id"] for item in account.lists() if account.list_member_ids(item["id"]))
        profile_id = account.list_member_ids(list_id)[0][0]
        account.remove_list_member(list_id, profile_id)
        project.run("run", "klaviyo-weekly-full", env=env)

    rows = postgres.query(
        f"select id, _sdc_deleted_at from {SCHEMA}.list_members where list_id = '{list_id}' and id = '{profile_id}'", db
    )
    assert rows == [] or rows[0]["_sdc_deleted_at"] is not None, rows
    live = postgres.query(f"select list_id, id from {SCHEMA}.list_members where _sdc_deleted_at is null", db)
    assert {(row["list_id"], row["id"]) for row in live} == expected_keys(account, "list_members")
