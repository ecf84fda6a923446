"""The tap as a target sees it: the CLI runs as a process and its stdout is parsed line by line.

Every run must write only whole JSON lines, end with a STATE, and put on stdout every record its
log says it synced; a run started from that STATE must behave. These are the checks that an
in-process sync cannot make: what is still buffered when the process exits is lost to a target.
"""

from __future__ import annotations

import collections
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from klaviyo_emulator import Account, Emulator
from tap_klaviyo import timeutil
from tests.conftest import REPO, API_KEY, catalog_for, tap_config
from tests.tap_klaviyo.expected import expected_keys, klaviyo_metric_ids

SYNCED = re.compile(r"Stream (\S+) synced: (\d+) records")
EVENT_STREAMS = ("bounce", "click", "dropped_email", "mark_as_spam", "receive", "unsubscribe")


class Run:
    """One CLI run: exit code, parsed stdout, stderr."""

    def __init__(self, code: int, stdout: bytes, stderr: bytes) -> None:
        self.code = code
        self.stderr = stderr.decode(errors="replace")
        self.lines = stdout.splitlines()
        self.messages = [json.loads(line) for line in self.lines]  # fails on any line that is not whole JSON
        self.records: dict[str, list[dict]] = collections.defaultdict(list)
        for message in self.messages:
            if message["type"] == "RECORD":
                self.records[message["stream"]].append(message["record"])

    @property
    def state(self) -> dict:
        assert self.messages and self.messages[-1]["type"] == "STATE", "the last message on stdout is not a STATE"
        return self.messages[-1]["value"]

    def check(self) -> None:
        """What every successful run owes a target."""
        assert self.code == 0, self.stderr[-2000:]
        assert self.messages[-1]["type"] == "STATE", f"stdout ends with {self.messages[-1]['type']}, not STATE"
        logged = {stream: int(count) for stream, count in SYNCED.findall(self.stderr)}
        emitted = {stream: len(records) for stream, records in self.records.items()}
        assert logged == {stream: emitted.get(stream, 0) for stream in logged}
        assert set(emitted) <= set(logged)


def cli(tmp_path, config: dict, state: dict | None = None, streams: tuple[str, ...] = (), **kwargs) -> Run:
    argv = [sys.executable, "-m", "tap_klaviyo", "--config", str(write(tmp_path / "config.json", config))]
    if state is not None:
        argv += ["--state", str(write(tmp_path / "state.json", state))]
    if streams:
        argv += ["--catalog", str(write(tmp_path / "catalog.json", catalog_for(*streams)))]
    proc = subprocess.run(argv, capture_output=True, timeout=180, check=False, cwd=REPO, **kwargs)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def write(path, content: dict):
    path.write_text(json.dumps(content))
    return path


def newest(records: list[dict], key: str) -> dt.datetime:
    return max(timeutil.parse_datetime(record[key]) for record in records)


def test_incremental_run_whose_bookmarks_do_not_move_ends_with_state(tmp_path, emulator, config):
    first = cli(tmp_path, config)
    first.check()
    second = cli(tmp_path, config, state=first.state)
    second.check()
    assert second.state["bookmarks"] == first.state["bookmarks"]


def test_a_single_late_record_in_the_last_stream_reaches_stdout(tmp_path, account, emulator, config):
    """The late event lies inside the lookback, so no bookmark moves: only a flush at the stream's
    end delivers it (the lost-last-stream defect)."""
    first = cli(tmp_path, config)
    first.check()
    last = EVENT_STREAMS[-1]
    metric_id = klaviyo_metric_ids(account, "Unsubscribed")[0]
    late_at = newest(first.records[last], "datetime") - dt.timedelta(minutes=30)
    profile_id = first.records["profiles"][0]["id"]
    late_id = account.add_event(metric_id, profile_id, late_at)
    second = cli(tmp_path, config, state=first.state)
    second.check()
    assert late_id in {record["id"] for record in second.records[last]}


@pytest.mark.parametrize("how", ["dev-stdin", "process-substitution"])
def test_config_from_a_pipe(tmp_path, emulator, config, how):
    text = json.dumps(config)
    catalog = write(tmp_path / "catalog.json", catalog_for("lists"))
    if how == "dev-stdin":
        argv = [sys.executable, "-m", "tap_klaviyo", "--config", "/dev/stdin", "--catalog", str(catalog)]
        proc = subprocess.run(argv, input=text.encode(), capture_output=True, timeout=60, check=False, cwd=REPO)
    else:
        script = f"{sys.executable} -m tap_klaviyo --config <(echo '{text}') --catalog {catalog}"
        proc = subprocess.run(["bash", "-c", script], capture_output=True, timeout=60, check=False, cwd=REPO)
    run = Run(proc.returncode, proc.stdout, proc.stderr)
    run.check()
    assert len(run.records["lists"]) == len(expected_keys(emulator.account, "lists"))


def test_the_readme_plain_singer_loop_is_incremental_three_times(tmp_path, account, emulator, config):
    """README: run, keep the last line of the output as the next state, run again (twice)."""
    state: dict = {}
    totals = []
    for _ in range(3):
        run = cli(tmp_path, config, state=state)
        run.check()
        state = json.loads(run.lines[-1])["value"]  # `tail -n 1 state-out.json > state.json`
        totals.append(sum(len(records) for stream, records in run.records.items() if stream in EVENT_STREAMS))
    everything = sum(len(expected_keys(account, stream)) for stream in EVENT_STREAMS)
    assert totals[0] == everything
    # Later runs re-read only the lookback window before each bookmark.
    assert totals[1] < everything / 2
    assert totals[2] == totals[1]
    assert set(state["bookmarks"]) >= set(EVENT_STREAMS)


def test_unknown_setting_is_named_with_the_closest_known_one(tmp_path, emulator, config):
    run = cli(tmp_path, {**config, "start_dat": "2020-01-01T00:00:00Z"}, streams=("lists",))
    run.check()
    assert "Unknown setting 'start_dat' is ignored. Did you mean 'start_date'?" in run.stderr


@pytest.mark.parametrize(
    ("env", "args", "hint"),
    [
        ({"TAP_KLAVIYO_API_KEY": API_KEY}, [], "TAP_KLAVIYO_API_KEY is set, but the environment is read only with --config ENV"),
        ({}, [], 'pass --config config.json holding {"api_key": "pk_..."}'),
        ({}, ["--config", "ENV"], "set TAP_KLAVIYO_API_KEY"),
    ],
)
def test_a_missing_api_key_says_how_to_pass_it(env, args, hint):
    environment = {k: v for k, v in os.environ.items() if not k.startswith("TAP_KLAVIYO_")} | env
    proc = subprocess.run(
        [sys.executable, "-m", "tap_klaviyo", *args], capture_output=True, timeout=60, check=False, cwd=REPO, env=environment
    )
    assert proc.returncode == 1
    assert hint in proc.stderr.decode()
    assert API_KEY[3:] not in proc.stderr.decode()


def test_connection_test_logs_no_error(tmp_path, emulator, config):
    argv = [sys.executable, "-m", "tap_klaviyo", "--config", str(write(tmp_path / "config.json", config)), "--test"]
    proc = subprocess.run(argv, capture_output=True, timeout=60, check=False, cwd=REPO)
    assert proc.returncode == 0
    assert " ERROR " not in proc.stderr.decode()
    assert not [r for r in emulator.requests if r.path.endswith("-reports")], "--test spends no report request unless selected"


# --- Cancellation and a closed output ---------------------------------------------------------


@pytest.fixture
def slow_emulator():
    """Enough events, served slowly enough, that a signal lands mid-stream."""
    account = Account.generate(seed=11, size="tiny", events=20_000)
    with Emulator(account, rate_limits=False, latency_ms=15) as emu:
        yield emu


def start(tmp_path, config: dict, state: dict | None, streams: tuple[str, ...]) -> subprocess.Popen:
    argv = [sys.executable, "-m", "tap_klaviyo", "--config", str(write(tmp_path / "config.json", config))]
    argv += ["--catalog", str(write(tmp_path / "catalog.json", catalog_for(*streams)))]
    if state is not None:
        argv += ["--state", str(write(tmp_path / "state.json", state))]
    # stderr to a file: a pipe nobody reads could fill up and stall the tap.
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=(tmp_path / "stderr").open("wb"), cwd=REPO)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
@pytest.mark.parametrize("workers", [1, 4])
def test_a_signal_ends_with_whole_lines_each_record_once_a_state_and_a_nonzero_exit(
    tmp_path, slow_emulator, signum, code, workers
):
    config = tap_config(slow_emulator, max_workers=workers, lookback_minutes=0)
    streams = ("receive", "click")
    proc = start(tmp_path, config, None, streams)
    head, seen = [], 0
    while seen < 300:  # well into the first stream
        line = proc.stdout.readline()
        assert line, "the tap ended before the signal"
        head.append(line)
        seen += line.startswith(b'{"type":"RECORD"')
    proc.send_signal(signum)
    rest = proc.stdout.read()
    proc.wait(timeout=30)
    stderr = (tmp_path / "stderr").read_bytes()
    assert proc.returncode == code, stderr.decode()[-1500:]
    assert b"Traceback" not in stderr
    assert b"The sync was cancelled" in stderr
    first = Run(0, b"".join(head) + rest, b"")
    ids = [record["id"] for records in first.records.values() for record in records]
    assert len(ids) == len(set(ids)), "a record was written twice"
    state = first.state
    # The next run, from that STATE, delivers the rest: nothing is lost.
    second = cli(tmp_path, config, state=state, streams=streams)
    second.check()
    everything = expected_keys(slow_emulator.account, "receive") | expected_keys(slow_emulator.account, "click")
    emitted = set(ids) | {record["id"] for records in second.records.values() for record in records}
    assert emitted == everything, "records were lost across the cancelled run"


def test_a_closed_stdout_is_one_line_and_a_quick_nonzero_exit(tmp_path, slow_emulator):
    config = tap_config(slow_emulator, max_workers=4)
    proc = start(tmp_path, config, None, ("receive",))
    for _ in range(50):
        assert proc.stdout.readline()
    proc.stdout.close()  # the target stops reading
    started = time.monotonic()
    code = proc.wait(timeout=30)
    assert time.monotonic() - started < 20
    stderr = (tmp_path / "stderr").read_text()
    assert code == 1
    assert "Traceback" not in stderr
    assert "stdout was closed before the sync ended" in stderr


def test_a_long_stream_writes_state_as_it_goes(tmp_path, slow_emulator):
    """STATE every 1,000 records (the SDK's STATE_MSG_FREQUENCY), so a killed long stream resumes
    from near where it stopped instead of from its start."""
    run = cli(tmp_path, tap_config(slow_emulator, max_workers=4), streams=("receive",))
    run.check()
    records = len(run.records["receive"])
    states = [m for m in run.messages if m["type"] == "STATE"]
    assert records > 3000
    assert len(states) >= records // 1000
