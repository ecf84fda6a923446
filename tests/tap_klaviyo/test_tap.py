"""Settings validation, discovery and the committed catalog."""

from __future__ import annotations

import json

import pytest

from tests.conftest import API_KEY, REPO, run_cli, run_tap, tap_config


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"api_key": ""}, "api_key is empty"),
        ({"api_key": "AbC123"}, "public key"),
        ({"api_key": "sk_live_123456789012"}, "not a Klaviyo private API key"),
        ({"revision": "2024-10-15"}, "revision"),
        ({"revision": "2027-01-15"}, "revision"),
        ({"start_date": "next tuesday"}, "start_date"),
        ({"start_date": "2999-01-01T00:00:00Z"}, "start_date 2999-01-01T00:00:00Z is in the future"),
        ({"api_url": "ftp://example.com"}, "api_url"),
        ({"max_workers": 0}, "max_workers must be at least 1"),
        ({"max_workers": "eight"}, "max_workers"),
        ({"lookback_minutes": -5}, "lookback_minutes"),
    ],
)
def test_bad_settings_fail_with_a_clear_line_and_no_request(emulator, tmp_path, override, message):
    config = tap_config(emulator) | override
    result = run_cli(input_files={"--config": config}, tmp_path=tmp_path)
    stderr = result.stderr.decode()
    assert result.returncode == 1
    assert message in stderr
    assert "Traceback" not in stderr
    assert not emulator.requests
    assert result.stdout == b""


def test_a_missing_api_key_is_a_config_error(tmp_path):
    result = run_cli(input_files={"--config": {"api_url": "http://127.0.0.1:9"}}, tmp_path=tmp_path)
    assert result.returncode == 1
    assert "api_key" in result.stderr.decode()


def test_catalog_json_is_what_discover_prints(tmp_path):
    result = run_cli("--discover", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr.decode()
    assert json.loads(result.stdout) == json.loads((REPO / "catalog.json").read_text()), (
        "catalog.json is stale: regenerate it with `tap-klaviyo --discover > catalog.json`"
    )


def test_deselected_streams_are_not_requested(emulator, config):
    result = run_tap(config, streams=("lists",))
    assert set(result.records) == {"lists"}
    assert {r.path.rstrip("/") for r in emulator.requests} == {"/api/lists"}


def test_the_api_key_never_appears_in_output(emulator, tmp_path):
    result = run_cli(input_files={"--config": tap_config(emulator)}, tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert API_KEY.encode() not in result.stdout
    assert API_KEY.encode() not in result.stderr
    about = run_cli("--about", input_files={"--config": tap_config(emulator)}, tmp_path=tmp_path)
    assert API_KEY.encode() not in about.stdout + about.stderr
