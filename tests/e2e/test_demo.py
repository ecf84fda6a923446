"""`make demo`'s script, end to end, on a copy of the repository: emulator up, `meltano run tap-klaviyo
target-duckdb`, every table's row count equal to the emulator's account, the emulator stopped afterwards.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tap_klaviyo.streams import STREAMS

from tests.conftest import REPO
from tests.e2e.meltano_project import clean_environ, find_meltano

pytestmark = pytest.mark.slow

TABLES = len(STREAMS)  # the demo selects every stream
IGNORE = shutil.ignore_patterns(
    ".git", ".venv", ".venv-meltano", ".meltano", "*.duckdb", "*.duckdb.wal", "__pycache__", ".pytest_cache", ".hypothesis", "output"
)


def test_demo_script_against_the_emulator(tmp_path):
    meltano = find_meltano()
    if meltano is None:
        pytest.skip("meltano is not installed (`make test` installs it into .venv-meltano; or set MELTANO_BIN)")
    copy = tmp_path / "repo"
    shutil.copytree(REPO, copy, ignore=IGNORE)
    env = clean_environ()  # no TAP_KLAVIYO_API_KEY: the demo starts the emulator
    env.update(VENV=sys.prefix, MELTANO=meltano, DEMO_SIZE="tiny", DEMO_SEED="3")

    proc = subprocess.run(
        ["bash", str(copy / "scripts" / "demo.sh")], cwd=copy, env=env, capture_output=True, text=True, timeout=1200, check=False
    )

    output = proc.stdout
    assert proc.returncode == 0, f"demo.sh exited {proc.returncode}\n{output[-4000:]}\n{proc.stderr[-8000:]}"
    rows = [line for line in output.splitlines() if line.startswith("tap_klaviyo.")]
    assert len(rows) == TABLES, output
    assert all(line.endswith(" ok") for line in rows), output
    database = copy / "klaviyo-demo.duckdb"
    assert f"DuckDB file: {database}" in output
    assert database.is_file()
    emulators = subprocess.run(["pgrep", "-f", "klaviyo-emulator --port 0 --size tiny --seed 3"], capture_output=True, text=True, check=False)
    assert not emulators.stdout.strip(), "the demo left its emulator running"


def test_demo_needs_no_repository_state():
    """The demo's file and state live in the project (git-ignored), not in the repository's tracked files."""
    ignored = (REPO / ".gitignore").read_text().split()
    for pattern in (".meltano/", "*.duckdb", ".venv/", ".venv-meltano/"):
        assert pattern in ignored, pattern
    assert Path(REPO / "scripts" / "demo.sh").stat().st_mode & 0o111, "demo.sh is executable"
