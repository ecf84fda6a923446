"""Events and metrics: endpoint tables and handlers (the event store lives in events.py, generation in account.py)."""

from __future__ import annotations

import msgspec

from ..core import HandlerBase, Query, _literal, _second_bounds, from_spec
from ..errors import invalid
from ..resources import render_row

ENDPOINTS = (
    from_spec("/api/metrics", "metric", "metrics", page_length=200),
    from_spec("/api/events", "event", "events", page_length=200, page_size_since="2026-01-15", default_sort="datetime"),
)


class EventsHandlers(HandlerBase):
    def metrics(self, q: Query, base: str) -> bytes:
        empty = self._empty_rel_data(q, ("flow-triggers",))
        data, _, nxt = self.rows_page(q, self.account.metric_rows, base, "metrics", ("flow-triggers",), lambda r: empty)
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

