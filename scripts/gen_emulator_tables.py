"""Generate klaviyo_emulator/spec_tables.py from Klaviyo's endpoints summary (facts only, no spec text).

    python scripts/gen_emulator_tables.py [--summary PATH] [--check]

The summary (../shared/klaviyo-openapi/endpoints-summary.json) is an extract of the
official OpenAPI spec. For every GET endpoint of revision 2026-07-15 the generated
module records: operationId, rate-limit tier (burst/s, steady/m) and conditional
tiers, filter fields with operators per value shape and the value type/enum, whether
a filter is required, sort fields, page[size] bounds, include values,
additional-fields values and sparse fieldsets (top-level and dotted field names). `--check`
exits 1 when the committed module differs from what the summary gives
(tests/klaviyo_emulator/test_tables.py runs the same comparison).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SUMMARY = ROOT / ".." / "shared" / "klaviyo-openapi" / "endpoints-summary.json"
TARGET = ROOT / "klaviyo_emulator" / "spec_tables.py"
REVISION = "2026-07-15"

HEADER = '''"""Validation facts per GET endpoint of Klaviyo revision {revision}. GENERATED, do not edit.

Regenerate with `python scripts/gen_emulator_tables.py` from endpoints-summary.json
(an extract of the official OpenAPI spec). Per path:
operation, rate (burst/s, steady/m), rate_conditional ((parameter, value), (burst, steady)),
filters {{field: (type, single ops, list ops, none ops, enum or None)}}, filter_required,
sort (ascending names; each also accepted with "-"), page_size (default, maximum) or None,
include, additional {{parameter: values}}, fields {{parameter: top-level names}},
fields_nested {{parameter: dotted sub-field names}} (only for parameters that have some).
"""

# fmt: off
TABLES = {{
'''


def _rate(text: str) -> int:
    return int(text.split("/")[0])


def _tier(entry: dict) -> tuple[int, int]:
    return _rate(entry["burst"]), _rate(entry["steady"])


def _top_level(names: list[str]) -> tuple[str, ...]:
    out: list[str] = []
    for name in names:
        top = name.split(".")[0]
        if top not in out:
            out.append(top)
    return tuple(sorted(out))


def facts(endpoint: dict) -> dict:
    filters = {}
    for name, spec in (endpoint.get("filters") or {}).items():
        ops = spec.get("operators", {})
        value = spec.get("value") or {}
        vtype = value.get("format") or value.get("type") or "string"
        enum = tuple(value["enum"]) if value.get("enum") else None
        filters[name] = (vtype, tuple(ops.get("single", [])), tuple(ops.get("list", [])), tuple(ops.get("none", [])), enum)
    conditional = []
    for c in endpoint.get("conditional_rate_limits") or []:
        param, _, value = c["when"].partition("=")
        conditional.append(((param, value), _tier(c)))
    page = endpoint.get("page_size")
    return {
        "operation": endpoint["operationId"],
        "rate": _tier(endpoint["rate_limit"]) if endpoint.get("rate_limit") else None,
        "rate_conditional": tuple(conditional),
        "filters": filters,
        "filter_required": bool(endpoint.get("filter_required")),
        "sort": tuple(s for s in endpoint.get("sort") or [] if not s.startswith("-")),
        "page_size": (page["default"], page["maximum"]) if page else None,
        "include": tuple(endpoint.get("include") or ()),
        "additional": {k: tuple(v) for k, v in (endpoint.get("additional_fields") or {}).items()},
        "fields": {k: _top_level(v) for k, v in sorted((endpoint.get("sparse_fieldsets") or {}).items())},
        "fields_nested": {k: tuple(sorted(n for n in v if "." in n)) for k, v in sorted((endpoint.get("sparse_fieldsets") or {}).items()) if any("." in n for n in v)},
    }


def render(summary: dict) -> str:
    spec = next(s for s in summary["specs"] if s["revision"] == REVISION)
    lines = [HEADER.format(revision=REVISION)]
    for path in sorted(spec["endpoints"]):
        endpoint = spec["endpoints"][path]
        if endpoint.get("method", "GET").upper() != "GET":
            continue
        lines.append(f"    {path!r}: {{\n")
        for key, value in facts(endpoint).items():
            lines.append(f"        {key!r}: {value!r},\n")
        lines.append("    },\n")
    lines.append("}\n# fmt: on\n")
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--summary", type=Path, default=DEFAULT_SUMMARY)
    parser.add_argument("--check", action="store_true", help="compare with the committed module instead of writing it")
    args = parser.parse_args(argv)
    text = render(json.loads(args.summary.read_text()))
    if args.check:
        if TARGET.read_text() != text:
            print(f"{TARGET} is stale; run scripts/gen_emulator_tables.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    print(f"wrote {TARGET} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
