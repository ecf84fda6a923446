"""Ground truth from the emulator's account: what a full sync of each stream must return."""

from __future__ import annotations

from klaviyo_emulator import Account

EVENT_STREAM_METRICS = {
    "bounce": ("Bounced Email",),
    "click": ("Clicked Email",),
    "dropped_email": ("Dropped Email",),
    "mark_as_spam": ("Marked Email as Spam",),
    "receive": ("Received Email",),
    "unsubscribe": ("Unsubscribed", "Unsubscribed from Email Marketing"),
}


# Streams that read one of the account's small collections whole: stream -> Account attribute.
ROW_TABLES = {
    "templates": "template_rows",
    "universal_content": "universal_content_rows",
    "forms": "form_rows",
    "images": "image_rows",
    "tags": "tag_rows",
    "tag_groups": "tag_group_rows",
}


def klaviyo_metric_ids(account: Account, *names: str) -> list[str]:
    return [
        metric["id"]
        for metric in account.metrics()
        if metric["attributes"]["name"] in names and (metric["attributes"].get("integration") or {}).get("key") == "klaviyo"
    ]


def listed_metric_ids(account: Account) -> list[str]:
    """Every metric GET /api/metrics lists (events of unresolvable metrics cannot be read per metric)."""
    return [metric["id"] for metric in account.metrics()]


def event_ids(account: Account, metric_ids) -> set[str]:
    return {event["id"] for metric_id in metric_ids for event in account.events(metric_id=metric_id)}


def suppression_of(profile: dict) -> list[dict]:
    subscriptions = profile["attributes"].get("subscriptions") or {}
    return ((subscriptions.get("email") or {}).get("marketing") or {}).get("suppression") or []


def expected_keys(account: Account, stream: str) -> set:
    """Primary keys a full sync of `stream` must emit, exactly."""
    if stream in EVENT_STREAM_METRICS:
        return event_ids(account, klaviyo_metric_ids(account, *EVENT_STREAM_METRICS[stream]))
    if stream == "events":
        return event_ids(account, listed_metric_ids(account))
    if stream == "profiles":
        return {profile["id"] for profile in account.profiles()}
    if stream == "global_exclusions":
        return {profile["id"] for profile in account.profiles() if suppression_of(profile)}
    if stream == "lists":
        return {item["id"] for item in account.lists()}
    if stream == "list_members":
        return {
            (item["id"], profile_id)
            for item in account.lists()
            for profile_id, _joined in account.list_member_ids(item["id"])
        }
    if stream == "campaigns":
        return {campaign["id"] for campaign in account.campaigns()}
    if stream == "metrics":
        return {metric["id"] for metric in account.metrics()}
    if stream in ROW_TABLES:
        return {row.id for row in getattr(account, ROW_TABLES[stream])}
    raise KeyError(stream)


def record_keys(stream: str, records: list[dict]) -> list:
    if stream == "list_members":
        return [(record["list_id"], record["id"]) for record in records]
    return [record["id"] for record in records]
