"""Catalog: catalog items, their variants and categories (endpoint tables, handlers, generators, mutations).

Ids follow Klaviyo's `$custom:::$default:::<external id>` form (the only integration and
catalog type the API supports). Every item has one to four variants; one item in ten is
unpublished (and so are its variants), and some variants of published items are too.
Items sit in one of four categories, every seventh also in "Sale"; "New Arrivals" starts
empty. Linkage: `variants` on items only with include=variants (a to-many relationship the
endpoint can include); the variant's `item` always (the endpoint has no include).
"""

from __future__ import annotations

from ..core import HandlerBase, Query, from_spec
from ..resources import T_START, Row, fmt_us, mix, render_row

ENDPOINTS = (
    from_spec("/api/catalog-items", "catalog-item", "catalog_items", page_length=100, page_size_since="2026-04-15"),
    from_spec("/api/catalog-variants", "catalog-variant", "catalog_variants", default_sort="created"),
    from_spec("/api/catalog-categories", "catalog-category", "catalog_categories", default_sort="created"),
)
# Items per preset: 120 everywhere (the long-standing count other tests rely on); override with catalog_items=.
PRESET_SIZES = {"tiny": {"catalog_items": 120}, "demo": {"catalog_items": 120}, "bench": {"catalog_items": 120}}
SIZES = ("catalog_items",)
PREFIX = "$custom:::$default:::"
CATEGORIES = (("CAT-0", "Apparel"), ("CAT-1", "Home"), ("CAT-2", "Outdoors"), ("CAT-3", "Accessories"), ("CAT-SALE", "Sale"),
              ("CAT-NEW", "New Arrivals"))  # fmt: skip
VARIANT_SIZES = ("S", "M", "L", "XL")
ITEM_ATTRIBUTES = ("title", "description", "price", "url", "image_full_url", "image_thumbnail_url", "images", "custom_metadata", "published")


class CatalogHandlers(HandlerBase):
    def catalog_items(self, q: Query, base: str) -> bytes:
        account = self.account
        with_variants = "variants" in q.include
        rel_data = (lambda r: {"variants": [{"type": "catalog-variant", "id": v.id} for v in account.variants_of(r.id)]}) if with_variants else None
        data, page, nxt = self.rows_page(q, account.catalog_rows, base, "catalog-items", ("variants",), rel_data)
        included = []
        if with_variants:
            names = q.fields.get("catalog-variant")
            included = [self.sparse(self.render_variant(v, base), names) for r in page for v in account.variants_of(r.id)]
        return self.document(q, base, data, nxt, included)

    @staticmethod
    def render_variant(row: Row, base: str) -> dict:
        return render_row(row, "catalog-variant", "catalog-variants", base, ("item",), {"item": {"type": "catalog-item", "id": row.extra["item"]}})

    def catalog_variants(self, q: Query, base: str) -> bytes:
        rel_data = lambda r: {"item": {"type": "catalog-item", "id": r.extra["item"]}}  # noqa: E731
        data, _, nxt = self.rows_page(q, self.account.catalog_variant_rows, base, "catalog-variants", ("item",), rel_data)
        return self.document(q, base, data, nxt)

    def catalog_categories(self, q: Query, base: str) -> bytes:
        data, _, nxt = self.rows_page(q, self.account.catalog_category_rows, base, "catalog-categories", ("items",))
        return self.document(q, base, data, nxt)


class CatalogData:
    """Account mixin: the catalog generator and mutations."""

    def _build_catalog(self, n: int = 120) -> None:
        self.catalog_rows: list[Row] = []
        self.catalog_variant_rows: list[Row] = []
        self.catalog_category_rows: list[Row] = []
        for c, (ext, name) in enumerate(CATEGORIES):
            created = (T_START + c * 86400) * 1_000_000
            cid = PREFIX + ext
            self.catalog_category_rows.append(
                Row(cid, {"external_id": ext, "name": name, "updated": fmt_us(created)}, {"id": cid, "ids": cid, "name": name, "item.id": [], "created": created, "updated": created})
            )  # fmt: skip
        for i in range(n):
            created = (T_START + i * 3 * 86400) * 1_000_000
            item_id = f"{PREFIX}SKU-{i + 1:04d}"
            attrs = {
                "external_id": f"SKU-{i + 1:04d}", "title": f"Product {i + 1}", "description": f"Description of product {i + 1}",
                "price": round(5 + mix(self.seed, i, 51) % 20000 / 100, 2), "url": f"https://shop.example.com/p/{i + 1}",
                "image_full_url": f"https://shop.example.com/img/{i + 1}.jpg", "image_thumbnail_url": f"https://shop.example.com/img/{i + 1}_t.jpg",
                "images": [f"https://shop.example.com/img/{i + 1}.jpg"], "custom_metadata": {"color": ("red", "blue", "green")[i % 3]},
                "published": i % 10 != 0, "created": fmt_us(created), "updated": fmt_us(created + 86400 * 1_000_000),
            }  # fmt: skip
            categories = [f"{PREFIX}CAT-{i % 4}"] + ([f"{PREFIX}CAT-SALE"] if i % 7 == 0 else [])
            keys = {"id": item_id, "ids": item_id, "created": created, "title": attrs["title"], "published": attrs["published"], "category.id": categories}
            item = Row(item_id, attrs, keys)
            self.catalog_rows.append(item)
            self._link_categories(item_id, categories)
            for v in range(1 + mix(self.seed, i, 52) % 4):  # one to four variants
                self._new_variant(item, VARIANT_SIZES[v], created + (v + 1) * 3_600_000_000, published=attrs["published"] and mix(self.seed, i, v, 53) % 6 != 0)
        self._catalog_index()

    def _catalog_index(self) -> None:
        self._variants_by_item: dict[str, list[Row]] = {}
        for row in self.catalog_variant_rows:
            self._variants_by_item.setdefault(row.extra["item"], []).append(row)

    def variants_of(self, item_id: str) -> list[Row]:
        return self._variants_by_item.get(item_id, [])

    def _link_categories(self, item_id: str, categories: list[str]) -> None:
        for category in self.catalog_category_rows:
            if category.id in categories:
                category.keys["item.id"].append(item_id)

    def _new_variant(self, item: Row, size: str, created: int, published: bool) -> Row:
        n = len(self.catalog_variant_rows)
        ext = f"{item.attrs['external_id']}-{size}"
        h = mix(self.seed, n, 54)
        attrs = {
            "external_id": ext, "title": f"{item.attrs['title']} ({size})", "description": item.attrs["description"], "sku": ext,
            "inventory_policy": h % 3, "inventory_quantity": (h >> 8) % 250, "price": round(item.attrs["price"] + VARIANT_SIZES.index(size) * 2.5, 2),
            "url": f"{item.attrs['url']}?size={size}", "image_full_url": item.attrs["image_full_url"], "image_thumbnail_url": item.attrs["image_thumbnail_url"],
            "images": list(item.attrs["images"]), "custom_metadata": {"size": size}, "published": published,
            "created": fmt_us(created), "updated": fmt_us(created + (h >> 16) % (30 * 86400) * 1_000_000),
        }  # fmt: skip
        vid = PREFIX + ext
        keys = {"id": vid, "ids": vid, "item.id": item.id, "sku": ext, "title": attrs["title"], "published": published, "created": created}
        row = Row(vid, attrs, keys, {"item": item.id})
        self.catalog_variant_rows.append(row)
        return row

    # ---- mutations
    def _catalog_item(self, item_id: str) -> Row:
        row = next((r for r in self.catalog_rows if r.id == item_id), None)
        if row is None:
            raise KeyError(f"unknown catalog item {item_id!r}")
        return row

    def add_catalog_item(self, external_id: str, title: str, price: float = 10.0, published: bool = True, categories: tuple[str, ...] = (),
                         variants: tuple[str, ...] = ("M",)) -> str:  # fmt: skip
        """Create an item now() (with a variant per size in `variants`) in the given category ids; returns its id."""
        with self.lock:
            item_id = PREFIX + external_id
            if any(r.id == item_id for r in self.catalog_rows):
                raise ValueError(f"catalog item {item_id!r} exists")
            unknown = set(categories) - {c.id for c in self.catalog_category_rows}
            if unknown:
                raise KeyError(f"unknown catalog categories {sorted(unknown)}")
            now = self.now_us() // 1_000_000 * 1_000_000
            url = f"https://shop.example.com/p/{external_id.lower()}"
            attrs = {"external_id": external_id, "title": title, "description": None, "price": price, "url": url, "image_full_url": None,
                     "image_thumbnail_url": None, "images": [], "custom_metadata": None, "published": published,
                     "created": fmt_us(now), "updated": fmt_us(now)}  # fmt: skip
            item = Row(item_id, attrs, {"id": item_id, "ids": item_id, "created": now, "title": title, "published": published, "category.id": list(categories)})
            self.catalog_rows.append(item)
            self._link_categories(item_id, list(categories))
            for size in variants:
                self._new_variant(item, size, now, published)
            self._catalog_index()
            return item_id

    def update_catalog_item(self, item_id: str, **attributes) -> None:
        """Change item attributes (title, description, price, url, images, custom_metadata, published, ...); bumps `updated`."""
        with self.lock:
            row = self._catalog_item(item_id)
            for name, value in attributes.items():
                if name not in ITEM_ATTRIBUTES:
                    raise KeyError(f"catalog item attribute {name!r} cannot be updated")
                row.attrs[name] = value
                if name in row.keys:
                    row.keys[name] = value
            self._bump(row)

    def delete_catalog_item(self, item_id: str) -> None:
        """Delete an item, its variants and its category memberships."""
        with self.lock:
            row = self._catalog_item(item_id)
            self.catalog_rows.remove(row)
            self.catalog_variant_rows[:] = [v for v in self.catalog_variant_rows if v.extra["item"] != item_id]
            for category in self.catalog_category_rows:
                if item_id in category.keys["item.id"]:
                    category.keys["item.id"].remove(item_id)
            self._catalog_index()

    def delete_catalog_variant(self, variant_id: str) -> None:
        with self.lock:
            before = len(self.catalog_variant_rows)
            self.catalog_variant_rows[:] = [v for v in self.catalog_variant_rows if v.id != variant_id]
            if len(self.catalog_variant_rows) == before:
                raise KeyError(f"unknown catalog variant {variant_id!r}")
            self._catalog_index()

    def delete_catalog_category(self, category_id: str) -> None:
        """Delete a category; its items stay, outside it."""
        with self.lock:
            row = next((c for c in self.catalog_category_rows if c.id == category_id), None)
            if row is None:
                raise KeyError(f"unknown catalog category {category_id!r}")
            self.catalog_category_rows.remove(row)
            for item in self.catalog_rows:
                if category_id in item.keys["category.id"]:
                    item.keys["category.id"].remove(category_id)

    def add_catalog_category(self, external_id: str, name: str, items: tuple[str, ...] = ()) -> str:
        """Create a category now() holding existing items; returns its id."""
        with self.lock:
            for item_id in items:
                self._catalog_item(item_id).keys["category.id"].append(PREFIX + external_id)
            now = self.now_us() // 1_000_000 * 1_000_000
            cid = PREFIX + external_id
            self.catalog_category_rows.append(
                Row(cid, {"external_id": external_id, "name": name, "updated": fmt_us(now)}, {"id": cid, "ids": cid, "name": name, "item.id": list(items), "created": now, "updated": now})
            )  # fmt: skip
            return cid
