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

from typing import Callable

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


# GET /api/campaigns from revision 2026-10-15 ("omni" campaigns, [SDK25]); not in the 2026-07-15 summary, so hand-written.
OMNI_CAMPAIGNS = Endpoint(
    "get_campaigns", "/api/campaigns", "campaign",
    filters={"id": _str(list_=("any",)), "name": _str(("contains",)), "archived": FieldSpec("boolean", ("equals",)),
             "builder": _str(("equals",)), "created_at": FieldSpec("date-time", GT_LT), "updated_at": FieldSpec("date-time", GT_LT)},  # fmt: skip
    sort=("created_at", "id", "name", "updated_at"), page_size=(100, 100), page_length=100, page_size_since=None,
    include=("campaign-audiences", "campaign-messages", "tags"), additional={},
    fields={"fields[campaign]": ("created_at", "definition", "id", "updated_at"), "fields[campaign-message]": ("created_at", "definition", "id", "updated_at"),
            "fields[campaign-audience]": ("id",), "fields[tag]": TAG_FIELDS},  # fmt: skip
    rate=(10, 150), handler="campaigns_omni",
)

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

    def campaigns_omni(self, q: Query, base: str) -> bytes:
        omni_rows = [self._omni_row(r) for r in self.account.campaign_rows]
        with_messages = "campaign-messages" in q.include
        msgs = self.account.campaign_messages

        def rel_data(r: Row) -> dict:
            out = self._empty_rel_data(q, ("tags", "campaign-audiences"))
            if "tags" in q.include:
                out["tags"] = self.tag_linkage("campaign", r.id)
            if with_messages:
                out["campaign-messages"] = [{"type": "campaign-message", "id": m.id} for m in msgs[r.id]]
            return out

        data, page, nxt = self.rows_page(q, omni_rows, base, "campaigns", ("campaign-audiences", "campaign-messages", "tags"), rel_data, self._campaign_filter(q))
        included = []
        if with_messages:
            for r in page:
                for m in msgs[r.id]:
                    res = self.account.render_message(m, base)
                    definition = res["attributes"]["definition"]
                    res["attributes"] = {"definition": {"channel": definition["channel"], "status": r.extra["status"]},
                                         "created_at": res["attributes"]["created_at"], "updated_at": res["attributes"]["updated_at"]}  # fmt: skip
                    included.append(res)
        return self.document(q, base, data, nxt, included + self.included_tags(q, base, "campaign", page))

    @staticmethod
    def _omni_row(r: Row) -> Row:
        a = r.attrs
        definition = {
            "name": a["name"], "builder": "wizard", "archived": a["archived"], "color": None, "description": None,
            "send_settings": {"send_timezone": "UTC", "send_strategy": "static", "send_passed_rltz_immediately": False,
                              "exit_condition_enabled": False, "exit_condition_conversion_metric_id": None},
        }  # fmt: skip
        keys = {**r.keys, "builder": "wizard"}
        status = {"Sent": "sent", "Draft": "draft", "Scheduled": "scheduled", "Cancelled": "cancelled"}.get(a["status"], "sending")
        return Row(r.id, {"created_at": a["created_at"], "updated_at": a["updated_at"], "definition": definition}, keys, {"status": status})

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
