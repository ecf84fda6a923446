"""HTTP behaviour: auth, revisions, routing, envelopes, headers, keep-alive, request log."""

from __future__ import annotations

import http.client
from datetime import date, datetime, timezone

import pytest
import requests

from klaviyo_emulator.errors import ApiError
from klaviyo_emulator.server import check_revision

from .conftest import API_KEY, headers

ENDPOINT_PATHS = [
    "/api/lists", "/api/segments", "/api/campaigns?filter=equals(messages.channel,'email')", "/api/profiles", "/api/metrics",
    "/api/events", "/api/flows", "/api/templates", "/api/tags", "/api/catalog-items",
]  # fmt: skip


def error_of(response: requests.Response) -> dict:
    assert response.headers["Content-Type"] == "application/vnd.api+json"
    body = response.json()
    assert set(body) == {"errors"} and len(body["errors"]) == 1
    return body["errors"][0]


@pytest.mark.parametrize("path", ENDPOINT_PATHS)
def test_every_endpoint_serves_jsonapi_with_and_without_trailing_slash(client, path):
    base, _, query = path.partition("?")
    for p in (path, base + "/" + ("?" + query if query else "")):
        r = client.get(p)
        assert r.status_code == 200, r.text
        assert r.headers["Content-Type"] == "application/vnd.api+json"
        doc = r.json()
        assert doc["data"], p
        assert set(doc["links"]) == {"self", "next", "prev"}
        for item in doc["data"]:
            assert {"type", "id", "attributes", "links"} <= set(item)
            assert item["links"]["self"].startswith(client.base_url)


def test_member_endpoints(client, account):
    list_id = account.list_rows[0].id
    segment_id = account.segment_rows[0].id
    for path in (f"/api/lists/{list_id}/profiles", f"/api/lists/{list_id}/relationships/profiles", f"/api/segments/{segment_id}/profiles/"):
        r = client.get(path)
        assert r.status_code == 200, r.text
        assert r.json()["data"]
    assert error_of(client.get("/api/lists/NOPE00/profiles"))["code"] == "not_found"


@pytest.mark.parametrize("path", ["/api/nothing", "/api/profiles/x/y/z", "/", "/api/list"])
def test_unknown_paths_are_jsonapi_404(client, path):
    r = client.get(path)
    assert r.status_code == 404
    assert error_of(r)["code"] == "not_found"


def test_write_methods_are_405(client):
    r = client.session.post(client.base_url + "/api/lists", json={})
    assert r.status_code == 405
    assert error_of(r)["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "authorization",
    [None, "Klaviyo-API-Key AbC123", "Bearer pk_abcdefghijklmnop", "Klaviyo-API-Key sk_abcdefghijklmnop", "Klaviyo-API-Key pk_short", "pk_abcdefghijklmnop"],
)
def test_bad_credentials_are_401_with_the_verbatim_body(emulator, authorization):
    h = headers()
    del h["Authorization"]
    if authorization:
        h["Authorization"] = authorization
    r = requests.get(emulator.base_url + "/api/lists", headers=h)
    assert r.status_code == 401
    err = error_of(r)
    assert err["code"] == "not_authenticated"
    assert err["title"] == "Authentication credentials were not provided."
    assert err["detail"] == "Missing or invalid private key."
    assert err["source"] == {"pointer": "/data/"}
    assert err["status"] == 401


def test_forbidden_key_prefix_is_403(emulator):
    r = requests.get(emulator.base_url + "/api/events", headers=headers(key="pk_noscope_abcdefghij"))
    assert r.status_code == 403
    assert error_of(r)["code"] == "permission_denied"


def test_revision_header_rules(fresh):
    emulator, _ = fresh
    emulator.account.set_clock(datetime(2026, 11, 23, tzinfo=timezone.utc))
    url = emulator.base_url + "/api/lists"
    missing = requests.get(url, headers=headers(revision=None))
    assert missing.status_code == 400 and error_of(missing)["code"] == "invalid"
    assert requests.get(url, headers=headers(revision="banana")).status_code == 400
    unknown = requests.get(url, headers=headers(revision="2026-02-01"))
    assert unknown.status_code == 404 and error_of(unknown)["detail"] == "No valid revisions found for method"
    retired = requests.get(url, headers=headers(revision="2024-10-15"))
    assert retired.status_code == 400 and "retired" in error_of(retired)["detail"]
    for revision in ("2026-01-15", "2026-04-15", "2026-07-15", "2026-10-15", "2026-07-15.pre"):
        assert requests.get(url, headers=headers(revision=revision)).status_code == 200, revision


def test_revision_support_window_is_two_years():
    assert check_revision("2025-01-15", today=date(2026, 11, 23)) == "2025-01-15"
    with pytest.raises(ApiError):
        check_revision("2025-01-15", today=date(2027, 1, 15))


def test_http11_keep_alive_reuses_one_connection(emulator):
    conn = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=5)
    conn.connect()
    sock = conn.sock
    for _ in range(3):
        conn.request("GET", "/api/tags", headers=headers())
        response = conn.getresponse()
        assert response.status == 200 and response.version == 11 and not response.will_close
        response.read()
    assert conn.sock is sock
    conn.close()


def test_request_log(fresh):
    emu, client = fresh
    emu.clear_requests()
    for _ in range(3):
        assert client.get("/api/lists", {"sort": "-name"}).status_code == 200
    log = emu.requests
    assert [(r.method, r.path, r.query, r.status) for r in log] == [("GET", "/api/lists", {"sort": "-name"}, 200)] * 3
    assert log[0].headers["Authorization"] == f"Klaviyo-API-Key {API_KEY}"
    emu.clear_requests()
    assert emu.requests == []
