"""Audience: profiles, lists, segments, their members and suppressions (endpoint tables, handlers, mutations)."""

from __future__ import annotations

import random
from array import array
from bisect import bisect_right
from datetime import datetime

from ..core import HandlerBase, Query, _literal, bounds, from_spec, predicate
from ..errors import not_found
from ..paging import keyset_page
from ..resources import DEFAULT_BASE_URL, T_END, T_START, Row, fmt_us, mix, render_row, to_us

ENDPOINTS = (
    from_spec("/api/lists", "list", "lists", page_length=10, page_size_since="2026-04-15"),
    from_spec("/api/lists/{id}/profiles", "profile", "list_members", default_sort="joined_group_at"),
    from_spec("/api/lists/{id}/relationships/profiles", "profile", "list_member_ids", default_sort="joined_group_at"),
    from_spec("/api/segments", "segment", "segments", page_length=10, page_size_since="2026-04-15"),
    from_spec("/api/segments/{id}/profiles", "profile", "segment_members", default_sort="joined_group_at"),
    from_spec("/api/profiles", "profile", "profiles"),
)
LIST_SUPPRESSION_REASONS = ("UNSUBSCRIBE", "USER_SUPPRESSED")


class Members:
    """Members of a list or segment: parallel arrays ascending by (joined_group_at, profile index)."""

    __slots__ = ("profile", "joined", "departed")

    def __init__(self, pairs: list[tuple[int, int]] | None = None) -> None:
        pairs = sorted(pairs or [], key=lambda p: (p[1], p[0]))
        self.profile = array("l", (p for p, _ in pairs))
        self.joined = array("q", (j for _, j in pairs))
        self.departed: list[tuple[int, int]] = []  # (joined, left) epoch seconds of memberships that ended (segment reports)

    def __len__(self) -> int:
        return len(self.profile)

    def key(self, j: int) -> tuple[int, int]:
        return self.joined[j] * 1_000_000, self.profile[j]

    def remove(self, profile: int, at: int | None = None) -> None:
        """Leave the group (at `at`, epoch seconds, recorded as a departure); KeyError when the profile is not a member."""
        for j, p in enumerate(self.profile):
            if p == profile:
                if at is not None:
                    self.departed.append((self.joined[j], at))
                del self.profile[j]
                del self.joined[j]
                return
        raise KeyError(profile)

    def add(self, profile: int, joined: int) -> None:
        """(Re-)join: a profile appears once, at its latest joined time."""
        for j, p in enumerate(self.profile):
            if p == profile:
                del self.profile[j]
                del self.joined[j]
                break
        pos = bisect_right(range(len(self)), (joined * 1_000_000, profile), key=self.key)
        self.profile.insert(pos, profile)
        self.joined.insert(pos, joined)


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
    """Account mixin: lists, segments and their members, list suppressions (profiles themselves live in account.py)."""

    # ----------------------------------------------------- lists & segments
    def _sample_members(self, salt: int, fraction: float) -> list[tuple[int, int]]:
        n = self._profile_count()
        rng = random.Random(mix(self.seed, salt))
        created = self._p_created
        return [(i, created[i] + int(rng.random() * (T_END - created[i]))) for i in rng.sample(range(n), int(n * fraction))]

    def _build_lists_and_segments(self) -> None:
        names = ["Newsletter", "VIP Customers", "Preview List", "Black Friday 2025", "Winback", "Product Launch",
                 "Webinar Signups", "SMS Subscribers", "Event Attendees", "Beta Testers", "Wholesale", "Holiday 2025", "Empty List"]  # fmt: skip
        fractions = [0.55, 0.12, 0.05, 0.2, 0.1, 0.08, 0.04, 0.15, 0.03, 0.02, 0.01, 0.06, 0.0]
        self.list_rows: list[Row] = []
        self.members: dict[str, Members] = {}
        for i, (name, fraction) in enumerate(zip(names, fractions)):
            lid = self._short_id(2000 + i, self._ids)
            created = (T_START + i * 5 * 86400) * 1_000_000
            updated = created + mix(self.seed, i, 21) % (400 * 86400) * 1_000_000
            attrs = {"name": name, "created": fmt_us(created), "updated": fmt_us(updated), "opt_in_process": "double_opt_in" if i % 3 == 0 else "single_opt_in"}
            self.list_rows.append(Row(lid, attrs, {"id": lid, "name": name, "created": created, "updated": updated}))
            self.members[lid] = Members(self._sample_members(3000 + i, fraction))
        self._build_list_suppressions()
        self.segment_rows: list[Row] = []
        seg_names = ["Engaged 30 Days", "Engaged 90 Days", "Repeat Buyers", "Lapsed Customers", "High CLV", "Never Opened",
                     "Recent Signups", "Bounced Addresses", "SMS Engaged", "Churn Risk", "Big Spenders", "Empty Segment"]  # fmt: skip
        for i, name in enumerate(seg_names):
            sid = self._short_id(4000 + i, self._ids)
            created = (T_START + i * 7 * 86400) * 1_000_000
            updated = created + mix(self.seed, i, 23) % (300 * 86400) * 1_000_000
            attrs = {
                "name": name,
                "definition": {"condition_groups": [{"conditions": [
                    {"type": "profile-group-membership", "is_member": True, "group_ids": [self.list_rows[i % 12].id], "timeframe_filter": None}
                ]}]},  # fmt: skip
                "created": fmt_us(created),
                "updated": fmt_us(updated),
                "is_active": i != 3,
                "is_processing": False,
                "is_starred": i % 4 == 0,
            }
            keys = {"id": sid, "name": name, "created": created, "updated": updated, "is_active": attrs["is_active"], "is_starred": attrs["is_starred"]}
            self.segment_rows.append(Row(sid, attrs, keys))
            self.members[sid] = Members(self._sample_members(5000 + i, 0.0 if name == "Empty Segment" else 0.03 * (1 + i % 5)))

    def lists(self, base_url: str = DEFAULT_BASE_URL) -> list[dict]:
        """List resources as GET /api/lists renders them."""
        return [render_row(r, "list", "lists", base_url, ("profiles", "tags", "flow-triggers")) for r in self.list_rows]

    def list_member_ids(self, list_id: str) -> list[tuple[str, str]]:
        """(profile id, joined_group_at) of a list's members, ascending by joined_group_at."""
        with self.lock:
            m = self.members[list_id]
            return [(self.profile_id(p), fmt_us(j * 1_000_000)) for p, j in zip(m.profile, m.joined)]

    def add_list(self, name: str) -> str:
        """Create an empty list now()."""
        with self.lock:
            lid = self._short_id(6000 + len(self.list_rows), self._ids)
            now = self.now_us() // 1_000_000 * 1_000_000
            attrs = {"name": name, "created": fmt_us(now), "updated": fmt_us(now), "opt_in_process": "single_opt_in"}
            self.list_rows.append(Row(lid, attrs, {"id": lid, "name": name, "created": now, "updated": now}))
            self.members[lid] = Members()
            return lid

    def add_segment(self, name: str, list_id: str | None = None) -> str:
        """Create an empty segment now() (defined as membership of `list_id`, default the first list)."""
        with self.lock:
            sid = self._short_id(7000 + len(self.segment_rows), self._ids)
            now = self.now_us() // 1_000_000 * 1_000_000
            group = list_id or self.list_rows[0].id
            attrs = {
                "name": name,
                "definition": {"condition_groups": [{"conditions": [
                    {"type": "profile-group-membership", "is_member": True, "group_ids": [group], "timeframe_filter": None}
                ]}]},  # fmt: skip
                "created": fmt_us(now),
                "updated": fmt_us(now),
                "is_active": True,
                "is_processing": False,
                "is_starred": False,
            }
            keys = {"id": sid, "name": name, "created": now, "updated": now, "is_active": True, "is_starred": False}
            self.segment_rows.append(Row(sid, attrs, keys))
            self.members[sid] = Members()
            return sid

    def add_list_member(self, list_id: str, profile_id: str, joined_at: datetime | str | None = None) -> None:
        """Add a profile to a list; like the real API the list's `updated` does not move."""
        with self.lock:
            if list_id not in self.members or not any(r.id == list_id for r in self.list_rows):
                raise KeyError(f"unknown list {list_id!r}")
            idx = self._require_profile(profile_id)
            joined = (to_us(joined_at) if joined_at is not None else self.now_us()) // 1_000_000
            self.members[list_id].add(idx, joined)

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
            self._group("segment", segment_id).remove(self._require_profile(profile_id), int(self.now().timestamp()))

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
