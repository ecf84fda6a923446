"""The API key never leaves the Authorization header: not in logs (even at DEBUG), exception
texts, request URLs, STATE, or `--about`. The CLI paths that log the most are run and every
byte they print is grepped for the key (and for its distinctive tail, in case of truncation).
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
import requests

from tests.conftest import REPO, catalog_for, run_tap, tap_config

SECRET = "pk_s3cretKEYdoNotLeak0123456789abc"
TAIL = SECRET[-12:]


def leaks(*texts: bytes | str) -> list[str]:
    found = []
    for text in texts:
        text = text.decode(errors="replace") if isinstance(text, bytes) else text
        for needle in (SECRET, TAIL):
            if needle in text:
                at = text.index(needle)
                found.append(text[max(0, at - 150) : at + 50])
    return found


def cli(tmp_path, *args: str, config: dict | None = None, catalog: dict | None = None, env: dict | None = None):
    argv = [sys.executable, "-m", "tap_klaviyo", *args]
    if config is not None:
        (tmp_path / "config.json").write_text(__import__("json").dumps(config))
        argv += ["--config", str(tmp_path / "config.json")]
    if catalog is not None:
        (tmp_path / "catalog.json").write_text(__import__("json").dumps(catalog))
        argv += ["--catalog", str(tmp_path / "catalog.json")]
    environment = {**os.environ, **(env or {})}
    return subprocess.run(argv, capture_output=True, timeout=120, check=False, cwd=REPO, env=environment)


@pytest.fixture
def secret_config(emulator):
    return tap_config(emulator, api_key=SECRET, max_retries=2)


def test_a_debug_sync_with_retries_and_a_failure_never_prints_the_key(emulator, secret_config, tmp_path):
    emulator.inject("503", count=1, path="/api/lists")
    emulator.inject("reset", count=1, path="/api/events")
    emulator.inject("truncate", count=1, path="/api/profiles")
    emulator.inject("429", count=1, path="/api/lists", retry_after=0)
    emulator.inject("500", count=50, path="/api/campaigns")  # outlasts the retries: the run fails
    catalog = catalog_for("lists", "receive", "profiles", "campaigns")
    result = cli(tmp_path, config=secret_config, catalog=catalog, env={"LOGLEVEL": "DEBUG"})
    stderr = result.stderr.decode()
    assert result.returncode == 1 and "Retrying" in stderr and "DEBUG" in stderr, stderr[-2000:]
    assert not leaks(result.stdout, result.stderr)
    authorizations = {r.headers.get("Authorization") for r in emulator.requests}
    assert authorizations == {f"Klaviyo-API-Key {SECRET}"}, "the key is sent, in the header only"
    for request in emulator.requests:
        assert not leaks(request.path, repr(request.query)), "never in the URL"


@pytest.mark.parametrize(
    "args", [("--about",), ("--about", "--format", "json"), ("--about", "--format", "markdown"), ("--discover",), ("--version",)]
)
def test_about_discover_and_version_never_print_the_key(secret_config, tmp_path, args):
    result = cli(tmp_path, *args, config=secret_config, env={"LOGLEVEL": "DEBUG"})
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert not leaks(result.stdout, result.stderr)


@pytest.mark.parametrize(
    "override",
    [
        {"api_key": [SECRET]},  # wrong type: the SDK's schema error quotes the value; the tap redacts it
        {"api_key": {"key": SECRET}},
        {"api_key": SECRET + "!"},  # malformed
        {"api_key": " " + SECRET + " x"},
        {"revision": "1999-01-01"},
        {"api_url": "http://127.0.0.1:9"},
    ],
)
def test_settings_errors_never_print_the_key(emulator, secret_config, tmp_path, override):
    result = cli(tmp_path, config=secret_config | override, env={"LOGLEVEL": "DEBUG"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr.decode()
    assert not leaks(result.stdout, result.stderr)


def test_a_401_and_a_403_never_print_the_key(emulator, tmp_path):
    forbidden = "pk_noscope_" + TAIL + "0000"
    result = cli(tmp_path, config=tap_config(emulator, api_key=forbidden), catalog=catalog_for("lists"))
    assert result.returncode == 1 and "403" in result.stderr.decode()
    assert forbidden not in (result.stdout + result.stderr).decode()
    assert not leaks(result.stdout, result.stderr)


@pytest.mark.parametrize("kind", ["401", "403", "500", "429", "reset", "truncate", "html_503"])
def test_klaviyo_api_error_texts_never_contain_the_key(emulator, caplog, kind):
    from tap_klaviyo.client import KlaviyoAPIError

    key = SECRET
    if kind == "403":
        key = "pk_noscope_" + SECRET[3:]
    elif kind != "401":
        emulator.inject(kind, count=100, path="/api/lists", retry_after=0)
    config = tap_config(emulator, api_key=key, max_retries=1)
    if kind == "401":
        emulator.forbidden_key_prefix = None
        config["api_url"] = emulator.base_url
        # The emulator accepts any well-formed key: refuse this one as Klaviyo refuses a revoked key.
        def refuse(authorization):
            from klaviyo_emulator.errors import ApiError

            raise ApiError(401, "not_authenticated", "Missing or invalid private key.", {"pointer": "/data/"})

        emulator._authenticate = refuse
    caplog.set_level(logging.DEBUG)
    with pytest.raises(KlaviyoAPIError) as info:
        run_tap(config, streams=("lists",))
    texts = [str(info.value), repr(info.value)]
    cause = info.value.__cause__
    while cause is not None:
        texts += [str(cause), repr(cause)]
        response = getattr(cause, "response", None)
        if isinstance(response, requests.Response):
            texts.append(response.url)
        cause = cause.__cause__ or cause.__context__
    assert not leaks(*texts, caplog.text)
    assert leaks(f"xx {key} yy"), "sanity: the checker finds the key when it is there"


def test_state_and_records_never_carry_the_key(emulator, secret_config):
    result = run_tap(secret_config, streams=("lists", "receive"))
    assert result.records and result.state
    assert not leaks(repr(result.messages))
