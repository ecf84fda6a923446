"""Catalog: catalog items (endpoint table, handler, generator)."""

from __future__ import annotations

from ..core import HandlerBase, Query, from_spec
from ..resources import T_START, Row, fmt_us, mix

ENDPOINTS = (from_spec("/api/catalog-items", "catalog-item", "catalog_items", page_length=100, page_size_since="2026-04-15"),)


class CatalogHandlers(HandlerBase):
    def catalog_items(self, q: Query, base: str) -> bytes:
        empty = self._empty_rel_data(q, ("variants",))
        data, _, nxt = self.rows_page(q, self.account.catalog_rows, base, "catalog-items", ("variants",), lambda r: empty)
        return self.document(q, base, data, nxt)


class CatalogData:
    """Account mixin: the catalog generator."""

    def _build_catalog(self, n: int = 120) -> None:
        self.catalog_rows: list[Row] = []
        for i in range(n):
            created = (T_START + i * 3 * 86400) * 1_000_000
            item_id = f"$custom:::$default:::SKU-{i + 1:04d}"
            attrs = {
                "external_id": f"SKU-{i + 1:04d}", "title": f"Product {i + 1}", "description": f"Description of product {i + 1}",
                "price": round(5 + mix(self.seed, i, 51) % 20000 / 100, 2), "url": f"https://shop.example.com/p/{i + 1}",
                "image_full_url": f"https://shop.example.com/img/{i + 1}.jpg", "image_thumbnail_url": f"https://shop.example.com/img/{i + 1}_t.jpg",
                "images": [f"https://shop.example.com/img/{i + 1}.jpg"], "custom_metadata": {"color": ("red", "blue", "green")[i % 3]},
                "published": i % 10 != 0, "created": fmt_us(created), "updated": fmt_us(created + 86400 * 1_000_000),
            }  # fmt: skip
            keys = {"id": item_id, "ids": item_id, "created": created, "title": attrs["title"], "published": attrs["published"], "category.id": f"$custom:::$default:::CAT-{i % 4}"}
            self.catalog_rows.append(Row(item_id, attrs, keys))
