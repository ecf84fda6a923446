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
from tap_klaviyo.client import ALL_HISTORY, FanOutStream, KlaviyoStream
from tap_klaviyo.filters import equals, join
from tap_klaviyo.ratelimit import TIER_M, TIER_S
from tap_klaviyo.windows import Window

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

CAMPAIGN_CHANNELS = ("email", "sms", "mobile_push")
MESSAGE_RECORDS_KEY = "_message_records"  # a campaign record's messages, taken off before it is emitted


def partition_key(context: Context | None) -> tuple:
    return tuple(sorted((context or {}).items()))


class CampaignsStream(KlaviyoStream):
    """Campaigns of every channel, archived or not, each with its campaign messages."""

    name = "campaigns"
    path = "/api/campaigns"
    primary_keys = ("id",)
    replication_key = "updated_at"
    filter_field = "updated_at"
    page_size = 100
    rate_tier = TIER_M
    extra_params: t.ClassVar[dict[str, str]] = {"include": "campaign-messages,tags"}
    to_many: t.ClassVar[dict[str, str]] = {"tags": "tag_ids"}
    date_time_fields = ("created_at", "scheduled_at", "updated_at", "send_time")

    # Klaviyo requires one channel per request before revision 2026-10-15 and hides archived
    # campaigns unless asked, so every (channel, archived) pair is its own partition.
    partitions: t.ClassVar[list[dict]] = [
        {"channel": channel, "archived": archived} for channel in CAMPAIGN_CHANNELS for archived in (False, True)
    ]

    def base_params(self, context: Context | None) -> dict[str, str]:
        params = super().base_params(context)
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
        if self.name == "campaigns" and messages.selected and context is None:
            messages.sync()

    @cached_property
    def _hands_off(self) -> bool:
        return self.name == "campaign_messages" or self._tap.streams["campaign_messages"].selected

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        if not self._hands_off:
            yield from super().get_records(context)
            return
        window = self.sync_window(context)
        campaigns: list[tuple[str | None, list[dict]]] = []
        for record in super().get_records(context):
            campaigns.append((record.get("updated_at"), record.pop(MESSAGE_RECORDS_KEY, [])))
            yield record
        self.handed_off[partition_key(context)] = (window, campaigns)


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

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._campaign_time: dict[t.Any, str] = {}

    def sync(self, context: Context | None = None) -> None:
        """When campaigns is selected, this stream runs right after it (called from its sync), once."""
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

    def sync_window(self, context: Context | None) -> Window | None:
        """From the start when a sweep is due: a message edit need not move its campaign's updated_at."""
        window = super().sync_window(context)
        if window is not None and self.sweep_due:
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
        for name in self.message_dates:
            value = record.get(name)
            if value is not None:
                normal = timeutil.canonical(value) if isinstance(value, str) else None
                if normal is None:
                    self._bad_datetime(record, name, value)
                record[name] = normal
        return record

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        window = self.sync_window(context)
        campaigns = self._tap.streams["campaigns"]
        handed = campaigns.handed_off.get(partition_key(context)) if campaigns.selected else None
        if handed is not None and handed[0].start <= window.start and handed[0].end == window.end:
            self._partition_state = self.get_context_state(context)
            self._bookmark = self._partition_state.get("replication_key_value")
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
