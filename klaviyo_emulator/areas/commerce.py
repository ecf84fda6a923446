"""Commerce and account: coupons and their codes, reviews, push tokens and the account record.

Endpoint tables, handlers, generators (scaled by the account's sizes `coupons`,
`coupon_codes`, `reviews`; push tokens by the profile count) and mutations.

Coupon ids are their external ids (`SUMMER10`); a code's id is `<coupon id>-<code>`.
Codes are spread unevenly over the coupons and come in every status; assigned and used
codes link their profile. /api/coupon-codes needs a coupon.id or profile.id filter.
Reviews cover every type and status (rejected ones with a reason), rate 1-5 except
questions, and link the catalog item reviewed (store reviews link none). About one
profile in twelve has one or two push tokens.

Linkage: relationships the endpoint cannot include carry `data` always (code -> profile,
review -> item); those it can include carry it with include only (code -> coupon, push
token -> profile, review -> events), like tags -> tag-group elsewhere in the emulator.
"""

from __future__ import annotations

from bisect import insort
from dataclasses import replace

from ..core import HandlerBase, Query, from_spec, predicate
from ..errors import invalid
from ..paging import keyset_page
from ..resources import T_END, T_START, Row, base62, crockford, fmt_us, mix, render_row, ulid

ENDPOINTS = (
    from_spec("/api/coupons", "coupon", "coupons"),
    from_spec("/api/coupon-codes", "coupon-code", "coupon_codes"),
    from_spec("/api/reviews", "review", "reviews", default_sort="created"),
    from_spec("/api/push-tokens", "push-token", "push_tokens"),
    from_spec("/api/accounts", "account", "accounts"),
)
# Per preset: coupons, their codes and reviews (tiny stays small and fast).
PRESET_SIZES = {
    "tiny": {"coupons": 4, "coupon_codes": 60, "reviews": 40},
    "demo": {"coupons": 12, "coupon_codes": 3000, "reviews": 400},
    "bench": {"coupons": 50, "coupon_codes": 20000, "reviews": 3000},
}
SIZES = ("coupons", "coupon_codes", "reviews")
COUPON_WORDS = ("SUMMER", "WELCOME", "VIP", "FREESHIP", "BDAY", "WINTER", "FLASH", "LOYALTY", "SPRING", "BLACKFRIDAY")
CODE_STATUSES = ("UNASSIGNED", "ASSIGNED_TO_PROFILE", "USED", "PROCESSING", "VERSION_NOT_ACTIVE", "DELETING")
CODE_STATUS_WEIGHTS = (8, 5, 4, 1, 1, 1)  # of 20
REVIEW_TYPES = ("review", "review", "review", "rating", "question", "store")
REVIEW_STATUSES = ("published", "published", "published", "featured", "unpublished", "pending", "rejected")
REJECT_REASONS = ("fake", "false_or_misleading", "private_information", "profanity_or_inappropriate", "unrelated", "other")
REVIEW_ATTRIBUTES = ("status", "content", "title", "rating", "verified", "public_reply", "smart_quote", "images")
ENABLEMENT = ("AUTHORIZED", "AUTHORIZED", "AUTHORIZED", "UNAUTHORIZED", "DENIED", "PROVISIONAL", "NOT_DETERMINED")
ACCOUNT_ATTRIBUTES = ("test_account", "contact_information", "industry", "timezone", "preferred_currency", "locale")


def _code_key(row: Row) -> tuple:
    return (row.id, row.id)  # the default sort (id), as rows_page orders


class CommerceHandlers(HandlerBase):
    def coupons(self, q: Query, base: str) -> bytes:
        data, _, nxt = self.rows_page(q, self.account.coupon_rows, base, "coupons", ())
        for resource in data:
            del resource["relationships"]
        return self.document(q, base, data, nxt)

    def coupon_codes(self, q: Query, base: str) -> bytes:
        if not any(c.field in ("coupon.id", "profile.id") for c in q.conditions):
            raise invalid("A coupon.id or profile.id filter is required for this endpoint.", "filter")
        pred = predicate(q.conditions, lambda r, f: r.keys.get(f))
        page, more = keyset_page(self.account.coupon_code_rows, _code_key, q.size, after=q.after, pred=pred)
        with_coupon = "coupon" in q.include
        names = q.fields.get("coupon-code")
        data = []
        for row in page:
            linkage = {"coupon": {"type": "coupon", "id": row.extra["coupon"]}} if with_coupon else {}
            if row.extra["profile"] is not None:
                linkage["profile"] = {"type": "profile", "id": row.extra["profile"]}
            data.append(self.sparse(render_row(row, "coupon-code", "coupon-codes", base, ("coupon", "profile"), linkage), names))
        included = []
        if with_coupon:
            wanted = {row.extra["coupon"] for row in page}
            fields = q.fields.get("coupon")
            included = [self.sparse(self._render_coupon(c, base), fields) for c in self.account.coupon_rows if c.id in wanted]
        return self.document(q, base, data, _code_key(page[-1]) if more else None, included)

    @staticmethod
    def _render_coupon(row: Row, base: str) -> dict:
        resource = render_row(row, "coupon", "coupons", base, ())
        del resource["relationships"]
        return resource

    def reviews(self, q: Query, base: str) -> bytes:
        # status 'all' is a filter value meaning every status
        kept = [c for c in q.conditions if not (c.field == "status" and c.value is not None and getattr(c.value, "value", None) == "all")]
        q2 = replace(q, conditions=kept)
        with_events = "events" in q.include

        def rel_data(r: Row) -> dict:
            out = {"events": []} if with_events else {}
            if r.extra["item"] is not None:
                out["item"] = {"type": "catalog-item", "id": r.extra["item"]}
            return out

        data, _, nxt = self.rows_page(q2, self.account.review_rows, base, "reviews", ("events", "item"), rel_data)
        return self.document(q, base, data, nxt, [])

    def push_tokens(self, q: Query, base: str) -> bytes:
        account = self.account
        with_profile = "profile" in q.include
        rel_data = (lambda r: {"profile": {"type": "profile", "id": r.extra["profile"]}}) if with_profile else None
        data, page, nxt = self.rows_page(q, account.push_token_rows, base, "push-tokens", ("profile",), rel_data)
        included = []
        if with_profile:
            seen: dict[int, None] = {}
            for r in page:
                seen.setdefault(r.extra["profile_index"])
            names = q.fields.get("profile")
            included = [self.sparse(self._render_token_profile(idx, base), names) for idx in seen]
        return self.document(q, base, data, nxt, included)

    def _render_token_profile(self, idx: int, base: str) -> dict:
        resource = self.account.render_profile(idx, base)
        resource["relationships"].pop("conversations", None)  # the push-token response's profile lists lists, segments, push-tokens
        return resource

    def accounts(self, q: Query, base: str) -> bytes:
        data, _, nxt = self.rows_page(q, self.account.account_rows, base, "accounts", ())
        for resource in data:
            del resource["relationships"]
        return self.document(q, base, data, nxt)


class CommerceData:
    """Account mixin: coupon, review, push token and account generators and mutations."""

    def _build_commerce(self, coupons: int, coupon_codes: int, reviews: int) -> None:
        self._build_account_record()
        self._build_coupons(coupons, coupon_codes)
        self._build_reviews(reviews)
        self._build_push_tokens()

    # ---- the account
    def _build_account_record(self) -> None:
        aid = base62(mix(self.seed, 900), 6)
        attrs = {
            "test_account": False,
            "contact_information": {
                "default_sender_name": "Example Shop", "default_sender_email": "hello@shop.example.com", "website_url": "https://shop.example.com",
                "organization_name": "Example Shop Inc.",
                "street_address": {"address1": "125 Summer St", "address2": "Floor 6", "city": "Boston", "region": "MA", "country": "US", "zip": "02110"},
            },
            "industry": "Apparel & Accessories", "timezone": "America/New_York", "preferred_currency": "USD", "public_api_key": aid, "locale": "en-US",
        }  # fmt: skip
        self.account_rows: list[Row] = [Row(aid, attrs, {"id": aid})]

    def update_account(self, **attributes) -> None:
        """Change the account's settings (timezone, preferred_currency, industry, contact_information, locale, test_account)."""
        with self.lock:
            row = self.account_rows[0]
            for name, value in attributes.items():
                if name not in ACCOUNT_ATTRIBUTES:
                    raise KeyError(f"account attribute {name!r} cannot be updated")
                row.attrs[name] = value

    # ---- coupons and codes
    def _build_coupons(self, n: int, codes: int) -> None:
        self.coupon_rows: list[Row] = []
        self.coupon_code_rows: list[Row] = []  # kept sorted by id (the only order the endpoint serves)
        for c in range(n):
            word = COUPON_WORDS[c % len(COUPON_WORDS)]
            pct = (5, 10, 15, 20, 25)[mix(self.seed, c, 110) % 5]
            cid = f"{word}{pct}" + ("" if c < len(COUPON_WORDS) else f"-{c // len(COUPON_WORDS) + 1}")
            attrs = {"external_id": cid, "description": f"{pct}% off ({word.title()})" if c % 4 else None,
                     "monitor_configuration": {"low_balance_threshold": 50 + c % 5 * 25} if c % 3 == 0 else None}  # fmt: skip
            self.coupon_rows.append(Row(cid, attrs, {"id": cid}))
        if not n:
            return
        weights = [1 + mix(self.seed, c, 111) % 9 for c in range(n)]  # uneven: 1..9 shares
        total = sum(weights)
        counts = [codes * w // total for w in weights]
        for c in range(codes - sum(counts)):
            counts[c % n] += 1
        serial = 0
        rows = []
        for coupon, count in zip(self.coupon_rows, counts):
            for _ in range(count):
                rows.append(self._new_code(coupon.id, serial, CODE_STATUSES[serial] if serial < len(CODE_STATUSES) else None))
                serial += 1
        self._code_serial = serial
        rows.sort(key=_code_key)
        self.coupon_code_rows = rows

    def _new_code(self, coupon_id: str, serial: int, status: str | None, expires_at: int | None = -1, profile_id: str | None = "") -> Row:
        h = mix(self.seed, serial, 112)
        code = crockford(h, 12)
        if status is None:
            pick, acc = h % 20, 0
            for status, weight in zip(CODE_STATUSES, CODE_STATUS_WEIGHTS):
                acc += weight
                if pick < acc:
                    break
        if expires_at == -1:
            expires_at = None if (h >> 8) % 3 == 0 else (T_START + (h >> 12) % (T_END - T_START + 365 * 86400)) * 1_000_000
        if profile_id == "":
            profile_id = self.profile_id((h >> 20) % self._profile_count()) if status in ("ASSIGNED_TO_PROFILE", "USED") and self._profile_count() else None
        cid = f"{coupon_id}-{code}"
        attrs = {"unique_code": code, "expires_at": fmt_us(expires_at), "status": status}
        keys = {"id": cid, "coupon.id": coupon_id, "profile.id": profile_id, "status": status, "expires_at": expires_at}
        return Row(cid, attrs, keys, {"coupon": coupon_id, "profile": profile_id})

    def coupon_codes_of(self, coupon_id: str) -> list[Row]:
        return [r for r in self.coupon_code_rows if r.extra["coupon"] == coupon_id]

    def add_coupon(self, external_id: str, description: str | None = None) -> str:
        """Create a coupon (without codes); returns its id."""
        with self.lock:
            if any(r.id == external_id for r in self.coupon_rows):
                raise ValueError(f"coupon {external_id!r} exists")
            self.coupon_rows.append(Row(external_id, {"external_id": external_id, "description": description, "monitor_configuration": None}, {"id": external_id}))
            return external_id

    def delete_coupon(self, coupon_id: str) -> None:
        """Delete a coupon and every code of it."""
        with self.lock:
            before = len(self.coupon_rows)
            self.coupon_rows[:] = [r for r in self.coupon_rows if r.id != coupon_id]
            if len(self.coupon_rows) == before:
                raise KeyError(f"unknown coupon {coupon_id!r}")
            self.coupon_code_rows[:] = [r for r in self.coupon_code_rows if r.extra["coupon"] != coupon_id]

    def add_coupon_code(self, coupon_id: str, unique_code: str | None = None, status: str = "UNASSIGNED", profile_id: str | None = None,
                        expires_at: int | None = None) -> str:  # fmt: skip
        """Add a code to a coupon (expires_at in epoch µs or None); returns its id."""
        if status not in CODE_STATUSES:
            raise ValueError(f"status must be one of {CODE_STATUSES}")
        with self.lock:
            if not any(r.id == coupon_id for r in self.coupon_rows):
                raise KeyError(f"unknown coupon {coupon_id!r}")
            row = self._new_code(coupon_id, self._code_serial, status, expires_at, profile_id)
            self._code_serial += 1
            if unique_code is not None:
                row.id = row.keys["id"] = f"{coupon_id}-{unique_code}"
                row.attrs["unique_code"] = unique_code
            if any(r.id == row.id for r in self.coupon_code_rows):
                raise ValueError(f"coupon code {row.id!r} exists")
            insort(self.coupon_code_rows, row, key=_code_key)
            return row.id

    def update_coupon_code(self, code_id: str, status: str, profile_id: str | None = None) -> None:
        """Move a code to another status (e.g. assign it to a profile, or mark it used)."""
        if status not in CODE_STATUSES:
            raise ValueError(f"status must be one of {CODE_STATUSES}")
        with self.lock:
            row = next((r for r in self.coupon_code_rows if r.id == code_id), None)
            if row is None:
                raise KeyError(f"unknown coupon code {code_id!r}")
            row.attrs["status"] = row.keys["status"] = status
            if profile_id is not None:
                row.extra["profile"] = row.keys["profile.id"] = profile_id

    def delete_coupon_code(self, code_id: str) -> None:
        with self.lock:
            before = len(self.coupon_code_rows)
            self.coupon_code_rows[:] = [r for r in self.coupon_code_rows if r.id != code_id]
            if len(self.coupon_code_rows) == before:
                raise KeyError(f"unknown coupon code {code_id!r}")

    # ---- reviews
    def _build_reviews(self, n: int) -> None:
        self.review_rows: list[Row] = []
        self._review_serial = 0
        items = [r for r in self.catalog_rows if r.attrs["published"]]
        for i in range(n):
            h = mix(self.seed, i, 120)
            created = (T_START + h % (T_END - T_START - 30 * 86400)) // 60 * 60 * 1_000_000
            kind = REVIEW_TYPES[i % len(REVIEW_TYPES)]
            status = REVIEW_STATUSES[i % len(REVIEW_STATUSES)]
            item = None if kind == "store" or not items else items[(h >> 16) % len(items)]
            rating = None if kind == "question" else 1 + (h >> 24) % 5 if (h >> 28) % 3 else 5
            replied = (h >> 32) % 4 == 0
            self._new_review(kind, status, item, rating, created, created + (h >> 36) % (20 * 86400) * 1_000_000 if replied or status != "published" else created,
                             verified=(h >> 40) % 3 != 0, replied=replied, reason=REJECT_REASONS[i % len(REJECT_REASONS)])  # fmt: skip

    def _new_review(self, kind: str, status: str, item: Row | None, rating: int | None, created: int, updated: int, verified: bool = True,
                    replied: bool = False, reason: str = "other", content: str | None = None, email: str | None = None) -> Row:  # fmt: skip
        serial = self._review_serial
        self._review_serial += 1
        h = mix(self.seed, serial, 121)
        rid = str(40_000_000 + serial * 17 + h % 17)
        idx = h % self._profile_count() if self._profile_count() else None
        if email is None and idx is not None:
            email = self.profile_attr(idx, "email")
        author = f"{('Sarah', 'James', 'Maria', 'Wei', 'Aisha', 'Lucas')[h % 6]} {('M.', 'S.', 'G.', 'C.')[(h >> 4) % 4]}"
        if content is None:
            content = {"question": "Does this run true to size?", "store": "Fast shipping and friendly support."}.get(
                kind, ("Love it, great quality.", "Okay for the price.", "Not what I expected.", "Exceeded my expectations!")[(h >> 8) % 4]
            )
        attrs = {
            "email": email, "status": self._review_status(status, reason), "verified": verified, "review_type": kind,
            "created": fmt_us(created), "updated": fmt_us(updated),
            "images": [f"https://cdn.example.com/reviews/{rid}.jpg"] if (h >> 12) % 5 == 0 else [],
        }  # fmt: skip
        if item is not None:
            attrs["product"] = {"url": item.attrs["url"], "name": item.attrs["title"], "image_url": item.attrs["image_full_url"], "external_id": item.attrs["external_id"]}
        attrs.update({"rating": rating, "author": author, "content": content, "title": None if kind == "question" else content.split(",")[0].rstrip("!."),
                      "smart_quote": content if kind == "review" and (h >> 16) % 2 else None})  # fmt: skip
        if replied:
            attrs["public_reply"] = {"content": "Thank you for your feedback!", "author": "Example Shop", "updated": fmt_us(updated)}
        keys = {"id": rid, "created": created, "updated": updated, "rating": rating, "item.id": item.id if item else None, "content": content,
                "status": status, "review_type": kind, "verified": verified}  # fmt: skip
        row = Row(rid, attrs, keys, {"item": item.id if item else None})
        self.review_rows.append(row)
        return row

    @staticmethod
    def _review_status(status: str, reason: str) -> dict:
        if status == "rejected":
            return {"value": "rejected", "rejection_reason": {"reason": reason, **({"status_explanation": "Duplicate of another review"} if reason == "other" else {})}}
        return {"value": status}

    def add_review(self, item_id: str | None = None, rating: int | None = 5, content: str = "Great!", review_type: str = "review",
                   status: str = "published", verified: bool = True) -> str:  # fmt: skip
        """A review written now() (of a catalog item unless review_type is "store"); returns its id."""
        if review_type not in REVIEW_TYPES or status not in REVIEW_STATUSES:
            raise ValueError("unknown review type or status")
        with self.lock:
            item = None if item_id is None else next((r for r in self.catalog_rows if r.id == item_id), None)
            if item_id is not None and item is None:
                raise KeyError(f"unknown catalog item {item_id!r}")
            now = self.now_us() // 1_000_000 * 1_000_000
            return self._new_review(review_type, status, item, rating, now, now, verified=verified, content=content).id

    def update_review(self, review_id: str, status: str | None = None, public_reply: str | None = None, **attributes) -> None:
        """Moderate or edit a review (status, a public reply, content/title/rating/...); bumps `updated` (not `created`)."""
        with self.lock:
            row = next((r for r in self.review_rows if r.id == review_id), None)
            if row is None:
                raise KeyError(f"unknown review {review_id!r}")
            for name in attributes:
                if name not in REVIEW_ATTRIBUTES or name in ("status", "public_reply"):
                    raise KeyError(f"review attribute {name!r} cannot be updated")
            if status is not None:
                if status not in REVIEW_STATUSES:
                    raise ValueError(f"status must be one of {REVIEW_STATUSES}")
                row.attrs["status"], row.keys["status"] = self._review_status(status, "other"), status
            for name, value in attributes.items():
                row.attrs[name] = value
                if name in row.keys:
                    row.keys[name] = value
            self._bump(row)
            if public_reply is not None:
                row.attrs["public_reply"] = {"content": public_reply, "author": "Example Shop", "updated": row.attrs["updated"]}

    def delete_review(self, review_id: str) -> None:
        with self.lock:
            before = len(self.review_rows)
            self.review_rows[:] = [r for r in self.review_rows if r.id != review_id]
            if len(self.review_rows) == before:
                raise KeyError(f"unknown review {review_id!r}")

    # ---- push tokens
    def _build_push_tokens(self) -> None:
        self.push_token_rows: list[Row] = []
        for idx in range(self._profile_count()):
            h = mix(self.seed, idx, 130)
            if h % 12:
                continue
            for k in range(1 + (h >> 8) % 2):
                self._new_push_token(idx, mix(self.seed, idx, k, 131))
        self.push_token_rows.sort(key=lambda r: r.id)

    def _new_push_token(self, idx: int, h: int, created: int | None = None) -> Row:
        platform = ("ios", "android")[h % 2]
        if created is None:
            created = (T_START + (h >> 4) % (T_END - T_START)) * 1_000_000
        tid = ulid(created // 1000, h)
        token = crockford(h, 13).lower() * 5 if platform == "ios" else f"{base62(h, 11)}:APA91b" + "".join(base62(mix(h, k), 10) for k in range(4))
        status = ENABLEMENT[(h >> 16) % len(ENABLEMENT)]
        attrs = {
            "created": fmt_us(created), "token": token, "enablement_status": status, "platform": platform,
            "vendor": "apns" if platform == "ios" else "fcm", "background": ("AVAILABLE", "DENIED", "RESTRICTED")[(h >> 20) % 3],
            "recorded_date": fmt_us(created),
            "metadata": {"device_id": crockford(h >> 5, 16), "klaviyo_sdk": "swift" if platform == "ios" else "android", "sdk_version": "4.2.0",
                         "device_model": "iPhone15,2" if platform == "ios" else "Pixel 8", "os_name": platform, "os_version": "18.1" if platform == "ios" else "15",
                         "manufacturer": "Apple" if platform == "ios" else "Google", "app_name": "Example Shop", "app_version": "3.4.1", "app_build": "341",
                         "app_id": "com.example.shop", "environment": "release"},
        }  # fmt: skip
        pid = self.profile_id(idx)
        row = Row(tid, attrs, {"id": tid, "profile.id": pid, "enablement_status": status, "platform": platform}, {"profile": pid, "profile_index": idx})
        self.push_token_rows.append(row)
        return row

    def add_push_token(self, profile_id: str, platform: str = "ios") -> str:
        """Register a push token for a profile now(); returns its id."""
        if platform not in ("ios", "android"):
            raise ValueError("platform is ios or android")
        with self.lock:
            idx = self._require_profile(profile_id)
            h = mix(self.seed, len(self.push_token_rows), 132) & ~1 | (platform == "android")
            row = self._new_push_token(idx, h, self.now_us() // 1_000_000 * 1_000_000)
            self.push_token_rows.sort(key=lambda r: r.id)
            return row.id

    def delete_push_token(self, token_id: str) -> None:
        """Remove a push token (e.g. the app was uninstalled)."""
        with self.lock:
            before = len(self.push_token_rows)
            self.push_token_rows[:] = [r for r in self.push_token_rows if r.id != token_id]
            if len(self.push_token_rows) == before:
                raise KeyError(f"unknown push token {token_id!r}")
