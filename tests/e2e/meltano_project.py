"""A throw-away Meltano project built from the repository's meltano.yml, and helpers to run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import API_KEY, REPO

DUCKDB_COUNTS = REPO / "scripts" / "duckdb_counts.py"


def find_meltano() -> str | None:
    """The meltano executable: $MELTANO_BIN (set by `make test`), then PATH, then the Makefile's venv."""
    candidates = [os.environ.get("MELTANO_BIN"), shutil.which("meltano"), str(REPO / ".venv-meltano" / "bin" / "meltano")]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK) and Path(candidate).is_file():
            return candidate
    return None


def clean_environ() -> dict[str, str]:
    """os.environ without anything that could configure Meltano or the plugins behind the test's back."""
    prefixes = ("MELTANO_", "TAP_KLAVIYO_", "TARGET_DUCKDB_", "TARGET_JSONL_", "TARGET_POSTGRES_")
    env = {key: value for key, value in os.environ.items() if not key.startswith(prefixes)}
    env["MELTANO_SEND_ANONYMOUS_USAGE_STATS"] = "false"
    env["PYTHONUNBUFFERED"] = "1"
    return env


@dataclass
class MeltanoProject:
    root: Path
    meltano: str

    @classmethod
    def create(cls, root: Path, meltano: str) -> "MeltanoProject":
        """Copy meltano.yml into `root`, installing the extractor from this checkout (its `-e .` means the project root)."""
        text = (REPO / "meltano.yml").read_text()
        assert "pip_url: -e .\n" in text, "meltano.yml installs the extractor with `pip_url: -e .`"
        (root / "meltano.yml").write_text(text.replace("pip_url: -e .\n", f"pip_url: -e {REPO}\n"))
        return cls(root=root, meltano=meltano)

    def env(self, **extra: str) -> dict[str, str]:
        env = clean_environ()
        env["MELTANO_PROJECT_ROOT"] = str(self.root)
        # The system database (and with it the stored state) stays in the temporary project.
        env["MELTANO_DATABASE_URI"] = f"sqlite:///{self.root / '.meltano' / 'meltano.db'}"
        env.update(extra)
        return env

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            [self.meltano, *args],
            cwd=self.root,
            env=env or self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise AssertionError(
                f"`meltano {' '.join(args)}` exited {proc.returncode}\n"
                f"--- stdout (tail) ---\n{proc.stdout[-6000:]}\n--- stderr (tail) ---\n{proc.stderr[-12000:]}"
            )
        return proc

    def state(self, state_id: str, env: dict[str, str] | None = None) -> dict:
        """`meltano state get STATE_ID`, parsed."""
        out = self.run("state", "get", state_id, env=env).stdout
        start = out.find("{")
        assert start >= 0, f"no state stored under {state_id!r}: {out!r}"
        return json.loads(out[start:])

    def plugin_python(self, kind: str, name: str) -> Path:
        return self.root / ".meltano" / kind / name / "venv" / "bin" / "python"

    def duckdb_counts(self, path: Path) -> dict[str, int]:
        """{table: rows} of a DuckDB file, read with the duckdb that target-duckdb itself uses."""
        python = self.plugin_python("loaders", "target-duckdb")
        proc = subprocess.run(
            [str(python), str(DUCKDB_COUNTS), str(path), "--json"], capture_output=True, text=True, timeout=120, check=False
        )
        assert proc.returncode == 0, proc.stderr
        return {name.rsplit(".", 1)[-1]: rows for name, rows in json.loads(proc.stdout).items()}

    def duckdb_query(self, path: Path, sql: str) -> list:
        python = self.plugin_python("loaders", "target-duckdb")
        code = (
            "import duckdb, json, sys; con = duckdb.connect(sys.argv[1], read_only=True); "
            "print(json.dumps(con.execute(sys.argv[2]).fetchall(), default=str))"
        )
        proc = subprocess.run([str(python), "-c", code, str(path), sql], capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)


def tap_env(emulator_url: str) -> dict[str, str]:
    """Settings for the extractor, given the way a deployment gives them: environment variables.

    Not the `decimal` settings (request_timeout, backoff_base_seconds): meltano 4.4.1 turns such a value from
    the environment into a Decimal and then fails to write the plugin's config (not JSON serializable).
    """
    return {
        "TAP_KLAVIYO_API_URL": emulator_url,
        "TAP_KLAVIYO_API_KEY": API_KEY,
        "TAP_KLAVIYO_MAX_WORKERS": "4",
    }
