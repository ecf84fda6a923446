"""Audience: lists, segments, their members, profiles and suppressions."""

from __future__ import annotations

import typing as t
from functools import cached_property

from tap_klaviyo import jsonapi, timeutil
from tap_klaviyo.client import ALL_HISTORY, KlaviyoStream
from tap_klaviyo.filters import condition
from tap_klaviyo.ratelimit import TIER_L, TIER_M
from tap_klaviyo.timeutil import canonical

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

PROFILE_DATES = ("created", "updated", "last_event_date")


class GroupsStream(KlaviyoStream):
    """Lists or segments: groups of profiles. Klaviyo filters `updated` with greater-than only,
    so the run's end is cut client-side."""

    resource_type: str  # the JSON:API type, for `fields[<type>]=id`
    primary_keys = ("id",)
    replication_key = "updated"
    filter_field = "updated"
    lower_operator = "greater-than"
    upper_operator = None
    page_size = 10
    rate_tier = TIER_L
    extra_params: t.ClassVar[dict[str, str]] = {"include": "tags"}
    to_many: t.ClassVar[dict[str, str]] = {"tags": "tag_ids"}
    date_time_fields = ("created", "updated")

    def group_ids(self) -> list[str]:
        """Every group id in the account (members are read per group, every run): ids only, 10 a page."""
        params = {"sort": "id", "page[size]": str(self.page_size), f"fields[{self.resource_type}]": "id"}
        return [record["id"] for page in self.iter_pages(None, params) for record in page]


class ListsStream(GroupsStream):
    """Lists."""

    name = "lists"
    path = "/api/lists"
    resource_type = "list"

    def list_ids(self) -> list[str]:
        """Every list id (kept for callers of the name)."""
        return self.group_ids()


class SegmentsStream(GroupsStream):
    """Segments with their definition. Joining a segment does not bump its `updated`."""

    name = "segments"
    path = "/api/segments"
    resource_type = "segment"
    scope = "segments:read"


class GroupMembersStream(KlaviyoStream):
    """Full profiles of every group, bookmarked per group: joining a group does not bump the
    group's `updated`, so every group is read on every run."""

    groups_stream: str  # the stream whose `group_ids()` are the partitions
    group_key: str  # the partition's (and record's) column, e.g. "list_id"
    replication_key = "joined_group_at"
    filter_field = "joined_group_at"
    page_size = 100
    rate_tier = TIER_L
    date_time_fields = ("joined_group_at", *PROFILE_DATES)
    prefetch_partitions = True

    @cached_property
    def partitions(self) -> list[dict]:
        return [{self.group_key: group_id} for group_id in self._tap.streams[self.groups_stream].group_ids()]


class ListMembersStream(GroupMembersStream):
    """Profiles of every list."""

    name = "list_members"
    path = "/api/lists/{list_id}/profiles"
    rate_bucket = "/api/lists/{id}/profiles"
    primary_keys = ("list_id", "id")
    groups_stream = "lists"
    group_key = "list_id"


class SegmentMembersStream(GroupMembersStream):
    """Profiles of every segment, with their subscriptions."""

    name = "segment_members"
    path = "/api/segments/{segment_id}/profiles"
    rate_bucket = "/api/segments/{id}/profiles"
    scope = "segments:read and profiles:read"
    primary_keys = ("segment_id", "id")
    groups_stream = "segments"
    group_key = "segment_id"
    extra_params: t.ClassVar[dict[str, str]] = {"additional-fields[profile]": "subscriptions"}


class ProfilesStream(KlaviyoStream):
    """Profiles with their subscriptions (and, on request, predictive analytics)."""

    name = "profiles"
    path = "/api/profiles"
    primary_keys = ("id",)
    replication_key = "updated"
    filter_field = "updated"
    lower_operator = "greater-than"
    page_size = 100
    date_time_fields = PROFILE_DATES
    windowed = True
    window_pages = 10

    @property
    def predictive(self) -> bool:
        return bool(self.config.get("predictive_analytics"))

    @property
    def extra_params(self) -> dict[str, str]:  # type: ignore[override]
        fields = "subscriptions,predictive_analytics" if self.predictive else "subscriptions"
        return {"additional-fields[profile]": fields}

    @property
    def rate_bucket(self) -> str:  # type: ignore[override]
        # predictive_analytics moves the request to a far lower limit (10/s, 150/m).
        return "/api/profiles?predictive_analytics" if self.predictive else self.path

    @property
    def rate_tier(self):  # type: ignore[override]
        return TIER_M if self.predictive else TIER_L


class GlobalExclusionsStream(KlaviyoStream):
    """Globally suppressed profiles, read incrementally on the suppression timestamp.

    Suppressing a profile does not bump its `updated`, so filtering and sorting on the
    suppression timestamp is the only way to get new suppressions without a full scan.
    """

    name = "global_exclusions"
    path = "/api/profiles"
    primary_keys = ("id",)
    replication_key = "suppression_timestamp"
    filter_field = "subscriptions.email.marketing.suppression.timestamp"
    page_size = 100
    rate_tier = TIER_L
    extra_params: t.ClassVar[dict[str, str]] = {"additional-fields[profile]": "subscriptions"}
    date_time_fields = ("consent_timestamp", "created", "updated")

    def flatten(self, resource: jsonapi.Resource, included: list[jsonapi.Resource] | None) -> dict:  # noqa: ARG002
        attributes = resource.attributes or {}
        marketing = ((attributes.get("subscriptions") or {}).get("email") or {}).get("marketing") or {}
        suppression = marketing.get("suppression") or []
        stamps = [canonical(item["timestamp"]) for item in suppression if isinstance(item.get("timestamp"), str)]
        stamps = [stamp for stamp in stamps if stamp is not None]  # an unreadable stamp must not become the bookmark
        record = {
            "id": resource.id,
            "email": attributes.get("email"),
            "phone_number": attributes.get("phone_number"),
            "suppression_timestamp": max(stamps) if stamps else None,
            "suppression": suppression,
            "list_suppressions": marketing.get("list_suppressions") or [],
            "can_receive_email_marketing": marketing.get("can_receive_email_marketing"),
            "consent": marketing.get("consent"),
            "consent_timestamp": marketing.get("consent_timestamp"),
            "created": attributes.get("created"),
            "updated": attributes.get("updated"),
        }
        return self.canonical_dates(record)


# The state key of a list_exclusions run still under way (see ListExclusionsStream.get_records).
OPEN_RUN_SINCE = "open_run_since"


class ListExclusionsStream(KlaviyoStream):
    """One record per list-level email suppression of a profile, incremental on its timestamp.

    Klaviyo filters and sorts profiles on their *latest* list-suppression timestamp (and, like
    global suppressions, suppressing does not bump `updated`). A run reads the profiles whose
    latest suppression is at or after its start and emits, per profile, the suppressions whose
    own timestamp is in the run's [start, end): a new suppression of an already suppressed
    profile brings that profile back without its older suppressions.

    Records therefore come out sorted by profile, not by their own timestamp: a profile read late
    can hold a suppression older than the bookmark. The bookmark (the running maximum of the
    emitted timestamps) never passes the latest suppression of a profile not yet read, so the
    profiles a resumed run must read are still above it; what a resumed run must also know is
    how far back their suppressions are due, and that is kept in the state as `open_run_since`
    from the start of a run until it completes.
    """

    name = "list_exclusions"
    path = "/api/profiles"
    scope = "profiles:read"
    primary_keys = ("list_id", "id")
    replication_key = "timestamp"
    filter_field = "subscriptions.email.marketing.list_suppressions.timestamp"
    lower_operator = "greater-or-equal"
    # No upper bound on the server: a profile suppressed again after the run's start still has
    # its older suppressions due in this run (its new one is cut client-side at the run's end).
    upper_operator = None
    page_size = 100
    rate_tier = TIER_L
    extra_params: t.ClassVar[dict[str, str]] = {"additional-fields[profile]": "subscriptions"}

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._since = timeutil.to_rfc3339(ALL_HISTORY)

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        state = self.get_context_state(context)
        window = self.sync_window(context)
        since = window.start if window is not None else ALL_HISTORY
        pending = state.get(OPEN_RUN_SINCE)
        if pending:  # the last run was cut short: its suppressions are due from its own start
            try:
                since = min(since, timeutil.parse_datetime(pending))
            except ValueError:
                self.logger.warning("Ignoring the unreadable %s %r of stream '%s'.", OPEN_RUN_SINCE, pending, self.name)
        self._since = timeutil.to_rfc3339(since)
        state[OPEN_RUN_SINCE] = self._since
        yield from super().get_records(context)
        state.pop(OPEN_RUN_SINCE, None)

    def range_params(self, context: Context | None, window) -> dict[str, str]:
        """Always a lower bound, even on a first run: only suppressed profiles are read."""
        params = super().range_params(context, window)
        if "filter" not in params:
            start = window.start if window is not None else ALL_HISTORY
            params["filter"] = condition("greater-or-equal", self.filter_field, start)
        return params

    def records_of(self, document: jsonapi.Document) -> list[dict]:
        return [record for resource in document.data or () for record in self.suppressions_of(resource)]

    def suppressions_of(self, resource: jsonapi.Resource) -> list[dict]:
        """The profile's list suppressions due in this run, oldest first, one per list (its latest)."""
        attributes = resource.attributes or {}
        marketing = ((attributes.get("subscriptions") or {}).get("email") or {}).get("marketing") or {}
        latest: dict[t.Any, dict] = {}
        for item in marketing.get("list_suppressions") or []:
            if not isinstance(item, dict):
                continue
            value = item.get("timestamp")
            record = {
                "list_id": item.get("list_id"),
                "id": resource.id,
                "email": attributes.get("email"),
                "phone_number": attributes.get("phone_number"),
                "reason": item.get("reason"),
                "timestamp": canonical(value) if isinstance(value, str) else None,
            }
            if record["timestamp"] is None and value is not None:
                self._bad_datetime(record, "timestamp", value)
            known = latest.get(record["list_id"])
            if known is None or (record["timestamp"] or "") >= (known["timestamp"] or ""):
                latest[record["list_id"]] = record
        # A suppression without a readable time cannot be placed in a window: emitted whenever
        # its profile is read.
        due = [r for r in latest.values() if r["timestamp"] is None or r["timestamp"] >= self._since]
        return sorted(due, key=lambda r: r["timestamp"] or "")
