"""Endpoint tables (hand-written from the 2026-07-15 spec) and the GET handlers.

The tables state, per endpoint, exactly what the real API accepts: filter
fields with their operators per value shape (single / list / none) and value
type, sort fields, page[size] bounds, include and additional-fields values,
sparse fieldset types and their top-level fields, and rate-limit tiers.
tests/klaviyo_emulator/test_endpoints.py checks them against the spec-derived
summary so drift is caught.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import quote, urlencode

import msgspec

from .account import Account
from .errors import invalid, invalid_filter, not_found
from .filters import Condition, FilterError, parse_filter
from .paging import CursorError, decode_cursor, encode_cursor, keyset_page
from .resources import Row, fmt_us, render_row

GT_LT = ("greater-or-equal", "greater-than", "less-or-equal", "less-than")
CAMPAIGN_STATUSES = (
    "Scheduled", "Sent", "Draft", "Cancelled", "Adding Recipients", "Sending", "Variations Sent", "Sending Segments",
    "Cancelled: Smart Sending", "Preparing to send", "Cancelled: Account Disabled", "Cancelled: No Recipients",
    "Preparing to schedule", "Cancelled: Internal Error", "Queued without Recipients", "Cancelled: Billing Limit",
    "Cancelled: Misconfigured", "Unknown",
)  # fmt: skip
TRIGGER_TYPES = ("Metric", "Added to List", "Unconfigured", "Date Based", "Price Drop", "Low Inventory")
CHANNEL_REQUIRED = (
    "A channel filter is required. Please provide either: `?filter=equals(messages.channel,'email')` to list email "
    "campaigns, `?filter=equals(messages.channel,'sms')` to list SMS campaigns, or "
    "`?filter=equals(messages.channel,'mobile_push')` to list mobile push campaigns."
)
OMNI_REVISION = "2026-10-15"


@dataclass(frozen=True)
class FieldSpec:
    """Allowed operators of one filter field, by value shape, and the value type."""

    type: str  # string | date-time | boolean | number
    single: tuple[str, ...] = ()
    list: tuple[str, ...] = ()
    none: tuple[str, ...] = ()
    enum: tuple | None = None

    def operators(self, shape: str) -> tuple[str, ...]:
        return {"single": self.single, "list": self.list, "none": self.none}[shape]


def _str(single=(), list_=()) -> FieldSpec:
    return FieldSpec("string", tuple(single), tuple(list_))


def _dt(*ops: str) -> FieldSpec:
    return FieldSpec("date-time", ops)


PROFILE_FIELDS = ("created", "email", "external_id", "first_name", "id", "image", "last_event_date", "last_name", "locale",
                  "location", "organization", "phone_number", "predictive_analytics", "properties", "subscriptions", "title", "updated")  # fmt: skip
FLOW_FIELDS = ("archived", "created", "id", "name", "status", "trigger_type", "updated")
TAG_FIELDS = ("id", "name")
METRIC_FIELDS = ("created", "id", "integration", "name", "updated")
MEMBER_FILTERS = {
    "email": _str(list_=("any", "equals")),
    "phone_number": _str(list_=("any", "equals")),
    "push_token": _str(list_=("any", "equals")),
    "_kx": _str(single=("equals",)),
    "joined_group_at": _dt(*GT_LT),
}
PREDICTIVE_TIER = (10, 150)


@dataclass(frozen=True)
class Endpoint:
    """What one GET collection endpoint accepts; `handler` renders a validated query."""

    operation: str
    path: str
    rtype: str
    filters: dict[str, FieldSpec]
    sort: tuple[str, ...]
    page_size: tuple[int, int] | None  # (default, maximum); None: no page[size] parameter
    page_length: int  # records per page when page[size] is absent or not accepted at the revision
    page_size_since: str | None
    include: tuple[str, ...]
    additional: dict[str, tuple[str, ...]]
    fields: dict[str, tuple[str, ...]]
    rate: tuple[int, int]  # burst per second, steady per minute
    handler: str
    rate_predictive: tuple[int, int] | None = None
    filter_required: bool = False
    default_sort: str = "id"
    bucket: str = field(default="")

    @property
    def rate_bucket(self) -> str:
        return self.bucket or self.operation


ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint(
        "get_lists", "/api/lists", "list",
        filters={"name": _str(list_=("any", "equals")), "id": _str(("equals",), ("any", "equals")), "created": _dt("greater-than"), "updated": _dt("greater-than")},
        sort=("created", "id", "name", "updated"), page_size=(10, 10), page_length=10, page_size_since="2026-04-15",
        include=("flow-triggers", "tags"), additional={},
        fields={"fields[flow]": FLOW_FIELDS, "fields[list]": ("created", "id", "name", "opt_in_process", "updated"), "fields[tag]": TAG_FIELDS},
        rate=(75, 750), handler="lists",
    ),
    Endpoint(
        "get_profiles_for_list", "/api/lists/{id}/profiles", "profile",
        filters=MEMBER_FILTERS, sort=("joined_group_at",), page_size=(20, 100), page_length=20, page_size_since=None,
        include=(), additional={"additional-fields[profile]": ("subscriptions", "predictive_analytics")},
        fields={"fields[profile]": tuple(sorted(PROFILE_FIELDS + ("joined_group_at",)))},
        rate=(75, 750), rate_predictive=PREDICTIVE_TIER, handler="list_members", default_sort="joined_group_at",
    ),
    Endpoint(
        "get_profile_ids_for_list", "/api/lists/{id}/relationships/profiles", "profile",
        filters=MEMBER_FILTERS, sort=("joined_group_at",), page_size=(20, 100), page_length=20, page_size_since=None,
        include=(), additional={}, fields={},
        rate=(75, 750), rate_predictive=PREDICTIVE_TIER, handler="list_member_ids", default_sort="joined_group_at",
    ),
    Endpoint(
        "get_segments", "/api/segments", "segment",
        filters={"name": _str(list_=("any", "equals")), "id": _str(("equals",), ("any", "equals")), "created": _dt("greater-than"),
                 "updated": _dt("greater-than"), "is_active": FieldSpec("boolean", ("equals",), ("any", "equals")),
                 "is_starred": FieldSpec("boolean", ("equals",))},  # fmt: skip
        sort=("created", "id", "name", "updated"), page_size=(10, 10), page_length=10, page_size_since="2026-04-15",
        include=("flow-triggers", "tags"), additional={},
        fields={"fields[flow]": FLOW_FIELDS, "fields[tag]": TAG_FIELDS,
                "fields[segment]": ("created", "definition", "id", "is_active", "is_processing", "is_starred", "name", "updated")},  # fmt: skip
        rate=(75, 750), handler="segments",
    ),
    Endpoint(
        "get_profiles_for_segment", "/api/segments/{id}/profiles", "profile",
        filters={"profile_id": _str(list_=("any", "equals")), **MEMBER_FILTERS}, sort=("joined_group_at",), page_size=(20, 100),
        page_length=20, page_size_since=None, include=(), additional={"additional-fields[profile]": ("subscriptions", "predictive_analytics")},
        fields={"fields[profile]": tuple(sorted(PROFILE_FIELDS + ("joined_group_at",)))},
        rate=(75, 750), handler="segment_members", default_sort="joined_group_at",
    ),
    Endpoint(
        "get_campaigns", "/api/campaigns", "campaign",
        filters={"id": _str(list_=("any",)), "messages.channel": FieldSpec("string", ("equals",), enum=("email", "sms", "mobile_push")),
                 "name": _str(("contains",)), "status": FieldSpec("string", ("equals",), ("any", "equals"), enum=CAMPAIGN_STATUSES),
                 "archived": FieldSpec("boolean", ("equals",)), "created_at": _dt(*GT_LT), "scheduled_at": _dt(*GT_LT), "updated_at": _dt(*GT_LT)},  # fmt: skip
        sort=("created_at", "id", "name", "scheduled_at", "updated_at"), page_size=(100, 100), page_length=100, page_size_since="2026-04-15",
        include=("campaign-messages", "tags"), additional={},
        fields={"fields[campaign]": ("archived", "audiences", "created_at", "id", "name", "scheduled_at", "send_options", "send_strategy",
                                     "send_time", "status", "tracking_options", "updated_at"),
                "fields[campaign-message]": ("created_at", "definition", "id", "send_times", "updated_at"), "fields[tag]": TAG_FIELDS},  # fmt: skip
        rate=(10, 150), handler="campaigns", filter_required=True,
    ),
    Endpoint(
        "get_profiles", "/api/profiles", "profile",
        filters={
            "id": _str(("equals",), ("any", "equals")), "email": _str(("equals",), ("any", "equals")),
            "phone_number": _str(("equals",), ("any", "equals")), "external_id": _str(("equals",), ("any", "equals")),
            "_kx": _str(("equals",)), "created": _dt("greater-than", "less-than"), "updated": _dt("greater-than", "less-than"),
            "subscriptions.email.marketing.list_suppressions.reason": _str(("equals",)),
            "subscriptions.email.marketing.list_suppressions.timestamp": _dt(*GT_LT),
            "subscriptions.email.marketing.list_suppressions.list_id": _str(("equals",)),
            "subscriptions.email.marketing.suppression.reason": _str(("equals",)),
            "subscriptions.email.marketing.suppression.timestamp": _dt(*GT_LT),
        },  # fmt: skip
        sort=("created", "email", "id", "subscriptions.email.marketing.list_suppressions.timestamp",
              "subscriptions.email.marketing.suppression.timestamp", "updated"),  # fmt: skip
        page_size=(20, 100), page_length=20, page_size_since=None,
        include=("conversations", "push-tokens"), additional={"additional-fields[profile]": ("subscriptions", "predictive_analytics")},
        fields={"fields[conversation]": ("channel", "id"), "fields[profile]": PROFILE_FIELDS,
                "fields[push-token]": ("background", "created", "enablement_status", "id", "metadata", "platform", "recorded_date", "token", "vendor")},  # fmt: skip
        rate=(75, 750), rate_predictive=PREDICTIVE_TIER, handler="profiles",
    ),
    Endpoint(
        "get_metrics", "/api/metrics", "metric",
        filters={"integration.name": _str(("equals",)), "integration.category": _str(("equals",))},
        sort=(), page_size=None, page_length=200, page_size_since=None, include=("flow-triggers",), additional={},
        fields={"fields[flow]": FLOW_FIELDS, "fields[metric]": METRIC_FIELDS}, rate=(10, 150), handler="metrics",
    ),
    Endpoint(
        "get_events", "/api/events", "event",
        filters={"metric_id": _str(("equals",), ("equals",)), "profile_id": _str(("equals",)), "profile": FieldSpec("string", none=("has",)),
                 "metric": FieldSpec("string", none=("has",)), "datetime": _dt(*GT_LT), "timestamp": FieldSpec("number", GT_LT)},  # fmt: skip
        sort=("datetime", "timestamp"), page_size=(200, 1000), page_length=200, page_size_since="2026-01-15",
        include=("attributions", "metric", "profile"), additional={},
        fields={"fields[attribution]": ("id",), "fields[event]": ("datetime", "event_properties", "id", "timestamp", "uuid"),
                "fields[metric]": METRIC_FIELDS, "fields[profile]": tuple(f for f in PROFILE_FIELDS if f not in ("predictive_analytics", "subscriptions"))},  # fmt: skip
        rate=(350, 3500), handler="events", default_sort="datetime",
    ),
    Endpoint(
        "get_flows", "/api/flows", "flow",
        filters={"id": _str(list_=("any",)), "name": _str(("contains", "ends-with", "equals", "starts-with")), "status": _str(("equals",)),
                 "archived": FieldSpec("boolean", ("equals",)), "created": _dt("equals", *GT_LT), "updated": _dt("equals", *GT_LT),
                 "trigger_type": FieldSpec("string", ("equals",), enum=TRIGGER_TYPES)},  # fmt: skip
        sort=("created", "id", "name", "status", "trigger_type", "updated"), page_size=(50, 50), page_length=50, page_size_since=None,
        include=("flow-actions", "tags"), additional={},
        fields={"fields[flow-action]": ("created", "definition", "id", "updated"), "fields[flow]": FLOW_FIELDS, "fields[tag]": TAG_FIELDS},
        rate=(3, 60), handler="flows",
    ),
    Endpoint(
        "get_templates", "/api/templates", "template",
        filters={"id": _str(list_=("any", "equals")), "name": _str(("contains", "equals"), ("any", "equals")),
                 "created": _dt("equals", *GT_LT), "updated": _dt("equals", *GT_LT)},  # fmt: skip
        sort=("created", "id", "name", "updated"), page_size=(10, 10), page_length=10, page_size_since="2026-04-15",
        include=(), additional={"additional-fields[template]": ("definition",)},
        fields={"fields[template]": ("amp", "created", "definition", "editor_type", "html", "id", "name", "text", "updated")},
        rate=(75, 750), handler="templates",
    ),
    Endpoint(
        "get_tags", "/api/tags", "tag",
        filters={"name": _str(("contains", "ends-with", "equals", "starts-with"), ("equals",))},
        sort=("id", "name"), page_size=(50, 50), page_length=50, page_size_since="2026-04-15", include=("tag-group",), additional={},
        fields={"fields[tag-group]": ("default", "exclusive", "id", "name"), "fields[tag]": TAG_FIELDS}, rate=(3, 60), handler="tags",
    ),
    Endpoint(
        "get_catalog_items", "/api/catalog-items", "catalog-item",
        filters={"ids": _str(list_=("any",)), "category.id": _str(("equals",)), "title": _str(("contains",)), "published": FieldSpec("boolean", ("equals",))},
        sort=("created",), page_size=(100, 100), page_length=100, page_size_since="2026-04-15", include=("variants",), additional={},
        fields={"fields[catalog-item]": ("created", "custom_metadata", "description", "external_id", "id", "image_full_url", "image_thumbnail_url",
                                         "images", "price", "published", "title", "updated", "url"),
                "fields[catalog-variant]": ("created", "custom_metadata", "description", "external_id", "id", "image_full_url", "image_thumbnail_url",
                                            "images", "inventory_policy", "inventory_quantity", "price", "published", "sku", "title", "updated", "url")},  # fmt: skip
        rate=(350, 3500), handler="catalog_items",
    ),
)

# GET /api/campaigns from revision 2026-10-15 ("omni" campaigns, [SDK25]): no channel filter, new shape.
OMNI_CAMPAIGNS = Endpoint(
    "get_campaigns", "/api/campaigns", "campaign",
    filters={"id": _str(list_=("any",)), "name": _str(("contains",)), "archived": FieldSpec("boolean", ("equals",)),
             "builder": _str(("equals",)), "created_at": _dt(*GT_LT), "updated_at": _dt(*GT_LT)},  # fmt: skip
    sort=("created_at", "id", "name", "updated_at"), page_size=(100, 100), page_length=100, page_size_since=None,
    include=("campaign-audiences", "campaign-messages", "tags"), additional={},
    fields={"fields[campaign]": ("created_at", "definition", "id", "updated_at"), "fields[campaign-message]": ("created_at", "definition", "id", "updated_at"),
            "fields[campaign-audience]": ("id",), "fields[tag]": TAG_FIELDS},  # fmt: skip
    rate=(10, 150), handler="campaigns_omni",
)


def _route(path: str) -> re.Pattern:
    return re.compile("^" + path.replace("{id}", "(?P<id>[^/]+)") + "/?$")


ROUTES = tuple((_route(ep.path), ep) for ep in ENDPOINTS)


def match(path: str, revision: str) -> tuple[Endpoint, str | None] | None:
    """The endpoint serving `path` (with or without trailing slash) at this revision, and the path id."""
    for pattern, ep in ROUTES:
        m = pattern.match(path)
        if m:
            if ep.operation == "get_campaigns" and revision >= OMNI_REVISION:
                ep = OMNI_CAMPAIGNS
            return ep, m.groupdict().get("id")
    return None


# ------------------------------------------------------------------ queries
@dataclass
class Query:
    """A validated request: what the handler needs, plus what links.next must repeat."""

    endpoint: Endpoint
    revision: str
    path: str
    params: list[tuple[str, str]]
    conditions: list[Condition]
    sort: str
    desc: bool
    size: int
    after: tuple | None
    include: tuple[str, ...]
    additional: tuple[str, ...]
    fields: dict[str, tuple[str, ...]]
    path_id: str | None = None

    def values(self, name: str) -> list[Condition]:
        return [c for c in self.conditions if c.field == name]

    def predictive(self) -> bool:
        return "predictive_analytics" in self.additional


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def parse_query(ep: Endpoint, revision: str, path: str, params: list[tuple[str, str]], path_id: str | None) -> Query:
    """Validate every query parameter as strictly as the real API; raise ApiError(400) otherwise."""
    q = dict(params)
    conditions = _validate_filter(ep, q["filter"]) if "filter" in q else []
    sort, desc = ep.default_sort, False
    if "sort" in q:
        raw = q["sort"]
        if raw.lstrip("-") not in ep.sort or raw.count("-", 0, 1) != len(raw) - len(raw.lstrip("-")):
            raise invalid(f"'{raw}' is not a valid sort field for the resource '{ep.rtype}'.", "sort")
        sort, desc = raw.lstrip("-"), raw.startswith("-")
    size = ep.page_length
    if "page[size]" in q:
        if ep.page_size is None or (ep.page_size_since and revision < ep.page_size_since):
            raise invalid("'page[size]' is not a valid query parameter for this endpoint.", "page[size]")
        try:
            size = int(q["page[size]"])
        except ValueError:
            size = 0
        if not 1 <= size <= ep.page_size[1]:
            raise invalid(f"Page size must be an integer between 1 and {ep.page_size[1]}.", "page[size]")
    elif ep.page_size is not None and not (ep.page_size_since and revision < ep.page_size_since):
        size = ep.page_size[0]
    after = None
    if "page[cursor]" in q:
        try:
            after = decode_cursor(q["page[cursor]"])
        except CursorError:
            raise invalid("Invalid page cursor.", "page[cursor]") from None
    include = _csv(q.get("include", ""))
    for name in include:
        if name not in ep.include:
            raise invalid(f"'{name}' is not a valid related resource or relationship for '{ep.rtype}'.", "include")
    additional: tuple[str, ...] = ()
    fields: dict[str, tuple[str, ...]] = {}
    for key, value in q.items():
        if key.startswith("additional-fields["):
            allowed = ep.additional.get(key)
            values = _csv(value)
            if allowed is None or not values or any(v not in allowed for v in values):
                raise invalid(f"'{value}' is not a valid choice for '{key}'.", key)
            additional += values
        elif key.startswith("fields["):
            allowed = ep.fields.get(key)
            values = _csv(value)
            if allowed is None or not values or any(v.split(".")[0] not in allowed for v in values):
                raise invalid(f"'{value}' is not a valid choice for '{key}'.", key)
            fields[key[7:-1]] = values
        elif key.startswith("page[") and key not in ("page[size]", "page[cursor]"):
            raise invalid(f"'{key}' is not a valid query parameter.", key)
    if ep.filter_required and revision < OMNI_REVISION:
        channel = [c for c in conditions if c.field == "messages.channel"]
        if not channel:
            raise invalid_filter(CHANNEL_REQUIRED)
    return Query(ep, revision, path, params, conditions, sort, desc, size, after, include, additional, fields, path_id)


def _validate_filter(ep: Endpoint, text: str) -> list[Condition]:
    try:
        conditions = parse_filter(text)
    except FilterError as exc:
        raise invalid_filter(str(exc)) from None
    for c in conditions:
        spec = ep.filters.get(c.field)
        if spec is None:
            raise invalid_filter(f"'{c.field}' is not a valid field for the resource '{ep.rtype}'.")
        if c.op not in spec.operators(c.shape):
            raise invalid_filter(f"'{c.op}' is not a valid operator for '{c.field}' with a {c.shape} value.")
        literals = () if c.value is None else (c.value if isinstance(c.value, tuple) else (c.value,))
        want = {"string": "string", "date-time": "datetime", "boolean": "boolean", "number": "number"}[spec.type]
        for lit in literals:
            if lit.kind != want:
                raise invalid_filter(f"'{c.field}' expects a {spec.type} value.")
            if spec.enum is not None and lit.value not in spec.enum:
                raise invalid_filter(f"'{lit.value}' is not a valid value for '{c.field}'.")
    return conditions


def _literal(c: Condition):
    if isinstance(c.value, tuple):
        return frozenset(lit.value for lit in c.value)
    return None if c.value is None else c.value.value


def matches(op: str, actual, value) -> bool:
    """Evaluate one operator; list-valued `actual` (e.g. suppression reasons) matches when any element does."""
    if isinstance(actual, list):
        return any(matches(op, a, value) for a in actual)
    if op == "has":
        return actual is not None
    if isinstance(value, frozenset):
        return actual in value
    if actual is None:
        return False
    if op == "equals":
        return actual == value
    if op == "contains":
        return value in actual
    if op == "starts-with":
        return actual.startswith(value)
    if op == "ends-with":
        return actual.endswith(value)
    if op == "greater-than":
        return actual > value
    if op == "greater-or-equal":
        return actual >= value
    if op == "less-than":
        return actual < value
    if op == "less-or-equal":
        return actual <= value
    raise ValueError(op)


def predicate(conditions: list[Condition], getter: Callable) -> Callable | None:
    """A record predicate ANDing all conditions; `getter(record, field)` supplies comparable values."""
    if not conditions:
        return None
    terms = [(c.op, c.field, _literal(c)) for c in conditions]
    return lambda record: all(matches(op, getter(record, f), v) for op, f, v in terms)


def bounds(conditions: list[Condition], name: str) -> tuple[tuple | None, tuple | None]:
    """Tightest (value, inclusive) lower and upper bounds that range conditions put on one field."""
    lo = hi = None
    for c in conditions:
        if c.field != name or c.value is None or isinstance(c.value, tuple):
            continue
        v = c.value.value
        if c.op in ("greater-than", "greater-or-equal"):
            cand = (v, c.op == "greater-or-equal")
            if lo is None or cand[0] > lo[0] or (cand[0] == lo[0] and not cand[1]):
                lo = cand
        elif c.op in ("less-than", "less-or-equal"):
            cand = (v, c.op == "less-or-equal")
            if hi is None or cand[0] < hi[0] or (cand[0] == hi[0] and not cand[1]):
                hi = cand
    return lo, hi


# ----------------------------------------------------------------- handlers
class Handlers:
    """Render validated queries against an Account into JSON:API documents (bytes)."""

    def __init__(self, account: Account):
        self.account = account

    def handle(self, q: Query, base: str) -> bytes:
        with self.account.lock:
            try:
                return getattr(self, q.endpoint.handler)(q, base)
            except CursorError:  # a cursor minted for another sort
                raise invalid("Invalid page cursor.", "page[cursor]") from None

    # ---- envelope helpers
    @staticmethod
    def links(q: Query, base: str, next_key: tuple | None) -> dict:
        def url(params: list[tuple[str, str]]) -> str:
            return f"{base}{q.path}" + ("?" + urlencode(params, quote_via=quote, safe="") if params else "")

        rest = [(k, v) for k, v in q.params if k != "page[cursor]"]
        nxt = url(rest + [("page[cursor]", encode_cursor(next_key))]) if next_key is not None else None
        return {"self": url(q.params), "next": nxt, "prev": None}

    def document(self, q: Query, base: str, data: list, next_key: tuple | None, included: list | None = None) -> bytes:
        doc = {"data": data, "links": self.links(q, base, next_key)}
        if q.include:
            doc["included"] = included or []
        return msgspec.json.encode(doc)

    @staticmethod
    def sparse(resource: dict, names: tuple[str, ...] | None) -> dict:
        if names is not None:
            resource["attributes"] = _prune(resource["attributes"], names)
        return resource

    def rows_page(self, q: Query, rows: list[Row], base: str, path: str, rels: tuple[str, ...], rel_data: Callable | None = None,
                  extra_pred: Callable | None = None) -> tuple[list[dict], list[Row], tuple | None]:  # fmt: skip
        """Filter, sort and page small in-memory collections; returns rendered data, the rows and the next key."""
        sort = q.sort
        keyfn = lambda r: (_norm(r.keys.get(sort)), r.id)  # noqa: E731
        pred = predicate(q.conditions, lambda r, f: r.keys.get(f))
        if extra_pred is not None:
            pred = _both(extra_pred, pred)
        order = sorted(rows, key=keyfn)
        page, more = keyset_page(order, keyfn, q.size, after=q.after, desc=q.desc, pred=pred)
        names = q.fields.get(q.endpoint.rtype)
        data = [self.sparse(render_row(r, q.endpoint.rtype, path, base, rels, rel_data(r) if rel_data else None), names) for r in page]
        return data, page, keyfn(page[-1]) if more else None

    def _empty_rel_data(self, q: Query, to_many: tuple[str, ...], to_one: tuple[str, ...] = ()) -> dict:
        """Linkage for included relationships the account has no records for."""
        return {**{n: [] for n in to_many if n in q.include}, **{n: None for n in to_one if n in q.include}}

    # ---- small collections
    def lists(self, q: Query, base: str) -> bytes:
        empty = self._empty_rel_data(q, ("tags", "flow-triggers"))
        data, _, nxt = self.rows_page(q, self.account.list_rows, base, "lists", ("profiles", "tags", "flow-triggers"), lambda r: empty)
        return self.document(q, base, data, nxt)

    def segments(self, q: Query, base: str) -> bytes:
        empty = self._empty_rel_data(q, ("tags", "flow-triggers"))
        data, _, nxt = self.rows_page(q, self.account.segment_rows, base, "segments", ("profiles", "tags", "flow-triggers"), lambda r: empty)
        return self.document(q, base, data, nxt)

    def metrics(self, q: Query, base: str) -> bytes:
        empty = self._empty_rel_data(q, ("flow-triggers",))
        data, _, nxt = self.rows_page(q, self.account.metric_rows, base, "metrics", ("flow-triggers",), lambda r: empty)
        return self.document(q, base, data, nxt)

    def flows(self, q: Query, base: str) -> bytes:
        empty = self._empty_rel_data(q, ("flow-actions", "tags"))
        data, _, nxt = self.rows_page(q, self.account.flow_rows, base, "flows", ("flow-actions", "tags"), lambda r: empty)
        return self.document(q, base, data, nxt)

    def templates(self, q: Query, base: str) -> bytes:
        data, page, nxt = self.rows_page(q, self.account.template_rows, base, "templates", ())
        for resource, row in zip(data, page):
            del resource["relationships"]
            if "definition" in q.additional:
                resource["attributes"]["definition"] = row.extra["definition"]
        return self.document(q, base, data, nxt)

    def tags(self, q: Query, base: str) -> bytes:
        with_group = "tag-group" in q.include
        rel_data = (lambda r: {"tag-group": {"type": "tag-group", "id": r.extra["group"]}}) if with_group else None
        data, page, nxt = self.rows_page(q, self.account.tag_rows, base, "tags", ("tag-group", "lists", "segments", "campaigns", "flows"), rel_data)
        included = []
        if with_group:
            groups = {r.extra["group"] for r in page}
            names = q.fields.get("tag-group")
            for g in self.account.tag_groups:
                if g["id"] in groups:
                    attrs = {k: g[k] for k in ("name", "exclusive", "default")}
                    res = {"type": "tag-group", "id": g["id"], "attributes": attrs,
                           "relationships": {"tags": {"links": {"self": f"{base}/api/tag-groups/{g['id']}/relationships/tags/",
                                                                "related": f"{base}/api/tag-groups/{g['id']}/tags/"}}},
                           "links": {"self": f"{base}/api/tag-groups/{g['id']}/"}}  # fmt: skip
                    included.append(self.sparse(res, names))
        return self.document(q, base, data, nxt, included)

    def catalog_items(self, q: Query, base: str) -> bytes:
        empty = self._empty_rel_data(q, ("variants",))
        data, _, nxt = self.rows_page(q, self.account.catalog_rows, base, "catalog-items", ("variants",), lambda r: empty)
        return self.document(q, base, data, nxt)

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
            if with_messages:
                out["campaign-messages"] = [{"type": "campaign-message", "id": m.id} for m in msgs[r.id]]
            return out

        data, page, nxt = self.rows_page(q, self.account.campaign_rows, base, "campaigns", ("campaign-messages", "tags"), rel_data, self._campaign_filter(q))
        included = []
        if with_messages:
            names = q.fields.get("campaign-message")
            included = [self.sparse(self.account.render_message(m, base), names) for r in page for m in msgs[r.id]]
        return self.document(q, base, data, nxt, included)

    def campaigns_omni(self, q: Query, base: str) -> bytes:
        omni_rows = [self._omni_row(r) for r in self.account.campaign_rows]
        with_messages = "campaign-messages" in q.include
        msgs = self.account.campaign_messages

        def rel_data(r: Row) -> dict:
            out = self._empty_rel_data(q, ("tags", "campaign-audiences"))
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
        return self.document(q, base, data, nxt, included)

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

    # ---- profiles
    def _profile_value(self, idx: int, name: str):
        acc = self.account
        if name == "id":
            return acc.profile_id(idx)
        if name in ("email", "phone_number", "external_id"):
            return acc.profile_attr(idx, name)
        if name in ("_kx", "push_token"):
            return None
        if name == "created":
            return acc._p_created[idx] * 1_000_000
        if name == "updated":
            return acc._p_updated[idx] * 1_000_000
        if name == "subscriptions.email.marketing.suppression.reason":
            return [r for r, _ in acc.suppressions(idx)]
        if name == "subscriptions.email.marketing.suppression.timestamp":
            return acc.suppression_ts(idx)
        if name == "subscriptions.email.marketing.list_suppressions.reason":
            return [r for _, r, _ in acc._p_list_supp.get(idx, [])]
        if name == "subscriptions.email.marketing.list_suppressions.list_id":
            return [lid for lid, _, _ in acc._p_list_supp.get(idx, [])]
        if name == "subscriptions.email.marketing.list_suppressions.timestamp":
            return acc.list_suppression_ts(idx)
        raise KeyError(name)

    def profiles(self, q: Query, base: str) -> bytes:
        acc = self.account
        order, keyfn = acc.profile_order(q.sort)
        id_terms = [c for c in q.conditions if c.field == "id"]
        if id_terms:
            wanted = {acc.profile_index(v) for c in id_terms for v in (_literal(c) if isinstance(c.value, tuple) else {_literal(c)})}
            order = [i for i in order if i in wanted]
        lo, hi = bounds(q.conditions, q.sort)
        page, more = keyset_page(order, keyfn, q.size, after=q.after, desc=q.desc, pred=predicate(q.conditions, self._profile_value), lo=lo, hi=hi)
        names = q.fields.get("profile")
        data = []
        for idx in page:
            res = acc.render_profile(idx, base, q.additional)
            for name in q.include:
                res["relationships"][name] = {"data": [], **res["relationships"][name]}
            data.append(self.sparse(res, names))
        return self.document(q, base, data, keyfn(page[-1]) if more else None)

    # ---- list / segment members
    def _members(self, q: Query, rows: list[Row], kind: str):
        members = self.account.members.get(q.path_id)
        if members is None or not any(r.id == q.path_id for r in rows):
            raise not_found(f"A {kind} with id {q.path_id} does not exist.")
        acc = self.account

        def value(j: int, name: str):
            if name == "joined_group_at":
                return members.joined[j] * 1_000_000
            if name == "profile_id":
                return acc.profile_id(members.profile[j])
            return self._profile_value(members.profile[j], name)

        lo, hi = bounds(q.conditions, "joined_group_at")
        page, more = keyset_page(range(len(members)), members.key, q.size, after=q.after, desc=q.desc, pred=predicate(q.conditions, value), lo=lo, hi=hi)
        return members, page, members.key(page[-1]) if more else None

    def _member_document(self, q: Query, base: str, rows: list[Row], kind: str) -> bytes:
        members, page, nxt = self._members(q, rows, kind)
        names = q.fields.get("profile")
        data = []
        for j in page:
            res = self.account.render_profile(members.profile[j], base, q.additional, {"joined_group_at": fmt_us(members.joined[j] * 1_000_000)})
            del res["relationships"]["conversations"]
            data.append(self.sparse(res, names))
        return self.document(q, base, data, nxt)

    def list_members(self, q: Query, base: str) -> bytes:
        return self._member_document(q, base, self.account.list_rows, "list")

    def segment_members(self, q: Query, base: str) -> bytes:
        return self._member_document(q, base, self.account.segment_rows, "segment")

    def list_member_ids(self, q: Query, base: str) -> bytes:
        members, page, nxt = self._members(q, self.account.list_rows, "list")
        data = [{"type": "profile", "id": self.account.profile_id(members.profile[j])} for j in page]
        return self.document(q, base, data, nxt)

    # ---- events
    def events(self, q: Query, base: str) -> bytes:
        acc = self.account
        metric_ids = acc.all_event_metric_ids()
        for c in q.values("metric_id"):
            wanted = _literal(c)
            wanted = wanted if isinstance(wanted, frozenset) else {wanted}
            metric_ids = [m for m in metric_ids if m in wanted]
        if any(c.op == "has" for c in q.values("metric")):
            metric_ids = [m for m in metric_ids if m in acc.metric_by_id]
        profile = None
        for c in q.values("profile_id"):
            profile = acc.profile_index(_literal(c))
            if profile is None:
                metric_ids = []
        lo, hi = _second_bounds(q.conditions)
        after = None
        if q.after is not None:
            if len(q.after) != 2 or not all(isinstance(v, int) for v in q.after):
                raise invalid("Invalid page cursor.", "page[cursor]")
            after = q.after
        rows, more = acc.events_store.page(metric_ids, lo=lo, hi=hi, profile=profile, after=after, desc=q.desc, size=q.size)
        text = acc.events_store.render(rows, base, acc.profile_id)
        next_key = rows[-1][:2] if more else None
        if not q.include and not q.fields:
            links = msgspec.json.encode(self.links(q, base, next_key))
            return b'{"data":[' + text.encode() + b'],"links":' + links + b"}"
        data = msgspec.json.decode("[" + text + "]")
        included = []
        if "metric" in q.include:
            seen = {r[2] for r in rows}
            names = q.fields.get("metric")
            included += [self.sparse(render_row(m, "metric", "metrics", base, ("flow-triggers",)), names) for m in acc.metric_rows if m.id in seen]
        if "profile" in q.include:
            names = q.fields.get("profile")
            for idx in sorted({r[3] for r in rows}):
                res = acc.render_profile(idx, base)
                del res["relationships"]["conversations"]
                included.append(self.sparse(res, names))
        if "attributions" in q.include:
            for res in data:
                res["relationships"]["attributions"] = {"data": [], **res["relationships"]["attributions"]}
        names = q.fields.get("event")
        data = [self.sparse(res, names) for res in data]
        return self.document(q, base, data, next_key, included)


def _both(first: Callable, second: Callable | None) -> Callable:
    return first if second is None else (lambda r: first(r) and second(r))


def _second_bounds(conditions: list[Condition]) -> tuple[int | None, int | None]:
    """Inclusive epoch-second bounds from `datetime` (µs) and `timestamp` (s) range conditions."""
    lo = hi = None
    for c in conditions:
        if c.field not in ("datetime", "timestamp") or c.value is None:
            continue
        v = c.value.value
        us = v if c.field == "datetime" else int(v * 1_000_000)
        if c.op in ("greater-than", "greater-or-equal"):
            s = us // 1_000_000 + (1 if c.op == "greater-than" or us % 1_000_000 else 0)
            lo = s if lo is None else max(lo, s)
        else:
            s = us // 1_000_000 - (1 if c.op == "less-than" and us % 1_000_000 == 0 else 0)
            hi = s if hi is None else min(hi, s)
    return lo, hi


def _norm(value):
    """Sortable stand-in for None (nulls sort first)."""
    if value is None:
        return -1
    if isinstance(value, bool):
        return int(value)
    return value


def _prune(attrs: dict, names: tuple[str, ...]) -> dict:
    """Apply a sparse fieldset, including dotted sub-fields like `location.city`."""
    out: dict = {}
    nested: dict[str, list[str]] = {}
    for name in names:
        top, _, rest = name.partition(".")
        if top not in attrs:
            continue
        if rest:
            nested.setdefault(top, []).append(rest)
        else:
            out[top] = attrs[top]
    for top, rests in nested.items():
        if top not in out:
            value = attrs[top]
            out[top] = _prune(value, tuple(rests)) if isinstance(value, dict) else value
    return out
