"""JSON:API rendering helpers: timestamps in Klaviyo's observed formats, ids, links."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

UTC = timezone.utc
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_BASE_URL = "https://a.klaviyo.com"
T_START = 1704067200  # 2024-01-01T00:00:00Z: synthetic timestamps lie in [T_START, T_END)
T_END = 1782777600  # 2026-06-30T00:00:00Z

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_MASK64 = (1 << 64) - 1


def mix(*values: int) -> int:
    """Deterministic 64-bit hash of integers (splitmix64 chain): the account's only source of per-record variety."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (v & _MASK64)) * 0xBF58476D1CE4E5B9 & _MASK64
        h = (h ^ (h >> 27)) * 0x94D049BB133111EB & _MASK64
        h ^= h >> 31
    return h


_BASE62_PAIRS = [a + b for a in BASE62 for b in BASE62]
_CROCKFORD_PAIRS = [a + b for a in _CROCKFORD for b in _CROCKFORD]


def base62(n: int, width: int) -> str:
    """Fixed-width base62 rendering of n (mod 62**width); two digits per step, it is on the hot path."""
    out = []
    for _ in range(width // 2):
        n, r = divmod(n, 3844)
        out.append(_BASE62_PAIRS[r])
    if width % 2:
        out.append(BASE62[n % 62])
    return "".join(reversed(out))


def crockford(n: int, width: int) -> str:
    """Fixed-width Crockford base32, the alphabet of ULIDs."""
    out = []
    for _ in range(width):
        n, r = divmod(n, 32)
        out.append(_CROCKFORD[r])
    return "".join(reversed(out))


def crockford_decode(text: str) -> int:
    """Inverse of crockford(); ValueError on foreign characters."""
    n = 0
    for ch in text:
        n = n * 32 + _CROCKFORD.index(ch)
    return n


def ulid(ms: int, rand: int) -> str:
    """26-char ULID: 48-bit millisecond time then 80 bits of (deterministic) randomness."""
    n = (ms & ((1 << 50) - 1)) << 80 | (rand & ((1 << 80) - 1))
    pairs = _CROCKFORD_PAIRS
    return "".join([pairs[(n >> shift) & 1023] for shift in range(120, -1, -10)])


def fmt_us(us: int | None, micro: bool = False) -> str | None:
    """Epoch microseconds as Klaviyo renders datetimes: `2024-04-01T17:09:03.603888+00:00` or without fraction."""
    if us is None:
        return None
    dt = EPOCH + timedelta(microseconds=us)
    return dt.isoformat(timespec="microseconds" if micro else "seconds")


_DAYS: dict[int, str] = {}
_MINUTES = ["%02d:%02d" % divmod(m, 60) for m in range(1440)]
_SECONDS = [":%02d+00:00" % s for s in range(60)]


def fmt_event_dt(ts: int) -> str:
    """Event `datetime`, rendered with a space separator like the real API (table-driven: hot path)."""
    day, rest = divmod(ts, 86400)
    date_text = _DAYS.get(day)
    if date_text is None:
        date_text = _DAYS[day] = time.strftime("%Y-%m-%d ", time.gmtime(day * 86400))
    minute, second = divmod(rest, 60)
    return date_text + _MINUTES[minute] + _SECONDS[second]


def to_us(value: datetime | str | int | float | None) -> int | None:
    """Accept a datetime, ISO string or epoch seconds and return epoch microseconds."""
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(round(value * 1_000_000))
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    delta = value - EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def relationship_links(base: str, rtype_path: str, rid: str, name: str) -> dict:
    """`links` of a relationship object (self + related)."""
    return {
        "self": f"{base}/api/{rtype_path}/{rid}/relationships/{name}/",
        "related": f"{base}/api/{rtype_path}/{rid}/{name}/",
    }


@dataclass(slots=True)
class Row:
    """A small-collection record: rendered attributes plus the raw values filters and sorts compare.

    `keys` hold datetimes as epoch microseconds so filter comparisons are exact.
    """

    id: str
    attrs: dict
    keys: dict
    extra: dict = field(default_factory=dict)


def render_row(row: Row, rtype: str, path: str, base: str, relationships: tuple[str, ...], data: dict | None = None) -> dict:
    """A JSON:API resource object; relationships carry only links unless `data` supplies linkage."""
    rels = {}
    for name in relationships:
        rel = {"links": relationship_links(base, path, row.id, name)}
        if data and name in data:
            rel = {"data": data[name], **rel}
        rels[name] = rel
    return {
        "type": rtype,
        "id": row.id,
        "attributes": dict(row.attrs),
        "relationships": rels,
        "links": {"self": f"{base}/api/{path}/{row.id}/"},
    }
