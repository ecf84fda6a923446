"""A deterministic synthetic Klaviyo account: ground truth, queries and mutations.

Everything derives from (seed, sizes). Profiles are stored as a few `array`
columns and rendered on demand from hashes of their index; events live in
events.EventStore. Small collections (metrics, lists, campaigns, ...) are
plain Rows. Synthetic timestamps lie in 2024-01-01..2026-06-30 so incremental
runs against the real clock are stable; mutations use `now()`.

The account deliberately carries the quirks a tap must survive: space-separated
event datetimes, microsecond campaign/suppression timestamps, equal event
datetimes straddling page boundaries, two "Clicked Email" metrics, legacy
"Unsubscribed" beside "Unsubscribed from Email Marketing", events of a metric
/api/metrics does not list, suppressions newer than the profile's `updated`,
all five suppression reasons, archived campaigns on every channel, profiles
in several lists, an empty list, >200 metrics and more lists than one page;
and, from the area mixins (areas/), archived/draft/manual/live flows with
actions that have no message (delays, splits), SMS and email flow messages, an
email A/B test with two messages, forms with several versions, tags from three
groups on lists, segments, campaigns and flows, and profiles suppressed on
several lists. Sizes beyond profiles/events (SIZES) scale flows, flow actions,
templates, universal content, forms and images.
"""

from __future__ import annotations

import random
import threading
from array import array
from datetime import datetime
from typing import Callable, Iterator

import msgspec

from .areas import catalog, commerce
from .areas.audience import AudienceData, Members  # noqa: F401 (Members re-exported)
from .areas.catalog import CatalogData
from .areas.commerce import CommerceData
from .areas.content import ContentData
from .areas.events import EventsData
from .areas.messaging import MessagingData
from .areas.reports import ReportsData
from .events import EventStore
from .resources import (
    DEFAULT_BASE_URL,
    T_END,
    T_START,
    UTC,
    Row,
    base62,
    crockford_decode,
    fmt_us,
    mix,
    relationship_links,
    render_row,
    to_us,
    ulid,
)

SIZES = ("flows", "flow_actions", "templates", "universal_content", "forms", "images", *catalog.SIZES, *commerce.SIZES)
PRESETS = {
    "tiny": {"profiles": 300, "events": 3000, "flows": 8, "flow_actions": 30, "templates": 12, "universal_content": 8, "forms": 5, "images": 15},
    "demo": {"profiles": 5_000, "events": 100_000, "flows": 24, "flow_actions": 100, "templates": 30, "universal_content": 24, "forms": 12, "images": 60},
    "bench": {"profiles": 200_000, "events": 1_000_000, "flows": 200, "flow_actions": 1000, "templates": 100, "universal_content": 60, "forms": 30, "images": 300},
}
for _area in (catalog, commerce):
    for _name, _sizes in _area.PRESET_SIZES.items():
        PRESETS[_name].update(_sizes)
SUPPRESSION_REASONS = ("HARD_BOUNCE", "INVALID_EMAIL", "SPAM_COMPLAINT", "UNSUBSCRIBE", "USER_SUPPRESSED")
CHANNELS = ("email", "sms", "mobile_push")

INTEGRATIONS = {
    "klaviyo": {"object": "integration", "id": "0rG4eQ", "key": "klaviyo", "name": "Klaviyo", "category": "Internal"},
    "api": {"object": "integration", "id": "7FtS4J", "key": "api", "name": "API", "category": "API"},
    "shopify": {"object": "integration", "id": "0eMvjm", "key": "shopify", "name": "Shopify", "category": "eCommerce"},
    # Only metrics added after generation (areas/events.py LATER_METRICS) use these two.
    "woocommerce": {"object": "integration", "id": "0mWoCo", "key": "woocommerce", "name": "WooCommerce", "category": "eCommerce"},
    "segment": {"object": "integration", "id": "0sGmNt", "key": "segment", "name": "Segment", "category": "Customer Data Platform"},
}
# (name, integration, share of all events). "Clicked Email" twice, both unsubscribe names: real quirks.
STANDARD_METRICS = (
    ("Received Email", "klaviyo", 0.36),
    ("Opened Email", "klaviyo", 0.18),
    ("Clicked Email", "klaviyo", 0.06),
    ("Bounced Email", "klaviyo", 0.015),
    ("Dropped Email", "klaviyo", 0.01),
    ("Marked Email as Spam", "klaviyo", 0.005),
    ("Unsubscribed", "klaviyo", 0.01),
    ("Unsubscribed from Email Marketing", "klaviyo", 0.01),
    ("Subscribed to Email Marketing", "klaviyo", 0.005),
    ("Subscribed to List", "klaviyo", 0.02),
    ("Unsubscribed from List", "klaviyo", 0.005),
    ("Clicked Email to Unsubscribe", "klaviyo", 0.002),
    ("Updated Email Preferences", "klaviyo", 0.002),
    ("Merged Profile", "klaviyo", 0.001),
    ("Sent SMS", "klaviyo", 0.02),
    ("Received SMS", "klaviyo", 0.02),
    ("Clicked SMS", "klaviyo", 0.01),
    ("Failed to Deliver SMS", "klaviyo", 0.002),
    ("Subscribed to SMS Marketing", "klaviyo", 0.003),
    ("Unsubscribed from SMS Marketing", "klaviyo", 0.003),
    ("Clicked Email", "api", 0.01),
    ("Viewed Product", "api", 0.08),
    ("Active on Site", "api", 0.04),
    ("Placed Order", "shopify", 0.04),
    ("Ordered Product", "shopify", 0.03),
    ("Started Checkout", "shopify", 0.03),
    ("Fulfilled Order", "shopify", 0.01),
)
CUSTOM_METRICS = 200
UNRESOLVED_SHARE = 0.005
RECEIVED_TIES = (100, 200, 1000)  # page sizes whose boundaries equal-datetime groups must straddle

FIRST_NAMES = ("Sarah", "James", "Maria", "Wei", "Aisha", "Lucas", "Emma", "Noah", "Olivia", "Mateo", "Yuki", "Priya", "Liam", "Chloe", "Omar", "Ana")
LAST_NAMES = ("Mason", "Smith", "Garcia", "Chen", "Khan", "Silva", "Brown", "Kim", "Nguyen", "Rossi", "Tanaka", "Patel", "Murphy", "Dubois", "Haddad", "Costa")
CITIES = (
    ("New York", "NY", "United States", "10017", "America/New_York", 40.7128, -74.006),
    ("Boston", "MA", "United States", "02110", "America/New_York", 42.3601, -71.0589),
    ("Austin", "TX", "United States", "73301", "America/Chicago", 30.2672, -97.7431),
    ("London", "England", "United Kingdom", "EC1A 1BB", "Europe/London", 51.5072, -0.1276),
    ("Berlin", "Berlin", "Germany", "10115", "Europe/Berlin", 52.52, 13.405),
    ("Sydney", "NSW", "Australia", "2000", "Australia/Sydney", -33.8688, 151.2093),
)
LOCALES = ("en-US", "en-GB", "de-DE", "fr-FR", "es-ES", None)
PROFILE_ATTRIBUTES = (
    "email", "phone_number", "external_id", "first_name", "last_name", "organization",
    "locale", "title", "image", "location", "properties",
)  # fmt: skip


class Account(AudienceData, MessagingData, ContentData, CatalogData, CommerceData, EventsData, ReportsData):
    """Ground truth of one synthetic Klaviyo account; thread-safe, mutable between syncs.

    Areas (klaviyo_emulator/areas/) contribute generators and mutation helpers as mixins.
    """

    def __init__(self, seed: int, profiles: int, events: int, **sizes: int) -> None:
        unknown = set(sizes) - set(SIZES)
        if unknown:
            raise TypeError(f"unknown account sizes {sorted(unknown)}; choose from {SIZES}")
        sizes = {**PRESETS["tiny"], **sizes}
        self.seed = seed
        self.lock = threading.RLock()
        self.version = 0  # bumped on every profile mutation; invalidates cached sort orders
        self._clock: datetime | None = None
        self._rng = random.Random(seed)
        self._id_salt = mix(seed, 4)
        self._pid_cache: list[str | None] = []
        self._orders: dict[str, tuple[int, array]] = {}
        self._build_metrics()
        self._build_profiles(profiles)
        self._build_lists_and_segments()
        self._build_campaigns()
        self._build_templates(sizes["templates"])
        self._build_flows(sizes["flows"], sizes["flow_actions"])
        self._build_universal_content(sizes["universal_content"])
        self._build_forms(sizes["forms"])
        self._build_images(sizes["images"])
        self._build_catalog(sizes["catalog_items"])
        self._build_tags()
        self.events_store = EventStore(seed)
        self._build_events(events)
        self._build_later_metrics(events)
        self._build_attributions()
        self._build_commerce(sizes["coupons"], sizes["coupon_codes"], sizes["reviews"])

    @classmethod
    def generate(cls, seed: int = 1, size: str = "tiny", profiles: int | None = None, events: int | None = None, **sizes: int | None) -> "Account":
        """Build an account from a preset ("tiny", "demo", "bench"), optionally overriding its sizes.

        Sizes beyond profiles and events: flows, flow_actions (spread over the flows), templates,
        universal_content, forms, images, catalog_items (each with one to four variants), coupons, coupon_codes (spread over the coupons), reviews;
        e.g. `Account.generate(1, "tiny", flows=200, flow_actions=1000)` or `(..., coupons=50, coupon_codes=20000)`.
        """
        if size not in PRESETS:
            raise ValueError(f"unknown size {size!r}; choose one of {sorted(PRESETS)}")
        preset = PRESETS[size]
        chosen = {k: preset[k] if sizes.get(k) is None else sizes[k] for k in SIZES}
        unknown = set(sizes) - set(SIZES)
        if unknown:
            raise TypeError(f"unknown account sizes {sorted(unknown)}; choose from {SIZES}")
        return cls(
            seed,
            preset["profiles"] if profiles is None else profiles,
            preset["events"] if events is None else events,
            **chosen,
        )

    # ----------------------------------------------------------------- clock
    def now(self) -> datetime:
        """The emulator's clock: real UTC time unless set_clock() pinned it."""
        return self._clock or datetime.now(UTC)

    def set_clock(self, dt: datetime | None) -> None:
        """Pin the clock (naive means UTC) or return to real time with None."""
        self._clock = dt if dt is None or dt.tzinfo else dt.replace(tzinfo=UTC)

    def now_us(self) -> int:
        return to_us(self.now())

    def _bump(self, row: Row, name: str = "updated", micro: bool = False) -> None:
        """Move a Row's `updated`-like attribute to now(): whole seconds, or microseconds where the resource renders them."""
        now = self.now_us() if micro else self.now_us() // 1_000_000 * 1_000_000
        row.keys[name], row.attrs[name] = now, fmt_us(now, micro=micro)

    # --------------------------------------------------------------- metrics
    def _short_id(self, salt: int, taken: set) -> str:
        n = 0
        while True:
            candidate = base62(mix(self.seed, salt, n), 6)
            if candidate not in taken:
                taken.add(candidate)
                return candidate
            n += 1

    def _build_metrics(self) -> None:
        self._ids: set[str] = set()
        self.metric_rows: list[Row] = []
        self.metric_share: dict[str, float] = {}
        specs = list(STANDARD_METRICS) + [(f"Custom Metric {i:03d}", "api", 0.0) for i in range(1, CUSTOM_METRICS + 1)]
        for i, (name, integration, share) in enumerate(specs):
            mid = self._short_id(1000 + i, self._ids)
            created = (T_START - 86400 * 400 + i * 3600) * 1_000_000
            attrs = {"name": name, "created": fmt_us(created), "updated": fmt_us(created), "integration": dict(INTEGRATIONS[integration])}
            self.metric_rows.append(
                Row(mid, attrs, {"id": mid, "integration.name": INTEGRATIONS[integration]["name"], "integration.category": INTEGRATIONS[integration]["category"]})
            )
            self.metric_share[mid] = share
        self.unresolved_metric_id = self._short_id(999, self._ids)
        custom_share = (1.0 - sum(s for _, _, s in STANDARD_METRICS) - UNRESOLVED_SHARE) / CUSTOM_METRICS
        for row in self.metric_rows[len(STANDARD_METRICS) :]:
            self.metric_share[row.id] = custom_share
        self.metric_share[self.unresolved_metric_id] = UNRESOLVED_SHARE
        self.metric_rows.sort(key=lambda r: r.id)
        self.metric_by_id = {r.id: r for r in self.metric_rows}

    def metrics(self, base_url: str = DEFAULT_BASE_URL) -> list[dict]:
        """Metric resources as GET /api/metrics renders them (unresolvable metrics excluded)."""
        return [render_row(r, "metric", "metrics", base_url, ("flow-triggers",)) for r in self.metric_rows]

    def metric_ids(self, name: str, integration_key: str = "klaviyo") -> list[str]:
        """Ids of metrics with this name from this integration (names are not unique across integrations)."""
        return [r.id for r in self.metric_rows if r.attrs["name"] == name and r.attrs["integration"]["key"] == integration_key]

    # -------------------------------------------------------------- profiles
    def _build_profiles(self, n: int) -> None:
        self.n_generated = n
        rng = random.Random(mix(self.seed, 100))
        step = max(1, (T_END - 45 * 86400 - T_START) // max(n, 1))
        self._p_created = array("q", (T_START + i * step + int(rng.random() * step) for i in range(n)))
        upd_end = T_END - 31 * 86400
        self._p_updated = array("q", (c if rng.random() < 0.25 else c + int(rng.random() * (upd_end - c)) for c in self._p_created))
        self._p_attrs: dict[int, dict] = {}  # overrides from mutations; full attributes for added profiles
        self._p_supp: dict[int, list[tuple[str, int]]] = {}
        self._p_list_supp: dict[int, list[tuple[str, str, int]]] = {}
        for i in range(n):
            if i % 7 != 3:
                continue
            k = i // 7
            h = mix(self.seed, i, 3)
            created_us, updated_us = self._p_created[i] * 1_000_000, self._p_updated[i] * 1_000_000
            if k % 2 == 0 or updated_us == created_us:  # quirk: suppression newer than `updated`
                ts = updated_us + 1_000_000 + h % (30 * 86400 * 1_000_000)
            else:
                ts = created_us + h % (updated_us - created_us)
            self._p_supp[i] = [(SUPPRESSION_REASONS[k % 5], ts)]

    def _profile_count(self) -> int:
        return len(self._p_created)

    def profile_id(self, idx: int) -> str:
        """ULID-like id: creation-time prefix, hashed middle, index-encoding tail (so lookup needs no table).

        Memoised (~80 bytes a profile once rendered): every rendered event carries one.
        """
        cache = self._pid_cache
        if idx < len(cache):
            pid = cache[idx]
            if pid is not None:
                return pid
        else:
            cache.extend([None] * (idx + 1 - len(cache)))
        ms = self._p_created[idx] * 1000 + idx % 1000
        pid = cache[idx] = ulid(ms, ((idx * 0x9E3779B97F4A7C15 ^ self._id_salt) & ((1 << 50) - 1)) << 30 | idx)
        return pid

    def profile_index(self, profile_id: str) -> int | None:
        """Index of a profile id, or None when the id is not one of this account's."""
        if len(profile_id) != 26:
            return None
        try:
            idx = crockford_decode(profile_id[20:])
        except ValueError:
            return None
        if idx < self._profile_count() and self.profile_id(idx) == profile_id:
            return idx
        return None

    def profile_attr(self, idx: int, name: str):
        """One (unrendered) profile attribute, cheaply: used by filters over many profiles."""
        over = self._p_attrs.get(idx)
        if over is not None and name in over:
            return over[name]
        if idx >= self.n_generated:
            return None
        h = mix(self.seed, idx, 5)
        first, last = FIRST_NAMES[h % 16], LAST_NAMES[(h >> 4) % 16]
        if name == "email":
            return f"{first.lower()}.{last.lower()}{idx}@example.com"
        if name == "phone_number":
            return None if h % 3 == 0 else "+1555%07d" % idx
        if name == "external_id":
            return f"ext-{idx:07d}" if h % 5 == 0 else None
        if name == "first_name":
            return first
        if name == "last_name":
            return last
        raise KeyError(name)

    def _profile_base(self, idx: int) -> dict:
        h = mix(self.seed, idx, 5)
        city = CITIES[(h >> 8) % len(CITIES)]
        return {
            "email": self.profile_attr(idx, "email"),
            "phone_number": self.profile_attr(idx, "phone_number"),
            "external_id": self.profile_attr(idx, "external_id"),
            "first_name": FIRST_NAMES[h % 16],
            "last_name": LAST_NAMES[(h >> 4) % 16],
            "organization": "Example Corporation" if h % 6 == 0 else None,
            "locale": LOCALES[(h >> 12) % len(LOCALES)],
            "title": "Regional Manager" if h % 9 == 0 else None,
            "image": None,
            "location": {
                "address1": f"{1 + (h >> 16) % 400} Main St",
                "address2": None,
                "city": city[0],
                "country": city[2],
                "latitude": city[5],
                "longitude": city[6],
                "region": city[1],
                "zip": city[3],
                "timezone": city[4],
                "ip": "203.0.113.%d" % ((h >> 24) % 250 + 1),
            },
            "properties": {"loyalty_tier": ("bronze", "silver", "gold")[(h >> 28) % 3], "signup_source": "emulator"},
        }

    def profile_attributes(self, idx: int) -> dict:
        """Rendered `attributes` of a profile (without additional fields)."""
        if idx < self.n_generated:
            attrs = self._profile_base(idx)
        else:
            attrs = dict.fromkeys(PROFILE_ATTRIBUTES)
        attrs.update(self._p_attrs.get(idx, {}))
        created, updated = self._p_created[idx], self._p_updated[idx]
        attrs["created"] = fmt_us(created * 1_000_000)
        attrs["updated"] = fmt_us(updated * 1_000_000)
        has_events = mix(self.seed, idx, 6) % 3 != 0
        attrs["last_event_date"] = fmt_us((created + (updated - created) // 2) * 1_000_000) if has_events else None
        return attrs

    def suppressions(self, idx: int) -> list[tuple[str, int]]:
        return self._p_supp.get(idx, [])

    def suppression_ts(self, idx: int) -> int | None:
        """Latest global suppression timestamp (µs) of a profile, the value Klaviyo filters and sorts on."""
        supp = self._p_supp.get(idx)
        return max(ts for _, ts in supp) if supp else None

    def list_suppression_ts(self, idx: int) -> int | None:
        supp = self._p_list_supp.get(idx)
        return max(ts for _, _, ts in supp) if supp else None

    def subscriptions(self, idx: int) -> dict:
        """`subscriptions` additional field; consent follows the suppression state."""
        h = mix(self.seed, idx, 8)
        supp = self._p_supp.get(idx, [])
        created = fmt_us(self._p_created[idx] * 1_000_000)
        if any(reason == "UNSUBSCRIBE" for reason, _ in supp):
            consent = "UNSUBSCRIBED"
        else:
            consent = ("SUBSCRIBED", "SUBSCRIBED", "NEVER_SUBSCRIBED")[h % 3]
        consent_ts = max((ts for _, ts in supp), default=None)
        has_phone = self.profile_attr(idx, "phone_number") is not None
        sms_consent = ("SUBSCRIBED" if h % 4 == 0 else "NEVER_SUBSCRIBED") if has_phone else "NEVER_SUBSCRIBED"
        return {
            "email": {
                "marketing": {
                    "can_receive_email_marketing": not supp and consent == "SUBSCRIBED",
                    "consent": consent,
                    "consent_timestamp": fmt_us(consent_ts, micro=True) if consent_ts else (created if consent == "SUBSCRIBED" else None),
                    "last_updated": fmt_us(consent_ts, micro=True) if consent_ts else created,
                    "method": "PREFERENCE_PAGE" if consent == "UNSUBSCRIBED" else ("FORM" if consent == "SUBSCRIBED" else None),
                    "method_detail": "",
                    "custom_method_detail": None,
                    "double_optin": None,
                    "suppression": [{"reason": r, "timestamp": fmt_us(ts, micro=True)} for r, ts in supp],
                    "list_suppressions": [
                        {"list_id": lid, "reason": r, "timestamp": fmt_us(ts, micro=True)} for lid, r, ts in self._p_list_supp.get(idx, [])
                    ],
                }
            },
            "sms": {
                "marketing": {
                    "can_receive_sms_marketing": sms_consent == "SUBSCRIBED",
                    "consent": sms_consent,
                    "consent_timestamp": created if sms_consent == "SUBSCRIBED" else None,
                    "method": "TEXT" if sms_consent == "SUBSCRIBED" else None,
                    "method_detail": "",
                    "last_updated": created if sms_consent == "SUBSCRIBED" else None,
                },
                "transactional": None,
            },
            "mobile_push": None,
        }

    def predictive_analytics(self, idx: int) -> dict:
        h = mix(self.seed, idx, 9)
        orders = h % 7
        aov = round(20 + (h >> 8) % 18000 / 100, 2)
        return {
            "historic_clv": round(orders * aov, 2),
            "predicted_clv": round((h >> 20) % 30000 / 100, 2),
            "total_clv": round(orders * aov + (h >> 20) % 30000 / 100, 2),
            "historic_number_of_orders": orders,
            "predicted_number_of_orders": round((h >> 32) % 500 / 100, 2),
            "average_days_between_orders": (h >> 40) % 120 if orders > 1 else None,
            "average_order_value": aov if orders else 0.0,
            "churn_probability": round((h >> 48) % 100 / 100, 2),
            "expected_date_of_next_order": fmt_us((T_END + (h >> 24) % (90 * 86400)) * 1_000_000) if orders else None,
            "ranked_channel_affinity": ["email", "sms", "push"][: 1 + h % 3],
        }

    def render_profile(self, idx: int, base: str, additional: tuple[str, ...] = (), extra: dict | None = None) -> dict:
        """A profile resource; `additional` may hold "subscriptions"/"predictive_analytics"."""
        pid = self.profile_id(idx)
        attrs = self.profile_attributes(idx)
        if extra:
            attrs.update(extra)
        if "subscriptions" in additional:
            attrs["subscriptions"] = self.subscriptions(idx)
        if "predictive_analytics" in additional:
            attrs["predictive_analytics"] = self.predictive_analytics(idx)
        return {
            "type": "profile",
            "id": pid,
            "attributes": attrs,
            "relationships": {
                name: {"links": relationship_links(base, "profiles", pid, name)} for name in ("lists", "segments", "push-tokens", "conversations")
            },
            "links": {"self": f"{base}/api/profiles/{pid}/"},
        }

    def profile_order(self, field: str) -> tuple[array, Callable[[int], tuple]]:
        """Profile indexes ascending by (field value, index), cached until the next profile mutation."""
        keyfn = self.profile_sort_key(field)
        cached = self._orders.get(field)
        if cached is None or cached[0] != self.version:
            if field == "id":
                order = array("l", range(self._profile_count()))
            else:
                candidates = range(self._profile_count())
                if field.startswith("subscriptions."):  # only profiles with a suppression take part
                    source = self._p_supp if ".suppression." in field else self._p_list_supp
                    candidates = list(source)
                order = array("l", sorted(candidates, key=keyfn))
            cached = self._orders[field] = (self.version, order)
        return cached[1], keyfn

    def profile_sort_key(self, field: str):
        created, updated = self._p_created, self._p_updated
        if field == "id":
            return lambda i: (i, i)
        if field == "created":
            return lambda i: (created[i] * 1_000_000, i)
        if field == "updated":
            return lambda i: (updated[i] * 1_000_000, i)
        if field == "email":
            return lambda i: (self.profile_attr(i, "email") or "", i)
        if field == "subscriptions.email.marketing.suppression.timestamp":
            return lambda i: (self.suppression_ts(i) or -1, i)
        if field == "subscriptions.email.marketing.list_suppressions.timestamp":
            return lambda i: (self.list_suppression_ts(i) or -1, i)
        raise KeyError(field)

    def profiles(self, base_url: str = DEFAULT_BASE_URL) -> Iterator[dict]:
        """Every profile resource (id order) including attributes.subscriptions."""
        for idx in range(self._profile_count()):
            with self.lock:
                yield self.render_profile(idx, base_url, ("subscriptions",))

    def _require_profile(self, profile_id: str) -> int:
        idx = self.profile_index(profile_id)
        if idx is None:
            raise KeyError(f"unknown profile {profile_id!r}")
        return idx

    def add_profile(self, **attributes) -> str:
        """Create a profile now(); attributes are profile attribute names (email, first_name, properties, ...)."""
        _check_attributes(attributes, PROFILE_ATTRIBUTES)
        with self.lock:
            now = int(self.now().timestamp())
            idx = self._profile_count()
            self._p_created.append(now)
            self._p_updated.append(now)
            self._p_attrs[idx] = dict(attributes)
            self.version += 1
            return self.profile_id(idx)

    def update_profile(self, profile_id: str, **attributes) -> None:
        """Change attributes and bump `updated` to now(), as a real profile write does."""
        _check_attributes(attributes, PROFILE_ATTRIBUTES)
        with self.lock:
            idx = self._require_profile(profile_id)
            self._p_attrs.setdefault(idx, {}).update(attributes)
            self._p_updated[idx] = int(self.now().timestamp())
            self.version += 1

    def suppress_profile(self, profile_id: str, reason: str, timestamp: datetime | str | None = None) -> None:
        """Add a global email suppression; like the real API this does NOT bump the profile's `updated`."""
        if reason not in SUPPRESSION_REASONS:
            raise ValueError(f"reason must be one of {SUPPRESSION_REASONS}")
        with self.lock:
            idx = self._require_profile(profile_id)
            ts = to_us(timestamp) if timestamp is not None else self.now_us()
            self._p_supp.setdefault(idx, []).append((reason, ts))
            self.version += 1

    # ---------------------------------------------------------------- events
    def _build_events(self, total: int) -> None:
        rng = self._rng
        n_profiles = self._profile_count()
        step = max(1, (T_END - 45 * 86400 - T_START) // max(n_profiles, 1))
        shares = list(self.metric_share.items())
        counts = [int(total * share) for _, share in shares]
        # Received Email absorbs rounding and the events of the metrics added after generation.
        counts[0] += total - sum(counts) - sum(self.later_metric_counts(total))
        for (mid, _), count in zip(shares, counts):
            span = T_END - T_START
            ts = sorted(T_START + int(rng.random() * span) for _ in range(count))
            if mid == self.metric_ids("Received Email")[0]:
                for boundary in RECEIVED_TIES:  # equal datetimes straddling page boundaries
                    if len(ts) > boundary + 3:
                        for p in range(boundary - 2, boundary + 3):
                            ts[p] = ts[boundary - 2]
            profiles = [min(n_profiles - 1, int(rng.random() * max(1, (t - T_START) // step))) for t in ts] if n_profiles else [0] * count
            self.events_store.extend_sorted(mid, ts, profiles)
            self.events_store.properties[mid] = self._property_pool(mid)

    def _property_pool(self, metric_id: str) -> list[str]:
        row = self.metric_by_id.get(metric_id)
        name = row.attrs["name"] if row else "Unknown"
        pool = []
        channel = "email" if "Email" in name or name == "Unsubscribed" else "sms" if "SMS" in name else None
        messages = self.message_sources(channel) if channel else []
        names = {r.id: r.attrs["name"] for r in self.campaign_rows}
        if messages:  # each event names the campaign or flow message it belongs to (the reports count them)
            for k, (campaign, flow, message) in enumerate(messages):
                props = {"$message": message}
                if flow is not None:
                    props["$flow"] = flow
                if channel == "sms":
                    props["Message Body"] = "Sale today"
                    pool.append(msgspec.json.encode(props).decode()[:-1])
                    continue
                if campaign is not None:
                    props["Campaign Name"] = names[campaign]
                props.update({"Subject": f"Our news #{k + 1}", "Email Domain": "example.com"})
                if name == "Bounced Email":
                    props["Bounce Type"] = ("hard", "soft")[k % 2]
                if name == "Clicked Email":
                    props["URL"] = f"https://shop.example.com/p/{k % 8 + 1}"
                pool.append(msgspec.json.encode(props).decode()[:-1])
            return pool
        for k in range(8):
            if name in ("Placed Order", "Ordered Product", "Started Checkout", "Fulfilled Order", "Viewed Product"):
                props = {"$value": round(10 + k * 7.25, 2), "ProductName": f"Product {k + 1}", "Categories": ["Shoes"], "$currency_code": "USD"}
            else:
                props = {"source": "emulator", "variant": k}
            pool.append(msgspec.json.encode(props).decode()[:-1])
        return pool

    def all_event_metric_ids(self) -> list[str]:
        """Every metric id that has events, including the unresolvable one."""
        return list(self.events_store.by_metric)

    def events(self, metric_id: str | None = None, base_url: str = DEFAULT_BASE_URL) -> Iterator[dict]:
        """Event resources (ascending datetime) as GET /api/events renders them now, of one metric or all
        (events stored late are left out until they are visible)."""
        with self.lock:
            ids = [metric_id] if metric_id else self.all_event_metric_ids()
            rows = list(self.events_store.iter_sorted(ids, int(self.now().timestamp())))
        for start in range(0, len(rows), 1000):
            chunk = rows[start : start + 1000]
            with self.lock:
                text = self.events_store.render(chunk, base_url, self.profile_id)
            yield from msgspec.json.decode("[" + text + "]")

    def add_event(
        self,
        metric_id: str,
        profile_id: str,
        dt: datetime | str,
        properties: dict | None = None,
        *,
        visible_at: datetime | str | None = None,
        attribution: dict | None = None,
        attributed_at: datetime | str | None = None,
    ) -> str:
        """Record an event at `dt` (may be in the past: a late-arriving event) and return its id.

        `visible_at`: the event is stored late, served only from then on (its `datetime` stays `dt`).
        `attribution`: {"campaign_message": id} or {"flow_message": id}, optionally with
        "attributed_event": the id of the touch it is attributed to; it shows from `attributed_at`
        on (default: at once). Without it, events of conversion metrics get a generated one or none.
        """
        with self.lock:
            idx = self._require_profile(profile_id)
            visible = to_us(visible_at) // 1_000_000 if visible_at is not None else None
            serial = self.events_store.add(metric_id, to_us(dt) // 1_000_000, idx, properties, visible)
            if attribution is not None:
                at = to_us(attributed_at) // 1_000_000 if attributed_at is not None else 0
                self.events_store.attributions[serial] = self._explicit_attribution(serial, attribution, at)
            return self.events_store.event_id(serial)


def _check_attributes(attributes: dict, allowed: tuple[str, ...]) -> None:
    unknown = set(attributes) - set(allowed)
    if unknown:
        raise KeyError(f"unknown profile attributes {sorted(unknown)}")
