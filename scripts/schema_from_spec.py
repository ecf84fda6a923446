"""Write tap_klaviyo/schemas/<stream>.json from Klaviyo's OpenAPI spec (a developer tool).

The record is the flat form the tap emits: the JSON:API ``id``, every ``attributes``
key at the top level (nullable), to-one relationships as ``<name>_id``, plus the
stream's extra fields. Only facts are kept: types, ``format``, ``properties`` and
``items``; enums, patterns, descriptions and examples are dropped, ``$ref``/``allOf``
are resolved and ``oneOf``/``anyOf`` variants merged into one permissive schema.

Usage:
  python scripts/schema_from_spec.py STREAM GET_PATH [--spec FILE] [--included TYPE]
      [--pk FIELD,...] [--to-one REL ...] [--extra NAME=SCHEMA ...] [--field NAME=PATH ...]

  python scripts/schema_from_spec.py STREAM POST_PATH --report --pk KEY,... [--spec FILE]

  A report stream (POST /api/*-reports): its keys, then every statistic the request's
  ``statistics`` enum offers as a nullable number, then ``conversion_metric_id`` when the
  request takes one. The key ``date`` is a calendar day (``format: date``), ``timeframe`` a string.

  SCHEMA is a JSON schema or a shorthand: ``string`` (nullable string), ``string[]``
  (nullable array of strings). ``--field`` builds a derived view instead of lifting
  the attributes: PATH is dotted inside the resource (``items`` steps into arrays),
  e.g. ``email=attributes.email``.

Example:
  python scripts/schema_from_spec.py tags /api/tags --to-one tag-group
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).parents[1]
DEFAULT_SPEC = REPO_ROOT.parent / "shared" / "klaviyo-openapi" / "stable-2026-07-15.json"
MEDIA_TYPE = "application/vnd.api+json"
SHORTHANDS = {
    "string": {"type": ["string", "null"]},
    "string[]": {"type": ["array", "null"], "items": {"type": "string"}},
}

COMPONENTS: dict[str, Any] = {}


def resolve(s: dict[str, Any]) -> dict[str, Any]:
    """Resolve $ref (sibling keys such as nullable win) and merge allOf parts."""
    while "$ref" in s:
        base = COMPONENTS[s["$ref"].rsplit("/", 1)[-1]]
        s = {**base, **{k: v for k, v in s.items() if k != "$ref"}}
    if "allOf" in s:
        merged = {k: v for k, v in s.items() if k != "allOf"}
        for part in s["allOf"]:
            merged = merge(merged, part)
        s = merged
    return s


def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """allOf of two schemas: properties merged recursively, other keys first one wins."""
    a, b = resolve(a), resolve(b)
    props = dict(a.get("properties", {}))
    for name, s in b.get("properties", {}).items():
        props[name] = merge(props[name], s) if name in props else s
    out = {**b, **a}
    if props:
        out["properties"] = props
    return out


def variants(s: dict[str, Any]) -> list[dict[str, Any]]:
    """The resolved alternatives of a oneOf/anyOf, flattened (or the schema itself)."""
    s = resolve(s)
    alts = s.get("oneOf") or s.get("anyOf")
    if not alts:
        return [s]
    nullable = {"nullable": True} if s.get("nullable") else {}  # a nullable union: every variant
    return [{**v, **nullable} for alt in alts for v in variants(alt)]


def convert(s: dict[str, Any], nullable: bool = False) -> dict[str, Any]:
    """One permissive JSON schema for a spec schema and all of its variants."""
    alts = variants(s)
    if any("type" not in v and "properties" not in v for v in alts):
        return {}  # some variant is unconstrained: anything goes
    types: list[str] = []
    for v in alts:
        t = v.get("type", "object")
        if t not in types:
            types.append(t)
    if nullable or resolve(s).get("nullable") or any(v.get("nullable") for v in alts):
        types.append("null")
    out: dict[str, Any] = {"type": types[0] if len(types) == 1 else types}

    formats = {v["format"] for v in alts if "format" in v}
    if len(formats) == 1:
        out["format"] = formats.pop()

    props: dict[str, list[dict[str, Any]]] = {}
    for v in alts:
        for name, ps in v.get("properties", {}).items():
            props.setdefault(name, []).append(ps)
    if props:
        out["properties"] = {n: convert({"oneOf": ps} if len(ps) > 1 else ps[0]) for n, ps in props.items()}
        out["additionalProperties"] = True

    items = [v["items"] for v in alts if v.get("type") == "array" and "items" in v]
    if items:
        out["items"] = convert({"oneOf": items} if len(items) > 1 else items[0])
    return out


def resource(spec: dict[str, Any], path: str, included: str | None) -> dict[str, Any]:
    """The resolved JSON:API resource object of GET ``path`` (data item or included type)."""
    doc = spec["paths"][path]["get"]["responses"]["200"]["content"][MEDIA_TYPE]["schema"]
    key = "included" if included else "data"
    for alt in variants(resolve(resolve(doc)["properties"][key])["items"]):
        if not included or resolve(alt["properties"]["type"]).get("enum") == [included]:
            return alt
    raise SystemExit(f"{path}: no {included!r} in included")


def at(node: dict[str, Any], dotted: str) -> dict[str, Any]:
    """The spec schema at a dotted path; a property of several variants is their union."""
    for step in dotted.split("."):
        if step == "items":
            node = resolve(node)["items"]
            continue
        found = [v["properties"][step] for v in variants(node) if step in v.get("properties", {})]
        assert found, f"the spec has no {step!r} along {dotted}"
        node = found[0] if len(found) == 1 else {"oneOf": found}
    return node


def build(
    spec: dict[str, Any],
    path: str,
    *,
    included: str | None = None,
    pk: Sequence[str] = ("id",),
    to_one: Sequence[str] = (),
    extra: Mapping[str, Any] | None = None,
    fields: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The flat record schema: keys, then attributes (or the derived ``fields``), to-one ids, extras."""
    COMPONENTS.update(spec["components"]["schemas"])
    res = resource(spec, path, included)
    props: dict[str, Any] = {key: {"type": "string"} for key in pk}
    if fields:
        for name, dotted in fields.items():
            props.setdefault(name, convert(at(res, dotted), nullable=True))
    else:
        props.setdefault("id", {"type": "string"})
        for name, s in resolve(res["properties"]["attributes"]).get("properties", {}).items():
            props.setdefault(name, convert(s, nullable=True))
    rels = resolve(res["properties"].get("relationships", {})).get("properties", {})
    for rel in to_one:
        data = resolve(resolve(rels[rel])["properties"]["data"])
        assert data.get("type") == "object", f"{rel} is not a to-one relationship"
        props.setdefault(rel.replace("-", "_") + "_id", {"type": ["string", "null"]})
    for name, value in (extra or {}).items():
        props.setdefault(name, SHORTHANDS.get(value, value) if isinstance(value, str) else value)
    return {"type": "object", "properties": props}


def report(spec: dict[str, Any], path: str, pk: Sequence[str]) -> dict[str, Any]:
    """The flat row schema of a report endpoint: keys, each statistic, the conversion metric's id."""
    COMPONENTS.update(spec["components"]["schemas"])
    body = spec["paths"][path]["post"]["requestBody"]["content"][MEDIA_TYPE]["schema"]
    attributes = resolve(resolve(resolve(body)["properties"]["data"])["properties"]["attributes"])["properties"]
    props: dict[str, Any] = {key: {"type": "string", "format": "date"} if key == "date" else {"type": "string"} for key in pk}
    for name in resolve(attributes["statistics"])["items"]["enum"]:
        props[name] = {"type": ["number", "null"]}
    if "conversion_metric_id" in attributes:
        props["conversion_metric_id"] = {"type": ["string", "null"]}
    return {"type": "object", "properties": props}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("stream")
    p.add_argument("path", help="spec GET path, e.g. /api/segments")
    p.add_argument("--spec", default=str(DEFAULT_SPEC))
    p.add_argument("--included", metavar="TYPE", help="take the resource of this type from `included`")
    p.add_argument("--pk", default="id", type=lambda v: v.split(","), help="key fields (non-null strings)")
    p.add_argument("--to-one", action="append", default=[], metavar="REL")
    p.add_argument("--extra", action="append", default=[], metavar="NAME=SCHEMA")
    p.add_argument("--field", action="append", default=[], metavar="NAME=PATH")
    p.add_argument("--report", action="store_true", help="PATH is a POST /api/*-reports endpoint")
    a = p.parse_args()
    pairs = lambda items: dict(item.split("=", 1) for item in items)
    extra = {k: v if v in SHORTHANDS else json.loads(v) for k, v in pairs(a.extra).items()}
    spec = json.loads(Path(a.spec).read_text())
    schema = report(spec, a.path, a.pk) if a.report else build(
        spec,
        a.path,
        included=a.included,
        pk=a.pk,
        to_one=a.to_one,
        extra=extra,
        fields=pairs(a.field),
    )
    out = REPO_ROOT / "tap_klaviyo" / "schemas" / f"{a.stream}.json"
    out.write_text(json.dumps(schema, indent=2) + "\n")
    print(f"wrote {out.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
