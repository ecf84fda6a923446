"""Query semantics per endpoint: pagination, filters, sorts, includes, sparse fields and every class of 400."""

from __future__ import annotations

import base64
from urllib.parse import parse_qs, urlsplit

import pytest

PAGED = [
    ("/api/lists", {}, 10),
    ("/api/segments", {}, 10),
    ("/api/metrics", {}, 200),
    ("/api/templates", {}, 10),
    ("/api/catalog-items", {}, 100),
    ("/api/campaigns", {"filter": "equals(messages.channel,'email')", "page[size]": "2"}, 2),
    ("/api/profiles", {"page[size]": "100"}, 100),
    ("/api/events", {"page[size]": "1000"}, 1000),
    ("/api/flows", {"page[size]": "3"}, 3),
    ("/api/tags", {"page[size]": "4"}, 4),
]


@pytest.mark.parametrize("path,params,size", PAGED)
def test_following_next_links_visits_everything_once(client, path, params, size):
    records, docs = client.all_pages(path, params)
    ids = [r["id"] for r in records]
    assert len(docs) >= 2, "the tiny account must span more than one page here"
    assert len(ids) == len(set(ids))
    assert all(len(d["data"]) == size for d in docs[:-1])
    assert 1 <= len(docs[-1]["data"]) <= size
    assert docs[-1]["links"]["next"] is None
    for doc in docs[:-1]:
        nxt = urlsplit(doc["links"]["next"])
        assert nxt.scheme == "http" and nxt.netloc == urlsplit(client.base_url).netloc
        q = parse_qs(nxt.query)
        for key, value in params.items():
            assert q[key] == [value]
        assert base64.urlsafe_b64decode(q["page[cursor]"][0] + "==")  # opaque but well-formed


def test_list_members_pages_of_100(client, account):
    big = max(account.list_rows, key=lambda r: len(account.members[r.id]))
    assert len(account.members[big.id]) > 100
    for suffix in ("profiles", "relationships/profiles"):
        records, docs = client.all_pages(f"/api/lists/{big.id}/{suffix}", {"page[size]": "100"})
        assert [r["id"] for r in records] == [pid for pid, _ in account.list_member_ids(big.id)]
        assert len(docs) >= 2


@pytest.mark.parametrize(
    "path,params,parameter",
    [
        ("/api/profiles", {"filter": "equals(nickname,'x')"}, "filter"),  # unknown field
        ("/api/profiles", {"filter": "greater-or-equal(updated,2025-01-01T00:00:00Z)"}, "filter"),  # real API refuses this
        ("/api/profiles", {"filter": "equals(email,bob@example.com)"}, "filter"),  # unquoted string
        ("/api/profiles", {"filter": "greater-than(updated,'2025-01-01')"}, "filter"),  # quoted datetime
        ("/api/profiles", {"filter": "greater-than(updated,2025-01-01T00:00:00Z"}, "filter"),  # syntax
        ("/api/events", {"filter": "equals(datetime,2025-01-01T00:00:00Z)"}, "filter"),  # bad operator
        ("/api/events", {"filter": "greater-than(timestamp,2025-01-01)"}, "filter"),  # bad value type
        ("/api/lists", {"filter": "equals(name,'Newsletter')"}, "filter"),  # single form where only list is allowed
        ("/api/campaigns", {"filter": "equals(messages.channel,'fax')"}, "filter"),  # enum
        ("/api/campaigns", {}, "filter"),  # channel filter required
        ("/api/campaigns", {"filter": "equals(archived,true)"}, "filter"),
        ("/api/profiles", {"sort": "name"}, "sort"),
        ("/api/events", {"sort": "--datetime"}, "sort"),
        ("/api/metrics", {"sort": "name"}, "sort"),
        ("/api/lists", {"page[size]": "11"}, "page[size]"),
        ("/api/profiles", {"page[size]": "0"}, "page[size]"),
        ("/api/events", {"page[size]": "1001"}, "page[size]"),
        ("/api/events", {"page[size]": "ten"}, "page[size]"),
        ("/api/metrics", {"page[size]": "10"}, "page[size]"),
        ("/api/profiles", {"page[cursor]": "garbage!"}, "page[cursor]"),
        ("/api/campaigns", {"filter": "equals(messages.channel,'sms')", "include": "profiles"}, "include"),
        ("/api/events", {"include": "metric,campaign"}, "include"),
        ("/api/profiles", {"additional-fields[profile]": "subscriptions,lifetime_value"}, "additional-fields[profile]"),
        ("/api/events", {"additional-fields[profile]": "subscriptions"}, "additional-fields[profile]"),
        ("/api/profiles", {"fields[profile]": "email,nickname"}, "fields[profile]"),
        ("/api/profiles", {"fields[event]": "datetime"}, "fields[event]"),
        ("/api/profiles", {"page[number]": "2"}, "page[number]"),
    ],
)
def test_invalid_queries_are_400_with_klaviyo_error_body(client, path, params, parameter):
    r = client.get(path, params)
    assert r.status_code == 400, r.text
    err = r.json()["errors"][0]
    assert err["code"] == "invalid"
    assert err["title"] == "Invalid input."
    assert err["status"] == 400
    assert err["source"] == {"parameter": parameter}
    assert err["links"] == {} and err["meta"] == {}
    if parameter == "filter":
        assert err["detail"].startswith("Invalid filter provided")
