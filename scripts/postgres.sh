#!/usr/bin/env bash
# Usage: scripts/postgres.sh
# Make sure PostgreSQL server binaries (postgres, initdb, pg_ctl, psql) are on this machine for the
# end-to-end tests (tests/e2e/postgres_server.py starts and stops a throw-away server with them).
# Looks where the tests look: $POSTGRES_BINDIR, /usr/lib/postgresql/*/bin, PATH. When they are missing
# and we are root on a Debian-like machine, installs Debian's `postgresql` package (apt-get,
# non-interactive, quiet); otherwise says so and carries on: the PostgreSQL tests then skip.
set -euo pipefail

have_bindir() {
  local dir=$1
  [[ -n "$dir" && -x "$dir/postgres" && -x "$dir/initdb" && -x "$dir/pg_ctl" && -x "$dir/psql" ]]
}

found() {
  local dir
  have_bindir "${POSTGRES_BINDIR:-}" && return 0
  for dir in /usr/lib/postgresql/*/bin; do
    have_bindir "$dir" && return 0
  done
  command -v pg_ctl >/dev/null 2>&1 && have_bindir "$(dirname "$(command -v pg_ctl)")" && return 0
  return 1
}

if found; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
  echo "note: no PostgreSQL server binaries and not root with apt-get: the PostgreSQL end-to-end tests will skip" \
    "(install Debian's postgresql package, or set POSTGRES_BINDIR)" >&2
  exit 0
fi
echo "installing Debian's postgresql package (server binaries for the end-to-end tests)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
found || { echo "error: postgresql installed but no server binaries found in /usr/lib/postgresql/*/bin" >&2; exit 1; }
