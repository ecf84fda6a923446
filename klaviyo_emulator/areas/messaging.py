"""Messaging: campaigns and flows, flow actions and flow messages (endpoint tables, handlers, generators, mutations).

Flow actions carry the 2026-07-15 encoded `definition` ({id, type, links, data});
send actions hold their message in `data.message` and each has one flow message
(channel email or sms); an email A/B test (`ab-test`) has two (main action and
one variation); time delays and conditional splits have none. The
`action_type` filter compares `definition.type` (send-email, time-delay, ...);
`status` compares `definition.data.status` of send actions and the flow's status
for the others (the spec does not say which values these filters compare).
"""

from __future__ import annotations

import hashlib
from typing import Callable

import msgspec

from ..core import FieldSpec, GT_LT, Endpoint, HandlerBase, Query, from_spec
from ..errors import not_found
from ..resources import DEFAULT_BASE_URL, T_END, T_START, Row, base62, fmt_us, mix, render_row, to_us, ulid

TAG_FIELDS = ("id", "name")
ENDPOINTS = (
    from_spec("/api/campaigns", "campaign", "campaigns", page_length=100, page_size_since="2026-04-15"),
    from_spec("/api/flows", "flow", "flows"),
    from_spec("/api/flows/{id}/flow-actions", "flow-action", "flow_actions"),
    from_spec("/api/flow-actions/{id}/flow-messages", "flow-message", "flow_messages"),
)


def _str(single=(), list_=()) -> FieldSpec:
    return FieldSpec("string", tuple(single), tuple(list_))


# Revision 2026-10-15 ("omni" campaigns): not in the 2026-07-15 summary, so hand-written from the facts of
# shared/docs/klaviyo-2026-10-15.md (§1.1 filters F1/F2, sorts, page sizes, includes; §1.4 sparse fieldsets).
OMNI_CAMPAIGN_FIELDS = (
    "created_at", "definition", "definition.archived", "definition.builder", "definition.color", "definition.description",
    "definition.name", "definition.send_settings", "definition.send_settings.exit_condition_conversion_metric_id",
    "definition.send_settings.exit_condition_enabled", "definition.send_settings.send_passed_rltz_immediately",
    "definition.send_settings.send_strategy", "definition.send_settings.send_timezone", "id", "updated_at",
)  # fmt: skip
OMNI_MESSAGE_FIELDS = (
    "created", "definition", "definition.ab_test", "definition.ab_test.winner_metric", "definition.ab_test.winner_percentage",
    "definition.ab_test.winner_wait_hours", "definition.name", "definition.send_options",
    *(f"definition.send_options.{n}" for n in ("is_ignoring_unsubscribes", "recipient_percentage", "send_strategy", "send_time",
                                                 "send_times", "throttle_unit", "throttling_type")),
    "definition.status", "definition.tracking_options",
    *(f"definition.tracking_options.{n}" for n in ("is_add_utm", "is_tracking_clicks", "is_tracking_opens")), "id", "updated",
)  # fmt: skip
OMNI_AUDIENCE_FIELDS = ("created", "definition", "definition.excluded", "definition.included", "definition.name", "definition.priority", "id", "updated")
VARIATION_DETAILS = (
    "action_buttons", "add_info_link", "add_opt_out_language", "add_org_prefix", "android_deep_link", "badge", "badge_config", "badge_value",
    "bcc_email", "body", "cc_email", "channel", "content_available", "cost", "dynamic_media_template", "from_email", "from_label",
    "include_contact_card", "ios_deep_link", "kv_pairs", "message_hierarchy", "mms_dynamic_image_template", "mms_static_image_asset_id",
    "mutable_content", "open_action", "preview_text", "push_type", "reply_to_email", "shorten_links", "sound", "sound_file_name",
    "static_asset_id", "subject", "template_id", "text_message_type", "title", "video_asset_id", "web_url",
)  # fmt: skip
OMNI_VARIATION_FIELDS = ("created", "definition", "definition.name", "definition.details", *(f"definition.details.{n}" for n in VARIATION_DETAILS), "id", "updated")
MESSAGE_STATUSES = ("cancelled", "draft", "scheduled", "sending", "sent")


def _fields(**types: tuple[str, ...]) -> tuple[dict, dict]:
    """(fields, fields_nested) of an Endpoint from full dotted lists per type."""
    fields = {f"fields[{k.replace('_', '-')}]": tuple(n for n in v if "." not in n) for k, v in types.items()}
    nested = {f"fields[{k.replace('_', '-')}]": frozenset(n for n in v if "." in n) for k, v in types.items()}
    return fields, nested


def _omni(operation: str, path: str, rtype: str, handler: str, *, filters=None, sort=(), page_size=None, page_length=20, include=(),
          fields=(), filter_required=False) -> Endpoint:  # fmt: skip
    f, nested = fields
    return Endpoint(operation, path, rtype, filters or {}, tuple(sort), page_size, page_length, None, tuple(include), {}, f, (10, 150), handler,
                    filter_required=filter_required, bucket=operation, fields_nested=nested)  # fmt: skip


_CAMPAIGN_TYPES = dict(campaign=OMNI_CAMPAIGN_FIELDS, campaign_message=OMNI_MESSAGE_FIELDS, campaign_audience=OMNI_AUDIENCE_FIELDS, tag=TAG_FIELDS)
OMNI_CAMPAIGNS = _omni(
    "get_campaigns", "/api/campaigns", "campaign", "campaigns_omni",
    filters={"id": _str(list_=("any",)), "name": _str(("contains",)), "archived": FieldSpec("boolean", ("equals",)),
             "builder": _str(("equals",)), "created_at": FieldSpec("date-time", GT_LT), "updated_at": FieldSpec("date-time", GT_LT)},
    sort=("created_at", "id", "name", "updated_at"), page_size=(100, 100), page_length=100,
    include=("campaign-audiences", "campaign-messages", "tags"), fields=_fields(**_CAMPAIGN_TYPES),
)  # fmt: skip
# Routes that exist from 2026-10-15 only (below it: 404 "No valid revisions found for method").
OMNI_ENDPOINTS = (
    _omni(
        "get_campaign_messages", "/api/campaign-messages", "campaign-message", "campaign_messages_omni",
        filters={"id": FieldSpec("string", ("equals",), ("any", "equals")), "campaign_id": _str(("equals",)), "name": _str(("contains",)),
                 "status": FieldSpec("string", ("equals",), enum=MESSAGE_STATUSES),
                 "created": FieldSpec("date-time", GT_LT), "updated": FieldSpec("date-time", GT_LT)},
        sort=("created", "id", "name", "status", "updated"), page_size=(20, 100), page_length=20, include=("campaign", "campaign-variations"),
        fields=_fields(campaign_message=OMNI_MESSAGE_FIELDS, campaign=OMNI_CAMPAIGN_FIELDS, campaign_variation=OMNI_VARIATION_FIELDS),
    ),
    _omni("get_messages_for_campaign", "/api/campaigns/{id}/campaign-messages", "campaign-message", "messages_of_campaign_omni",
          include=("campaign",), fields=_fields(campaign_message=OMNI_MESSAGE_FIELDS, campaign=OMNI_CAMPAIGN_FIELDS)),
    _omni("get_campaign_audiences_for_campaign", "/api/campaigns/{id}/campaign-audiences", "campaign-audience", "audiences_of_campaign_omni",
          page_length=10_000, fields=_fields(campaign_audience=OMNI_AUDIENCE_FIELDS)),
    _omni("get_variations_for_campaign_message", "/api/campaign-messages/{id}/campaign-variations", "campaign-variation",
          "variations_of_message_omni", page_length=10_000, fields=_fields(campaign_variation=OMNI_VARIATION_FIELDS)),
)  # fmt: skip

FLOW_NAMES = ("Welcome Series", "Abandoned Cart", "Browse Abandonment", "Post-Purchase", "Winback", "Birthday", "Price Drop Alert", "Sunset Unengaged")
TRIGGERS = ("Metric", "Added to List", "Date Based", "Price Drop", "Low Inventory", "Unconfigured")
ACTION_PATTERN = ("send-email", "time-delay", "ab-test", "conditional-split", "send-sms", "time-delay", "send-email")
FLOW_ATTRIBUTES = ("name", "status", "archived", "trigger_type")
CHANNELS = ("email", "sms", "mobile_push")


class MessagingHandlers(HandlerBase):
    # ---- campaigns
    def _campaign_filter(self, q: Query) -> Callable:
        """Archived campaigns are left out unless the query filters on `archived` (INFERRED, see klaviyo-api.md §3.6)."""
        if q.values("archived"):
            return lambda r: True
        return lambda r: not r.keys["archived"]

    def campaigns(self, q: Query, base: str) -> bytes:
        with_messages = "campaign-messages" in q.include
        msgs = self.account.campaign_messages

        def rel_data(r: Row) -> dict:
            out = self._empty_rel_data(q, ("tags",))
            if "tags" in q.include:
                out["tags"] = self.tag_linkage("campaign", r.id)
            if with_messages:
                out["campaign-messages"] = [{"type": "campaign-message", "id": m.id} for m in msgs[r.id]]
            return out

        data, page, nxt = self.rows_page(q, self.account.campaign_rows, base, "campaigns", ("campaign-messages", "tags"), rel_data, self._campaign_filter(q))
        included = []
        if with_messages:
            names = q.fields.get("campaign-message")
            included = [self.sparse(self.account.render_message(m, base), names) for r in page for m in msgs[r.id]]
        return self.document(q, base, data, nxt, included + self.included_tags(q, base, "campaign", page))

    # ---- campaigns at 2026-10-15 (omni): views of the same campaigns, see MessagingData.omni_*
    def _omni_campaign_filter(self, q: Query) -> Callable | None:
        """Archived campaigns: hidden unless the filter names `archived` when Account.omni_hides_archived_campaigns
        (the real default is UNVERIFIED, klaviyo-2026-10-15.md §4.2), else returned like the others."""
        if q.values("archived") or not self.account.omni_hides_archived_campaigns:
            return None
        return lambda r: not r.keys["archived"]

    def campaigns_omni(self, q: Query, base: str) -> bytes:
        acc = self.account
        rows = acc.omni_campaign_rows()
        with_messages, with_audiences = "campaign-messages" in q.include, "campaign-audiences" in q.include

        def rel_data(r: Row) -> dict:
            out = self._empty_rel_data(q, ("tags", "campaign-audiences", "campaign-messages"))
            if "tags" in q.include:
                out["tags"] = self.tag_linkage("campaign", r.id)
            if with_messages:
                out["campaign-messages"] = [{"type": "campaign-message", "id": m.id} for m in acc.omni_messages_of(r.id)]
            if with_audiences:
                out["campaign-audiences"] = [{"type": "campaign-audience", "id": a.id} for a in acc.omni_audiences_of(r.id)]
            return out

        data, page, nxt = self.rows_page(q, rows, base, "campaigns", ("campaign-audiences", "campaign-messages", "tags"), rel_data, self._omni_campaign_filter(q))
        included = []
        if with_messages:
            names = q.fields.get("campaign-message")
            included += [self.sparse(acc.render_omni_message(m, base), names) for r in page for m in acc.omni_messages_of(r.id)]
        if with_audiences:
            names = q.fields.get("campaign-audience")
            included += [self.sparse(acc.render_omni_audience(a, base), names) for r in page for a in acc.omni_audiences_of(r.id)]
        return self.document(q, base, data, nxt, included + self.included_tags(q, base, "campaign", page))

    def _omni_messages_page(self, q: Query, base: str, messages: list[Row]) -> bytes:
        acc = self.account
        with_campaign, with_variations = "campaign" in q.include, "campaign-variations" in q.include

        def rel_data(m: Row) -> dict:
            out = {}
            if with_campaign:
                out["campaign"] = {"type": "campaign", "id": m.extra["campaign"]}
            if with_variations:
                out["campaign-variations"] = [{"type": "campaign-variation", "id": v.id} for v in acc.omni_variations_of(m.id)]
            return out

        data, page, nxt = self.rows_page(q, messages, base, "campaign-messages", ("campaign", "campaign-audience", "campaign-variations"), rel_data)
        included = []
        if with_campaign:
            by_id = {r.id: r for r in acc.omni_campaign_rows()}
            seen = dict.fromkeys(m.extra["campaign"] for m in page)
            names = q.fields.get("campaign")
            included += [self.sparse(render_row(by_id[c], "campaign", "campaigns", base, ("campaign-audiences", "campaign-messages", "tags")), names) for c in seen]
        if with_variations:
            names = q.fields.get("campaign-variation")
            included += [self.sparse(acc.render_omni_variation(v, base), names) for m in page for v in acc.omni_variations_of(m.id)]
        return self.document(q, base, data, nxt, included)

    def campaign_messages_omni(self, q: Query, base: str) -> bytes:
        return self._omni_messages_page(q, base, self.account.omni_message_rows())

    def messages_of_campaign_omni(self, q: Query, base: str) -> bytes:
        if q.path_id not in self.account.campaign_messages:
            raise not_found(f"A campaign with id {q.path_id} does not exist.")
        q.size = self.account.omni_child_page_length
        return self._omni_messages_page(q, base, self.account.omni_messages_of(q.path_id))

    def audiences_of_campaign_omni(self, q: Query, base: str) -> bytes:
        if q.path_id not in self.account.campaign_messages:
            raise not_found(f"A campaign with id {q.path_id} does not exist.")
        audiences = self.account.omni_audiences_of(q.path_id)
        names = q.fields.get("campaign-audience")
        data = [self.sparse(self.account.render_omni_audience(a, base), names) for a in audiences]
        return msgspec.json.encode({"data": data, "links": {"self": f"{base}{q.path}"}})

    def variations_of_message_omni(self, q: Query, base: str) -> bytes:
        variations = self.account.omni_variations_by_message().get(q.path_id)
        if variations is None:
            raise not_found(f"A campaign message with id {q.path_id} does not exist.")
        names = q.fields.get("campaign-variation")
        data = [self.sparse(self.account.render_omni_variation(v, base), names) for v in variations]
        return msgspec.json.encode({"data": data, "links": {"self": f"{base}{q.path}"}})

    # ---- flows
    def _flow_filter(self, q: Query) -> Callable | None:
        """Archived flows are hidden unless the query filters on `archived` (INFERRED like campaigns; Account.hide_archived_flows)."""
        if q.values("archived") or not self.account.hide_archived_flows:
            return None
        return lambda r: not r.keys["archived"]

    def flows(self, q: Query, base: str) -> bytes:
        acc = self.account
        with_actions, with_tags = "flow-actions" in q.include, "tags" in q.include

        def rel_data(r: Row) -> dict:
            out = {}
            if with_actions:
                out["flow-actions"] = [{"type": "flow-action", "id": a.id} for a in acc.flow_actions[r.id]]
            if with_tags:
                out["tags"] = self.tag_linkage("flow", r.id)
            return out

        data, page, nxt = self.rows_page(q, acc.flow_rows, base, "flows", ("flow-actions", "tags"), rel_data, self._flow_filter(q))
        included = []
        if with_actions:
            names = q.fields.get("flow-action")
            included = [self.sparse(acc.render_flow_action(a, base), names) for r in page for a in acc.flow_actions[r.id]]
        return self.document(q, base, data, nxt, included + self.included_tags(q, base, "flow", page))

    def flow_actions(self, q: Query, base: str) -> bytes:
        acc = self.account
        actions = acc.flow_actions.get(q.path_id)
        if actions is None:
            raise not_found(f"A flow with id {q.path_id} does not exist.")
        data, page, nxt = self.rows_page(q, actions, base, "flow-actions", ())
        for res, row in zip(data, page):
            res["relationships"] = acc.render_flow_action(row, base)["relationships"]
        return self.document(q, base, data, nxt)

    def flow_messages(self, q: Query, base: str) -> bytes:
        acc = self.account
        messages = acc.flow_messages.get(q.path_id)
        if messages is None:
            raise not_found(f"A flow action with id {q.path_id} does not exist.")
        data, page, nxt = self.rows_page(q, messages, base, "flow-messages", ())
        for res, row in zip(data, page):
            res["relationships"] = acc.render_flow_message(row, base)["relationships"]
        return self.document(q, base, data, nxt)


def _split(total: int, weights: list[int]) -> list[int]:
    """`total` split in proportion to `weights`, exactly (the remainder goes to the first ones)."""
    if not weights:
        return []
    w = sum(weights)
    counts = [total * x // w for x in weights]
    for i in range(total - sum(counts)):
        counts[i % len(counts)] += 1
    return counts


def _variation_details(d: dict) -> dict:
    """A 2026-07-15 message definition as 2026-10-15 variation `details` (klaviyo-2026-10-15.md §2.3, §3.2)."""
    channel = d["channel"]
    if channel == "email":
        c = d.get("content") or {}
        return {"channel": "email", "template_id": None, **{k: c.get(k) or "" for k in
                ("from_label", "from_email", "reply_to_email", "cc_email", "bcc_email", "subject", "preview_text")}}  # fmt: skip
    if channel == "sms":
        r = d.get("render_options") or {}
        return {"channel": "sms", "template_id": None, "cost": None, "mms_static_image_asset_id": None, "shorten_links": r.get("shorten_links"),
                "include_contact_card": False, "body": (d.get("content") or {}).get("body") or "", "add_org_prefix": r.get("add_org_prefix"),
                "add_info_link": r.get("add_info_link"), "add_opt_out_language": r.get("add_opt_out_language"),
                "mms_dynamic_image_template": None, "text_message_type": "SMS", "message_hierarchy": None}  # fmt: skip
    c, o = d.get("content") or {}, d.get("options") or {}
    on_open, badge = o.get("on_open") or {}, o.get("badge") or {}
    badge_options = badge.get("badge_options") or {}
    buttons = c.get("action_buttons")
    return {
        "channel": "push", "title": c.get("title") or "", "body": c.get("body") or "", "badge": bool(badge.get("display")),
        "badge_config": (badge_options.get("badge_config") or "increment_one").replace("_", "-"),
        "badge_value": str(badge_options.get("value") or badge_options.get("set_from_property") or "1"), "sound_file_name": "",
        "static_asset_id": None, "sound": bool(o.get("play_sound")), "open_action": 0, "dynamic_media_template": c.get("dynamic_image") or "",
        "kv_pairs": d.get("kv_pairs"), "push_type": d.get("notification_type") or "standard", "ios_deep_link": on_open.get("ios_deep_link"),
        "android_deep_link": on_open.get("android_deep_link"), "web_url": on_open.get("web_url"), "content_available": None,
        "mutable_content": None, "video_asset_id": None,
        "action_buttons": None if buttons is None else [{"label": b.get("label"), "action_type": b.get("action_type"), "url": b.get("url"),
                                                         "icon": None, "custom_action_id": None} for b in buttons],
    }  # fmt: skip


class MessagingData:
    """Account mixin: campaigns, and flows with their actions and messages generated from (seed, flows, flow_actions)."""

    hide_archived_flows = True

    # ------------------------------------------------------------ campaigns
    def _build_campaigns(self) -> None:
        per_channel = max(6, self._profile_count() // 2000)
        statuses = ("Sent", "Sent", "Draft", "Scheduled", "Cancelled", "Sent")
        self.campaign_rows: list[Row] = []
        self.campaign_messages: dict[str, list[Row]] = {}
        for c, channel in enumerate(CHANNELS):
            for k in range(per_channel):
                n = c * per_channel + k
                h = mix(self.seed, n, 31)
                created = (T_START + h % (T_END - T_START - 40 * 86400)) * 1_000_000 + h % 999_983
                cid = ulid(created // 1000, mix(self.seed, n, 32))
                status = statuses[k % len(statuses)]
                archived = k % 3 == 1  # archived campaigns on every channel
                scheduled = None if status == "Draft" else created + (86400 + h % (5 * 86400)) * 1_000_000 + (h >> 7) % 999_983
                updated = (scheduled or created) + (h >> 11) % (3 * 86400 * 1_000_000)
                send_time = None if scheduled is None else scheduled // 1_000_000 * 1_000_000
                label = {"email": "Email", "sms": "SMS", "mobile_push": "Push"}[channel]
                name = f"{label} Campaign {k + 1:03d}"
                attrs = {
                    "name": name,
                    "status": status,
                    "archived": archived,
                    "audiences": {"included": [self.list_rows[k % 12].id], "excluded": []},
                    "send_options": {"use_smart_sending": k % 2 == 0},
                    "tracking_options": None if channel == "mobile_push" else self._tracking(channel),
                    "send_strategy": {"method": "static", "datetime": fmt_us(send_time) if send_time else fmt_us(created), "options": {"is_local": False}},
                    "created_at": fmt_us(created, micro=True),
                    "scheduled_at": fmt_us(scheduled, micro=True),
                    "updated_at": fmt_us(updated, micro=True),
                    "send_time": fmt_us(send_time),
                }
                keys = {"id": cid, "name": name, "status": status, "archived": archived, "messages.channel": channel,
                        "created_at": created, "scheduled_at": scheduled, "updated_at": updated}  # fmt: skip
                self.campaign_rows.append(Row(cid, attrs, keys, {"channel": channel}))
                mid = ulid(created // 1000 + 1, mix(self.seed, n, 33))
                msg_attrs = {
                    "definition": self._message_definition(channel, name, k),
                    "send_times": [{"datetime": fmt_us(send_time), "is_local": False}] if send_time else [],
                    "created_at": fmt_us(created // 1_000_000 * 1_000_000 + 1_000_000),
                    "updated_at": fmt_us(updated // 1_000_000 * 1_000_000),
                }
                self.campaign_messages[cid] = [Row(mid, msg_attrs, {"id": mid}, {"campaign": cid})]

    @staticmethod
    def _tracking(channel: str) -> dict:
        if channel == "sms":
            return {"add_tracking_params": False, "custom_tracking_params": None}
        return {"add_tracking_params": False, "custom_tracking_params": None, "is_tracking_clicks": True, "is_tracking_opens": True}

    @staticmethod
    def _message_definition(channel: str, name: str, k: int) -> dict:
        if channel == "email":
            return {
                "channel": "email",
                "label": name,
                "content": {"subject": f"Our news #{k + 1}", "preview_text": "", "from_email": "hello@example.com", "from_label": "Example Store",
                            "reply_to_email": None, "cc_email": None, "bcc_email": None},  # fmt: skip
            }
        if channel == "sms":
            return {"channel": "sms", "content": {"body": f"Sale {k + 1}: 20% off today. Reply STOP to opt out."},
                    "render_options": {"shorten_links": True, "add_org_prefix": True, "add_info_link": True, "add_opt_out_language": False}}  # fmt: skip
        return {"channel": "mobile_push", "notification_type": "standard",
                "content": {"title": name, "body": f"Open the app for offer {k + 1}", "dynamic_image": None, "action_buttons": None},
                "kv_pairs": None, "options": {"on_open": {"type": "open_app"}, "badge": {"display": False}, "play_sound": False}}  # fmt: skip

    def campaigns(self, base_url: str = DEFAULT_BASE_URL) -> list[dict]:
        """Campaign resources of every channel, archived included."""
        with self.lock:
            return [render_row(r, "campaign", "campaigns", base_url, ("campaign-messages", "tags")) for r in self.campaign_rows]

    def campaign_message_resources(self, campaign_id: str | None = None, base_url: str = DEFAULT_BASE_URL) -> list[dict]:
        """campaign-message resources (as `included` renders them), of one campaign or all."""
        with self.lock:
            ids = [campaign_id] if campaign_id else [r.id for r in self.campaign_rows]
            return [self.render_message(m, base_url) for cid in ids for m in self.campaign_messages[cid]]

    def render_message(self, msg: Row, base: str) -> dict:
        out = render_row(msg, "campaign-message", "campaign-messages", base, ("campaign", "template", "image"))
        out["relationships"]["campaign"] = {"data": {"type": "campaign", "id": msg.extra["campaign"]}, **out["relationships"]["campaign"]}
        return out

    # ---- the same campaigns at 2026-10-15: campaign -> audience, messages -> variations (built on each read, so
    # update_campaign shows in both shapes). Each legacy campaign has one audience, one message, one variation.
    omni_hides_archived_campaigns = True  # the real default at 2026-10-15 is UNVERIFIED: a switch, as for flows
    omni_child_page_length = 20  # /api/campaigns/{id}/campaign-messages: cursor only, page length UNVERIFIED

    def omni_campaign_rows(self) -> list[Row]:
        out = []
        for i, r in enumerate(self.campaign_rows):
            a = r.attrs
            builder = "canvas" if i % 4 == 3 else "wizard"
            definition = {
                "name": a["name"], "builder": builder, "archived": a["archived"], "color": "ff5733" if i % 5 == 0 else None, "description": None,
                "send_settings": {"send_timezone": "UTC", "send_strategy": "static", "send_passed_rltz_immediately": False,
                                  "exit_condition_enabled": False, "exit_condition_conversion_metric_id": None},
            }  # fmt: skip
            keys = {k: r.keys[k] for k in ("id", "name", "archived", "created_at", "updated_at")}
            out.append(Row(r.id, {"created_at": a["created_at"], "updated_at": a["updated_at"], "definition": definition}, {**keys, "builder": builder}, dict(r.extra)))
        return out

    def _omni_message(self, campaign: Row, msg: Row) -> Row:
        a, legacy = campaign.attrs, msg.attrs
        status = {"Sent": "sent", "Draft": "draft", "Scheduled": "scheduled", "Cancelled": "cancelled"}.get(a["status"], "sending")
        tracking = a["tracking_options"]
        send_time = legacy["send_times"][0]["datetime"] if legacy["send_times"] else None
        definition = {
            "name": legacy["definition"].get("label") or a["name"], "status": status,
            "tracking_options": None if tracking is None else {"is_add_utm": tracking.get("add_tracking_params"),
                                                               "is_tracking_clicks": tracking.get("is_tracking_clicks"),
                                                               "is_tracking_opens": tracking.get("is_tracking_opens")},
            "send_options": {"send_time": send_time, "send_times": None, "send_strategy": "static", "recipient_percentage": 100,
                             "throttling_type": "none", "throttle_unit": None, "is_ignoring_unsubscribes": False},
            "ab_test": {"winner_metric": None, "winner_percentage": None, "winner_wait_hours": None},
        }  # fmt: skip
        created, updated = to_us(legacy["created_at"]), to_us(legacy["updated_at"])
        attrs = {"created": legacy["created_at"], "updated": legacy["updated_at"], "definition": definition}
        keys = {"id": msg.id, "campaign_id": campaign.id, "name": definition["name"], "status": status, "created": created, "updated": updated}
        return Row(msg.id, attrs, keys, {"campaign": campaign.id, "legacy": legacy})

    def omni_message_rows(self) -> list[Row]:
        return [self._omni_message(r, m) for r in self.campaign_rows for m in self.campaign_messages[r.id]]

    def omni_messages_of(self, campaign_id: str) -> list[Row]:
        r = next(r for r in self.campaign_rows if r.id == campaign_id)
        return [self._omni_message(r, m) for m in self.campaign_messages[campaign_id]]

    def omni_audiences_of(self, campaign_id: str) -> list[Row]:
        r = next(r for r in self.campaign_rows if r.id == campaign_id)
        audiences = r.attrs["audiences"] or {}
        aid = hashlib.md5(f"audience:{self.seed}:{campaign_id}".encode()).hexdigest()
        at = fmt_us(to_us(r.attrs["created_at"]) // 1_000_000 * 1_000_000)
        definition = {"name": f"{r.attrs['name']} audience", "included": list(audiences.get("included") or []),
                      "excluded": list(audiences.get("excluded") or []), "priority": 1}  # fmt: skip
        return [Row(aid, {"created": at, "updated": at, "definition": definition}, {"id": aid}, {"campaign": campaign_id})]

    def omni_variations_by_message(self) -> dict[str, list[Row]]:
        return {m.id: self._omni_variations(m) for m in self.omni_message_rows()}

    def omni_variations_of(self, message_id: str) -> list[Row]:
        return self.omni_variations_by_message().get(message_id, [])

    def _omni_variations(self, msg: Row) -> list[Row]:
        legacy = msg.extra["legacy"]
        d = legacy["definition"]
        vid = hashlib.md5(f"variation:{self.seed}:{msg.id}".encode()).hexdigest()
        details = _variation_details(d)
        name = {"email": "Email", "sms": "SMS", "push": "Push"}[details["channel"]]
        attrs = {"created": msg.attrs["created"], "updated": msg.attrs["updated"], "definition": {"name": name, "details": details}}
        return [Row(vid, attrs, {"id": vid}, {"message": msg.id})]

    def render_omni_message(self, m: Row, base: str) -> dict:
        return render_row(m, "campaign-message", "campaign-messages", base, ("campaign", "campaign-audience", "campaign-variations"))

    def render_omni_audience(self, a: Row, base: str) -> dict:
        return render_row(a, "campaign-audience", "campaign-audiences", base, ("campaign", "campaign-messages"))

    def render_omni_variation(self, v: Row, base: str) -> dict:
        return render_row(v, "campaign-variation", "campaign-variations", base, ("campaign-message", "translation", "image"))

    def update_campaign(self, campaign_id: str, **attributes) -> None:
        """Change campaign attributes (datetimes as datetime or ISO text) and bump updated_at to now()."""
        with self.lock:
            row = next((r for r in self.campaign_rows if r.id == campaign_id), None)
            if row is None:
                raise KeyError(f"unknown campaign {campaign_id!r}")
            for name, value in attributes.items():
                if name not in row.attrs or name in ("created_at", "updated_at"):
                    raise KeyError(f"campaign attribute {name!r} cannot be updated")
                if name == "scheduled_at":
                    us = to_us(value)
                    row.keys[name], row.attrs[name] = us, fmt_us(us, micro=True)
                else:
                    row.attrs[name] = value
                    if name in row.keys:
                        row.keys[name] = value
            now = self.now_us()
            row.keys["updated_at"], row.attrs["updated_at"] = now, fmt_us(now, micro=True)

    def update_campaign_message(self, message_id: str, **content) -> None:
        """Change content fields of a campaign message (subject, body, ...) and bump its updated_at (2026-10-15: `updated`)
        to now(); its campaign's updated_at does not move (Klaviyo does not say whether it does)."""
        with self.lock:
            row = next((m for ms in self.campaign_messages.values() for m in ms if m.id == message_id), None)
            if row is None:
                raise KeyError(f"unknown campaign message {message_id!r}")
            current = row.attrs["definition"].setdefault("content", {})
            for name, value in content.items():
                if name not in current:
                    raise KeyError(f"campaign message content {name!r} cannot be updated")
                current[name] = value
            row.attrs["updated_at"] = fmt_us(self.now_us() // 1_000_000 * 1_000_000)

    def _build_flows(self, n_flows: int, n_actions: int) -> None:
        seed = self.seed
        self.flow_rows: list[Row] = []
        self.flow_actions: dict[str, list[Row]] = {}  # flow id -> actions in path order
        self.flow_action_by_id: dict[str, Row] = {}
        self.flow_messages: dict[str, list[Row]] = {}  # action id -> messages (empty for delays and splits)
        self.flow_message_by_id: dict[str, Row] = {}
        taken: set[str] = set()
        for i in range(n_flows):
            if i < len(FLOW_NAMES):  # the original eight flows, unchanged
                name, created = FLOW_NAMES[i], (T_START + i * 11 * 86400) * 1_000_000
                status, archived, trigger = ("live", "manual", "draft")[i % 3], i == 7, TRIGGERS[i % 6]
            else:
                h = mix(seed, i, 40)
                name = f"{FLOW_NAMES[i % 8]} {i // 8 + 1}"
                created = (T_START + h % (T_END - T_START - 260 * 86400)) * 1_000_000
                status, archived, trigger = ("live", "live", "manual", "draft")[h % 4], i % 9 == 4, TRIGGERS[(h >> 8) % 6]
            updated = created + mix(seed, i, 41) % (200 * 86400) * 1_000_000
            fid = base62(mix(seed, i, 42), 6)
            while fid in taken:
                fid = base62(mix(seed, i, 42, len(taken)), 6)
            taken.add(fid)
            attrs = {"name": name, "status": status, "archived": archived, "created": fmt_us(created), "updated": fmt_us(updated), "trigger_type": trigger}
            self.flow_rows.append(Row(fid, attrs, {"id": fid, "created": created, "updated": updated, **{k: attrs[k] for k in FLOW_ATTRIBUTES}}))
        counts = _split(n_actions, [1 + mix(seed, i, 60) % 6 for i in range(n_flows)])
        serial = 0
        for i, (flow, count) in enumerate(zip(self.flow_rows, counts)):
            actions = []
            for j in range(count):
                kind = ACTION_PATTERN[(i + j) % len(ACTION_PATTERN)]
                actions.append(self._new_action(flow, serial, kind, j))
                serial += 1
            for a, b in zip(actions, actions[1:]):
                links = a.attrs["definition"]["links"]
                links["next_if_true" if "next_if_true" in links else "next"] = b.id
            self.flow_actions[flow.id] = actions

    def _new_action(self, flow: Row, serial: int, kind: str, position: int) -> Row:
        seed = self.seed
        h = mix(seed, serial, 62)
        aid = str(90_000_000 + serial * 37 + h % 37)
        created = flow.keys["created"] + (position + 1) * 60_000_000
        updated = created + h % max(1, flow.keys["updated"] - created + 1) // 1_000_000 * 1_000_000
        flow_status = flow.attrs["status"]
        status = "manual" if flow_status == "live" and h % 5 == 0 else flow_status
        definition: dict = {"id": aid, "type": kind, "links": {"next": None}}
        message = None
        if kind == "time-delay":
            definition["data"] = {"unit": ("days", "hours", "days")[h % 3], "value": 1 + (h >> 4) % 5, "secondary_value": None,
                                  "timezone": "profile", "delay_until_time": None, "delay_until_weekdays": None}  # fmt: skip
        elif kind == "conditional-split":
            definition["links"] = {"next_if_true": None, "next_if_false": None}
            definition["data"] = {"profile_filter": {"condition_groups": [{"conditions": [
                {"type": "profile-property", "property": "properties.loyalty_tier", "filter": {"type": "string", "operator": "equals", "value": "gold"}}
            ]}]}}  # fmt: skip
        elif kind == "ab-test":  # an email A/B test: the main message and one variation, two flow messages
            message = self._message_definition_for(flow, serial, "send-email", h)
            variation = {**self._message_definition_for(flow, serial, "send-email", h >> 3), "subject_line": f"{flow.attrs['name']}: don't miss this"}
            variation["name"] += " (B)"
            started = fmt_us(created + 86400 * 1_000_000) if status == "live" else None
            definition["data"] = {
                "status": status, "experiment_status": "live" if started else "draft",
                "main_action": {"id": None, "type": "send-email", "links": {"next": None}, "data": {"message": message, "status": status}},
                "current_experiment": {"id": f"exp-{aid}", "name": f"Subject test {serial}", "allocations": {"A": 50, "B": 50}, "started": started,
                                       "winner_metric": "unique-opens", "automatic_winner_selection_settings": None,
                                       "variations": [{"id": None, "type": "send-email", "links": {"next": None}, "data": {"message": variation, "status": status}}]},
            }  # fmt: skip
        else:
            message = self._message_definition_for(flow, serial, kind, h)
            definition["data"] = {"message": message, "status": status}
        keys = {"id": aid, "action_type": kind, "status": status if message is not None else flow_status, "created": created, "updated": updated}
        row = Row(aid, {"created": fmt_us(created), "updated": fmt_us(updated), "definition": definition}, keys, {"flow": flow.id})
        self.flow_action_by_id[aid] = row
        self.flow_messages[aid] = []
        if message is not None:
            self._new_message(row, message, serial)
        if kind == "ab-test":
            self._new_message(row, variation, serial + 500_000)
        return row

    def _message_definition_for(self, flow: Row, serial: int, kind: str, h: int) -> dict:
        name = f"{flow.attrs['name']} {'Email' if kind == 'send-email' else 'SMS'} #{serial % 97 + 1}"
        if kind == "send-email":
            template = self.template_rows[h % len(self.template_rows)].id if self.template_rows else None
            return {"id": None, "name": name, "from_email": "hello@example.com", "from_label": "Example Store", "reply_to_email": None,
                    "cc_email": None, "bcc_email": None, "subject_line": f"{flow.attrs['name']}: a note for you", "preview_text": "Open for details",
                    "template_id": template, "smart_sending_enabled": h % 4 != 0, "transactional": False, "add_tracking_params": h % 3 == 0,
                    "custom_tracking_params": None, "additional_filters": None}  # fmt: skip
        return {"id": None, "name": name, "body": f"{flow.attrs['name']}: 15% off with code SAVE15. Reply STOP to opt out.", "image_id": None,
                "dynamic_image": None, "message_hierarchy": None, "shorten_links": True, "include_contact_card": False, "add_org_prefix": True,
                "add_info_link": True, "add_opt_out_language": False, "smart_sending_enabled": True, "sms_quiet_hours_enabled": True,
                "transactional": False, "add_tracking_params": False, "custom_tracking_params": None, "template_id": None, "additional_filters": None}  # fmt: skip

    def _new_message(self, action: Row, definition: dict, serial: int) -> Row:
        mid = self._short_id(100_000 + serial, self._ids)
        definition["id"] = mid
        created, updated = action.keys["created"], action.keys["updated"]
        channel = "sms" if action.keys["action_type"] == "send-sms" else "email"
        attrs = {"channel": channel, "created": fmt_us(created), "updated": fmt_us(updated), "definition": definition}
        row = Row(mid, attrs, {"id": mid, "name": definition["name"], "created": created, "updated": updated}, {"action": action.id})
        self.flow_messages[action.id].append(row)
        self.flow_message_by_id[mid] = row
        return row

    def render_flow_action(self, row: Row, base: str) -> dict:
        out = render_row(row, "flow-action", "flow-actions", base, ("flow", "flow-messages"))
        out["relationships"]["flow"] = {"data": {"type": "flow", "id": row.extra["flow"]}, **out["relationships"]["flow"]}
        return out

    def render_flow_message(self, row: Row, base: str) -> dict:
        out = render_row(row, "flow-message", "flow-messages", base, ("flow-action", "template"))
        out["relationships"]["flow-action"] = {"data": {"type": "flow-action", "id": row.extra["action"]}, **out["relationships"]["flow-action"]}
        return out

    # ---- mutations
    def update_flow(self, flow_id: str, **attributes) -> None:
        """Change flow attributes (name, status, archived, trigger_type) and bump `updated` to now()."""
        with self.lock:
            row = next((r for r in self.flow_rows if r.id == flow_id), None)
            if row is None:
                raise KeyError(f"unknown flow {flow_id!r}")
            for name, value in attributes.items():
                if name not in FLOW_ATTRIBUTES:
                    raise KeyError(f"flow attribute {name!r} cannot be updated")
                row.attrs[name] = row.keys[name] = value
            self._bump(row)

    def update_flow_action(self, action_id: str, status: str | None = None, **data) -> None:
        """Change a flow action's `definition.data` (e.g. value/unit of a delay) and/or its status; bumps its `updated`."""
        with self.lock:
            row = self.flow_action_by_id.get(action_id)
            if row is None:
                raise KeyError(f"unknown flow action {action_id!r}")
            definition = row.attrs["definition"]
            for name, value in data.items():
                if name not in definition["data"] or name in ("message", "status"):
                    raise KeyError(f"flow action data {name!r} cannot be updated")
                definition["data"][name] = value
            if status is not None:
                if "status" not in definition["data"]:
                    raise KeyError(f"a {definition['type']} action has no status")
                definition["data"]["status"] = row.keys["status"] = status
            self._bump(row)

    def update_flow_message(self, message_id: str, **definition) -> None:
        """Change a flow message's definition fields (subject_line, body, name, ...) and bump its `updated`.

        The owning send action shows the same message in `definition.data.message`; its own `updated` does not move.
        """
        with self.lock:
            row = self.flow_message_by_id.get(message_id)
            if row is None:
                raise KeyError(f"unknown flow message {message_id!r}")
            current = row.attrs["definition"]
            for name, value in definition.items():
                if name not in current or name == "id":
                    raise KeyError(f"flow message field {name!r} cannot be updated")
                current[name] = value
            row.keys["name"] = current["name"]
            self._bump(row)
