#!/usr/bin/env bash
# Usage: scripts/venv.sh PYTHON DIR
# Make sure DIR is a working Python >= 3.11 virtual environment with pip; reuse it if it already is one.
set -euo pipefail
python=${1:?python interpreter}
dir=${2:?venv directory}

ok() { "$1" -c 'import sys, pip; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; }

if [[ -x "$dir/bin/python" ]] && ok "$dir/bin/python"; then
  exit 0
fi
if ! command -v "$python" >/dev/null 2>&1; then
  echo "error: '$python' not found; install Python 3.11 or set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
  echo "error: $("$python" --version 2>&1) is too old; tap-klaviyo needs Python >= 3.11 (set PYTHON=...)" >&2
  exit 1
fi
rm -rf "$dir"
echo "creating virtual environment $dir ($("$python" --version 2>&1))" >&2
if ! "$python" -m venv "$dir"; then
  rm -rf "$dir"
  if "$python" -m virtualenv --version >/dev/null 2>&1; then
    "$python" -m virtualenv -q "$dir"
  else
    echo "error: '$python -m venv' failed. On Debian/Ubuntu: apt-get install python3-venv (or python3.11-venv)" >&2
    exit 1
  fi
fi
ok "$dir/bin/python" || { echo "error: $dir/bin/python has no pip" >&2; exit 1; }
