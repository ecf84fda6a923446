#!/usr/bin/env bash
# `make demo`: `meltano run tap-klaviyo target-duckdb`, then per-table row counts from the DuckDB file.
#
# Without TAP_KLAVIYO_API_KEY: starts the bundled emulator (`klaviyo-emulator --size demo`), points the tap at
# it (Meltano environment `demo`, file klaviyo-demo.duckdb, a full refresh each time) and checks every table
# against the emulator's account. With TAP_KLAVIYO_API_KEY: extracts that Klaviyo account (environment `dev`
# unless MELTANO_ENVIRONMENT says otherwise, file klaviyo.duckdb), incrementally from Meltano's stored state.
#
# Env: VENV (tap venv, default .venv), MELTANO (meltano executable), DEMO_SIZE (tiny|demo|bench, default demo),
# DEMO_SEED (default 1).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
venv=${VENV:-.venv}
meltano=${MELTANO:-$root/.venv-meltano/bin/meltano}
size=${DEMO_SIZE:-demo}
seed=${DEMO_SEED:-1}
export MELTANO_PROJECT_ROOT=$root
export MELTANO_SEND_ANONYMOUS_USAGE_STATS=false

say() { printf '\n==> %s\n' "$*" >&2; }

workdir=$(mktemp -d)
emulator_pid=
cleanup() {
  if [[ -n $emulator_pid ]] && kill -0 "$emulator_pid" 2>/dev/null; then
    kill -TERM "$emulator_pid" 2>/dev/null || true
    wait "$emulator_pid" 2>/dev/null || true
  fi
  rm -rf "$workdir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

run_args=()
if [[ -z ${TAP_KLAVIYO_API_KEY:-} ]]; then
  environment=demo
  db=$root/klaviyo-demo.duckdb
  say "TAP_KLAVIYO_API_KEY is not set: starting the bundled Klaviyo emulator (--size $size --seed $seed)"
  "$venv/bin/klaviyo-emulator" --port 0 --size "$size" --seed "$seed" >"$workdir/emulator.out" 2>"$workdir/emulator.log" &
  emulator_pid=$!
  for _ in $(seq 1 600); do
    [[ -s $workdir/emulator.out ]] && break
    if ! kill -0 "$emulator_pid" 2>/dev/null; then
      echo "error: the emulator exited:" >&2
      cat "$workdir/emulator.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  url=$(head -n 1 "$workdir/emulator.out")
  [[ $url == http* ]] || { echo "error: no URL from the emulator" >&2; cat "$workdir/emulator.log" >&2; exit 1; }
  echo "emulator serving at $url" >&2
  export TAP_KLAVIYO_API_URL=$url
  export TAP_KLAVIYO_API_KEY=pk_demo0123456789
  # A fresh emulator each time: reload everything into a fresh file, so the counts are the account's.
  run_args=(--full-refresh)
  rm -f "$db" "$db.wal"
else
  environment=${MELTANO_ENVIRONMENT:-dev}
  db=${TARGET_DUCKDB_FILEPATH:-$root/klaviyo.duckdb}
  say "extracting the Klaviyo account of TAP_KLAVIYO_API_KEY (Meltano environment '$environment')"
fi

say "meltano install tap-klaviyo target-duckdb (into .meltano/, from meltano.yml)"
"$meltano" --environment "$environment" --log-level=warning install tap-klaviyo target-duckdb

say "meltano run tap-klaviyo target-duckdb ${run_args[*]}"
started=$(date +%s)
"$meltano" --environment "$environment" run tap-klaviyo target-duckdb "${run_args[@]}"
elapsed=$(( $(date +%s) - started ))

duckdb_python=$root/.meltano/loaders/target-duckdb/venv/bin/python
count_args=()
if [[ -n $emulator_pid ]]; then
  "$venv/bin/python" scripts/emulator_counts.py --seed "$seed" --size "$size" >"$workdir/expected.json"
  count_args=(--expected "$workdir/expected.json")
fi
say "rows per table (meltano run took ${elapsed}s)"
"$duckdb_python" scripts/duckdb_counts.py "$db" "${count_args[@]}"
echo
echo "DuckDB file: $db"
echo "  query it: $duckdb_python -c \"import duckdb; print(duckdb.connect('$db').sql('select * from tap_klaviyo.profiles limit 5'))\""
