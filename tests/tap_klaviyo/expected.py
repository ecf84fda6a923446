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
    "segments": "segment_rows",
    "catalog_items": "catalog_rows",
    "catalog_variants": "catalog_variant_rows",
    "catalog_categories": "catalog_category_rows",
    "coupons": "coupon_rows",
    "coupon_codes": "coupon_code_rows",
    "reviews": "review_rows",
    "push_tokens": "push_token_rows",
    "accounts": "account_rows",
}


def klaviyo_metric_ids(account: Account, *names: str) -> list[str]:
    return [
        metric["id"]
        for metric in account.metrics()
        if metric["attributes"]["name"] in names and (metric["attributes"].get("integration") or {}).get("key") == "klaviyo"
    ]


def suppression_of(profile: dict) -> list[dict]:
    subscriptions = profile["attributes"].get("subscriptions") or {}
    return ((subscriptions.get("email") or {}).get("marketing") or {}).get("suppression") or []


def list_suppressions_of(profile: dict) -> list[dict]:
    subscriptions = profile["attributes"].get("subscriptions") or {}
    return ((subscriptions.get("email") or {}).get("marketing") or {}).get("list_suppressions") or []


def expected_keys(account: Account, stream: str) -> set:
    """Primary keys a full sync of `stream` must emit, exactly."""
    if stream in EVENT_STREAM_METRICS:
        ids = klaviyo_metric_ids(account, *EVENT_STREAM_METRICS[stream])
        return {event["id"] for metric_id in ids for event in account.events(metric_id=metric_id)}
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
    if stream == "segment_members":
        return {
            (row.id, account.profile_id(index)) for row in account.segment_rows for index in account.members[row.id].profile
        }
    if stream == "list_exclusions":
        return {(item["list_id"], profile["id"]) for profile in account.profiles() for item in list_suppressions_of(profile)}
    if stream == "campaigns":
        return {campaign["id"] for campaign in account.campaigns()}
    if stream == "campaign_messages":
        return {message["id"] for message in account.campaign_message_resources()}
    if stream == "campaign_variations":  # 2026-10-15, the tap's default revision
        return {v.id for variations in account.omni_variations_by_message().values() for v in variations}
    if stream == "campaign_audiences":
        return {a.id for row in account.campaign_rows for a in account.omni_audiences_of(row.id)}
    if stream == "flows":
        return {row.id for row in account.flow_rows}
    if stream == "flow_actions":
        return set(account.flow_action_by_id)
    if stream == "flow_messages":
        return set(account.flow_message_by_id)
    if stream == "form_versions":
        return {row.id for versions in account.form_versions.values() for row in versions}
    if stream == "metrics":
        return {metric["id"] for metric in account.metrics()}
    if stream in ROW_TABLES:
        return {row.id for row in getattr(account, ROW_TABLES[stream])}
    raise KeyError(stream)


def record_keys(stream: str, records: list[dict]) -> list:
    if stream in ("list_members", "list_exclusions"):
        return [(record["list_id"], record["id"]) for record in records]
    if stream == "segment_members":
        return [(record["segment_id"], record["id"]) for record in records]
    return [record["id"] for record in records]
