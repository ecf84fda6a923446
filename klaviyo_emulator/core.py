"""The machinery every endpoint shares: tables, query validation, filter evaluation and the JSON:API envelope.

An `Endpoint` states what the real API accepts at one path: filter fields with
their operators per value shape (single / list / none) and value type, sort
fields, page[size] bounds, include and additional-fields values, sparse
fieldset types and their top-level fields, and the rate-limit tier.
`from_spec()` builds one from the generated facts in spec_tables.py (see
scripts/gen_emulator_tables.py); what the summary cannot say (records per page
on older revisions, the revision that added page[size], the internal default
order) is passed by the area module that serves the path. Handlers live in
areas/, one module per Klaviyo area; `HandlerBase` gives them the envelope.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable
from urllib.parse import quote, urlencode

import msgspec

from .errors import invalid, invalid_filter
from .filters import Condition, FilterError, parse_filter
from .paging import CursorError, decode_cursor, encode_cursor, keyset_page
from .resources import Row, render_row
from .spec_tables import TABLES

if TYPE_CHECKING:
    from .account import Account

CHANNEL_REQUIRED = (
    "A channel filter is required. Please provide either: `?filter=equals(messages.channel,'email')` to list email "
    "campaigns, `?filter=equals(messages.channel,'sms')` to list SMS campaigns, or "
    "`?filter=equals(messages.channel,'mobile_push')` to list mobile push campaigns."
)
OMNI_REVISION = "2026-10-15"
GT_LT = ("greater-or-equal", "greater-than", "less-or-equal", "less-than")


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
    fields_nested: dict[str, frozenset[str]] = field(default_factory=dict)  # dotted names per fields[...]; absent: any under a top-level name

    @property
    def rate_bucket(self) -> str:
        return self.bucket or self.operation


@dataclass(frozen=True)
class PostEndpoint:
    """A POST query endpoint: its rate tier (its own bucket, named by the operation), the handler that
    validates the body, and the sparse fieldset `fields[resource_type]` accepts."""

    operation: str
    rate: tuple[int, ...]  # burst per second, steady per minute[, daily]
    handler: str
    resource_type: str
    fields: tuple[str, ...]
    page_cursor: bool = False  # the spec lists a `page_cursor` parameter (never valid here: answers are one page)


def from_spec(path: str, rtype: str, handler: str, *, page_length: int | None = None, page_size_since: str | None = None,
              default_sort: str = "id", bucket: str = "") -> Endpoint:  # fmt: skip
    """The Endpoint at `path` from the generated spec facts; `page_length` defaults to the default page[size]."""
    t = TABLES[path]
    filters = {name: FieldSpec(v[0], v[1], v[2], v[3], v[4]) for name, v in t["filters"].items()}
    predictive = next((tier for (_, value), tier in t["rate_conditional"] if value == "predictive_analytics"), None)
    page_size = t["page_size"]
    if page_length is None:
        page_length = page_size[0] if page_size else 50
    return Endpoint(
        t["operation"], path, rtype, filters, t["sort"], page_size, page_length, page_size_since, t["include"],
        dict(t["additional"]), dict(t["fields"]), t["rate"], handler, predictive, t["filter_required"], default_sort, bucket,
        {k: frozenset(t["fields_nested"].get(k, ())) for k in t["fields"]},
    )  # fmt: skip


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
            nested = ep.fields_nested.get(key)
            if allowed is None or not values or any(v.split(".")[0] not in allowed or ("." in v and nested is not None and v not in nested) for v in values):
                raise invalid(f"'{value}' is not a valid choice for '{key}'.", key)
            fields[key[7:-1]] = values
        elif key.startswith("page[") and key not in ("page[size]", "page[cursor]"):
            raise invalid(f"'{key}' is not a valid query parameter.", key)
    if ep.filter_required and "messages.channel" in ep.filters and revision < OMNI_REVISION:  # campaigns; other required filters: their handler
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
        want = {"string": "string", "date-time": "datetime", "boolean": "boolean", "number": "number", "integer": "number"}[spec.type]
        for lit in literals:
            if lit.kind != want or (spec.type == "integer" and not isinstance(lit.value, int)):
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
class HandlerBase:
    """Renders validated queries against an Account into JSON:API documents (bytes); areas add the handlers."""

    def __init__(self, account: "Account"):
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

    # ---- tags: lists, segments, campaigns and flows all offer include=tags
    def tag_linkage(self, kind: str, resource_id: str) -> list[dict]:
        return [{"type": "tag", "id": t} for t in self.account.tags_of.get((kind, resource_id), ())]

    def render_tag(self, row: Row, base: str) -> dict:
        return render_row(row, "tag", "tags", base, ("tag-group", "lists", "segments", "campaigns", "flows"))

    def included_tags(self, q: Query, base: str, kind: str, rows: list[Row]) -> list[dict]:
        """The tag resources the page's rows link to, once each, in first-seen order."""
        if "tags" not in q.include:
            return []
        by_id = {r.id: r for r in self.account.tag_rows}
        seen: dict[str, None] = {}
        for r in rows:
            for t in self.account.tags_of.get((kind, r.id), ()):
                seen.setdefault(t)
        names = q.fields.get("tag")
        return [self.sparse(self.render_tag(by_id[t], base), names) for t in seen if t in by_id]


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
