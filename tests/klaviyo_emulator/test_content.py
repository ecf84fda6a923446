"""Content area: templates, universal content, forms and versions, images, tags and tag groups."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from .checks import check_filters, check_paging, check_sorts, ids

UTC = timezone.utc

SIMPLE = [  # path, page size for the paging check
    ("/api/templates", 5),
    ("/api/template-universal-content", 3),
    ("/api/forms", 2),
    ("/api/images", 4),
    ("/api/tags", 3),
    ("/api/tag-groups", 2),
]


@pytest.mark.parametrize("path,size", SIMPLE, ids=[p for p, _ in SIMPLE])
def test_paging_filters_and_sorts(client, path, size):
    everything, docs = client.all_pages(path, {})
    expected = [r["id"] for r in everything]
    assert len(expected) == len(set(expected)) >= 2
    check_paging(client, path, path, expected, size=size)
    check_filters(client, path, path, everything)
    check_sorts(client, path, path, expected, size=size)


def test_form_versions_paging_filters_and_sorts(client, account):
    form = max(account.form_rows, key=lambda r: len(account.form_versions[r.id]))
    path = f"/api/forms/{form.id}/form-versions"
    everything, _ = client.all_pages(path, {})
    expected = [v.id for v in account.form_versions[form.id]]
    assert len(expected) >= 2 and [r["id"] for r in everything] == expected  # default order: created_at
    check_paging(client, path, "/api/forms/{id}/form-versions", expected, size=1)
    check_filters(client, path, "/api/forms/{id}/form-versions", everything)
    check_sorts(client, path, "/api/forms/{id}/form-versions", expected, size=1)
    assert all(r["relationships"]["form"]["data"] == {"type": "form", "id": form.id} for r in everything)
    assert client.get("/api/forms/NOPE00/form-versions").status_code == 404


def test_generated_content(account):
    assert all(r.attrs["html"].startswith("<html") and r.attrs["text"] for r in account.template_rows)
    types = {r.keys["definition.content_type"] for r in account.universal_content_rows}
    assert types == {"block", "section"}
    assert sum(1 for versions in account.form_versions.values() if len(versions) > 1) >= 2
    assert {r.attrs["status"] for r in account.form_rows} == {"live", "draft"}
    assert {r.attrs["hidden"] for r in account.image_rows} == {True, False} and len({r.attrs["format"] for r in account.image_rows}) == 3
    groups = {r.extra["group"] for r in account.tag_rows}
    assert len(groups) == 3
    kinds = {kind for (kind, _), tags in account.tags_of.items() if tags}
    assert kinds == {"list", "segment", "campaign", "flow"}
    exclusive = {g.id for g in account.tag_group_rows if g.attrs["exclusive"]}
    group_of = {r.id: r.extra["group"] for r in account.tag_rows}
    for tags in account.tags_of.values():
        in_exclusive = [group_of[t] for t in tags if group_of[t] in exclusive]
        assert len(in_exclusive) == len(set(in_exclusive))


def test_tags_include_tag_group(client, account):
    doc = client.get("/api/tags", {"include": "tag-group", "fields[tag-group]": "name,exclusive"}).json()
    groups = {r["id"]: r for r in doc["included"]}
    assert all(r["type"] == "tag-group" and set(r["attributes"]) == {"name", "exclusive"} for r in groups.values())
    for tag in doc["data"]:
        assert tag["relationships"]["tag-group"]["data"]["id"] in groups
        assert {"lists", "segments", "campaigns", "flows"} <= set(tag["relationships"])
    assert client.get("/api/tag-groups", {"include": "tags"}).json()["errors"][0]["source"] == {"parameter": "include"}


def test_template_universal_content_definition_filters(client, account):
    blocks = ids(client, "/api/template-universal-content", {"filter": "equals(definition.content_type,'section')"})
    assert blocks == [r.id for r in account.universal_content_rows if r.keys["definition.type"] == "section"]
    r = client.get("/api/template-universal-content", {"filter": "equals(definition.type,'carousel')"})
    assert r.status_code == 400 and r.json()["errors"][0]["source"] == {"parameter": "filter"}


def test_images_size_takes_integers(client):
    assert client.get("/api/images", {"filter": "greater-than(size,1000.5)"}).status_code == 400
    assert client.get("/api/images", {"filter": "greater-than(size,1000)"}).status_code == 200


def test_content_endpoint_tiers(account):
    from klaviyo_emulator import Emulator

    from .conftest import Client

    with Emulator(account, rate_limits=True) as emu:
        client = Client(emu.base_url)
        assert [client.get("/api/forms").status_code for _ in range(4)] == [200, 200, 200, 429]  # S: 3/s
        assert client.get("/api/images").headers["RateLimit-Limit"] == "150"  # M: 150/m
        assert client.get("/api/template-universal-content").headers["RateLimit-Limit"] == "750"  # L
        assert client.get("/api/tag-groups").headers["RateLimit-Limit"] == "60"


# ------------------------------------------------------------------ mutations
def test_content_mutations_show_on_the_next_read(fresh):
    emu, client = fresh
    account = emu.account
    account.set_clock(datetime(2026, 11, 20, 8, 0, tzinfo=UTC))
    cutoff = "2026-11-01T00:00:00Z"
    template = account.template_rows[3]
    account.update_template(template.id, html="<html><body>v2</body></html>", text="v2")
    (t,) = client.get("/api/templates", {"filter": f"greater-than(updated,{cutoff})"}).json()["data"]
    assert t["id"] == template.id and t["attributes"]["html"] == "<html><body>v2</body></html>" and t["attributes"]["updated"] == "2026-11-20T08:00:00+00:00"

    form = account.form_rows[0]
    before = len(account.form_versions[form.id])
    vid = account.add_form_version(form.id, form_type="flyout", status="live")
    versions = ids(client, f"/api/forms/{form.id}/form-versions", {"sort": "-created_at"})
    assert versions[0] == vid and len(versions) == before + 1
    assert ids(client, "/api/forms", {"filter": f"greater-than(updated_at,{cutoff})"}) == [form.id]
    assert ids(client, f"/api/forms/{form.id}/form-versions", {"filter": "equals(form_type,'flyout')"})[-1] == vid

    lst, flow = account.list_rows[2], account.flow_rows[1]
    tag_id = account.add_tag("Added between syncs", group_id="3", lists=[lst.id], flows=[flow.id])
    assert tag_id in ids(client, "/api/tags", {"filter": "equals(name,'Added between syncs')"})
    doc = client.get("/api/lists", {"filter": f'any(id,["{lst.id}"])', "include": "tags"}).json()
    assert tag_id in [t["id"] for t in doc["data"][0]["relationships"]["tags"]["data"]]
    assert tag_id in {r["id"] for r in doc["included"]}
    winter = next(r.id for r in account.tag_rows if r.attrs["name"] == "Winter")
    first_flow = account.flow_rows[0].id  # tagged "Summer" by construction; Seasons is an exclusive group
    with pytest.raises(ValueError):
        account.tag_resources(winter, flows=[first_flow])
    block = account.universal_content_rows[0]
    account.update_universal_content(block.id, name="Renamed block", definition={"content_type": "block", "type": "spacer", "data": None})
    (u,) = client.get("/api/template-universal-content", {"filter": f"greater-than(updated,{cutoff})"}).json()["data"]
    assert u["id"] == block.id and u["attributes"]["name"] == "Renamed block" and u["attributes"]["updated"] == "2026-11-20T08:00:00.000000+00:00"
    assert block.id in ids(client, "/api/template-universal-content", {"filter": "equals(definition.type,'spacer')"})
    image = account.image_rows[0]
    account.update_image(image.id, hidden=True, name="retired.png")
    (img,) = client.get("/api/images", {"filter": f"greater-than(updated_at,{cutoff})"}).json()["data"]
    assert img["id"] == image.id and img["attributes"]["hidden"] is True and img["attributes"]["name"] == "retired.png"
    with pytest.raises(KeyError):
        account.add_tag("x", group_id="99")
    with pytest.raises(KeyError):
        account.update_template(template.id, colour="red")
    with pytest.raises(ValueError):
        account.add_form_version(form.id, form_type="billboard")
