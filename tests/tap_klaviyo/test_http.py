"""HTTP behaviour: headers, paging, retries, Retry-After, and clear failures."""

from __future__ import annotations

import pytest
import requests

from tap_klaviyo.client import KlaviyoAPIError
from tests.conftest import API_KEY, run_cli, run_tap, tap_config
from tests.tap_klaviyo.expected import expected_keys


def test_requests_carry_klaviyo_headers_and_max_page_sizes(emulator, config):
    run_tap(config, streams=("receive", "profiles", "lists"))
    assert emulator.requests
    for request in emulator.requests:
        headers = {k.lower(): v for k, v in request.headers.items()}
        assert headers["authorization"] == f"Klaviyo-API-Key {API_KEY}"
        assert headers["revision"] == "2026-10-15"  # DEFAULT_REVISION
        assert headers["accept"] == "application/vnd.api+json"
    sizes = {r.path.rstrip("/"): r.query.get("page[size]") for r in emulator.requests}
    assert sizes["/api/events"] == "1000" and sizes["/api/profiles"] == "100" and sizes["/api/lists"] == "10"


def test_next_links_are_followed_without_duplicating_query_parameters(emulator, config):
    run_tap(config, streams=("lists",))
    paged = [r for r in emulator.requests if "page[cursor]" in r.query]
    assert paged, "the tiny account has more lists than one page"


@pytest.mark.parametrize("kind", ["429", "500", "503", "reset", "truncate", "html_503"])
def test_transient_faults_are_retried_and_lose_nothing(emulator, account, config, kind):
    emulator.inject(kind, count=3, path="/api/events")
    result = run_tap(config, streams=("receive",))
    assert set(result.ids("receive")) == expected_keys(account, "receive")


def test_a_stall_past_the_timeout_is_retried(emulator, account):
    emulator.inject("stall", count=1, path="/api/lists", stall_seconds=3)
    result = run_tap(tap_config(emulator, request_timeout=1), streams=("lists",))
    assert set(result.ids("lists")) == expected_keys(account, "lists")


def test_429_waits_for_retry_after(emulator, config):
    emulator.inject("429", count=1, path="/api/lists", retry_after=1)
    run_tap(config, streams=("lists",))
    lists = [r for r in emulator.requests if r.path.startswith("/api/lists")]
    throttled = next(i for i, r in enumerate(lists) if r.status == 429)
    gap = lists[throttled + 1].time - lists[throttled].time
    assert gap >= 1.0


def test_an_outage_fails_in_bounded_time_with_a_clear_message(emulator, tmp_path):
    emulator.inject("503", count=1000, path="/api/lists")
    result = run_cli(input_files={"--config": tap_config(emulator, max_retries=2)}, tmp_path=tmp_path, timeout=60)
    assert result.returncode != 0
    stderr = result.stderr.decode()
    assert "503" in stderr and "gave up after 3 attempts" in stderr
    assert API_KEY not in stderr and API_KEY.encode() not in result.stdout


def test_a_public_key_is_refused_before_any_request(emulator, tmp_path):
    result = run_cli(input_files={"--config": tap_config(emulator, api_key="AbC123")}, tmp_path=tmp_path)
    assert result.returncode == 1
    assert "public key" in result.stderr.decode()
    assert not emulator.requests


def test_a_401_from_klaviyo_names_the_likely_cause(emulator, config):
    from tap_klaviyo.tap import TapKlaviyo

    stream = TapKlaviyo(config=config).streams["lists"]
    response = requests.get(f"{emulator.base_url}/api/lists", headers={"revision": "2026-07-15"}, timeout=10)
    assert response.status_code == 401
    message = stream.response_error_message(response)
    assert message.startswith("Klaviyo answered 401 for GET /api/lists")
    assert "private API key" in message and "public key" in message


def test_403_names_the_missing_scope(emulator, tmp_path):
    key = "pk_noscope_0123456789abcdef"
    result = run_cli(input_files={"--config": tap_config(emulator, api_key=key)}, tmp_path=tmp_path)
    assert result.returncode == 1
    stderr = result.stderr.decode()
    assert "403" in stderr and "scope" in stderr
    assert key not in stderr and "Traceback" not in stderr


def test_a_used_up_quota_pauses_the_bucket_until_the_window_resets(emulator, config):
    """Another integration on the same account can use the quota up: RateLimit-Remaining says so."""
    from tap_klaviyo.tap import TapKlaviyo

    stream = TapKlaviyo(config=config).streams["lists"]
    response = requests.Response()
    response.status_code = 200
    response.headers.update({"RateLimit-Limit": "750", "RateLimit-Remaining": "0", "RateLimit-Reset": "1"})
    stream._observe_quota(response)
    waited = stream.rate_limiter.acquire()
    assert 0.9 <= waited <= 1.5
    response.headers["RateLimit-Remaining"] = "12"
    stream._observe_quota(response)
    assert stream.rate_limiter.acquire() < 0.1  # no new pause, only the gradual release after the last one



def test_proxies_from_the_environment_are_used_and_no_proxy_bypasses_them(emulator, account, monkeypatch):
    """The proxies for api_url are looked up once per stream, not per request, and still honoured."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(KlaviyoAPIError, match="could not be reached"):
        run_tap(tap_config(emulator), streams=("lists",))
    assert not emulator.requests
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    result = run_tap(tap_config(emulator), streams=("lists",))
    assert set(result.ids("lists")) == expected_keys(account, "lists")
