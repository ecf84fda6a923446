"""Print per-table row counts of a DuckDB file.

    python scripts/duckdb_counts.py FILE [--json] [--expected counts.json]

Run it with a Python that has duckdb: the target-duckdb plugin's venv (.meltano/loaders/target-duckdb/venv)
does. With --expected (a {stream: rows} file, e.g. from scripts/emulator_counts.py) each table is checked
against it and a mismatch exits 1.
"""

from __future__ import annotations

import argparse
import json
import sys

import duckdb


def table_counts(path: str) -> dict[str, int]:
    con = duckdb.connect(path, read_only=True)
    try:
        tables = con.execute(
            "select table_catalog, table_schema, table_name from information_schema.tables"
            " where table_type = 'BASE TABLE' order by table_schema, table_name"
        ).fetchall()
        counts = {}
        for catalog, schema, table in tables:
            name = table if schema in ("main",) else f"{schema}.{table}"
            counts[name] = con.execute(f'select count(*) from "{catalog}"."{schema}"."{table}"').fetchone()[0]
        return counts
    finally:
        con.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("path")
    parser.add_argument("--json", action="store_true", help="print {table: count} as JSON")
    parser.add_argument("--expected", help="JSON file of {stream: count} to compare with")
    args = parser.parse_args()
    counts = table_counts(args.path)
    if args.json:
        print(json.dumps(counts, sort_keys=True))
        return 0
    expected = json.load(open(args.expected)) if args.expected else None
    width = max([len(name) for name in counts] + [5])
    header = f"{'table':<{width}}  {'rows':>9}" + ("  expected" if expected else "")
    print(header)
    print("-" * len(header))
    mismatches = 0
    for name, count in counts.items():
        line = f"{name:<{width}}  {count:>9,}"
        if expected is not None:
            want = expected.get(name.rsplit(".", 1)[-1])
            ok = want == count
            mismatches += not ok
            line += f"  {want:>8,} {'ok' if ok else 'MISMATCH'}" if want is not None else "         -"
        print(line)
    print("-" * len(header))
    print(f"{'total':<{width}}  {sum(counts.values()):>9,}")
    if expected is not None and mismatches:
        print(f"{mismatches} table(s) differ from the emulator's account", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
