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
    "open": ("Opened Email",),
    "unsub_list": ("Unsubscribed from List",),
    "subscribed_to_email": ("Subscribed to Email Marketing",),
    "subscribe_list": ("Subscribed to List",),
    "update_email_preferences": ("Updated Email Preferences",),
    "clicked_text_message": ("Clicked Text Message", "Clicked SMS"),
    "subscribed_to_text_message": ("Subscribed to Text Messaging Marketing", "Subscribed to SMS Marketing"),
    "failed_to_deliver_text_message": ("Failed to Deliver Text Message", "Failed to Deliver SMS"),
    "failed_to_deliver_automated_response_text_message": (
        "Failed to Deliver Automated Response Text Message", "Failed to deliver Automated Response SMS", "Failed to Deliver Automated Response SMS",
    ),
    "received_automated_response_text_message": ("Received Automated Response Text Message", "Received Automated Response SMS"),
    "received_text_message": ("Received Text Message", "Received SMS"),
    "sent_text_message": ("Sent Text Message", "Sent SMS"),
    "unsubscribed_from_text_message": ("Unsubscribed from Text Messaging Marketing", "Unsubscribed from SMS Marketing"),
    "subscribed_to_text_message_transactional": ("Subscribed to Text Messaging Transactional",),
    "unsubscribed_from_text_message_transactional": ("Unsubscribed from Text Messaging Transactional",),
}
# singer-io/tap-klaviyo 1.2.0's per-metric stream names (its EVENT_MAPPINGS values).
SINGER_IO_EVENT_STREAMS = (
    "receive", "click", "open", "bounce", "unsubscribe", "mark_as_spam", "unsub_list", "subscribed_to_email",
    "subscribe_list", "update_email_preferences", "dropped_email", "clicked_text_message", "subscribed_to_text_message",
    "failed_to_deliver_text_message", "failed_to_deliver_automated_response_text_message",
    "received_automated_response_text_message", "received_text_message", "sent_text_message",
    "unsubscribed_from_text_message", "subscribed_to_text_message_transactional",
    "unsubscribed_from_text_message_transactional",
)  # fmt: skip


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


def listed_metric_ids(account: Account) -> list[str]:
    """Every metric GET /api/metrics lists (events of unresolvable metrics cannot be read per metric)."""
    return [metric["id"] for metric in account.metrics()]


def event_ids(account: Account, metric_ids) -> set[str]:
    return {event["id"] for metric_id in metric_ids for event in account.events(metric_id=metric_id)}


def suppression_of(profile: dict) -> list[dict]:
    subscriptions = profile["attributes"].get("subscriptions") or {}
    return ((subscriptions.get("email") or {}).get("marketing") or {}).get("suppression") or []


def list_suppressions_of(profile: dict) -> list[dict]:
    subscriptions = profile["attributes"].get("subscriptions") or {}
    return ((subscriptions.get("email") or {}).get("marketing") or {}).get("list_suppressions") or []


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
