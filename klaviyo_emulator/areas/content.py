"""Content: templates, universal content, forms and form versions, images, tags and tag groups.

Endpoint tables, handlers, generators (scaled by the account's sizes) and mutations.
Tags are attached to lists, segments, campaigns and flows (`Account.tags_of`), at
most one tag per resource from an exclusive tag group.
"""

from __future__ import annotations

from ..core import HandlerBase, Query, from_spec
from ..errors import not_found
from ..resources import T_END, T_START, Row, base62, fmt_us, mix, render_row, ulid

ENDPOINTS = (
    from_spec("/api/templates", "template", "templates", page_length=10, page_size_since="2026-04-15"),
    from_spec("/api/template-universal-content", "template-universal-content", "universal_content"),
    from_spec("/api/forms", "form", "forms", default_sort="created_at"),
    from_spec("/api/forms/{id}/form-versions", "form-version", "form_versions", default_sort="created_at"),
    from_spec("/api/images", "image", "images"),
    from_spec("/api/tags", "tag", "tags", page_length=50, page_size_since="2026-04-15"),
    from_spec("/api/tag-groups", "tag-group", "tag_groups"),
)
TAG_GROUPS = (("1", "Default", False, True), ("2", "Seasons", True, False), ("3", "Channels", False, False))
TAGS = (("Promotions", "1"), ("Newsletter", "1"), ("Holiday", "1"), ("Summer", "2"), ("Winter", "2"), ("Transactional", "1"),
        ("Email Only", "3"), ("SMS First", "3"))  # fmt: skip
TAGGABLE = ("list", "segment", "campaign", "flow")
BLOCKS = ("html", "text", "button", "image", "spacer", "section", "header", "social")
FORM_TYPES = ("popup", "embed", "full_page", "flyout", "banner")
IMAGE_FORMATS = ("png", "jpeg", "gif", "png", "jpeg")
TEMPLATE_ATTRIBUTES = ("name", "editor_type", "html", "text", "amp")


class ContentHandlers(HandlerBase):
    def templates(self, q: Query, base: str) -> bytes:
        data, page, nxt = self.rows_page(q, self.account.template_rows, base, "templates", ())
        for resource, row in zip(data, page):
            del resource["relationships"]
            if "definition" in q.additional and (q.fields.get("template") is None or "definition" in q.fields["template"]):
                resource["attributes"]["definition"] = row.extra["definition"]
        return self.document(q, base, data, nxt)

    def universal_content(self, q: Query, base: str) -> bytes:
        data, _, nxt = self.rows_page(q, self.account.universal_content_rows, base, "template-universal-content", ())
        for resource in data:
            del resource["relationships"]
        return self.document(q, base, data, nxt)

    def forms(self, q: Query, base: str) -> bytes:
        data, _, nxt = self.rows_page(q, self.account.form_rows, base, "forms", ("form-versions",))
        return self.document(q, base, data, nxt)

    def form_versions(self, q: Query, base: str) -> bytes:
        versions = self.account.form_versions.get(q.path_id)
        if versions is None:
            raise not_found(f"A form with id {q.path_id} does not exist.")
        data, page, nxt = self.rows_page(q, versions, base, "form-versions", ("form",))
        for resource, row in zip(data, page):
            rel = resource["relationships"]["form"]
            resource["relationships"]["form"] = {"data": {"type": "form", "id": row.extra["form"]}, **rel}
        return self.document(q, base, data, nxt)

    def images(self, q: Query, base: str) -> bytes:
        data, _, nxt = self.rows_page(q, self.account.image_rows, base, "images", ())
        for resource in data:
            del resource["relationships"]
        return self.document(q, base, data, nxt)

    def tags(self, q: Query, base: str) -> bytes:
        with_group = "tag-group" in q.include
        rel_data = (lambda r: {"tag-group": {"type": "tag-group", "id": r.extra["group"]}}) if with_group else None
        data, page, nxt = self.rows_page(q, self.account.tag_rows, base, "tags", ("tag-group", "lists", "segments", "campaigns", "flows"), rel_data)
        included = []
        if with_group:
            groups = {r.extra["group"] for r in page}
            names = q.fields.get("tag-group")
            included = [self.sparse(self._render_group(g, base), names) for g in self.account.tag_group_rows if g.id in groups]
        return self.document(q, base, data, nxt, included)

    @staticmethod
    def _render_group(row: Row, base: str) -> dict:
        return render_row(row, "tag-group", "tag-groups", base, ("tags",))

    def tag_groups(self, q: Query, base: str) -> bytes:
        data, _, nxt = self.rows_page(q, self.account.tag_group_rows, base, "tag-groups", ("tags",))
        return self.document(q, base, data, nxt)


class ContentData:
    """Account mixin: content generators and mutations."""

    # ---- templates
    def _build_templates(self, n: int) -> None:
        self.template_rows: list[Row] = []
        for i in range(n):
            created = (T_START + i * 9 * 86400) * 1_000_000 if i < 12 else (T_START + mix(self.seed, i, 46) % (T_END - T_START - 120 * 86400)) * 1_000_000
            updated = created + mix(self.seed, i, 43) % (100 * 86400) * 1_000_000
            tid = base62(mix(self.seed, i, 44), 6)
            name = f"Template {i + 1:02d}"
            if i < 12:  # the original twelve, unchanged
                html, text = f"<html><body><h1>{name}</h1></body></html>", name
            else:
                html = (f'<html><head><meta charset="utf-8"><title>{name}</title></head><body><h1>{name}</h1>'
                        f"<p>Hi {{{{ first_name|default:'there' }}}}, new arrivals are in.</p>"
                        '<a href="https://shop.example.com">Shop now</a><p>{% unsubscribe %}</p></body></html>')  # fmt: skip
                text = f"{name}\n\nHi {{{{ first_name|default:'there' }}}}, new arrivals are in.\nShop now: https://shop.example.com\n"
            attrs = {"name": name, "editor_type": ("CODE", "SYSTEM_DRAGGABLE", "USER_DRAGGABLE")[i % 3], "html": html,
                     "text": text, "amp": None, "created": fmt_us(created), "updated": fmt_us(updated)}  # fmt: skip
            definition = {"id": tid, "template_id": tid, "body": {"id": "body", "properties": {}, "sections": [], "styles": {}}, "styles": []} if i % 3 == 1 else None
            self.template_rows.append(Row(tid, attrs, {"id": tid, "name": name, "created": created, "updated": updated}, {"definition": definition}))

    def update_template(self, template_id: str, **attributes) -> None:
        """Change template attributes (name, editor_type, html, text, amp) and bump `updated` to now()."""
        with self.lock:
            row = next((r for r in self.template_rows if r.id == template_id), None)
            if row is None:
                raise KeyError(f"unknown template {template_id!r}")
            for name, value in attributes.items():
                if name not in TEMPLATE_ATTRIBUTES:
                    raise KeyError(f"template attribute {name!r} cannot be updated")
                row.attrs[name] = value
                if name in row.keys:
                    row.keys[name] = value
            self._bump(row)

    # ---- universal content
    def _build_universal_content(self, n: int) -> None:
        self.universal_content_rows: list[Row] = []
        for i in range(n):
            h = mix(self.seed, i, 70)
            created = (T_START + h % (T_END - T_START - 90 * 86400)) * 1_000_000
            updated = created + (h >> 20) % (60 * 86400) * 1_000_000
            block = BLOCKS[i % len(BLOCKS)]
            name = f"{block.replace('_', ' ').title()} block {i + 1}" if block != "section" else f"Footer section {i + 1}"
            definition = self._block_definition(block, i)
            uid = ulid(created // 1000, mix(self.seed, i, 71))
            status = ("completed", "completed", "stale", "never_generated")[h % 4]
            attrs = {"name": name, "definition": definition, "created": fmt_us(created, micro=True), "updated": fmt_us(updated, micro=True),
                     "screenshot_status": status, "screenshot_url": f"https://cdn.example.com/screenshots/{uid}.png" if status != "never_generated" else ""}  # fmt: skip
            keys = {"id": uid, "name": name, "created": created, "updated": updated,
                    "definition.content_type": definition["content_type"], "definition.type": definition["type"]}  # fmt: skip
            self.universal_content_rows.append(Row(uid, attrs, keys))

    @staticmethod
    def _block_definition(block: str, i: int) -> dict:
        display = {"show_on": "all", "visible_check": None, "content_repeat": None}
        if block == "html":
            return {"content_type": "block", "type": "html", "data": {"content": f"<p>Free shipping over $50 (#{i + 1})</p>", "display_options": display}}
        if block == "text":
            return {"content_type": "block", "type": "text", "data": {"content": f"<p>Questions? Reply to this email (#{i + 1}).</p>", "display_options": display,
                                                                       "styles": {"font_size": 14, "color": "#333333", "text_align": "left"}}}  # fmt: skip
        if block == "section":
            return {"content_type": "section", "type": "section", "data": None}
        if block == "button":
            return {"content_type": "block", "type": "button", "data": {"text": "Shop now", "url": "https://shop.example.com"}}
        if block == "image":
            return {"content_type": "block", "type": "image", "data": {"src": f"https://cdn.example.com/images/banner-{i + 1}.png", "alt_text": "Banner"}}
        return {"content_type": "block", "type": block, "data": None}

    def update_universal_content(self, content_id: str, name: str | None = None, definition: dict | None = None) -> None:
        """Rename a universal content block and/or replace its definition; bumps `updated` to now()."""
        with self.lock:
            row = next((r for r in self.universal_content_rows if r.id == content_id), None)
            if row is None:
                raise KeyError(f"unknown universal content {content_id!r}")
            if name is not None:
                row.attrs["name"] = row.keys["name"] = name
            if definition is not None:
                if definition.get("content_type") not in ("block", "section") or "type" not in definition:
                    raise ValueError("a definition needs content_type block|section and a type")
                row.attrs["definition"] = definition
                row.keys["definition.content_type"], row.keys["definition.type"] = definition["content_type"], definition["type"]
            row.attrs["screenshot_status"] = "stale"
            self._bump(row, micro=True)

    # ---- forms
    def _build_forms(self, n: int) -> None:
        self.form_rows: list[Row] = []
        self.form_versions: dict[str, list[Row]] = {}
        self._form_version_serial = 0
        names = ("Newsletter Popup", "Exit Intent", "Footer Signup", "SMS Opt-in", "Spin to Win", "Back in Stock", "Welcome Flyout")
        for i in range(n):
            h = mix(self.seed, i, 80)
            created = (T_START + h % (T_END - T_START - 120 * 86400)) * 1_000_000 + h % 999_983
            fid = self._short_id(7000 + i, self._ids)
            name = names[i % len(names)] + ("" if i < len(names) else f" {i // len(names) + 1}")
            attrs = {"name": name, "status": "live" if h % 3 else "draft", "ab_test": False, "created_at": fmt_us(created, micro=True), "updated_at": None}
            row = Row(fid, attrs, {"id": fid, "name": name, "status": attrs["status"], "ab_test": False, "created_at": created, "updated_at": created})
            self.form_rows.append(row)
            self.form_versions[fid] = []
            at = created
            for v in range(1 + (h >> 8) % 4):  # one to four versions
                at += (1 + (h >> (12 + v)) % 20) * 86400 * 1_000_000
                self._new_form_version(row, FORM_TYPES[(i + v) % len(FORM_TYPES)] if v == 0 else None, at, ab=(v == 1 and h % 2 == 0))
            row.attrs["updated_at"] = fmt_us(row.keys["updated_at"], micro=True)

    def _new_form_version(self, form: Row, form_type: str | None, at: int, ab: bool = False, status: str | None = None,
                          variation_name: str | None = None) -> Row:  # fmt: skip
        versions = self.form_versions[form.id]
        serial = self._form_version_serial
        self._form_version_serial += 1
        vid = str(3_000_000 + serial * 13 + mix(self.seed, serial, 81) % 13)
        form_type = form_type or (versions[-1].attrs["form_type"] if versions else "popup")
        status = status or form.attrs["status"]
        name = variation_name or (f"Variation {'AB'[len(versions) % 2]}" if ab else f"Version {len(versions) + 1}")
        attrs = {"form_type": form_type, "variation_name": name, "ab_test": {"variation_name": name} if ab else None, "status": status,
                 "created_at": fmt_us(at, micro=True), "updated_at": fmt_us(at, micro=True)}  # fmt: skip
        row = Row(vid, attrs, {"id": vid, "form_type": form_type, "status": status, "created_at": at, "updated_at": at}, {"form": form.id})
        versions.append(row)
        if ab:
            form.attrs["ab_test"] = form.keys["ab_test"] = True
        form.keys["updated_at"] = max(form.keys["updated_at"], at)
        return row

    def add_form_version(self, form_id: str, form_type: str | None = None, status: str = "draft", variation_name: str | None = None,
                         ab_test: bool = False) -> str:  # fmt: skip
        """Publish a new version of a form now(); the form's `updated_at` moves to the same instant. Returns its id."""
        if form_type is not None and form_type not in FORM_TYPES:
            raise ValueError(f"form_type must be one of {FORM_TYPES}")
        with self.lock:
            form = next((r for r in self.form_rows if r.id == form_id), None)
            if form is None:
                raise KeyError(f"unknown form {form_id!r}")
            now = self.now_us()
            row = self._new_form_version(form, form_type, now, ab=ab_test, status=status, variation_name=variation_name)
            form.keys["updated_at"] = now
            form.attrs["updated_at"] = fmt_us(now, micro=True)
            return row.id

    # ---- images
    def _build_images(self, n: int) -> None:
        self.image_rows: list[Row] = []
        for i in range(n):
            h = mix(self.seed, i, 90)
            updated = (T_START + h % (T_END - T_START)) * 1_000_000
            iid = str(50_000_000 + i * 101 + h % 101)
            fmt = IMAGE_FORMATS[i % len(IMAGE_FORMATS)]
            name = f"{('hero', 'product', 'logo', 'banner', 'lifestyle')[(h >> 8) % 5]}-{i + 1:03d}.{'jpg' if fmt == 'jpeg' else fmt}"
            attrs = {"name": name, "image_url": f"https://cdn.example.com/images/{iid}/{name}", "format": fmt, "size": 8_000 + (h >> 16) % 900_000,
                     "hidden": i % 7 == 6, "updated_at": fmt_us(updated)}  # fmt: skip
            self.image_rows.append(Row(iid, attrs, {"id": iid, **{k: attrs[k] for k in ("name", "format", "size", "hidden")}, "updated_at": updated}))

    def update_image(self, image_id: str, name: str | None = None, hidden: bool | None = None) -> None:
        """Rename and/or hide an image; bumps `updated_at` to now()."""
        with self.lock:
            row = next((r for r in self.image_rows if r.id == image_id), None)
            if row is None:
                raise KeyError(f"unknown image {image_id!r}")
            for attr, value in (("name", name), ("hidden", hidden)):
                if value is not None:
                    row.attrs[attr] = row.keys[attr] = value
            self._bump(row, "updated_at")

    # ---- tags
    def _build_tags(self) -> None:
        self.tag_group_rows = [Row(gid, {"name": name, "exclusive": ex, "default": df}, {"id": gid, "name": name, "exclusive": ex, "default": df})
                               for gid, name, ex, df in TAG_GROUPS]  # fmt: skip
        self.tag_rows: list[Row] = []
        self.tags_of: dict[tuple[str, str], list[str]] = {}
        for i, (name, group) in enumerate(TAGS):
            self._new_tag(name, group, i)
        resources = {"list": self.list_rows, "segment": self.segment_rows, "campaign": self.campaign_rows, "flow": self.flow_rows}
        for k, kind in enumerate(TAGGABLE):
            for r, row in enumerate(resources[kind]):
                for t, tag in enumerate(self.tag_rows):
                    if (r == 0 and t in (0, 3)) or (r > 0 and mix(self.seed, 95 + k, r, t) % 6 == 0):
                        self._attach(tag.id, kind, row.id, strict=False)

    def _new_tag(self, name: str, group: str, serial: int) -> Row:
        parts = tuple(mix(self.seed, serial, 45 + k) & mask for k, mask in enumerate((0xFFFFFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFFFFFFFFFF)))
        tag_id = "%08x-%04x-%04x-%04x-%012x" % parts
        row = Row(tag_id, {"name": name}, {"id": tag_id, "name": name}, {"group": group})
        self.tag_rows.append(row)
        return row

    def _attach(self, tag_id: str, kind: str, resource_id: str, strict: bool = True) -> None:
        tags = self.tags_of.setdefault((kind, resource_id), [])
        group = next(r.extra["group"] for r in self.tag_rows if r.id == tag_id)
        exclusive = {g.id for g in self.tag_group_rows if g.attrs["exclusive"]}
        if group in exclusive:
            clash = [t for t in tags if next(r.extra["group"] for r in self.tag_rows if r.id == t) == group]
            if clash:
                if strict:
                    raise ValueError(f"tag group {group} is exclusive: {kind} {resource_id} already has tag {clash[0]}")
                return
        if tag_id not in tags:
            tags.append(tag_id)

    def add_tag(self, name: str, group_id: str = "1", lists=(), segments=(), campaigns=(), flows=()) -> str:
        """Create a tag in a tag group and attach it to the given resources (ids); returns the tag id.

        Tagging does not move the resources' `updated`/`updated_at` (not evidenced either way; INFERRED).
        """
        with self.lock:
            if not any(g.id == group_id for g in self.tag_group_rows):
                raise KeyError(f"unknown tag group {group_id!r}")
            row = self._new_tag(name, group_id, 1000 + len(self.tag_rows))
            self.tag_resources(row.id, lists=lists, segments=segments, campaigns=campaigns, flows=flows)
            return row.id

    def tag_resources(self, tag_id: str, lists=(), segments=(), campaigns=(), flows=()) -> None:
        """Attach an existing tag to lists, segments, campaigns and flows (ids)."""
        with self.lock:
            if not any(r.id == tag_id for r in self.tag_rows):
                raise KeyError(f"unknown tag {tag_id!r}")
            known = {"list": self.list_rows, "segment": self.segment_rows, "campaign": self.campaign_rows, "flow": self.flow_rows}
            for kind, ids in (("list", lists), ("segment", segments), ("campaign", campaigns), ("flow", flows)):
                for rid in ids:
                    if not any(r.id == rid for r in known[kind]):
                        raise KeyError(f"unknown {kind} {rid!r}")
                    self._attach(tag_id, kind, rid)
