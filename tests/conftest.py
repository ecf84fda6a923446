"""Shared fixtures: an in-process Klaviyo emulator and a way to run the tap against it."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import settings

from klaviyo_emulator import Account, Emulator

# Property tests draw the same examples on every run, so CI is reproducible; set
# HYPOTHESIS_PROFILE=explore to search new ones while developing.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
API_KEY = "pk_test0123456789abcdefghijklmnop"


def tap_config(emulator: Emulator, **overrides) -> dict:
    """A config pointing the tap at the emulator, with retries quick enough for tests."""
    config = {
        "api_key": API_KEY,
        "api_url": emulator.base_url,
        "backoff_base_seconds": 0.01,
        "request_timeout": 10,
        "max_workers": 4,
    }
    config.update(overrides)
    return config


@dataclass
class SyncResult:
    """The Singer messages of one tap run, sorted out by type."""

    messages: list[dict]
    records: dict[str, list[dict]] = field(default_factory=dict)
    schemas: dict[str, dict] = field(default_factory=dict)
    states: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        for message in self.messages:
            kind = message["type"]
            if kind == "RECORD":
                self.records.setdefault(message["stream"], []).append(message["record"])
            elif kind == "SCHEMA":
                self.schemas[message["stream"]] = message["schema"]
            elif kind == "STATE":
                self.states.append(message["value"])

    @property
    def state(self) -> dict:
        return self.states[-1] if self.states else {}

    def ids(self, stream: str) -> list:
        return [record["id"] for record in self.records.get(stream, [])]


def parse_messages(output: bytes | str) -> SyncResult:
    lines = output.splitlines() if output else []
    return SyncResult([json.loads(line) for line in lines if line.strip()])


def with_reports(config: dict) -> dict:
    """`config` offering every report stream (`report_streams`)."""
    from tap_klaviyo.streams import REPORT_STREAMS

    return {**config, "report_streams": [stream.name for stream in REPORT_STREAMS]}


def catalog_for(*streams: str) -> dict:
    """The tap's own catalog, the report streams included, with only `streams` selected (a sync of report
    streams also needs them in its config's `report_streams`: see `with_reports`)."""
    from tap_klaviyo.tap import TapKlaviyo

    catalog = TapKlaviyo(config=with_reports({"api_key": API_KEY}), validate_config=False).catalog_dict
    for entry in catalog["streams"]:
        for item in entry["metadata"]:
            if item["breadcrumb"] == []:
                item["metadata"]["selected"] = entry["tap_stream_id"] in streams
    return catalog


def run_tap(config: dict, state: dict | None = None, streams: tuple[str, ...] | None = None) -> SyncResult:
    """Run a sync in-process and collect its messages (the tap writes bytes to sys.stdout.buffer)."""
    from tap_klaviyo.tap import TapKlaviyo

    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="utf-8")
    with contextlib.redirect_stdout(stdout):
        tap = TapKlaviyo(config=config, state=state, catalog=catalog_for(*streams) if streams else None)
        tap.sync_all()
        stdout.flush()
    return parse_messages(raw.getvalue())


def run_catalog(config: dict, catalog: dict, state: dict | None = None, *, fails: bool = False) -> SyncResult:
    """Run a sync in-process with exactly this catalog; with `fails`, the sync must fail and the
    messages it wrote before failing are returned."""
    from tap_klaviyo.client import KlaviyoAPIError
    from tap_klaviyo.tap import TapKlaviyo

    raw = io.BytesIO()
    stdout = io.TextIOWrapper(raw, encoding="utf-8")
    with contextlib.redirect_stdout(stdout):
        try:
            TapKlaviyo(config=config, state=state, catalog=catalog).sync_all()
        except KlaviyoAPIError:
            if not fails:
                raise
        else:
            assert not fails, "the sync was expected to fail"
        stdout.flush()
    return parse_messages(raw.getvalue())


def assert_missing_scope_is_named(emulator: Emulator, tmp_path: Path, stream: str, scope: str) -> None:
    """A key without the stream's scope fails the CLI with one line naming that scope, never the key."""
    key = "pk_noscope_0123456789abcdef"
    result = run_cli(
        input_files={"--config": with_reports(tap_config(emulator, api_key=key)), "--catalog": catalog_for(stream)}, tmp_path=tmp_path
    )
    stderr = result.stderr.decode()
    assert result.returncode == 1
    assert f"lacks a read scope this stream needs ({scope})" in stderr
    assert "Traceback" not in stderr and key not in stderr


def run_until_killed(argv: list[str], kill_after: int | None) -> tuple[bytes, bool]:
    """Run the tap as a process; SIGKILL it once `kill_after` RECORD lines were read (None: let it finish).
    Returns its whole output lines and whether it completed."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=REPO)
    lines, records, killed = [], 0, False
    for line in proc.stdout:
        lines.append(line)
        if line.startswith(b'{"type":"RECORD"'):
            records += 1
            if kill_after is not None and records >= kill_after:
                os.kill(proc.pid, signal.SIGKILL)
                killed = True
                break
    proc.stdout.close()
    code = proc.wait(timeout=120)
    assert killed or code == 0, f"the tap failed on its own (exit {code})"
    return b"".join(line for line in lines if line.endswith(b"\n")), not killed


def run_cli(*args: str, input_files: dict[str, dict] | None = None, tmp_path: Path, timeout: float = 120):
    """Run `tap-klaviyo` as a subprocess; `input_files` are written to tmp_path and passed by name."""
    argv = [sys.executable, "-m", "tap_klaviyo"]
    for flag, content in (input_files or {}).items():
        path = tmp_path / f"{flag.strip('-')}.json"
        path.write_text(content if isinstance(content, str) else json.dumps(content))
        argv += [flag, str(path)]
    argv += list(args)
    return subprocess.run(argv, capture_output=True, timeout=timeout, check=False, cwd=REPO)


@pytest.fixture
def account() -> Account:
    return Account.generate(seed=7, size="tiny")


@pytest.fixture
def emulator(account: Account):
    with Emulator(account, rate_limits=False) as emu:
        yield emu


@pytest.fixture
def config(emulator: Emulator) -> dict:
    return tap_config(emulator)
