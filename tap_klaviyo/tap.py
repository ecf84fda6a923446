"""tap-klaviyo: settings, validation, shared resources and the stream list."""

from __future__ import annotations

import collections
import contextlib
import ctypes
import difflib
import gc
import io
import json
import os
import re
import signal
import sys
import threading
import time
import typing as t
from functools import cached_property
from urllib.parse import urlsplit

from singer_sdk import Tap
from singer_sdk import singerlib as singer
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter
from singer_sdk.contrib.msgspec import encoder as record_encoder
from singer_sdk.exceptions import ConfigValidationError, FatalAPIError
from singer_sdk.plugin_base import _ConfigInput
from singer_sdk.helpers._classproperty import classproperty

from tap_klaviyo import timeutil
from tap_klaviyo.client import SyncCancelled
from tap_klaviyo.ratelimit import TIER_REPORTS, RateLimiter, Tier
from tap_klaviyo.state import EncodedStateWriter, frozen_context
from tap_klaviyo.streams import REPORT_STREAMS, STREAMS, ReportStream, metric_stream_errors, metric_streams

# Revisions whose responses the tap's schemas and queries match. 2024-10-15 and older are past
# Klaviyo's two-year support. 2026-10-15 replaces the campaigns API with a new ("omni") shape,
# which the messaging streams map onto the same tables (tap_klaviyo/streams/messaging.py).
SUPPORTED_REVISIONS = ("2026-04-15", "2026-07-15", "2026-10-15")
DEFAULT_REVISION = "2026-10-15"
CPU_SLOTS = 2
M_ARENA_MAX = -8  # mallopt's parameter number in glibc's malloc.h
PRIVATE_KEY = re.compile(r"^pk_[A-Za-z0-9_]{10,}$")
SECRET_SETTINGS = ("api_key",)
OUTPUT_CLOSED = "stdout closed"  # the reason SyncCancelled carries when the target stopped reading
CLOSED_OUTPUT = (
    "stdout was closed before the sync ended (the target stopped reading): the records not yet written and "
    "the last STATE were not delivered; the next run resumes from the last STATE the target received."
)


class InvalidInputError(Exception):
    """A config, state or catalog file the tap cannot use; the message is one line naming it."""


def parse_json_object(text: str, what: str) -> dict:
    """`text` as a JSON object, or InvalidInputError naming `what` (e.g. "--state file x.json")."""
    try:
        value = json.loads(text)
    except ValueError as exc:
        msg = f"{what} is not valid JSON: {exc}"
        raise InvalidInputError(msg) from None
    if not isinstance(value, dict):
        msg = f"{what} must hold a JSON object, not {type(value).__name__}."
        raise InvalidInputError(msg)
    return value


def redact_secret_error(error: str) -> str:
    """A JSON-schema error about a secret setting quotes its value; say what is wrong without it."""
    for name in SECRET_SETTINGS:
        if f"in config[{name!r}]" in error:
            return f"{name} must be a string (its value is not shown: it is a secret)."
    return error


def explain_missing_key(error: str, *, from_env: bool) -> str:
    """Say how to pass the API key when it is missing, rather than only that it is."""
    if error != "'api_key' is a required property":
        return error
    if from_env:
        return "api_key is missing: set TAP_KLAVIYO_API_KEY (settings are read from TAP_KLAVIYO_* with --config ENV)."
    if os.environ.get("TAP_KLAVIYO_API_KEY"):
        return (
            "api_key is missing: TAP_KLAVIYO_API_KEY is set, but the environment is read only with --config ENV "
            "(add it, alone or after a config file)."
        )
    return (
        'api_key is missing: pass --config config.json holding {"api_key": "pk_..."}, '
        "or set TAP_KLAVIYO_API_KEY and pass --config ENV."
    )


def check_catalog(catalog: dict, what: str = "The catalog") -> None:
    """The catalog shape the SDK needs: a `streams` list of objects with a `tap_stream_id` each."""
    streams = catalog.get("streams", [])
    if not isinstance(streams, list) or not all(
        isinstance(entry, dict) and isinstance(entry.get("tap_stream_id"), str) for entry in streams
    ):
        msg = f"{what} is not a Singer catalog: 'streams' must be a list of objects with a 'tap_stream_id'."
        raise InvalidInputError(msg)


def _is_partitions_list(partitions: t.Any) -> bool:
    """The SDK's partition states: a list of objects, each with its `context` object."""
    return isinstance(partitions, list) and all(
        isinstance(entry, dict) and isinstance(entry.get("context"), dict) for entry in partitions
    )


class RequestStats:
    """Requests and 429 answers per stream, for logs and the benchmark."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: collections.Counter[str] = collections.Counter()
        self.throttled: collections.Counter[str] = collections.Counter()

    def count(self, stream: str) -> None:
        with self._lock:
            self.requests[stream] += 1

    def count_throttled(self, stream: str) -> None:
        with self._lock:
            self.throttled[stream] += 1


class OutputClosedError(SyncCancelled):
    """stdout was closed: the target stopped reading, so nothing more can be delivered."""


class SingerWriter(MsgSpecWriter):
    """msgspec-encoded messages, written in blocks of up to 64 KiB instead of one write per record.

    Each RECORD would otherwise cost a system call (more so under PYTHONUNBUFFERED=1, common in
    containers). Order is kept; every other message (STATE above all) is written and flushed at
    once together with all the records before it, and `flush` empties the block whenever a
    stream or the sync ends, so no record waits for a STATE that may never come.
    """

    BLOCK = 1 << 16

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._pending = bytearray()
        self.last_was_state = False
        self.closed = False
        self.on_closed: t.Callable[[], None] | None = None  # tells the tap: every worker stops

    def write_message(self, message: singer.Message) -> None:
        self._pending += self.format_message(message)
        is_record = message.type == singer.SingerMessageType.RECORD
        self.last_was_state = message.type == singer.SingerMessageType.STATE
        if not is_record:
            self.flush()
        elif len(self._pending) >= self.BLOCK:
            self._write(flush=False)

    def write_record(self, head: bytes, record: dict, tail: bytes) -> None:
        """One RECORD line from the bytes before and after its record, which is encoded in place
        (see KlaviyoStream._write_record_message), with the encoder write_message uses."""
        pending = self._pending
        pending += head
        record_encoder.encode_into(record, pending, -1)
        pending += tail
        self.last_was_state = False
        if len(pending) >= self.BLOCK:
            self._write(flush=False)

    def write_state(self, state: dict) -> None:
        """A STATE message, also when it equals the last one (the SDK's StateWriter skips those)."""
        self.write_message(singer.StateMessage(value=state))

    def flush(self) -> None:
        self._write(flush=True)

    def _write(self, *, flush: bool) -> None:
        if self.closed:
            raise OutputClosedError(CLOSED_OUTPUT)
        try:
            sys.stdout.buffer.write(self._pending)
            self._pending.clear()
            if flush:
                sys.stdout.flush()
        except BrokenPipeError:
            self.closed = True
            if self.on_closed is not None:
                self.on_closed()
            # Nothing more can reach the target; keep the interpreter's exit from failing on stdout too.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise OutputClosedError(CLOSED_OUTPUT) from None


@contextlib.contextmanager
def _few_gc_passes() -> t.Iterator[None]:
    """Run the cyclic garbage collector rarely during a sync.

    Decoding a page allocates tens of thousands of objects; at Python's default thresholds that
    triggers collections that walk every page still in flight, which cost a third of the tap's
    CPU on event streams (benchmarks/bench.py). Records hold no reference cycles, so nothing
    waits longer to be freed: reference counting frees them.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


REPORT_NAMES = frozenset(stream.name for stream in REPORT_STREAMS)


def report_stream_errors(names: t.Any) -> list[str]:
    """One line per entry of `report_streams` that names no report stream (with the closest name)."""
    if not isinstance(names, list):
        return ["report_streams must be a list of report stream names."]
    errors = []
    for name in names:
        if name not in REPORT_NAMES:
            near = difflib.get_close_matches(str(name), sorted(REPORT_NAMES), n=1)
            hint = f" Did you mean {near[0]!r}?" if near else f" Choose from {', '.join(sorted(REPORT_NAMES))}."
            errors.append(f"report_streams: {name!r} is not a report stream.{hint}")
    return errors


def _few_malloc_arenas() -> None:
    """Have glibc's malloc keep one arena per CPU slot instead of up to eight per core.

    Each worker thread would otherwise get an arena of its own, and each arena keeps about a
    freed response body (1 MB for an event page): 30 to 40 MB of RSS at 64 workers
    (benchmarks/bench.py), for no measurable CPU, since only CPU_SLOTS threads allocate at a
    time. Other C libraries are left as they are.
    """
    try:
        ctypes.CDLL("libc.so.6").mallopt(M_ARENA_MAX, CPU_SLOTS)
    except (OSError, AttributeError):
        pass


class TapKlaviyo(Tap):
    """Singer tap for Klaviyo."""

    name = "tap-klaviyo"
    message_writer_class = SingerWriter
    clock = staticmethod(time.monotonic)  # the rate limiters' clock (tests drive it and `wait` virtually)

    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_key",
            th.StringType(nullable=False),
            required=True,
            secret=True,
            title="API key",
            description="A Klaviyo private API key (starts with `pk_`) with read scopes for the selected streams.",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            title="Start date",
            description="Read records from this ISO 8601 time on. Without it, the whole history is read.",
        ),
        th.Property(
            "api_url",
            th.StringType,
            default="https://a.klaviyo.com",
            title="API URL",
            description="Base URL of the Klaviyo API (paths under /api/...). Point it at the bundled emulator to test offline.",
        ),
        th.Property(
            "revision",
            th.StringType,
            default=DEFAULT_REVISION,
            allowed_values=list(SUPPORTED_REVISIONS),
            title="API revision",
            description="The Klaviyo API revision sent in the `revision` header.",
        ),
        th.Property(
            "lookback_minutes",
            th.IntegerType,
            default=180,
            title="Lookback window (minutes)",
            description=(
                "Each incremental run re-reads this many minutes before its bookmark, to catch late data: events "
                "written with a past time and attribution that lands up to 3 hours late. Records re-read this way "
                "are emitted again (at-least-once); the primary keys make them idempotent in the target."
            ),
        ),
        th.Property(
            "event_metrics",
            th.ArrayType(th.StringType),
            default=[],
            title="Metrics of the events stream",
            description=(
                "Which metrics feed the `events` stream, each by id, by name (of any integration) or as "
                "`integration:name` (e.g. `shopify:Placed Order`). Empty: every metric of every integration. A "
                "name that matches no metric is logged as a warning naming the closest metric names."
            ),
        ),
        th.Property(
            "metric_streams",
            th.ObjectType(additional_properties=th.ArrayType(th.StringType)),
            default={},
            title="Metric streams",
            description=(
                "Streams of your own, each the events of the metrics it lists (ids, names or `integration:name`), "
                'e.g. `{"placed_order": ["shopify:Placed Order"], "sms_received": ["Received SMS", "Received Text '
                'Message"]}`: discovered, selectable and bookmarked per metric like the built-in event streams. '
                "Listing a metric's old and new name keeps the stream fed across a rename."
            ),
        ),
        th.Property(
            "late_event_days",
            th.IntegerType,
            default=7,
            title="Late-event check (days)",
            description=(
                "Events that reach Klaviyo after the lookback window are caught for this many past days: each "
                "event stream keeps in its state the count of events it emitted per metric per day, compares it "
                "once per run with Klaviyo's own counts (one POST /api/metric-aggregates per metric, 3/s and "
                "60/min) and reads again only the days whose counts differ. 0 turns the check off."
            ),
        ),
        th.Property(
            "report_streams",
            th.ArrayType(th.StringType),
            default=[],
            title="Report streams",
            description=(
                "The Reporting API streams to offer (and select by default): any of "
                + ", ".join(f"`{stream.name}`" for stream in REPORT_STREAMS)
                + ". They are opt-in here, not only in the catalog, because each report endpoint allows 2 requests "
                "a minute and 225 a day: a catalog or `select: '*.*'` that selects every stream would spend them."
            ),
        ),
        th.Property(
            "conversion_metric",
            th.StringType,
            title="Conversion metric of the reports",
            description=(
                "The metric whose value the campaign and flow report streams count as revenue (conversions, "
                "conversion_value, revenue_per_recipient...), by id, name or `integration:name`. Default: the "
                "account's \"Placed Order\" metric when it has exactly one. Read only when such a stream is selected."
            ),
        ),
        th.Property(
            "reporting_lookback_days",
            th.IntegerType,
            default=30,
            title="Reporting lookback (days)",
            description=(
                "The report series streams read this many days before their bookmark again on every run: Klaviyo "
                "revises attribution (conversions, revenue) for days after a send. The values streams are read "
                "whole on every run."
            ),
        ),
        th.Property(
            "report_daily_requests",
            th.IntegerType,
            default=225,
            title="Report requests per day",
            description=(
                "How many of each Reporting API endpoint's 225 daily requests the report streams may use in a day; "
                "lower it to leave some to other integrations on the same account. A run that would need more reads "
                "the most recent dates first and leaves the older ones, bookmarked, to the next run."
            ),
        ),
        th.Property(
            "report_max_wait_seconds",
            th.NumberType,
            default=300,
            title="Longest wait on a report 429 (seconds)",
            description=(
                "A Reporting API 429 whose Retry-After is at most this long is waited out; a longer one (the day's "
                "allowance is used up, e.g. by another integration) ends that report stream with its STATE and a "
                "warning, and the rest of the sync goes on."
            ),
        ),
        th.Property(
            "max_workers",
            th.IntegerType,
            default=16,
            title="Concurrent requests",
            description=(
                "Requests in flight per stream for the event and profile streams, which are read in time windows "
                "and still emitted in order, and partitions read ahead by the partitioned streams (see "
                "concurrent_partitions). 1 reads one page at a time."
            ),
        ),
        th.Property(
            "concurrent_partitions",
            th.BooleanType,
            default=True,
            title="Read partitions concurrently",
            description=(
                "Partitioned streams (list and segment members, events per metric, flow messages, form versions, "
                "campaign variations) send the first request of up to max_workers partitions ahead, paced only by "
                "the endpoint's rate limit; records still come out one partition after another, in order. false "
                "reads one partition at a time (the old behaviour, kept for comparison)."
            ),
        ),
        th.Property(
            "predictive_analytics",
            th.BooleanType,
            default=False,
            title="Predictive analytics",
            description=(
                "Add `predictive_analytics` to profiles. Klaviyo then allows only 10 requests/s and 150/min on "
                "profiles instead of 75/s and 750/min."
            ),
        ),
        th.Property(
            "respect_rate_limits",
            th.BooleanType,
            default=True,
            title="Respect rate limits",
            description=(
                "Pace requests to Klaviyo's published per-endpoint rate limits on the client side, so 429s stay "
                "rare. Turn off only against a server without these limits (the bundled emulator started with "
                "`--rate-limits off`, as the benchmark does); a 429's Retry-After is honoured either way."
            ),
        ),
        th.Property(
            "sweep_hours",
            th.IntegerType,
            default=24,
            title="Sweep interval (hours)",
            description=(
                "flow_messages, form_versions and campaign_variations read the children of only those flow actions, "
                "forms and campaign messages that show a change, and every child at most this many hours apart: "
                "Klaviyo does not say that editing a flow message, a form version or a variation moves its parent's "
                "update time, so such an edit waits at most this long. 0 reads every child on every run (one request "
                "per send action, form and campaign message)."
            ),
        ),
        th.Property(
            "request_timeout",
            th.NumberType,
            default=60,
            title="Request timeout (seconds)",
            description="Seconds to wait for a response before retrying the request.",
        ),
        th.Property(
            "max_retries",
            th.IntegerType,
            default=8,
            title="Retries",
            description=(
                "Retries of a request after a 5xx, a timeout or a dropped connection before the tap fails. A 429 "
                "with Retry-After is waited out and does not use one up: a request fails on 429s only after it got 10 "
                "times this many. A connection refused on the run's first request is retried twice, "
                "quickly."
            ),
        ),
        th.Property(
            "backoff_base_seconds",
            th.NumberType,
            default=1.0,
            title="Backoff base (seconds)",
            description="Base of the exponential backoff between retries (full jitter, at most 60 s); 429s wait Retry-After instead.",
        ),
        th.Property(
            "emit_activate_version_messages",
            th.BooleanType,
            default=False,
            title="Emit ACTIVATE_VERSION messages",
            description=(
                "After each stream read whole (a full-table stream, or one the catalog sets to "
                "`replication-method: FULL_TABLE`), send ACTIVATE_VERSION: targets that support it (MeltanoLabs "
                "target-postgres, target-snowflake) then delete, or soft-delete with `_sdc_deleted_at`, the rows "
                "that the stream no longer returned."
            ),
        ),
        th.Property(
            "user_agent",
            th.StringType,
            title="User agent",
            description="User-Agent header sent to Klaviyo.",
        ),
    ).to_dict()

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        self.run_started_at = timeutil.utcnow().replace(microsecond=0)
        self.request_stats = RequestStats()
        # Set on SIGTERM/SIGINT or a closed stdout; every wait of the HTTP layer watches it.
        self.cancelled = threading.Event()
        self.cancelled_by: str | None = None
        self.legacy_metric_bookmarks: dict[str, str] = {}
        self._limiters: dict[str, RateLimiter] = {}
        self._limiters_lock = threading.Lock()
        # Threads that may read, decode and flatten a response at once (any number may wait on the network).
        self.cpu_slots = threading.BoundedSemaphore(CPU_SLOTS)
        if kwargs.get("state") is not None:
            kwargs["state"] = self._migrate_state(kwargs["state"])
        if isinstance(kwargs.get("catalog"), dict):
            check_catalog(kwargs["catalog"])
        try:
            super().__init__(*args, **kwargs)
        except ConfigValidationError as exc:
            from_env = bool(kwargs.get("parse_env_config"))
            exc.errors = [explain_missing_key(redact_secret_error(error), from_env=from_env) for error in exc.errors]
            raise
        self._warn_unknown_settings()
        self._state_writer = EncodedStateWriter(self.message_writer)
        errors = metric_stream_errors(self.config, {stream.name for stream in STREAMS})
        if errors:  # also with validate_config=False (discovery): the streams depend on it
            raise ConfigValidationError("Config validation failed", errors=errors)
        if kwargs.get("validate_config", True):
            self._check_settings()
        if kwargs.get("catalog") is not None:
            self._check_catalog_streams()

    def _warn_unknown_settings(self) -> None:
        """A misspelled setting is otherwise ignored without a word (`start_dat` reads all history)."""
        known = set(self.config_jsonschema["properties"])
        for name in sorted(set(self.config) - known):
            close = difflib.get_close_matches(name, known, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            self.logger.warning("Unknown setting %r is ignored.%s", name, hint)
    @classproperty
    def _env_var_config(cls) -> dict[str, t.Any]:
        """The SDK's settings from environment variables; a value that is not a number is one line
        naming the variable, not a ValueError traceback."""
        try:
            return super()._env_var_config
        except ValueError:
            for name, schema in cls.config_jsonschema["properties"].items():
                variable = cls._env_var_prefix + name.upper()
                value = os.environ.get(variable)
                if value is None or "integer" not in str(schema.get("type")):
                    continue
                try:
                    int(value)
                except ValueError:
                    msg = f"{variable} must be an integer (setting {name}), not {value!r}."
                    raise InvalidInputError(msg) from None
            raise

    def _check_settings(self) -> None:
        """Checks the JSON schema cannot express; each failure is one line naming the setting."""
        errors = []
        key = str(self.config.get("api_key") or "").strip()
        if not key:
            errors.append("api_key is empty: set a Klaviyo private API key (it starts with 'pk_').")
        elif not PRIVATE_KEY.match(key):
            hint = " It looks like a public key (site id), which cannot read data." if len(key) == 6 else ""
            errors.append(f"api_key is not a Klaviyo private API key (expected 'pk_' followed by letters and digits).{hint}")
        revision = self.config.get("revision", DEFAULT_REVISION)
        if revision not in SUPPORTED_REVISIONS:
            errors.append(f"revision {revision!r} is not supported; use one of {', '.join(SUPPORTED_REVISIONS)}.")
        if start := self.config.get("start_date"):
            try:
                if timeutil.parse_datetime(start) > self.run_started_at:
                    errors.append(f"start_date {start} is in the future.")
            except ValueError:
                errors.append(f"start_date {start!r} is not an ISO 8601 date-time.")
        url = urlsplit(str(self.config.get("api_url", "")))
        if url.scheme not in {"http", "https"} or not url.netloc:
            errors.append(f"api_url {self.config.get('api_url')!r} is not an http(s) URL.")
        if not 0 <= int(self.config.get("late_event_days", 7)) <= 365:
            errors.append("late_event_days must be between 0 and 365 (Klaviyo aggregates at most a year).")
        errors += report_stream_errors(self.config.get("report_streams") or [])
        if not 1 <= int(self.config.get("report_daily_requests", 225)) <= TIER_REPORTS.daily:
            errors.append(f"report_daily_requests must be between 1 and {TIER_REPORTS.daily} (Klaviyo's daily allowance per report endpoint).")
        if not 0 <= int(self.config.get("reporting_lookback_days", 30)) <= 365:
            errors.append("reporting_lookback_days must be between 0 and 365.")
        if float(self.config.get("report_max_wait_seconds", 300)) < 0:
            errors.append("report_max_wait_seconds must be at least 0.")
        for name, low in (("lookback_minutes", 0), ("max_workers", 1), ("max_retries", 0)):
            if name in self.config and int(self.config[name]) < low:
                errors.append(f"{name} must be at least {low}.")
        if float(self.config.get("request_timeout", 60)) <= 0:
            errors.append("request_timeout must be positive.")
        if errors:
            raise ConfigValidationError("Config validation failed", errors=errors)

    def _migrate_state(self, state: t.Any) -> dict:
        """Check the state's shape, unwrap Meltano's `{"singer_state": ...}`, and take singer-io's
        `{"bookmarks": {"<metric_id>": {"since": ...}}}` entries as event bookmarks instead of
        rejecting them. A state holding nothing of this tap is warned about: the run starts over."""
        if not isinstance(state, dict):
            msg = f"The state must be a JSON object, not {type(state).__name__}."
            raise InvalidInputError(msg)
        if set(state) == {"singer_state"} and isinstance(state["singer_state"], dict):
            self.logger.info("State: unwrapped 'singer_state' (the output of `meltano state get`).")
            state = state["singer_state"]
        if "bookmarks" in state and state["bookmarks"] is None:
            self.logger.warning("The state's 'bookmarks' is null: starting without bookmarks.")
            state = {**state, "bookmarks": {}}
        bookmarks = state.get("bookmarks")
        if bookmarks is None:
            self._warn_if_foreign(state, {})
            return state
        if not isinstance(bookmarks, dict):
            msg = f"The state's 'bookmarks' must be an object keyed by stream, not {type(bookmarks).__name__}."
            raise InvalidInputError(msg)
        names = {stream.name for stream in STREAMS}
        kept = {}
        for key, value in bookmarks.items():
            if key not in names and isinstance(value, dict) and "since" in value:
                since = value["since"]
                try:
                    timeutil.parse_datetime(since)
                except ValueError:
                    msg = f"The state's singer-io bookmark for metric {key!r} has an unreadable 'since' {since!r}."
                    raise InvalidInputError(msg) from None
                self.legacy_metric_bookmarks[key] = since
                continue
            if not isinstance(value, dict) or not _is_partitions_list(value.get("partitions", [])):
                msg = f"The state's bookmark for stream {key!r} is not an object with a bookmark: {value!r}"
                raise InvalidInputError(msg[:300])
            contexts = [frozen_context(partition["context"]) for partition in value.get("partitions", [])]
            if len(set(contexts)) < len(contexts):
                msg = f"The state's bookmark for stream {key!r} holds two partitions with the same context."
                raise InvalidInputError(msg)
            kept[key] = value
        if self.legacy_metric_bookmarks:
            self.logger.info(
                "State: migrated singer-io bookmarks of %d metric(s) %s to the event streams.",
                len(self.legacy_metric_bookmarks),
                sorted(self.legacy_metric_bookmarks),
            )
        self._warn_if_foreign(state, kept)
        return {**state, "bookmarks": kept}

    def _warn_if_foreign(self, state: dict, bookmarks: dict) -> None:
        """A non-empty state with no bookmark of this tap (another tap's, a catalog) restarts every stream."""
        names = {stream.name for stream in STREAMS}
        nothing = not bookmarks and set(state) <= {"bookmarks"}
        if nothing or names & set(bookmarks) or self.legacy_metric_bookmarks:
            return
        found = f"bookmarks of {sorted(bookmarks)[:10]}" if bookmarks else f"top-level keys {sorted(state)[:10]}"
        self.logger.warning(
            "The state holds no bookmark of any tap-klaviyo stream (found %s): every stream starts from the beginning.",
            found,
        )

    def _reset_state_progress_markers(self) -> None:
        """The SDK's first step of a sync, before it writes the input state as the first STATE:
        also drop the bookmarks of deleted partitions here, so that no STATE carries them."""
        super()._reset_state_progress_markers()
        for stream in self.streams.values():
            if stream.selected:
                stream.drop_stale_partition_states()

    def _check_catalog_streams(self) -> None:
        """Name catalog streams this tap does not have, and say so when nothing is selected. A report
        stream the catalog selects but `report_streams` does not name is an error: it would get nothing."""
        if self.input_catalog is None:
            return
        known = set(self.streams)
        unoffered = sorted(name for name in set(self.input_catalog) & REPORT_NAMES - known if self.input_catalog[name].metadata.root.selected)
        if unoffered:
            msg = (
                f"The catalog selects the report stream(s) {', '.join(unoffered)}, which the report_streams setting "
                "does not name: add them to report_streams to read them (each report endpoint allows 225 requests a day)."
            )
            raise InvalidInputError(msg)
        unknown = sorted(set(self.input_catalog) - known - REPORT_NAMES)
        if unknown:
            self.logger.warning(
                "The catalog names stream(s) %s that tap-klaviyo does not have; they are ignored. Streams: %s.",
                ", ".join(unknown),
                ", ".join(sorted(known)),
            )
        if not any(stream.selected for stream in self.streams.values()):
            self.logger.warning("The catalog selects no stream of tap-klaviyo: nothing will be synced.")

    def discover_streams(self) -> list:
        """The built-in streams, the user's `metric_streams` (a bad one is a one-line config error), and the
        report streams `report_streams` names."""
        errors = metric_stream_errors(self.config, {stream.name for stream in STREAMS})
        if errors:
            raise ConfigValidationError("Config validation failed", errors=errors)
        reports = [stream for stream in REPORT_STREAMS if stream.name in (self.config.get("report_streams") or [])]
        return [stream_class(tap=self) for stream_class in (*STREAMS, *metric_streams(self.config), *reports)]

    def rate_limiter(self, bucket: str, tier: Tier) -> RateLimiter:
        """The one limiter of a Klaviyo rate-limit bucket, shared by every stream that calls it."""
        with self._limiters_lock:
            if bucket not in self._limiters:
                paced = self.config.get("respect_rate_limits", True)
                self._limiters[bucket] = RateLimiter(tier, paced=paced, clock=self.clock)
            return self._limiters[bucket]

    def wait(self, seconds: float) -> bool:
        """Sleep `seconds`, or less when the run is cancelled meanwhile; True if it was."""
        return self.cancelled.wait(max(0.0, seconds))

    @cached_property
    def metrics(self) -> list[dict]:
        """Every metric of the account (the API has no name filter; 200 per page)."""
        stream = self.streams["metrics"]
        return [record for page in stream.iter_pages(None, {}) for record in page]

    def sync_all(self) -> None:
        """Sync, then end the output with a STATE that follows every record written.

        On failure or cancellation the records already built are written before that STATE, so
        a rerun resumes from exactly what the target received.
        """
        self.message_writer.on_closed = self._output_closed
        _few_malloc_arenas()
        try:
            self._plan_reports()
            with _few_gc_passes():
                super().sync_all()
        except BaseException:
            with contextlib.suppress(OutputClosedError):
                self._end_output()
            raise
        self._end_output()
        if self.cancelled_by:  # the signal came after the last record: still a cancelled run
            raise SyncCancelled(self.cancelled_by)
        stats = self.request_stats
        self.logger.info(
            "Sync finished: %d requests, %d throttled (429).",
            sum(stats.requests.values()),
            sum(stats.throttled.values()),
        )

    def run_connection_test(self) -> bool:
        """`--test`: one record of every stream, but of a report stream only when the catalog selects it (each
        request spends one of the endpoint's 225 a day)."""
        streams = [stream for stream in self.streams.values() if not isinstance(stream, ReportStream) or stream.selected]
        return self.run_sync_dry_run(dry_run_record_limit=1, streams=streams)

    def _plan_reports(self) -> None:
        """Before any record: each selected report stream's conversion metric (a bad one fails the
        run now) and its requests against the day's allowance, logged."""
        for stream in self.streams.values():
            if stream.selected and isinstance(stream, ReportStream):
                _ = stream.conversion_metric_id
                stream.log_plan()

    def _end_output(self) -> None:
        """Write what is buffered, and a final STATE unless the last message already is one."""
        writer = self.message_writer
        if not writer.last_was_state:
            writer.write_state(self.state)
        writer.flush()

    def _output_closed(self) -> None:
        self.cancelled_by = OUTPUT_CLOSED
        self.cancelled.set()

    def _handle_termination(self, signum: int, frame: t.Any) -> None:  # noqa: ARG002
        """SIGTERM/SIGINT: stop at the next record boundary instead of writing from the handler.

        The handler only sets `cancelled`; the main thread raises SyncCancelled where no message
        is half written, and sync_all then writes the records built so far and the last STATE.
        A second signal ends the process at once (the target keeps the STATE it already has).
        """
        name = signal.Signals(signum).name
        if self.cancelled.is_set():
            os._exit(128 + signum)
        self.cancelled.set()
        self.cancelled_by = name
        self.logger.warning("Received %s: stopping; the records read so far and the last STATE are written.", name)

    @classmethod
    def cb_config(cls, ctx: t.Any, param: t.Any, value: tuple[str, ...]) -> _ConfigInput:
        """Read each --config file once (a pipe such as `<(echo ...)` can only be read once), merged
        in order; a missing or malformed one is one clear line and exit code 1."""
        merged: dict = {}
        try:
            for path in value:
                if path == "ENV":
                    continue
                try:
                    with open(path, encoding="utf-8") as file:  # noqa: PTH123
                        text = file.read()
                except OSError as exc:
                    msg = f"--config file {path} cannot be read: {exc.strerror or exc}"
                    raise InvalidInputError(msg) from None
                merged |= parse_json_object(text, f"--config file {path}")
        except InvalidInputError as exc:
            cls.logger.error("%s", exc)  # noqa: TRY400
            ctx.exit(1)
        return _ConfigInput(config=merged, parse_env="ENV" in value)

    @classmethod
    def cb_test(cls, ctx: t.Any, param: t.Any, value: str) -> None:
        """`--test`, with the same one-line failures as a sync."""
        with cls._one_line_failures():
            super().cb_test(ctx, param, value)

    @classmethod
    def invoke(cls, *args: t.Any, **kwargs: t.Any) -> None:  # type: ignore[override]
        """Run the CLI; known failures end with one clear line and a non-zero exit, no traceback."""
        with cls._one_line_failures():
            for name in ("state", "catalog"):
                file = kwargs.get(name)
                if file is None:
                    continue
                text = file.read()
                what = f"--{name} file {getattr(file, 'name', '')}".rstrip()
                if name == "state" and not text.strip():
                    cls.logger.warning("%s is empty: starting without bookmarks.", what)
                    text = "{}"
                parsed = parse_json_object(text, what)
                if name == "catalog":
                    check_catalog(parsed, what)
                kwargs[name] = io.StringIO(text)
            super().invoke(*args, **kwargs)

    @classmethod
    @contextlib.contextmanager
    def _one_line_failures(cls) -> t.Iterator[None]:
        """Known failures as one line: 1 for errors and a closed output, 128 + signal when cancelled."""
        try:
            yield
        except SyncCancelled as exc:  # OutputClosedError included
            if isinstance(exc, OutputClosedError) or str(exc) == OUTPUT_CLOSED:
                cls.logger.error("%s", CLOSED_OUTPUT)  # noqa: TRY400
                sys.exit(1)
            cls.logger.error(  # noqa: TRY400
                "The sync was cancelled (%s): the records read so far and the last STATE were written; "
                "the next run resumes from that STATE.",
                exc,
            )
            sys.exit(128 + getattr(signal, str(exc), signal.SIGTERM))
        except (FatalAPIError, InvalidInputError) as exc:
            cls.logger.error("%s", " ".join(str(exc).split()))  # noqa: TRY400
            sys.exit(1)


if __name__ == "__main__":
    TapKlaviyo.cli()
