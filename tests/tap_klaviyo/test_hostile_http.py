"""Hostile conditions at the HTTP layer: cancellation during waits, 429 storms, looping or foreign
next links, error bodies quoting the key, unreachable hosts and bodies no fast decoder accepts."""

from __future__ import annotations

import contextlib
import io
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import msgspec
import pytest

from klaviyo_emulator import Account, Emulator
from tests.conftest import API_KEY, catalog_for, run_cli, run_tap, tap_config
from tests.tap_klaviyo.expected import expected_keys


def error_lines(stderr: bytes) -> list[str]:
    return [line for line in stderr.decode().splitlines() if "| ERROR" in line]


def sync_in_process(config: dict, streams: tuple[str, ...]):
    """A tap and a function running its sync with stdout captured (for tests that hold the tap)."""
    from tap_klaviyo.tap import TapKlaviyo

    tap = TapKlaviyo(config=config, catalog=catalog_for(*streams))

    def sync() -> None:
        stdout = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
        with contextlib.redirect_stdout(stdout):
            tap.sync_all()

    return tap, sync


# --- 5. Cancel during retries -----------------------------------------------------------


class ThrottledAfterFirstEventsPage(Emulator):
    """Serves the first /api/events page, then answers 429 with Retry-After: 40 (the window reader's workers)."""

    served = 0

    def respond(self, method, path, params, headers):
        if path.startswith("/api/events"):
            self.served += 1
            if self.served > 1:
                return 429, {"Content-Type": "application/vnd.api+json", "Retry-After": "40"}, b'{"errors":[]}'
        return super().respond(method, path, params, headers)


@pytest.mark.parametrize("stream", ["lists", "receive"])
def test_cancel_during_a_long_retry_after_stops_the_sync_at_once(account, stream):
    """lists: the plain reader waits out a 429; receive: four window workers wait on the paused bucket."""
    from tap_klaviyo.client import SyncCancelled

    with ThrottledAfterFirstEventsPage(account) as emulator:
        if stream == "lists":
            emulator.inject("429", count=1, path="/api/lists", retry_after=40)
        tap, sync = sync_in_process(tap_config(emulator, max_workers=4), (stream,))
        timer = threading.Timer(1.0, tap.cancelled.set)
        timer.start()
        started = time.time()
        with pytest.raises(SyncCancelled):
            sync()
        elapsed = time.time() - started
        served = len(emulator.requests)
        time.sleep(0.5)
        assert len(emulator.requests) == served, "no request after the cancel"
    assert elapsed < 2.0, elapsed
    assert all(r.time < started + 1.0 for r in emulator.requests)
    assert any(r.status == 429 for r in emulator.requests)


# --- 9. 429 storms with many workers ----------------------------------------------------


@pytest.mark.parametrize("respect_rate_limits", [True, False])
def test_fifty_workers_against_a_thirtieth_of_the_limits_complete(respect_rate_limits):
    """10 event requests/s for 50 workers: 429s come in every round, and none may use up a retry
    (max_retries 1 fails this sync when they do, as they did)."""
    account = Account.generate(seed=7, size="tiny", events=20_000)
    with Emulator(account, rate_limits=True, rate_limit_scale=0.03) as emulator:
        config = tap_config(emulator, max_workers=50, max_retries=1, respect_rate_limits=respect_rate_limits)
        result = run_tap(config, streams=("receive",))
        throttled = sum(1 for r in emulator.requests if r.status == 429)
    ids = result.ids("receive")
    assert set(ids) == expected_keys(account, "receive") and len(ids) == len(set(ids))
    assert throttled, "the scaled-down limits were hit"


def test_a_pause_is_not_pushed_out_by_later_429s_and_releases_gradually():
    from tap_klaviyo.ratelimit import RateLimiter, Tier

    clock = [0.0]
    limiter = RateLimiter(Tier(burst=4, steady=1000), paced=False, clock=lambda: clock[0], sleep=lambda s: None)
    limiter.pause(40)
    clock[0] = 10.0
    limiter.pause(40)  # another worker's 429, with the same Retry-After: ends at 50, not 80
    assert limiter._wait_time(10.0) == pytest.approx(40)
    clock[0] = 50.0
    assert limiter.acquire() == 0
    assert limiter._wait_time(50.0) == pytest.approx(0.25), "the next waiter goes 1/burst s later"


# --- Unreachable api_url, retries logged once, the right stream blamed ------------------------


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_refused_first_connection_fails_fast_with_a_hint(tmp_path):
    api_url = f"http://127.0.0.1:{closed_port()}"
    config = {"api_key": API_KEY, "api_url": api_url, "backoff_base_seconds": 1}  # max_retries: default 8
    started = time.monotonic()
    result = run_cli(input_files={"--config": config, "--catalog": catalog_for("bounce")}, tmp_path=tmp_path)
    elapsed = time.monotonic() - started
    stderr = result.stderr.decode()
    assert result.returncode == 1
    last = error_lines(result.stderr)[-1]
    assert f"could not be reached at {api_url}" in last and "GET /api/metrics after 3 attempts" in last, last
    assert "stream 'metrics'" in last and "api_url" in last.split("attempts", 1)[1]
    assert len([line for line in stderr.splitlines() if "Retrying /api/metrics" in line]) == 2
    assert "Backing off" not in stderr
    assert elapsed < 10, elapsed  # interpreter start-up included


def test_an_outage_of_metrics_names_metrics_not_the_event_stream(emulator, tmp_path):
    emulator.inject("503", count=1000, path="/api/metrics")
    config = tap_config(emulator, max_retries=2)
    result = run_cli(input_files={"--config": config, "--catalog": catalog_for("bounce")}, tmp_path=tmp_path)
    assert result.returncode == 1
    last = error_lines(result.stderr)[-1]
    assert "Klaviyo answered 503 for GET /api/metrics" in last and "stream 'metrics'" in last, last
    stderr = result.stderr.decode()
    assert len([line for line in stderr.splitlines() if "Retrying /api/metrics" in line]) == 2
    assert "Backing off" not in stderr


def test_a_403_detail_ending_in_a_period_is_joined_with_one(emulator):
    import requests

    from tap_klaviyo.tap import TapKlaviyo

    stream = TapKlaviyo(config=tap_config(emulator)).streams["lists"]
    headers = {"revision": "2026-07-15", "Authorization": "Klaviyo-API-Key pk_noscope_0123456789abcdef"}
    response = requests.get(f"{emulator.base_url}/api/lists", headers=headers, timeout=10)
    assert response.status_code == 403
    message = stream.response_error_message(response)
    assert "perform this action. The api_key lacks a read scope" in message and ".." not in message, message


# --- 8. The key echoed in error bodies --------------------------------------------------

SECRET = API_KEY.removeprefix("pk_")
ECHOES = {
    "plain": f"Invalid key {API_KEY}.",
    "percent-encoded": f"Invalid key {API_KEY.replace('_', '%5F')} in /api/lists?key={API_KEY.replace('_', '%5f')}",
    "partial": f"Key starting {API_KEY[:-4]} and ending {SECRET[4:]} is not valid.",
}


def assert_key_absent(output: bytes) -> None:
    text = output.decode(errors="replace")
    assert API_KEY not in text and API_KEY.replace("_", "%5F") not in text and API_KEY.replace("_", "%5f") not in text
    leaked = [SECRET[i : i + 12] for i in range(len(SECRET) - 11) if SECRET[i : i + 12] in text]
    assert not leaked, leaked


@pytest.mark.parametrize("status", [400, 401, 500])
@pytest.mark.parametrize("echo", list(ECHOES))
def test_an_error_body_quoting_the_key_never_prints_it(emulator, tmp_path, monkeypatch, status, echo):
    body = {"errors": [{"status": status, "code": "x", "title": "Error", "detail": ECHOES[echo]}]}
    emulator.script("/api/lists", status, body, count=3)
    config = tap_config(emulator, max_retries=2)
    for log_level in ("INFO", "DEBUG"):
        monkeypatch.setenv("LOGLEVEL", log_level)
        result = run_cli(input_files={"--config": config, "--catalog": catalog_for("lists")}, tmp_path=tmp_path)
        assert result.returncode == 1
        assert (b"| DEBUG" in result.stderr) == (log_level == "DEBUG")
        assert f"Klaviyo answered {status} for GET /api/lists" in error_lines(result.stderr)[-1]
        assert "***" in error_lines(result.stderr)[-1]
        assert_key_absent(result.stdout)
        assert_key_absent(result.stderr)
        emulator.script("/api/lists", status, body, count=3)


def test_redact_replaces_long_runs_of_the_secret_in_any_encoding():
    from tap_klaviyo.client import redact

    assert redact(f"bad {API_KEY}.", API_KEY) == "bad pk_***."
    assert redact(API_KEY.replace("_", "%5F"), API_KEY) == "pk%5F***"
    assert redact("%70%6B%5F%74%65%73%74%30%31%32%33", API_KEY) == "%70%6B%5F***"
    assert redact("page%5Bsize%5D=100&sort=datetime", API_KEY) == "page%5Bsize%5D=100&sort=datetime"
    assert re.fullmatch(r"prefix pk_\*\*\* suffix \*\*\*", redact(f"prefix {API_KEY[:12]} suffix {SECRET[-10:]}", API_KEY))


# --- 6. A links.next that loops back --------------------------------------------------------


@pytest.mark.parametrize("back_to", ["itself", "the first page"])
def test_a_next_link_back_to_a_visited_page_fails_the_stream_in_one_line(emulator, tmp_path, back_to):
    first_page: list[str] = []

    def loop(url: str, next_url: str | None) -> str:
        if back_to == "itself":
            return url
        first_page.append(url)
        return next_url if len(first_page) == 1 else first_page[0]

    emulator.rewrite_next("/api/lists", loop, count=2)
    result = run_cli(input_files={"--config": tap_config(emulator), "--catalog": catalog_for("lists")}, tmp_path=tmp_path)
    assert result.returncode == 1
    last = error_lines(result.stderr)[-1]
    assert "links.next for GET /api/lists (stream 'lists') leads back to a page already read" in last, last
    assert "Traceback" not in result.stderr.decode()
    assert len([r for r in emulator.requests if r.path == "/api/lists"]) == (1 if back_to == "itself" else 2)


# --- 7. The key sent to another host --------------------------------------------------------


class RecordingServer(ThreadingHTTPServer):
    """A server on another port that records each request's Authorization header."""

    def __init__(self) -> None:
        self.seen: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.seen.append(self.headers.get("Authorization"))
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, args=(0.05,), daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


def test_a_next_link_to_another_host_is_never_requested(emulator, tmp_path):
    with RecordingServer() as elsewhere:
        port = elsewhere.server_address[1]
        emulator.rewrite_next("/api/lists", lambda url, next_url: next_url.replace(f":{emulator.port}/", f":{port}/"))
        config = tap_config(emulator)
        result = run_cli(input_files={"--config": config, "--catalog": catalog_for("lists")}, tmp_path=tmp_path)
        assert elsewhere.seen == [], "no request at all reaches the other host"
    assert result.returncode == 1
    last = error_lines(result.stderr)[-1]
    assert f"points to http://127.0.0.1:{port}, not to api_url {emulator.base_url}" in last, last
    assert "Traceback" not in result.stderr.decode()


def test_a_relative_next_link_is_resolved_against_api_url(emulator, account, config):
    emulator.rewrite_next("/api/lists", lambda url, next_url: next_url and next_url.removeprefix(emulator.base_url), count=100)
    result = run_tap(config, streams=("lists",))
    assert set(result.ids("lists")) == expected_keys(account, "lists")
    assert len([r for r in emulator.requests if r.fault == "next_link"]) > 1


# --- 10. One bad value must not block a stream ----------------------------------------------

MAP = {"receive": {"subject": "event_properties.get('Subject')"}}


class OneBadValue(Emulator):
    """Puts `bad` (raw JSON bytes) into the first event of the first events page, as
    event_properties["bad"] or, with `whole`, as event_properties itself."""

    def __init__(self, account, bad: bytes, whole: bool = False) -> None:
        super().__init__(account)
        self.bad, self.whole, self.spoiled_id = bad, whole, None

    def respond(self, method, path, params, headers):
        status, response_headers, body = super().respond(method, path, params, headers)
        if path == "/api/events" and status == 200 and self.spoiled_id is None:
            document = msgspec.json.decode(body)
            first = document["data"][0]
            self.spoiled_id = first["id"]
            if self.whole:
                first["attributes"]["event_properties"] = "__BAD__"
            else:
                first["attributes"]["event_properties"]["bad"] = "__BAD__"
            body = msgspec.json.encode(document).replace(b'"__BAD__"', self.bad)
        return status, response_headers, body


def sync_with_warnings(emulator, caplog, stream_maps):
    config = tap_config(emulator, max_retries=1, **({"stream_maps": stream_maps} if stream_maps else {}))
    with caplog.at_level("WARNING"):
        result = run_tap(config, streams=("receive",))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    return result, warnings


@pytest.mark.parametrize("stream_maps", [None, MAP], ids=["passthrough", "stream map"])
@pytest.mark.parametrize(
    ("bad", "emitted", "warned"),
    [
        (rb'"x\ud800y"', "x\ufffdy", True),  # a lone surrogate escape
        (b'"x\xff\xfey"', "x\ufffd\ufffdy", True),  # invalid UTF-8
        (b"NaN", None, True),  # Python's json accepts it
    ],
    ids=["lone surrogate", "invalid UTF-8", "NaN"],
)
def test_a_value_python_json_accepts_passes_with_a_warning(account, caplog, stream_maps, bad, emitted, warned):
    with OneBadValue(account, bad) as emulator:
        result, warnings = sync_with_warnings(emulator, caplog, stream_maps)
    assert set(result.ids("receive")) == expected_keys(account, "receive")
    record = next(r for r in result.records["receive"] if r["id"] == emulator.spoiled_id)
    if stream_maps is None:
        assert record["event_properties"]["bad"] == emitted
    assert any("'receive'" in w and emulator.spoiled_id in w for w in warnings) == warned, warnings


@pytest.mark.parametrize("stream_maps", [None, MAP], ids=["passthrough", "stream map"])
def test_a_number_beyond_a_double_does_not_fail_the_page(account, caplog, stream_maps):
    """Written through as received by the passthrough decoder; null, with a warning, under a map."""
    with OneBadValue(account, b"1e400") as emulator:
        result, warnings = sync_with_warnings(emulator, caplog, stream_maps)
    assert set(result.ids("receive")) == expected_keys(account, "receive")
    assert any(emulator.spoiled_id in w and "emitted as null" in w for w in warnings) == bool(stream_maps)


@pytest.mark.parametrize("stream_maps", [None, MAP], ids=["passthrough", "stream map"])
@pytest.mark.parametrize("bad", [b'"text"', b"[1, 2]", b"42"])
def test_event_properties_that_are_not_an_object_skip_the_record_with_a_warning(account, caplog, stream_maps, bad):
    with OneBadValue(account, bad, whole=True) as emulator:
        result, warnings = sync_with_warnings(emulator, caplog, stream_maps)
    assert set(result.ids("receive")) == expected_keys(account, "receive") - {emulator.spoiled_id}
    assert any(f"record {emulator.spoiled_id} skipped: event_properties is a JSON" in w for w in warnings), warnings


def test_a_body_cut_short_is_still_retried(emulator, account, config):
    emulator.script("/api/events", 200, b'{"data": [{"id": "x", "attributes": {"event_properties": {"a": ')
    result = run_tap(config, streams=("receive",))
    assert set(result.ids("receive")) == expected_keys(account, "receive")
