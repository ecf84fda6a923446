"""Content streams: templates, universal content, forms, images, tags and tag groups.

(The full sync of every stream equals the account and validates against its schema:
tests/tap_klaviyo/test_streams.py. Here: what the next run brings, and what it costs.)
"""

from __future__ import annotations

import time

import pytest

from tests.conftest import assert_missing_scope_is_named, run_tap, tap_config

CONTENT = ("templates", "universal_content", "forms", "images", "tags", "tag_groups")


def new_ids(result, stream: str, previous_state: dict) -> list[str]:
    """Ids a run emitted beyond the previous bookmark (the record at the bookmark is always read again)."""
    entry = previous_state["bookmarks"][stream]
    key, mark = entry["replication_key"], entry["replication_key_value"]
    return [record["id"] for record in result.records.get(stream, []) if record[key] != mark]


def test_the_next_run_brings_exactly_the_changed_content(emulator, account):
    config = tap_config(emulator, lookback_minutes=0)
    first = run_tap(config, streams=CONTENT)
    template, block, form, image = (
        account.template_rows[3].id, account.universal_content_rows[2].id, account.form_rows[1].id, account.image_rows[4].id
    )
    time.sleep(1.1)  # the first run's end is fixed to the second it started
    account.update_template(template, name="Renamed template")
    account.update_universal_content(block, name="Renamed block")
    account.add_form_version(form)
    account.update_image(image, hidden=True)
    tag = account.add_tag("VIP", lists=[account.list_rows[0].id])
    time.sleep(1.1)

    second = run_tap(config, state=first.state, streams=CONTENT)

    assert new_ids(second, "templates", first.state) == [template]
    assert {r["id"]: r for r in second.records["templates"]}[template]["name"] == "Renamed template"
    assert new_ids(second, "universal_content", first.state) == [block]
    assert new_ids(second, "forms", first.state) == [form]
    assert new_ids(second, "images", first.state) == [image]
    assert {r["id"]: r for r in second.records["images"]}[image]["hidden"] is True
    # Tags and tag groups have no time to filter on: read whole, the new tag with them.
    assert tag in second.ids("tags") and len(second.ids("tags")) == len(account.tag_rows)
    assert len(second.ids("tag_groups")) == len(account.tag_group_rows)


def test_an_unchanged_incremental_run_costs_one_request_per_endpoint(emulator, account):
    config = tap_config(emulator)
    first = run_tap(config, streams=CONTENT)
    before = len(emulator.requests)
    second = run_tap(config, state=first.state, streams=CONTENT)
    paths = [request.path.rstrip("/") for request in emulator.requests[before:]]
    assert sorted(paths) == sorted(
        ["/api/templates", "/api/template-universal-content", "/api/forms", "/api/images", "/api/tags", "/api/tag-groups"]
    )
    for stream in ("templates", "universal_content", "forms", "images"):
        assert new_ids(second, stream, first.state) == [], stream


def test_lists_carry_their_tag_ids(emulator, account):
    result = run_tap(tap_config(emulator), streams=("lists",))
    tagged = {record["id"]: record["tag_ids"] for record in result.records["lists"]}
    for row in account.list_rows:
        assert sorted(tagged[row.id]) == sorted(account.tags_of.get(("list", row.id), []))
    assert any(tagged.values())


@pytest.mark.parametrize(("stream", "scope"), [("templates", "templates:read"), ("universal_content", "templates:read"),
                                               ("forms", "forms:read"), ("images", "images:read"), ("tags", "tags:read")])
def test_a_key_without_the_scope_is_one_line_naming_it(emulator, tmp_path, stream, scope):
    assert_missing_scope_is_named(emulator, tmp_path, stream, scope)
