"""Spec-driven checks shared by the per-area endpoint tests.

Every filter field and operator, every sort and the page[size] bounds an endpoint's
table allows are exercised against the emulator and compared with what the same
query means over the full record set, evaluated here independently.
"""

from __future__ import annotations

from klaviyo_emulator.endpoints import ENDPOINTS
from klaviyo_emulator.filters import parse_datetime_us

BY_PATH = {ep.path: ep for ep in ENDPOINTS}


def attribute(record: dict, field: str):
    """A dotted attribute of a record (`id` is the resource id)."""
    if field == "id":
        return record["id"]
    value = record["attributes"]
    for part in field.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _comparable(value, vtype: str):
    if value is None:
        return None
    return parse_datetime_us(value) if vtype == "date-time" else value


def literal(value, vtype: str) -> str:
    if vtype == "boolean":
        return "true" if value else "false"
    if vtype in ("integer", "number", "date-time"):
        return str(value)
    return "'" + value + "'"


def holds(op: str, actual, wanted, vtype: str) -> bool:
    actual, wanted = _comparable(actual, vtype), _comparable(wanted, vtype)
    if actual is None:
        return False
    return {
        "equals": lambda: actual == wanted,
        "any": lambda: actual == wanted,
        "contains": lambda: wanted in actual,
        "starts-with": lambda: actual.startswith(wanted),
        "ends-with": lambda: actual.endswith(wanted),
        "greater-than": lambda: actual > wanted,
        "greater-or-equal": lambda: actual >= wanted,
        "less-than": lambda: actual < wanted,
        "less-or-equal": lambda: actual <= wanted,
    }[op]()


def ids(client, path: str, params: dict) -> list[str]:
    records, _ = client.all_pages(path, params)
    return [r["id"] for r in records]


def check_paging(client, path: str, table_path: str, expected: list[str], size: int = 1, params: dict | None = None) -> None:
    """Following links.next at a small page size visits exactly `expected` once each; null next on the last page."""
    records, docs = client.all_pages(path, {**(params or {}), "page[size]": str(size)})
    got = [r["id"] for r in records]
    assert len(got) == len(set(got)), "a record was repeated"
    assert sorted(got) == sorted(expected), "records were lost or invented"
    assert len(docs) >= 2 and docs[-1]["links"]["next"] is None
    assert all(len(d["data"]) == size for d in docs[:-1])
    ep = BY_PATH[table_path]
    maximum = ep.page_size[1]
    assert client.get(path, {"page[size]": str(maximum)}).status_code == 200
    for bad in (0, maximum + 1):
        r = client.get(path, {"page[size]": str(bad)})
        assert r.status_code == 400 and r.json()["errors"][0]["source"] == {"parameter": "page[size]"}
    for name, value in (("include", "bogus"), ("additional-fields[bogus]", "x"), ("fields[bogus]", "id")):
        r = client.get(path, {name: value})
        assert r.status_code == 400 and r.json()["errors"][0]["source"] == {"parameter": name}, name


def check_filters(client, path: str, table_path: str, everything: list[dict], value_of=attribute, visible=lambda record, field: True,
                  valueless: tuple[str, ...] = ()) -> None:  # fmt: skip
    """Each allowed (field, operator, shape) returns exactly the records the condition holds for.

    The sample value is the median of the field's values, so range operators split the records.
    `visible(record, field)` says whether a record shows when the query filters on `field`
    (archived flows are hidden unless the filter names `archived`). `valueless` fields no
    record has a value for (push_token, _kx) must be accepted and match nothing.
    """
    ep = BY_PATH[table_path]
    for field, spec in ep.filters.items():
        if field in valueless:
            op, shape = next((op, shape) for shape in ("single", "list") for op in spec.operators(shape))
            value = "'x'" if shape == "single" else "['x']"
            assert ids(client, path, {"filter": f"{op}({field},{value})"}) == [], field
            continue
        values = {v for r in everything if (v := value_of(r, field)) is not None and (spec.enum is None or v in spec.enum)}
        values = sorted(values, key=lambda v: _comparable(v, spec.type))
        assert values, f"no record has a value for {field}"
        sample = values[len(values) // 2]
        for shape in ("single", "list"):
            for op in spec.operators(shape):
                text = literal(sample, spec.type)
                if shape == "list":
                    text = "[" + text + "]"
                got = ids(client, path, {"filter": f"{op}({field},{text})"})
                want = [r["id"] for r in everything if visible(r, field) and holds(op, value_of(r, field), sample, spec.type)]
                assert sorted(got) == sorted(want), (field, op, shape, sample)
    for bad in ("equals(nickname,'x')", f"has({next(iter(ep.filters))})", f"greater-than({next(iter(ep.filters))},'x')"):
        r = client.get(path, {"filter": bad})
        assert r.status_code == 400, bad
        assert r.json()["errors"][0]["source"] == {"parameter": "filter"} and r.json()["errors"][0]["code"] == "invalid"


def check_sorts(client, path: str, table_path: str, expected: list[str], value_of=attribute, size: int = 3) -> None:
    """Every allowed sort, ascending and descending, orders all records by that field; others are a 400 on `sort`."""
    ep = BY_PATH[table_path]
    vtypes = {name: spec.type for name, spec in ep.filters.items()}
    for name in ep.sort:
        for sign in ("", "-"):
            records, _ = client.all_pages(path, {"sort": sign + name, "page[size]": str(min(size, ep.page_size[1]))})
            assert sorted(r["id"] for r in records) == sorted(expected), name
            vtype = vtypes.get(name, "date-time" if name.endswith(("created", "updated", "_at")) else "string")
            keys = [_comparable(value_of(r, name), vtype) for r in records]
            keys = [(-1 if k is None else k) if vtype != "string" else (k or "") for k in keys]
            assert keys == sorted(keys, reverse=sign == "-"), sign + name
    r = client.get(path, {"sort": "-nope"})
    assert r.status_code == 400 and r.json()["errors"][0]["source"] == {"parameter": "sort"}
