"""Audience: profiles, lists, segments, their members and suppressions (endpoint tables, handlers, mutations)."""

from __future__ import annotations

from datetime import datetime

from ..core import HandlerBase, Query, _literal, bounds, from_spec, predicate
from ..errors import not_found
from ..paging import keyset_page
from ..resources import T_END, T_START, Row, fmt_us, mix, to_us

ENDPOINTS = (
    from_spec("/api/lists", "list", "lists", page_length=10, page_size_since="2026-04-15"),
    from_spec("/api/lists/{id}/profiles", "profile", "list_members", default_sort="joined_group_at"),
    from_spec("/api/lists/{id}/relationships/profiles", "profile", "list_member_ids", default_sort="joined_group_at"),
    from_spec("/api/segments", "segment", "segments", page_length=10, page_size_since="2026-04-15"),
    from_spec("/api/segments/{id}/profiles", "profile", "segment_members", default_sort="joined_group_at"),
    from_spec("/api/profiles", "profile", "profiles"),
)
LIST_SUPPRESSION_REASONS = ("UNSUBSCRIBE", "USER_SUPPRESSED")


class AudienceHandlers(HandlerBase):
    def _tagged(self, q: Query, kind: str, to_many: tuple[str, ...]):
        empty = self._empty_rel_data(q, to_many)
        with_tags = "tags" in q.include
        return lambda r: {**empty, "tags": self.tag_linkage(kind, r.id)} if with_tags else empty

    def lists(self, q: Query, base: str) -> bytes:
        rel = self._tagged(q, "list", ("tags", "flow-triggers"))
        data, page, nxt = self.rows_page(q, self.account.list_rows, base, "lists", ("profiles", "tags", "flow-triggers"), rel)
        return self.document(q, base, data, nxt, self.included_tags(q, base, "list", page))

    def segments(self, q: Query, base: str) -> bytes:
        rel = self._tagged(q, "segment", ("tags", "flow-triggers"))
        data, page, nxt = self.rows_page(q, self.account.segment_rows, base, "segments", ("profiles", "tags", "flow-triggers"), rel)
        return self.document(q, base, data, nxt, self.included_tags(q, base, "segment", page))

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


class AudienceData:
    """Account mixin: audience generators and mutations beyond account.py's profiles and lists."""

    def _build_list_suppressions(self) -> None:
        """List-level suppressions: every 11th profile on the newsletter, a third of them on 1-2 more lists."""
        lists = self.list_rows
        for n, i in enumerate(range(5, self.n_generated, 11)):
            h = mix(self.seed, i, 22)
            supp = [(lists[0].id, LIST_SUPPRESSION_REASONS[h % 2], (T_START + h % (T_END - T_START)) * 1_000_000 + h % 999_999)]
            for k, list_index in enumerate((1, 7)[: (n % 3 == 0) + (n % 6 == 0)]):
                h2 = mix(self.seed, i, 24 + k)
                ts = supp[-1][2] + (1 + h2 % (20 * 86400)) * 1_000_000 + h2 % 999_999
                supp.append((lists[list_index].id, LIST_SUPPRESSION_REASONS[h2 % 2], ts))
            self._p_list_supp[i] = supp

    def _group(self, kind: str, group_id: str):
        rows = self.list_rows if kind == "list" else self.segment_rows
        if group_id not in self.members or not any(r.id == group_id for r in rows):
            raise KeyError(f"unknown {kind} {group_id!r}")
        return self.members[group_id]

    def add_segment_member(self, segment_id: str, profile_id: str, joined_at: datetime | str | None = None) -> None:
        """A profile enters a segment (at `joined_at`, default now()); the segment's `updated` does not move."""
        with self.lock:
            members = self._group("segment", segment_id)
            idx = self._require_profile(profile_id)
            members.add(idx, (to_us(joined_at) if joined_at is not None else self.now_us()) // 1_000_000)

    def remove_list_member(self, list_id: str, profile_id: str) -> None:
        """Remove a profile from a list (it disappears from /api/lists/{id}/profiles); KeyError if not a member."""
        with self.lock:
            self._group("list", list_id).remove(self._require_profile(profile_id))

    def remove_segment_member(self, segment_id: str, profile_id: str) -> None:
        """A profile leaves a segment; KeyError if not a member."""
        with self.lock:
            self._group("segment", segment_id).remove(self._require_profile(profile_id))

    def suppress_profile_on_list(self, profile_id: str, list_id: str, reason: str = "USER_SUPPRESSED", timestamp: datetime | str | None = None) -> None:
        """Add a list-level email suppression; like global suppressions it does NOT bump the profile's `updated`."""
        if reason not in LIST_SUPPRESSION_REASONS:
            raise ValueError(f"reason must be one of {LIST_SUPPRESSION_REASONS}")
        with self.lock:
            idx = self._require_profile(profile_id)
            self._group("list", list_id)
            ts = to_us(timestamp) if timestamp is not None else self.now_us()
            self._p_list_supp.setdefault(idx, []).append((list_id, reason, ts))
            self.version += 1
