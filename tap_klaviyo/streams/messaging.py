"""Messaging: campaigns and their messages; flows, their actions and their messages.

Flows, flow actions and flow messages share Klaviyo's small rate tier (3/s, 60/min), so they are
read with the fewest requests the API allows: one paged read of every flow with its actions
included (`FlowsStream.snapshot`, shared by the three streams), and a fan-out to the messages of
only those send actions that show a change (`FanOutStream`), with a periodic sweep of all of them.
"""

from __future__ import annotations

import copy
import hashlib
import json
import typing as t
from dataclasses import dataclass
from functools import cached_property

from tap_klaviyo import jsonapi, timeutil
from tap_klaviyo.client import ALL_HISTORY, FanOutStream, KlaviyoAPIError, KlaviyoStream
from tap_klaviyo.filters import equals, join
from tap_klaviyo.ratelimit import TIER_M, TIER_S
from tap_klaviyo.windows import Window

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context

CAMPAIGN_CHANNELS = ("email", "sms", "mobile_push")
MESSAGE_RECORDS_KEY = "_message_records"  # a campaign record's messages, taken off before it is emitted


OMNI_REVISION = "2026-10-15"  # campaigns -> audiences, messages -> variations (shared/docs/klaviyo-2026-10-15.md)
OMNI_CHANNELS = {"push": "mobile_push"}  # variation `details.channel` -> the 2026-07-15 spelling of the channel column
LOCAL_STRATEGIES = ("local_timezone", "content_variation_local_timezone")
SEND_METHODS = {
    "static": "static", "local_timezone": "static", "throttled": "throttled", "variation_per_second_throttled": "throttled",
    "send_time_optimization": "smart_send_time", "personalized_send_time_optimization": "smart_send_time",
    "ab_send_time_test": "ab_test_campaign", "content_variation": "ab_test_campaign", "content_variation_local_timezone": "ab_test_campaign",
}  # fmt: skip


def is_omni(config: t.Mapping) -> bool:
    return str(config.get("revision") or "") >= OMNI_REVISION


def partition_key(context: Context | None) -> tuple:
    return tuple(sorted((context or {}).items()))


class CampaignsStream(KlaviyoStream):
    """Campaigns of every channel, archived or not, each with its campaign messages."""

    name = "campaigns"
    path = "/api/campaigns"
    scope = "campaigns:read"  # also for /api/campaign-messages (campaign_messages from 2026-10-15)
    primary_keys = ("id",)
    replication_key = "updated_at"
    filter_field = "updated_at"
    page_size = 100
    rate_tier = TIER_M
    extra_params: t.ClassVar[dict[str, str]] = {"include": "campaign-messages,tags"}
    to_many: t.ClassVar[dict[str, str]] = {"tags": "tag_ids"}
    date_time_fields = ("created_at", "scheduled_at", "updated_at", "send_time")

    omni_params: t.ClassVar[dict[str, str]] = {"include": "campaign-messages,campaign-audiences,tags"}

    @property
    def omni(self) -> bool:
        """Revision 2026-10-15 or later: the omni campaigns API, mapped onto the same columns."""
        return is_omni(self.config)

    @property
    def partitions(self) -> list[dict] | None:
        # Klaviyo requires one channel per request before revision 2026-10-15 and hides archived
        # campaigns unless asked, so every (channel, archived) pair is its own partition. From
        # 2026-10-15 there is no channel filter (it is a 400): one partition, see `_omni_records`.
        if self.omni:
            return None
        return [{"channel": channel, "archived": archived} for channel in CAMPAIGN_CHANNELS for archived in (False, True)]

    def base_params(self, context: Context | None) -> dict[str, str]:
        params = super().base_params(context)
        if self.omni:
            params.update(self.omni_params)
            return params
        params["filter"] = join(
            equals("messages.channel", context["channel"]), equals("archived", context["archived"])
        )
        return params

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        # Per partition: (window read, [(campaign updated_at, its message records)]) of a complete
        # read, handed to campaign_messages so that it needs no request of its own.
        self.handed_off: dict[tuple, tuple[t.Any, list[tuple[str | None, list[dict]]]]] = {}
        self.synced = False

    def flatten(self, resource: jsonapi.Resource, included: list[jsonapi.Resource] | None) -> dict:
        record = super().flatten(resource, included)
        if self.omni:
            return self.canonical_dates(omni_campaign_record(self._tap, record, resource, included))
        messages = {item.id: item for item in included or () if item.type == "campaign-message"}
        refs = jsonapi.related(resource, "campaign-messages")
        refs = refs if isinstance(refs, list) else ()
        record["campaign_messages"] = [{"id": ref.id, **((messages[ref.id].attributes or {}) if ref.id in messages else {})} for ref in refs]
        if self._hands_off:
            message_stream = self._tap.streams["campaign_messages"]
            record[MESSAGE_RECORDS_KEY] = [
                message_stream.message_record(messages[ref.id], record) for ref in refs if ref.id in messages
            ]
        return record

    def sync(self, context: Context | None = None) -> None:
        """Sync; then campaign_messages, which takes the campaign messages this sync read."""
        super().sync(context)
        self.synced = True
        messages = self._tap.streams["campaign_messages"]
        if self.name == "campaigns" and messages.selected and context is None and not self.omni:
            messages.sync()

    @cached_property
    def _hands_off(self) -> bool:
        if self.omni:
            return False
        return self.name == "campaign_messages" or self._tap.streams["campaign_messages"].selected

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        if self.omni:
            yield from self._omni_records()
            return
        if not self._hands_off:
            yield from super().get_records(context)
            return
        window = self.sync_window(context)
        campaigns: list[tuple[str | None, list[dict]]] = []
        for record in super().get_records(context):
            campaigns.append((record.get("updated_at"), record.pop(MESSAGE_RECORDS_KEY, [])))
            yield record
        self.handed_off[partition_key(context)] = (window, campaigns)

    def _omni_records(self) -> t.Iterator[dict]:
        """At 2026-10-15: every campaign, archived or not, with the fewest requests either way.

        Whether /api/campaigns hides archived campaigns by default is not documented: the range is
        read unfiltered, and again with equals(archived,true) only when the first read returned no
        archived campaign (so the API may hide them). One read when the API returns them, two when
        it hides them (or none changed); deduplicated by id, sorted on updated_at before any is emitted.
        """
        window = self.sync_window(None)
        self.open_partition(None)
        if window.start >= window.end:
            return
        found: dict[str, dict] = {}
        saw_archived = False
        for archived_only in (False, True):
            if archived_only and saw_archived:
                break
            params = self.range_params(None, window)
            if archived_only:
                params["filter"] = join(params.get("filter"), equals("archived", True))
            for page in self.iter_pages(None, params):
                for record in page:
                    saw_archived = saw_archived or record.get("archived") is True
                    found.setdefault(record["id"], record)
        end = timeutil.to_rfc3339(window.end)
        key = self.replication_key
        kept = [r for r in found.values() if r.get(key) is None or r[key] < end]
        yield from sorted(kept, key=lambda r: (r.get(key) or "", str(r["id"])))


class CampaignMessagesStream(CampaignsStream):
    """The messages of campaigns, incremental with their campaign's `updated_at`: no request of their own.

    When campaigns is selected too, this stream is synced right after it (the SDK would sync the
    streams in name order) and takes the messages of the campaigns it read
    (include=campaign-messages); otherwise, or when this stream's bookmark is older than the
    campaigns' one, the campaigns are read here, the same way. Either way a message is emitted
    whenever its campaign is, and the bookmark (per channel and archived flag, as for campaigns)
    is the campaign's `updated_at`. Klaviyo does not say whether a message edit moves its
    campaign's `updated_at`, so every `sweep_hours` all campaigns are read again (one request per
    100 campaigns of each channel and archived flag).
    """

    name = "campaign_messages"
    schema_name = "campaign_messages"
    extra_params: t.ClassVar[dict[str, str]] = {"include": "campaign-messages"}
    message_dates = ("created_at", "updated_at")
    # From 2026-10-15: the /api/campaign-messages collection, incremental on its own `updated`
    # (column updated_at), sorted on it, 100 a page, with each message's variations (one request each).
    omni_params: t.ClassVar[dict[str, str]] = {"include": "campaign"}

    @property
    def path(self) -> str:  # type: ignore[override]
        return "/api/campaign-messages" if self.omni else "/api/campaigns"

    @property
    def filter_field(self) -> str:  # type: ignore[override]
        return "updated" if self.omni else "updated_at"

    def message_index(self) -> dict[str, dict]:
        """Every campaign message's campaign id and update time, by id (2026-10-15): listed from the
        raw pages, without the variations each message row needs."""
        index: dict[str, dict] = {}
        params = {"page[size]": "100", "sort": "id", "include": "campaign"}
        for page in self.iter_pages(None, params, send=self.request_decorator(self._fetch_index_page)):
            index.update(page)
        return index

    def _fetch_index_page(self, prepared: requests.PreparedRequest, context: Context | None) -> tuple[dict, str | None]:
        """One page of the message listing: id -> {campaign_id, updated_at}, and the next link."""
        try:
            document = jsonapi.decode_json(self._request(prepared, context).content)
            entries = {}
            for resource in document.get("data") or ():
                campaign = ((resource.get("relationships") or {}).get("campaign") or {}).get("data") or {}
                updated = (resource.get("attributes") or {}).get("updated")
                entries[resource["id"]] = {"campaign_id": campaign.get("id"), "updated_at": timeutil.canonical(updated) if isinstance(updated, str) else None}
            return entries, (document.get("links") or {}).get("next")
        except (*jsonapi.DecodeError, AttributeError, KeyError, TypeError) as exc:
            msg = f"Klaviyo sent an unexpected body for GET /api/campaign-messages: {exc}"
            raise KlaviyoAPIError(msg) from exc

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._campaign_time: dict[t.Any, str] = {}

    def sync(self, context: Context | None = None) -> None:
        """When campaigns is selected, this stream runs right after it (called from its sync), once."""
        if self.omni:
            KlaviyoStream.sync(self, context)
            return
        campaigns = self._tap.streams["campaigns"]
        if self.synced or (campaigns.selected and not campaigns.synced):
            return
        sweep = self.sweep_due
        super().sync(context)
        if sweep and context is None:
            self.stream_state["swept_at"] = timeutil.to_rfc3339(self._tap.run_started_at)
            self.state_manager.is_flushed = False
            self._write_state_message()

    sweep_due = FanOutStream.sweep_due

    def flatten(self, resource: jsonapi.Resource, included: list[jsonapi.Resource] | None) -> dict:
        if self.omni:
            return omni_message_record(self, resource)
        return super().flatten(resource, included)

    def sync_window(self, context: Context | None) -> Window | None:
        """From the start when a sweep is due: a message edit need not move its campaign's updated_at."""
        window = super().sync_window(context)
        if window is not None and self.sweep_due and not self.omni:
            return Window(self.start_date or ALL_HISTORY, window.end)
        return window

    def message_record(self, resource: jsonapi.Resource, campaign: dict) -> dict:
        # A copy: the campaign record embeds the same attributes, and emitting it may prune them.
        record = {"id": resource.id, **copy.deepcopy(jsonapi.attributes_of(resource))}
        for name in ("campaign", "template", "image"):
            ref = jsonapi.related(resource, name)
            record[f"{name}_id"] = ref.id if isinstance(ref, jsonapi.Ref) else None
        record["campaign_id"] = record["campaign_id"] or campaign.get("id")
        record["channel"] = (record.get("definition") or {}).get("channel") or campaign.get("channel")
        return self.canonical_dates(record, self.message_dates)

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        if self.omni:
            yield from KlaviyoStream.get_records(self, context)
            return
        window = self.sync_window(context)
        campaigns = self._tap.streams["campaigns"]
        handed = campaigns.handed_off.get(partition_key(context)) if campaigns.selected else None
        if handed is not None and handed[0].start <= window.start and handed[0].end == window.end:
            self.open_partition(context)
            start = timeutil.to_rfc3339(window.start) if window.start > ALL_HISTORY else None
            read = [(at, messages) for at, messages in handed[1] if start is None or (at is not None and at >= start)]
        else:
            read = (
                (campaign.get("updated_at"), campaign.get(MESSAGE_RECORDS_KEY, []))
                for campaign in KlaviyoStream.get_records(self, context)
            )
        last = None
        for at, messages in read:
            last = at if at is not None and (last is None or at > last) else last
            for message in messages:
                self._campaign_time[message["id"]] = at
                yield message
        if last is not None:  # campaigns without messages still move the bookmark
            KlaviyoStream._increment_stream_state(self, {self.replication_key: last}, context=context)

    def _increment_stream_state(self, latest_record: dict, *, context: Context | None = None) -> None:
        if self.omni:
            KlaviyoStream._increment_stream_state(self, latest_record, context=context)
            return
        value = self._campaign_time.pop(latest_record.get("id"), None)
        if value is not None:
            super()._increment_stream_state({self.replication_key: value}, context=context)


FLOW_ACTIONS_KEY = "_flow_actions"  # a flow record's included actions, taken off before it is emitted


@dataclass
class FlowSnapshot:
    """Every flow (archived or not) and every flow action, as one paged read of /api/flows returned them."""

    flows: list[tuple[bool, dict]]  # (archived partition, flow record)
    actions: list[dict]
    action_by_id: dict[str, dict]


class FlowsStream(KlaviyoStream):
    """Flows, archived or not, with their tag ids.

    When flow_actions or flow_messages is selected, every flow is read once with its actions
    included (the snapshot), and this stream takes its records from that read instead of
    asking again.
    """

    name = "flows"
    path = "/api/flows"
    scope = "flows:read"
    primary_keys = ("id",)
    replication_key = "updated"
    filter_field = "updated"
    page_size = 50
    rate_tier = TIER_S
    extra_params: t.ClassVar[dict[str, str]] = {"include": "tags"}
    to_many: t.ClassVar[dict[str, str]] = {"tags": "tag_ids"}
    date_time_fields = ("created", "updated")
    # Klaviyo hides archived flows unless the filter names `archived` (as for campaigns).
    partitions: t.ClassVar[list[dict]] = [{"archived": False}, {"archived": True}]

    def base_params(self, context: Context | None) -> dict[str, str]:
        params = super().base_params(context)
        params["filter"] = join(params.get("filter"), equals("archived", context["archived"]))
        return params

    def records_of(self, document: jsonapi.Document) -> list[dict]:
        records = super().records_of(document)
        actions = {item.id: item for item in document.included or () if item.type == "flow-action"}
        if not actions:
            return records
        action_stream = self._tap.streams["flow_actions"]
        for resource, record in zip(document.data or (), records):
            refs = jsonapi.related(resource, "flow-actions")
            record[FLOW_ACTIONS_KEY] = [
                {**action_stream.flatten(actions[ref.id], None), "flow_id": record["id"]}
                for ref in (refs if isinstance(refs, list) else ())
                if ref.id in actions
            ]
        return records

    @property
    def shares_snapshot(self) -> bool:
        return any(self._tap.streams[name].selected for name in ("flow_actions", "flow_messages"))

    @cached_property
    def snapshot(self) -> FlowSnapshot:
        """Every flow with its actions: ceil(flows / 50) requests per archived partition."""
        flows: dict[str, tuple[bool, dict]] = {}
        actions: dict[str, dict] = {}
        for archived in (False, True):
            context = {"archived": archived}
            params = {"page[size]": str(self.page_size), "sort": "updated", "include": "flow-actions,tags",
                      "filter": equals("archived", archived)}  # fmt: skip
            for page in self.iter_pages(context, params):
                for record in page:
                    for action in record.pop(FLOW_ACTIONS_KEY, ()):
                        actions[action["id"]] = action
                    flows[record["id"]] = (archived, record)
        return FlowSnapshot(list(flows.values()), list(actions.values()), actions)

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        if not self.shares_snapshot:
            yield from super().get_records(context)
            return
        flows = [record for archived, record in self.snapshot.flows if archived == context["archived"]]
        yield from self.records_in_window(context, flows)


class FlowActionsStream(KlaviyoStream):
    """Flow actions, with their flow's id; taken from the flows read (include=flow-actions), no request of their own.

    Every run reads every flow with its actions (see FlowsStream.snapshot) and emits the actions
    whose own `updated` is in the run's window, sorted on it.
    """

    name = "flow_actions"
    path = "/api/flows"  # the requests are the flows read's
    scope = "flows:read"
    primary_keys = ("id",)
    replication_key = "updated"
    rate_tier = TIER_S
    date_time_fields = ("created", "updated")

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        yield from self.records_in_window(context, self._tap.streams["flows"].snapshot.actions)


def holds_messages(action: dict) -> bool:
    """Send actions (send-email, send-sms, ...) and email A/B tests hold flow messages."""
    kind = str((action.get("definition") or {}).get("type") or "")
    return kind.startswith("send-") or kind == "ab-test"


def embedded_messages(value: t.Any) -> list:
    """The messages an action's definition shows (`data.message`, and those of A/B test variations)."""
    found = []
    if isinstance(value, dict):
        for name, item in value.items():
            if name == "message" and isinstance(item, dict):
                found.append(item)
            else:
                found.extend(embedded_messages(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(embedded_messages(item))
    return found


class FlowMessagesStream(FanOutStream):
    """Messages of flow send actions, one partition per action, read only where the action shows a change.

    An action is read when its `updated` moved since its last read, when the messages its
    definition shows changed (a fingerprint kept in the partition's state), or in the sweep of
    every send action every `sweep_hours`: Klaviyo does not say whether a message edit bumps its
    action's `updated`.
    """

    name = "flow_messages"
    path = "/api/flow-actions/{flow_action_id}/flow-messages"
    rate_bucket = "/api/flow-actions/{id}/flow-messages"
    scope = "flows:read"
    primary_keys = ("id",)
    replication_key = "updated"
    filter_field = "updated"
    page_size = 50
    rate_tier = TIER_S
    to_one = ("flow-action", "template")
    date_time_fields = ("created", "updated")

    @cached_property
    def partitions(self) -> list[dict]:
        actions = self._tap.streams["flows"].snapshot.actions
        return [{"flow_action_id": action["id"]} for action in actions if holds_messages(action)]

    def _action(self, context: Context) -> dict:
        return self._tap.streams["flows"].snapshot.action_by_id.get(context["flow_action_id"]) or {}

    def parent_changed_at(self, context: Context) -> str | None:
        return self._action(context).get("updated")

    def parent_digest(self, context: Context) -> str | None:
        messages = embedded_messages((self._action(context).get("definition") or {}).get("data"))
        if not messages:
            return None
        text = json.dumps(messages, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        action = self._action(context) if context else {}
        for record in super().get_records(context):
            record["flow_action_id"] = record.get("flow_action_id") or context["flow_action_id"]
            record["flow_id"] = action.get("flow_id")
            if record.get("template_id") is None:
                record["template_id"] = (record.get("definition") or {}).get("template_id")
            yield record


# ---- revision 2026-10-15: the omni shapes mapped onto the 2026-07-15 columns (klaviyo-2026-10-15.md §3)


def _definition(attributes: dict) -> dict:
    return attributes.get("definition") or {}


def omni_channel(variations: list[dict]) -> str | None:
    """The campaign/message `channel` column: the distinct variation channels (push -> mobile_push), comma-joined."""
    channels = dict.fromkeys(OMNI_CHANNELS.get(c, c) for c in (_variation_channel(v) for v in variations) if c)
    return ",".join(channels) or None


def _variation_channel(variation: dict) -> str | None:
    return ((variation.get("definition") or {}).get("details") or {}).get("channel")


def omni_status(statuses: list[str | None]) -> str | None:
    """The campaign's legacy Title-Case status from its messages' statuses (§3.1)."""
    known = [s for s in statuses if s]
    if not known:
        return None
    if "sending" in known:
        return "Sending"
    if all(s == "draft" for s in known):
        return "Draft"
    if "scheduled" in known:
        return "Scheduled"
    if all(s == "cancelled" for s in known):
        return "Cancelled"
    if set(known) <= {"sent", "cancelled"}:
        return "Sent"
    return None


def omni_legacy_definition(name: str | None, details: dict) -> dict:
    """A variation's `details` in the 2026-07-15 message `definition` shape (§3.2)."""
    channel = details.get("channel")
    if channel == "email":
        content = {k: details.get(k) for k in ("subject", "preview_text", "from_email", "from_label")}
        content.update({k: details.get(k) or None for k in ("reply_to_email", "cc_email", "bcc_email")})  # "" means unset
        return {"channel": "email", "label": name, "content": content}
    if channel == "sms":
        return {"channel": "sms", "content": {"body": details.get("body")},
                "render_options": {k: details.get(k) for k in ("shorten_links", "add_org_prefix", "add_info_link", "add_opt_out_language")}}  # fmt: skip
    if channel == "push":
        links = {k: details.get(k) for k in ("ios_deep_link", "android_deep_link", "web_url") if details.get(k)}
        kind = "deep_link" if ("ios_deep_link" in links or "android_deep_link" in links) else "open_web_url" if "web_url" in links else "open_app"
        badge: dict = {"display": bool(details.get("badge"))}
        if badge["display"]:
            config = str(details.get("badge_config") or "increment-one").replace("-", "_")
            badge["badge_options"] = {"badge_config": config, **({"value": details.get("badge_value")} if config == "set_count" else {}),
                                      **({"set_from_property": details.get("badge_value")} if config == "set_property" else {})}  # fmt: skip
        buttons = details.get("action_buttons")
        return {
            "channel": "mobile_push", "notification_type": details.get("push_type"),
            "content": {"title": details.get("title"), "body": details.get("body"), "dynamic_image": details.get("dynamic_media_template") or None,
                        "action_buttons": None if buttons is None else [
                            {"label": b.get("label"), "action_type": b.get("action_type"), "position": i, "url": b.get("url")} for i, b in enumerate(buttons)]},
            "kv_pairs": details.get("kv_pairs"), "options": {"on_open": {"type": kind, **links}, "badge": badge, "play_sound": details.get("sound")},
        }  # fmt: skip
    return {"channel": channel}


def omni_send_time(message_attributes: dict) -> str | None:
    return (_definition(message_attributes).get("send_options") or {}).get("send_time")


def omni_send_times(message_attributes: dict) -> list[dict]:
    """The legacy `send_times` list: the message's send_time, then the values of send_times (shape UNVERIFIED)."""
    options = _definition(message_attributes).get("send_options") or {}
    is_local = options.get("send_strategy") in LOCAL_STRATEGIES
    times = [options.get("send_time")] + [v if isinstance(v, str) else (v or {}).get("datetime") for v in (options.get("send_times") or {}).values()]
    return [{"datetime": at, "is_local": is_local} for at in dict.fromkeys(times) if at]


def omni_legacy_message(message_id: str, attributes: dict, variations: list[dict]) -> dict:
    """One element of the campaigns.campaign_messages column (and the base of a campaign_messages row)."""
    details = ((variations[0].get("definition") or {}).get("details") or {}) if variations else {}
    return {
        "id": message_id,
        "definition": omni_legacy_definition(_definition(attributes).get("name"), details) if details else None,
        "send_times": omni_send_times(attributes),
        "created_at": attributes.get("created"),
        "updated_at": attributes.get("updated"),
    }


def _tracking(message_attributes: dict) -> dict | None:
    options = _definition(message_attributes).get("tracking_options")
    if options is None:
        return None
    out = {"add_tracking_params": options.get("is_add_utm"), "custom_tracking_params": None}
    out.update({k: options[k] for k in ("is_tracking_clicks", "is_tracking_opens") if options.get(k) is not None})
    return out


def omni_campaign_record(tap: t.Any, record: dict, resource: jsonapi.Resource, included: list[jsonapi.Resource] | None) -> dict:
    """A 2026-10-15 campaign as a campaigns row: the 2026-07-15 columns derived from its messages,
    audiences and variations; the columns only 2026-10-15 has (builder, color, description, send_settings)."""
    definition = record.pop("definition", None) or {}
    by_id = {(item.type, item.id): item for item in included or ()}

    def linked(name: str, rtype: str) -> list[jsonapi.Resource]:
        refs = jsonapi.related(resource, name)
        return [by_id[(rtype, ref.id)] for ref in (refs if isinstance(refs, list) else ()) if (rtype, ref.id) in by_id]

    messages = [(m.id, jsonapi.attributes_of(m)) for m in linked("campaign-messages", "campaign-message")]
    audiences = sorted((jsonapi.attributes_of(a) for a in linked("campaign-audiences", "campaign-audience")),
                       key=lambda a: (_definition(a).get("priority") is None, _definition(a).get("priority") or 0))  # fmt: skip
    fetch = tap.streams["campaign_variations"].variations_of
    variations = {mid: fetch(mid) for mid, _ in messages}
    times = sorted(at for _, a in messages if (at := omni_send_time(a)))
    status = omni_status([_definition(a).get("status") for _, a in messages])
    tracking = [_tracking(a) for _, a in messages]
    strategies = [(_definition(a).get("send_options") or {}).get("send_strategy") for _, a in messages]
    settings = definition.get("send_settings")
    send_strategy = None
    if messages:
        is_local = strategies[0] in LOCAL_STRATEGIES
        options: dict = {"is_local": is_local}
        if is_local and settings and settings.get("send_passed_rltz_immediately") is not None:
            options["send_past_recipients_immediately"] = settings["send_passed_rltz_immediately"]
        send_strategy = {"method": SEND_METHODS.get(strategies[0] or "", "unsupported"), "options": options}
        if times:  # a draft has no send time at 2026-10-15: no datetime (2026-07-15 sends one)
            send_strategy["datetime"] = times[0]
    audience_sets = {"included": [], "excluded": []}
    for audience in audiences:
        for side in audience_sets:
            for list_id in _definition(audience).get(side) or ():
                if list_id not in audience_sets[side]:
                    audience_sets[side].append(list_id)
    record.update(
        name=definition.get("name"),
        status=status,
        archived=definition.get("archived"),
        audiences=audience_sets if audiences else None,
        send_options=None,
        tracking_options=tracking[0] if tracking and all(x == tracking[0] for x in tracking) else None,
        send_strategy=send_strategy,
        scheduled_at=None,
        send_time=None if status == "Draft" or not times else times[0],
        channel=omni_channel([v for vs in variations.values() for v in vs]),
        campaign_messages=[omni_legacy_message(mid, a, variations[mid]) for mid, a in messages],
        builder=definition.get("builder"),
        color=definition.get("color"),
        description=definition.get("description"),
        send_settings=copy.deepcopy(settings),
    )
    return record


def omni_message_record(stream: KlaviyoStream, resource: jsonapi.Resource) -> dict:
    """A /api/campaign-messages resource as a campaign_messages row (same columns as at 2026-07-15, plus the new ones)."""
    attributes = copy.deepcopy(jsonapi.attributes_of(resource))
    variations = stream._tap.streams["campaign_variations"].variations_of(resource.id)
    record = omni_legacy_message(resource.id, attributes, variations)
    campaign = jsonapi.related(resource, "campaign")
    details = ((variations[0].get("definition") or {}).get("details") or {}) if variations else {}
    definition = _definition(attributes)
    record.update(
        campaign_id=campaign.id if isinstance(campaign, jsonapi.Ref) else None,
        template_id=details.get("template_id"),
        image_id=None,  # the variation's image relationship; not read (one more request per variation)
        channel=omni_channel(variations),
        name=definition.get("name"),
        status=definition.get("status"),
        send_options=definition.get("send_options"),
        tracking_options=definition.get("tracking_options"),
        ab_test=definition.get("ab_test"),
        variation_ids=[v["id"] for v in variations],
    )
    return stream.canonical_dates(record, ("created_at", "updated_at"))


class CampaignVariationsStream(FanOutStream):
    """Campaign variations (2026-10-15 only): the content of each campaign message, read per message that changed.

    Klaviyo has no variation collection, so every run lists every campaign message
    (/api/campaign-messages, 100 a page), one partition each, and reads the variations of those
    whose `updated_at` moved since their last read, and of every message in the sweep every
    `sweep_hours` (Klaviyo does not say that editing a variation moves its message). A message
    whose variations the campaigns or campaign_messages stream already read this run costs
    nothing more (one cache per run). The endpoint neither filters, sorts nor pages: a message's
    variations are cut to the window on `updated` and sorted here. Below 2026-10-15 the stream
    has no source and emits nothing.
    """

    name = "campaign_variations"
    path = "/api/campaign-messages/{campaign_message_id}/campaign-variations"
    rate_bucket = "/api/campaign-messages/{id}/campaign-variations"
    scope = "campaigns:read"
    primary_keys = ("id",)
    replication_key = "updated"
    rate_tier = TIER_M
    date_time_fields = ("created", "updated")

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._variations: dict[str, list[dict]] = {}

    def variations_of(self, message_id: str) -> list[dict]:
        """The variations of one message, read once per run (shared by campaigns, campaign_messages and this stream)."""
        if message_id not in self._variations:
            found: list[dict] = []
            for page in self.iter_pages({"campaign_message_id": message_id}, {}):
                found.extend(page)
            self._variations[message_id] = found
        return self._variations[message_id]

    @cached_property
    def messages(self) -> dict[str, dict]:
        """Every campaign message of the account: its campaign id and `updated_at`, by id."""
        if not is_omni(self.config):
            self.logger.info("Stream %s has no source below revision %s; nothing to read.", self.name, OMNI_REVISION)
            return {}
        return self._tap.streams["campaign_messages"].message_index()

    @cached_property
    def partitions(self) -> list[dict]:
        return [{"campaign_message_id": message_id} for message_id in self.messages]

    def parent_changed_at(self, context: Context) -> str | None:
        return (self.messages.get(context["campaign_message_id"]) or {}).get("updated_at")

    def first_request(self, context: Context | None):
        if context and context["campaign_message_id"] in self._variations:
            return None  # read already this run: nothing to send ahead
        return super().first_request(context)

    def _read(self, context: Context | None, window: Window | None) -> t.Iterator[dict]:
        message_id = context["campaign_message_id"]
        message = self.messages.get(message_id) or {}
        start = timeutil.to_rfc3339(window.start) if window is not None and window.start > ALL_HISTORY else None
        rows = []
        for variation in self.variations_of(message_id):
            if start is not None and variation.get("updated") is not None and variation["updated"] < start:
                continue  # unchanged since this message's last read
            definition = variation.get("definition") or {}
            channel = _variation_channel(variation)
            rows.append({
                "id": variation["id"], "campaign_message_id": message_id, "campaign_id": message.get("campaign_id"),
                "name": definition.get("name"), "channel": OMNI_CHANNELS.get(channel, channel),
                "details": copy.deepcopy(definition.get("details")), "created": variation.get("created"), "updated": variation.get("updated"),
            })  # fmt: skip
        rows.sort(key=lambda row: (row["updated"] or "", row["id"]))
        yield from rows


class CampaignAudiencesStream(KlaviyoStream):
    """Campaign audiences (2026-10-15 only), read whole each run from the campaigns with include=campaign-audiences.

    Two reads of /api/campaigns (unfiltered, and equals(archived,true), since whether archived
    campaigns are hidden by default is not documented), deduplicated: 2 x ceil(campaigns / 100)
    requests. Below 2026-10-15 the stream has no source and emits nothing.
    """

    name = "campaign_audiences"
    path = "/api/campaigns"
    scope = "campaigns:read"
    primary_keys = ("id",)
    replication_key = None
    page_size = 100
    rate_tier = TIER_M
    date_time_fields = ("created", "updated")

    def records_of(self, document: jsonapi.Document) -> list[dict]:
        audiences = {item.id: item for item in document.included or () if item.type == "campaign-audience"}
        out = []
        for campaign in document.data or ():
            refs = jsonapi.related(campaign, "campaign-audiences")
            for ref in refs if isinstance(refs, list) else ():
                if ref.id in audiences:
                    attributes = copy.deepcopy(jsonapi.attributes_of(audiences[ref.id]))
                    definition = attributes.get("definition") or {}
                    record = {"id": ref.id, "campaign_id": campaign.id, "name": definition.get("name"), "included": definition.get("included"),
                              "excluded": definition.get("excluded"), "priority": definition.get("priority"),
                              "created": attributes.get("created"), "updated": attributes.get("updated")}  # fmt: skip
                    out.append(self.canonical_dates(record))
        return out

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        if not is_omni(self.config):
            self.logger.info("Stream %s has no source below revision %s; nothing to read.", self.name, OMNI_REVISION)
            return
        seen: set[str] = set()
        for archived in (None, True):
            params = {"page[size]": "100", "sort": "id", "include": "campaign-audiences"}
            if archived:
                params["filter"] = equals("archived", True)
            for page in self.iter_pages(None, params):
                for record in page:
                    if record["id"] not in seen:
                        seen.add(record["id"])
                        yield record
