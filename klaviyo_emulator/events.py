"""Compact event storage: per-metric parallel arrays sorted by (timestamp, serial).

A million events cost ~20 bytes each (three `array` columns); ids, uuids and
properties are derived from the serial number, so nothing per event is stored
as a Python object. A datetime range is a binary search, and a page across all
metrics is a k-way merge from each metric's cursor position.
"""

from __future__ import annotations

import functools
import heapq
from array import array
from bisect import bisect_left, bisect_right
from typing import Callable, Iterator

import msgspec

from .resources import BASE62, fmt_event_dt, mix

_DEFAULT_POOL = ['{"$source":"emulator"']
_UUID_EPOCH_OFFSET = 0x01B21DD213814000  # 100-ns intervals between 1582-10-15 and 1970-01-01


@functools.cache
def _triples() -> list[str]:
    """All 62**3 three-digit base62 strings (~14 MB, built on first use): event ids are on the hot path."""
    return [a + b + c for a in BASE62 for b in BASE62 for c in BASE62]


class MetricEvents:
    """One metric's events, ascending by (ts, serial)."""

    __slots__ = ("ts", "serial", "profile")

    def __init__(self) -> None:
        self.ts = array("q")
        self.serial = array("q")
        self.profile = array("l")

    def __len__(self) -> int:
        return len(self.ts)

    def span(self, lo: int | None, hi: int | None) -> tuple[int, int]:
        """Index range of events with lo <= ts <= hi (inclusive epoch seconds)."""
        a = 0 if lo is None else bisect_left(self.ts, lo)
        b = len(self.ts) if hi is None else bisect_right(self.ts, hi)
        return a, b

    def position(self, ts: int, serial: int, after: bool) -> int:
        """Index of the first event with key > (ts, serial) if `after`, else with key >= it."""
        a, b = bisect_left(self.ts, ts), bisect_right(self.ts, ts)
        return (bisect_right if after else bisect_left)(self.serial, serial, a, b)

    def insert(self, ts: int, serial: int, profile: int) -> None:
        """Insert keeping the order; serials only grow, so the event lands last among equal timestamps."""
        j = bisect_right(self.ts, ts)
        self.ts.insert(j, ts)
        self.serial.insert(j, serial)
        self.profile.insert(j, profile)


class EventStore:
    """All events of an account; ids, uuids and properties derive from (seed, serial)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.by_metric: dict[str, MetricEvents] = {}
        self.properties: dict[str, list[str]] = {}  # metric id -> pool of JSON objects missing the closing brace
        self.overrides: dict[int, str] = {}  # serial -> full JSON properties of an added event
        self.visible_at: dict[int, int] = {}  # serial -> epoch seconds from which a late-stored event is served
        self.attributions: dict[int, tuple | None] = {}  # serial -> attribution of an added event (None: none)
        self.attribution_of: Callable[[int, str, int], tuple | None] | None = None  # generated attributions
        self.next_serial = 1
        self._salt = mix(seed, 7)

    def __len__(self) -> int:
        return sum(len(m) for m in self.by_metric.values())

    def metric(self, metric_id: str) -> MetricEvents:
        return self.by_metric.setdefault(metric_id, MetricEvents())

    def extend_sorted(self, metric_id: str, timestamps: list[int], profiles: list[int]) -> None:
        """Bulk-load a metric's generated events; `timestamps` must be ascending."""
        store = self.metric(metric_id)
        n = len(timestamps)
        store.ts.extend(timestamps)
        store.serial.extend(range(self.next_serial, self.next_serial + n))
        store.profile.extend(profiles)
        self.next_serial += n

    def add(self, metric_id: str, ts: int, profile: int, properties: dict | None, visible_at: int | None = None) -> int:
        """Insert one event (possibly dated in the past) and return its serial.

        `visible_at` (epoch seconds) stores it late: it is served only from that moment on, the
        way Klaviyo shows events that reach it days after their `datetime`.
        """
        serial = self.next_serial
        self.next_serial += 1
        self.metric(metric_id).insert(ts, serial, profile)
        if properties is not None:
            self.overrides[serial] = msgspec.json.encode(properties).decode()
        if visible_at is not None:
            self.visible_at[serial] = visible_at
        return serial

    def hidden(self, now: int | None) -> Callable[[int], bool] | None:
        """A test for serials not yet visible at `now` (epoch seconds), or None when every event is."""
        if now is None or not self.visible_at:
            return None
        late = {serial for serial, at in self.visible_at.items() if at > now}
        return late.__contains__ if late else None

    def attribution(self, serial: int, mid: str, ts: int, now: int | None) -> tuple | None:
        """(attribution id, attributed event id, campaign id, campaign message id, flow id, flow message id)
        of one event, or None; an attribution lands up to 3 hours after its event (see areas/events.py)."""
        if serial in self.attributions:
            found = self.attributions[serial]
        elif self.attribution_of is not None:
            found = self.attribution_of(serial, mid, ts)
        else:
            return None
        if found is None or (now is not None and found[-1] > now):
            return None
        return found[:-1]

    def event_id(self, serial: int) -> str:
        """Short opaque 9-char id; a bijection of the serial so ids never collide."""
        n = (serial * 0x5DEECE66D + self._salt) % (1 << 53)
        high, low = divmod(n, 238_328)
        top, mid = divmod(high, 238_328)
        triples = _triples()
        return triples[top % 238_328] + triples[mid] + triples[low]

    def page(
        self,
        metric_ids: list[str],
        *,
        lo: int | None,
        hi: int | None,
        profile: int | None,
        after: tuple[int, int] | None,
        desc: bool,
        size: int,
        now: int | None = None,
    ) -> tuple[list[tuple[int, int, str, int]], bool]:
        """Up to `size` events as (ts, serial, metric_id, profile) ordered by (ts, serial); plus whether more remain.

        With `now` (epoch seconds), events stored late are left out until they are visible.
        """
        hidden = self.hidden(now)
        streams = []
        for mid in metric_ids:
            store = self.by_metric.get(mid)
            if store is None or not len(store):
                continue
            a, b = store.span(lo, hi)
            if after is not None:
                if desc:
                    b = min(b, store.position(after[0], after[1], after=False))
                else:
                    a = max(a, store.position(after[0], after[1], after=True))
            if a < b:
                streams.append(_stream(store, mid, a, b, desc))
        merged = streams[0] if len(streams) == 1 else heapq.merge(*streams, reverse=desc)
        out = []
        for row in merged:
            if profile is not None and row[3] != profile:
                continue
            if hidden is not None and hidden(row[1]):
                continue
            if len(out) == size:
                return out, True
            out.append(row)
        return out, False

    def iter_sorted(self, metric_ids: list[str], now: int | None = None) -> Iterator[tuple[int, int, str, int]]:
        """Every event of the given metrics in ascending (ts, serial) order (visible at `now`, when given)."""
        streams = [_stream(self.by_metric[m], m, 0, len(self.by_metric[m]), False) for m in metric_ids if m in self.by_metric]
        hidden = self.hidden(now)
        merged = heapq.merge(*streams)
        return merged if hidden is None else (row for row in merged if not hidden(row[1]))

    def render(
        self,
        rows: list[tuple[int, int, str, int]],
        base: str,
        profile_id: Callable[[int], str],
        included: list[str] | None = None,
        now: int | None = None,
    ) -> str:
        """JSON text of the event resources, comma-joined.

        This is the emulator's hot path (a 1000-event page is ~1 MB): one f-string
        per event, locals bound up front, table-driven ids and datetimes. With
        `included` (include=attributions), each event lists its attributions and
        their resources are appended to `included` as JSON text.
        """
        overrides, properties, salt = self.overrides, self.properties, self._salt
        attribution = self.attribution if included is not None else None
        event_id, fmt_dt = self.event_id, fmt_event_dt
        b = base + "/api/events/"
        parts = []
        append = parts.append
        for ts, serial, mid, prof in rows:
            props = overrides.get(serial)
            if props is None:
                pool = properties.get(mid) or _DEFAULT_POOL
                props = f'{pool[serial % len(pool)]},"$event_id":"{serial}"}}'
            e = event_id(serial)
            t = ts * 10_000_000 + _UUID_EPOCH_OFFSET + serial % 10_000_000
            node = (serial * 0x9E3779B97F4A7C15 ^ salt) & 0xFFFFFFFFFFFF
            linkage = ""
            if attribution is not None:
                found = attribution(serial, mid, ts, now)
                if found is not None:
                    linkage = f'"data":[{{"type":"attribution","id":"{found[0]}"}}],'
                    included.append(render_attribution(found, e, base))
                else:
                    linkage = '"data":[],'
            append(
                f'{{"type":"event","id":"{e}","attributes":{{"timestamp":{ts},"event_properties":{props},'
                f'"datetime":"{fmt_dt(ts)}","uuid":"{t & 0xFFFFFFFF:08x}-{(t >> 32) & 0xFFFF:04x}-1{(t >> 48) & 0xFFF:03x}-8001-{node:012x}"}},'
                f'"relationships":{{"profile":{{"data":{{"type":"profile","id":"{profile_id(prof)}"}},'
                f'"links":{{"self":"{b}{e}/relationships/profile/","related":"{b}{e}/profile/"}}}},'
                f'"metric":{{"data":{{"type":"metric","id":"{mid}"}},'
                f'"links":{{"self":"{b}{e}/relationships/metric/","related":"{b}{e}/metric/"}}}},'
                f'"attributions":{{{linkage}"links":{{"self":"{b}{e}/relationships/attributions/","related":"{b}{e}/attributions/"}}}}}},'
                f'"links":{{"self":"{b}{e}/"}}}}'
            )
        return ",".join(parts)


ATTRIBUTION_RELATIONSHIPS = (  # (relationship, resource type, index in an attribution tuple or None)
    ("event", "event", None),
    ("attributed-event", "event", 1),
    ("campaign", "campaign", 2),
    ("campaign-message", "campaign-message", 3),
    ("flow", "flow", 4),
    ("flow-message", "flow-message", 5),
    ("flow-message-variation", "flow-message", None),
)


def render_attribution(found: tuple, event_id: str, base: str) -> str:
    """JSON text of one attribution resource (type `attribution`) of the event `event_id`."""
    aid = found[0]
    link = f"{base}/api/attributions/{aid}"
    rels = []
    for name, rtype, index in ATTRIBUTION_RELATIONSHIPS:
        rid = event_id if name == "event" else (found[index] if index is not None else None)
        data = f'"data":{{"type":"{rtype}","id":"{rid}"}},' if rid is not None else ""
        rels.append(f'"{name}":{{{data}"links":{{"self":"{link}/relationships/{name}/","related":"{link}/{name}/"}}}}')
    return f'{{"type":"attribution","id":"{aid}","relationships":{{{",".join(rels)}}},"links":{{"self":"{link}/"}}}}'


def _stream(store: MetricEvents, mid: str, a: int, b: int, desc: bool) -> Iterator[tuple[int, int, str, int]]:
    ts, serial, profile = store.ts, store.serial, store.profile
    indexes = range(b - 1, a - 1, -1) if desc else range(a, b)
    for j in indexes:
        yield ts[j], serial[j], mid, profile[j]
