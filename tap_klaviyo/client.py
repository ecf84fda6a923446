"""The base stream: every HTTP mechanic of Klaviyo's JSON:API lives here.

Auth and headers, cursor pagination through `links.next`, fast decoding, flattening of JSON:API
resources into warehouse-friendly records, retries with Retry-After, client-side rate limiting
per Klaviyo bucket, bounded replication ranges with a lookback window, deduplication of ties,
and the concurrent time-window reader. Streams only declare facts.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import math
import random
import re
import sys
import threading
import time
import typing as t
from functools import cache, cached_property
from importlib import resources
from urllib.parse import urljoin, urlsplit

import msgspec
import requests
import urllib3
from singer_sdk import RESTStream
from singer_sdk import singerlib as singer
from singer_sdk.authenticators import APIKeyAuthenticator
from singer_sdk.exceptions import (
    FatalAPIError,
    MaxRecordsLimitException,
    RetriableAPIError,
)
from singer_sdk.helpers._catalog import pop_deselected_record_properties
from singer_sdk.helpers._util import utc_now
from singer_sdk.mapper import SameRecordTransform
from singer_sdk.singerlib.catalog import REPLICATION_FULL_TABLE

from tap_klaviyo import jsonapi, schemas, timeutil
from tap_klaviyo.filters import condition, join
from tap_klaviyo.partitions import FirstPages
from tap_klaviyo.ratelimit import Tier
from tap_klaviyo.state import IndexedStateManager, frozen_context
from tap_klaviyo.windows import (
    Window,
    WindowPlanner,
    WindowResult,
    read_ordered,
    split_remainder,
)

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context

JSONAPI = "application/vnd.api+json"
# Without start_date, "all history": Klaviyo accepts event times from the year 2000 on.
ALL_HISTORY = dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc)
ONE_MICROSECOND = dt.timedelta(microseconds=1)
PROGRESS_EVERY_SECONDS = 15.0
EXTRACTION_CLOCK_SECONDS = 0.01  # time_extracted is read from the clock at most this often
# Records a reader may hold fetched and not yet emitted: its memory bound, about 1.5 KB of RSS per
# event. The window reader takes two windows per worker up to this (40 windows of 2,000 events at
# most); the partitions' first pages read ahead, a quarter of it (20 pages of 1,000 events).
LOOK_AHEAD_RECORDS = 80_000
MAX_BACKOFF_SECONDS = 60.0
THROTTLE_BUDGET_FACTOR = 10  # 429s waited out per retry of max_retries
FIRST_CONTACT_RETRIES = 2
FIRST_CONTACT_MAX_WAIT = 0.5
DEFAULT_PORTS = {"http": 80, "https": 443}
OBJECT_OR_NULL = (ord("{"), ord("n"))  # first bytes of an undecoded JSON object or null
REDACT_RUN = 8  # characters of the key's secret that are never printed together
_SURROGATE = re.compile("[\ud800-\udfff]")
_PERCENT_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
RETRIABLE_ERRORS = (
    RetriableAPIError,
    ConnectionResetError,
    requests.exceptions.Timeout,
    requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


class KlaviyoAPIError(FatalAPIError):
    """A Klaviyo error that retrying cannot fix; its message is one line and free of secrets."""


def klaviyo_error_detail(response: requests.Response) -> str:
    """The `detail` (and offending parameter) of a JSON:API error body, or a short text excerpt."""
    try:
        errors = jsonapi.decode_json(response.content).get("errors") or []
    except (*jsonapi.DecodeError, AttributeError):
        errors = []
    if errors and isinstance(errors[0], dict):
        first = errors[0]
        detail = first.get("detail") or first.get("title") or first.get("code") or ""
        parameter = (first.get("source") or {}).get("parameter")
        return f"{detail} (parameter: {parameter})" if parameter else str(detail)
    text = " ".join(response.text.split())[:200]
    return text or response.reason or ""


class SyncCancelled(Exception):  # noqa: N818 - reads as what happened
    """The run was cancelled (SIGTERM/SIGINT) or its output closed: every wait stops at once."""


class JSONAPIDecodeError(RetriableAPIError):
    """A 2xx body that is not complete JSON (a truncated transfer): retried like a 5xx."""


class Deduplicator:
    """Drops records already emitted at the current replication-key value.

    Records arrive in replication-key order, so a repeat can only share the key of the newest
    records: inclusive window starts and ties cut by a page or window boundary. Memory holds
    the ids of one key value, never the whole run.
    """

    def __init__(self, key: str, natural_key: t.Sequence[str]) -> None:
        self.key = key
        self.natural_key = tuple(natural_key)
        self.current: t.Any = None
        self.first: t.Any = None  # the identity of the first record at `current`
        self.seen: set | None = None  # every identity at `current`, once it has a second record
        self.dropped = 0

    def is_new(self, record: dict) -> bool:
        value = record.get(self.key)
        keys = self.natural_key
        identity = record.get(keys[0]) if len(keys) == 1 else tuple(record.get(k) for k in keys)
        if value != self.current:  # the common case, keys strictly increasing: no set per record
            self.current, self.first, self.seen = value, identity, None
            return True
        if self.seen is None:
            self.seen = {self.first}
        if identity in self.seen:
            self.dropped += 1
            return False
        self.seen.add(identity)
        return True


class Page(list):
    """One page of records, and whether `links.next` promised another."""

    def __init__(self, records: list[dict], *, has_next: bool) -> None:
        super().__init__(records)
        self.has_next = has_next


class KlaviyoStream(RESTStream):
    """One Klaviyo GET collection endpoint, read as a Singer stream."""

    # Facts a stream declares.
    path: str
    page_size: int | None = None
    rate_tier: Tier
    rate_bucket: str | None = None  # defaults to the path; streams on one endpoint share a bucket
    extra_params: t.ClassVar[dict[str, str]] = {}
    filter_field: str | None = None  # API field the replication range is filtered and sorted on
    lower_operator: str | None = "greater-or-equal"  # None: the API cannot filter the lower bound
    upper_operator: str | None = "less-than"  # None: the upper bound is applied client-side
    to_one: tuple[str, ...] = ()  # relationships flattened to `<name>_id`
    to_many: t.ClassVar[dict[str, str]] = {}  # relationship -> column of its ids, e.g. {"tags": "tag_ids"}
    other_relationships: tuple[str, ...] = ()  # relationships a stream reads itself (in records_of)
    derived_columns: tuple[str, ...] = ()  # schema columns a stream fills itself, not attributes
    scope: str | None = None  # the API key scope the endpoint needs; default: `<first path segment>:read`
    date_time_fields: tuple[str, ...] = ()  # top-level fields normalised to RFC 3339
    raw_attributes: tuple[str, ...] = ()  # nested objects written out as received, never decoded (when safe)
    windowed = False  # eligible for the concurrent time-window reader
    prefetch_partitions = False  # each partition's read starts with `first_request`: sent ahead (partitions.py)
    window_pages = 2  # pages a window is sized to hold

    is_sorted = True
    STATE_MSG_FREQUENCY = 1000
    _LOG_REQUEST_METRICS = False
    schema_name: str | None = None  # the file in schemas/, when not named after the stream

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        self._local = threading.local()
        self._bookmark: t.Any = None
        self._partition_state: dict = {}
        self._records_emitted = 0
        self._warned_extra = False
        self._clock_read_at = -1.0
        self._extracted_at = utc_now()
        self._first_pages: FirstPages | None = None
        self._envelope_extracted: dt.datetime | None = None
        self._envelope = (b"", b"")

    @cached_property
    def schema(self) -> dict:
        """Loaded once: the SDK reads the schema twice per record."""
        return copy.deepcopy(load_schema(self.schema_name or self.name))

    @property
    def state_manager(self) -> IndexedStateManager:
        if self._state_manager is None:
            self._state_manager = IndexedStateManager(
                tap_name=self.tap_name,
                stream_name=self.name,
                tap_state=self._tap_state,
                state_partitioning_keys=self.state_partitioning_keys,
                is_sorted=self.is_sorted,
                check_sorted=self.check_sorted,
            )
        return self._state_manager

    @property
    def natural_key(self) -> tuple[str, ...]:
        """What identifies a resource, as the stream class declares it. The catalog's
        `key_properties` only tell the target how to load (`[]` asks for append-only), so
        deduplication never relies on them."""
        return tuple(type(self).primary_keys)

    # --- HTTP -------------------------------------------------------------------------------

    @property
    def url_base(self) -> str:
        return self.config["api_url"].rstrip("/")

    @cached_property
    def authenticator(self) -> APIKeyAuthenticator:
        return APIKeyAuthenticator(
            key="Authorization", value=f"Klaviyo-API-Key {self.config['api_key']}", location="header"
        )

    @cached_property
    def http_headers(self) -> dict:
        headers = {"revision": self.config["revision"], "Accept": JSONAPI}
        if self.config.get("user_agent"):
            headers["User-Agent"] = self.config["user_agent"]
        return headers

    @property
    def requests_session(self) -> requests.Session:
        """One session per thread: the window reader calls from several threads."""
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    @cached_property
    def _proxies(self) -> dict[str, str]:
        """The proxies for api_url (HTTPS_PROXY, NO_PROXY, ...), found once: requests would otherwise
        read the whole environment again for every request (0.2 ms of CPU each, here)."""
        session = self.requests_session
        return requests.utils.resolve_proxies(requests.Request("GET", self.url_base).prepare(), session.proxies, session.trust_env)

    @property
    def timeout(self) -> float:
        return float(self.config["request_timeout"])

    @cached_property
    def rate_limiter(self):
        return self._tap.rate_limiter(self.rate_bucket or self.path, self.rate_tier)

    def _request(self, prepared_request: requests.PreparedRequest, context: Context | None) -> requests.Response:
        """Send within the bucket's rate limit; the body is left unread (see _fetch_page)."""
        self.rate_limiter.acquire(self._sleep)
        self._tap.request_stats.count(self.name)
        response = self.requests_session.send(
            self.authenticator(prepared_request),
            timeout=self.timeout,
            allow_redirects=self.allow_redirects,
            stream=True,
            proxies=self._proxies,
        )
        if response.status_code >= 400:
            self.validate_response(response)
        else:
            self._observe_quota(response)
        return response

    def _observe_quota(self, response: requests.Response) -> None:
        """Pause the bucket when Klaviyo says its window is used up.

        A private key shares the account's quota with every other integration using one, so the
        server's `RateLimit-Remaining` can reach zero before this tap's own pacing would.
        """
        remaining = response.headers.get("RateLimit-Remaining")
        reset = response.headers.get("RateLimit-Reset")
        try:
            if remaining is not None and reset is not None and int(remaining) <= 0:
                self.rate_limiter.pause(max(0.0, float(reset)))
        except ValueError:
            return

    def validate_response(self, response: requests.Response) -> None:
        status = response.status_code
        if status == 429:
            retry_after = _retry_after(response)
            self.rate_limiter.pause(retry_after if retry_after is not None else 1.0)
            self._tap.request_stats.count_throttled(self.name)
        if status == 429 or status >= 500:
            raise RetriableAPIError(self.response_error_message(response), response)
        if 400 <= status < 500:
            raise KlaviyoAPIError(self.response_error_message(response))

    def response_error_message(self, response: requests.Response) -> str:
        """One line naming the status, the path, Klaviyo's detail and the likely cause; never the key."""
        status = response.status_code
        path = urlsplit(response.url).path or self.path
        message = f"Klaviyo answered {status} for GET {path}: {klaviyo_error_detail(response)}"
        if status == 401:
            message = _sentence(message) + (
                " The api_key was not accepted: use a private API key (it starts with 'pk_'); "
                "a public key (the 6-character site id) cannot read data"
            )
        elif status == 403:
            message = _sentence(message) + f" The api_key lacks a read scope this stream needs ({self.required_scope})"
        return self.redact(message)

    def redact(self, text: str) -> str:
        """`text` without the api_key: Klaviyo's error bodies may quote it, whole or in part."""
        return redact(text, str(self.config.get("api_key") or ""))

    @property
    def required_scope(self) -> str:
        return self.scope or f"{self.path.split('/')[2]}:read"

    def request_decorator(self, func):
        """Retry `func` on 429, 5xx, timeouts and broken connections, logging each retry once.

        5xx and network failures wait exponential backoff with full jitter (capped at 60 s) and
        use up `max_retries`. A 429 with Retry-After has paused the bucket, so it waits there (the
        limiter lets waiting workers go gradually) and counts against a budget ten times larger.
        A connection refused before the run has had any answer fails after two quick retries:
        most likely api_url is wrong. Every wait ends at once when the run is cancelled.
        """

        def call(*args: t.Any, **kwargs: t.Any) -> tuple[Page, str | None]:
            failures = throttles = 0
            while True:
                self._stop_if_cancelled()
                try:
                    return func(*args, **kwargs)
                except RETRIABLE_ERRORS as exc:
                    error = exc
                retry_after = _throttled_retry_after(error)
                first_contact = _could_not_connect(error) and self._nothing_answered_yet(failures + throttles + 1)
                if retry_after is not None:
                    throttles += 1
                    wait, given_up = 0.0, throttles > THROTTLE_BUDGET_FACTOR * self.max_retries
                else:
                    failures += 1
                    cap = FIRST_CONTACT_MAX_WAIT if first_contact else MAX_BACKOFF_SECONDS
                    wait = random.uniform(0, min(cap, float(self.config["backoff_base_seconds"]) * 2**failures))
                    given_up = failures > (min(FIRST_CONTACT_RETRIES, self.max_retries) if first_contact else self.max_retries)
                if given_up:
                    raise self._gave_up(error, failures + throttles, first_contact=first_contact) from error
                self.logger.warning(
                    "Retrying %s in %.1f s (attempt %d): %s",
                    self.path,
                    wait if retry_after is None else retry_after,
                    failures + throttles,
                    self.redact(_one_line(error)),
                )
                self._sleep(wait)

        return call

    @property
    def max_retries(self) -> int:
        return int(self.config["max_retries"])

    def _nothing_answered_yet(self, attempts: int) -> bool:
        """Whether every request sent in this run so far was one of this request's own attempts."""
        return sum(self._tap.request_stats.requests.values()) <= attempts

    def _gave_up(self, error: BaseException, attempts: int, *, first_contact: bool) -> KlaviyoAPIError:
        """The one-line final error: what failed, for which request path and stream, after how many tries."""
        reason = self.redact(_one_line(error))
        if isinstance(error, RetriableAPIError):
            return KlaviyoAPIError(f"{reason} (stream '{self.name}', gave up after {attempts} attempts)")
        hint = ". Check that api_url is right" if first_contact else ""
        return KlaviyoAPIError(
            f"Klaviyo could not be reached at {self.url_base} (or the connection broke) for GET {self.path} "
            f"after {attempts} attempts (stream '{self.name}'): {reason}{hint}"
        )

    def _stop_if_cancelled(self) -> None:
        if self._tap.cancelled.is_set():
            raise SyncCancelled(self._tap.cancelled_by or "cancelled")

    def _sleep(self, seconds: float) -> None:
        """Sleep, unless the run is cancelled first: then raise SyncCancelled at once."""
        if self._tap.wait(seconds):
            self._stop_if_cancelled()

    @cached_property
    def _send(self):
        return self.request_decorator(self._fetch_page)

    def _fetch_page(self, prepared: requests.PreparedRequest, context: Context | None) -> tuple[Page, str | None]:
        """One request: wait for the answer, then read, decode and flatten it in a CPU slot.

        Waiting on the network holds no slot, so many requests can be in flight, while only a
        few threads at a time do Python work: more would only fight over the GIL (measured in
        benchmarks/bench.py). A body cut short is retried like a server error.
        """
        response = self._request(prepared, context)
        with self._tap.cpu_slots:
            # At once, not in requests' 10 KiB steps of `response.content` (most of a millisecond of CPU per event page).
            body = b"".join(response.iter_content(chunk_size=None))
            try:
                document = self.decode(body)
            except jsonapi.DecodeError as exc:
                document = self._decode_leniently(response, body, exc)
            url = document.links.next if document.links else None
            records = self.records_of(document)
            if self.raw_attributes:
                records = self._records_with_objects(records, body)
            return Page(records, has_next=bool(url)), url

    def _decode_leniently(self, response: requests.Response, body: bytes, error: Exception) -> jsonapi.Document:
        """A page the fast decoder refused, read again with Python's json, which accepts more
        (lone surrogate escapes, numbers beyond a double, NaN), invalid UTF-8 read as such.
        Values no Singer message can carry are replaced, with a warning per record, so one bad
        value never blocks a stream. A body that is not JSON even so (cut short) is retried.
        """
        try:
            parsed = json.loads(body.decode("utf-8", errors="surrogateescape"))
            if not isinstance(parsed, dict):
                raise TypeError(type(parsed).__name__)
        except (ValueError, TypeError):
            msg = f"Klaviyo sent an incomplete or malformed JSON:API body for GET {self.path}: {error}"
            raise JSONAPIDecodeError(msg, response) from error
        resources = parsed.get("data") if isinstance(parsed.get("data"), list) else []
        for index, resource in enumerate(resources):
            problems: list[str] = []
            resources[index] = _representable(resource, "", problems)
            if problems:
                record_id = resource.get("id") if isinstance(resource, dict) else None
                self.logger.warning("Stream '%s' record %s: %s", self.name, record_id, "; ".join(problems)[:500])
        document = _representable(parsed, "", [])  # `included` and `links`; the records are clean by now
        try:
            return self.decode(msgspec.json.encode(document))
        except jsonapi.DecodeError as exc:
            msg = f"Klaviyo sent a JSON:API body of the wrong shape for GET {self.path}: {exc}"
            raise JSONAPIDecodeError(msg, response) from exc

    def iter_pages(
        self,
        context: Context | None,
        params: dict[str, str],
        cancelled: threading.Event | None = None,
        send: t.Callable[[requests.PreparedRequest, Context | None], tuple[t.Any, str | None]] | None = None,
    ) -> t.Iterator[Page]:
        """Follow `links.next` (it already carries every query parameter) page by page.

        `cancelled` stops the walk early (the window reader's own stop); the run's cancel raises
        SyncCancelled. A next link pointing back to a page of this walk fails the stream instead
        of paginating forever. `send` replaces the request that yields a page of records and the
        next link (a walk that reads something else of each page).
        """
        url: str | None = self.get_url(context)
        query: dict[str, str] | None = params
        visited: set[str] = set()
        while url:
            self._stop_if_cancelled()
            if cancelled is not None and cancelled.is_set():
                return
            prepared = self.build_prepared_request(method="GET", url=url, params=query, headers=self.http_headers)
            if prepared.url in visited:
                msg = (
                    f"Klaviyo's links.next for GET {self.path} (stream '{self.name}') leads back to a page already "
                    f"read in this walk ({self.redact(prepared.url)}): stopping instead of paginating forever"
                )
                raise KlaviyoAPIError(msg)
            visited.add(prepared.url)
            prefetched = self._first_pages.take(context, prepared.url) if query is not None and self._first_pages else None
            page, next_link = prefetched.result() if prefetched is not None else (send or self._send)(prepared, context)
            url = self._resolve_next(next_link) if next_link else None
            query = None
            yield page

    def _resolve_next(self, link: str) -> str:
        """`links.next` as an absolute URL on api_url; a link elsewhere would carry the key there."""
        url = urljoin(self.url_base + "/", link)
        if _origin(url) != _origin(self.url_base):
            msg = (
                f"Klaviyo's links.next for GET {self.path} (stream '{self.name}') points to "
                f"{self.redact(_origin_text(url))}, not to api_url {self.url_base}: the api_key is only ever "
                f"sent to api_url, so the stream stops here"
            )
            raise KlaviyoAPIError(msg)
        return url

    def parse_response(self, response: requests.Response) -> t.Iterable[dict]:
        return self.records_of(self.decode(response.content))

    @cached_property
    def decode(self) -> t.Callable[[bytes], jsonapi.Document]:
        """The fastest decoder of response bodies that keeps records exact: `raw_attributes` stay
        undecoded JSON only while nothing in the tap (stream maps, flattening, nested deselection,
        BATCH files) needs to look inside them. That decoder reads only the schema's attributes,
        into structs laid out as the records (see jsonapi.PassthroughDecoder)."""
        if not self.raw_attributes or not self._records_leave_unchanged:
            return jsonapi.decode_document
        columns = [name for name in self.schema["properties"] if name not in self.derived_columns]
        return jsonapi.PassthroughDecoder(
            columns, self.raw_attributes, dict(self._to_one_columns), self.to_many, self.other_relationships
        )

    @cached_property
    def _records_leave_unchanged(self) -> bool:
        maps = self.stream_maps
        return (
            len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and not maps[0].flattening_enabled
            and not self._nested_deselection
            and not self.get_batch_config(self.config)
        )

    @cached_property
    def _records_go_out_as_built(self) -> bool:
        """Records hold only schema fields (the passthrough decoder), all selected, and no map
        changes them: each becomes its RECORD message as it is."""
        every_field = frozenset(self.schema["properties"]) <= self._emitted_fields
        return isinstance(self.decode, jsonapi.PassthroughDecoder) and every_field

    @cached_property
    def _to_one_columns(self) -> tuple[tuple[str, str], ...]:
        """(relationship, record column) pairs, e.g. ("campaign-messages", "campaign_messages_id")."""
        return tuple((name, f"{name.replace('-', '_')}_id") for name in self.to_one)

    def records_of(self, document: jsonapi.Document) -> list[dict]:
        if isinstance(self.decode, jsonapi.PassthroughDecoder):
            return [self.canonical_dates(record) for record in self.decode.records(document)]
        return [self.flatten(resource, document.included) for resource in document.data or ()]

    def _records_with_objects(self, records: list[dict], body: bytes) -> list[dict]:
        """`records` without those whose `raw_attributes` are not objects. Undecoded values are
        checked by their first byte; decoded ones are looked at one by one only when a scan of the
        body finds such a member not followed by `:{` (a null, a non-object, or spacing): two scans
        of the body cost less than a look at each record."""
        if isinstance(self.decode, jsonapi.PassthroughDecoder):
            for record in records:
                for name in self.raw_attributes:
                    value = record[name]
                    if value is not None and memoryview(value)[0] not in OBJECT_OR_NULL:
                        return [record for record in records if self._nested_objects_are_objects(record)]
            return records
        for name in self.raw_attributes:
            member = f'"{name}"'.encode()
            if body.count(member) != body.count(member + b":{"):
                return [record for record in records if self._nested_objects_are_objects(record)]
        return records

    def _nested_objects_are_objects(self, record: dict) -> bool:
        """Whether every `raw_attributes` value is an object or null; a record where one is not
        is skipped with a warning, since it would be written out as received."""
        for name in self.raw_attributes:
            value = record.get(name)
            if value is None or type(value) is dict:
                continue
            if type(value) is msgspec.Raw and memoryview(value)[0] in OBJECT_OR_NULL:
                continue
            kind = type(msgspec.json.decode(value) if type(value) is msgspec.Raw else value).__name__
            self.logger.warning(
                "Stream '%s' record %s skipped: %s is a JSON %s, not an object.", self.name, record.get("id"), name, kind
            )
            return False
        return True

    # --- Records ----------------------------------------------------------------------------

    def flatten(self, resource: jsonapi.Resource, included: list[jsonapi.Resource] | None) -> dict:  # noqa: ARG002
        """A JSON:API resource as a flat record: id, attributes, to-one relationship ids."""
        record = {"id": resource.id, **jsonapi.attributes_of(resource)}
        for name, column in self._to_one_columns:
            data = jsonapi.related(resource, name)
            record[column] = data.id if isinstance(data, jsonapi.Ref) else None
        for name, column in self.to_many.items():
            data = jsonapi.related(resource, name)
            record[column] = [ref.id for ref in data] if isinstance(data, list) else []
        return self.canonical_dates(record)

    def canonical_dates(self, record: dict, fields: t.Iterable[str] | None = None) -> dict:
        """Date-time fields (the stream's, or `fields`) in RFC 3339; an unparseable one becomes null
        (logged), never a bookmark."""
        for name in self.date_time_fields if fields is None else fields:
            value = record.get(name)
            if value is not None:
                normal = timeutil.canonical(value) if isinstance(value, str) else None
                if normal is None:
                    self._bad_datetime(record, name, value)
                record[name] = normal
        return record

    def _bad_datetime(self, record: dict, name: str, value: t.Any) -> None:
        """An unparseable date-time is emitted as null and logged, never compared or bookmarked."""
        self.logger.warning(
            "Stream '%s' record %s: %s %r is not a date-time; emitted as null.",
            self.name, record.get("id"), name, str(value)[:100],
        )

    def base_params(self, context: Context | None) -> dict[str, str]:
        params = dict(self.extra_params)
        if self.page_size:
            params["page[size]"] = str(self.page_size)
        if self.filter_field:
            params["sort"] = self.filter_field
        return params

    def range_params(self, context: Context | None, window: Window | None) -> dict[str, str]:
        """Query parameters for one replication window (None: the whole unbounded stream)."""
        params = self.base_params(context)
        if window is None or not self.filter_field:
            return params
        lower = upper = None
        if self.lower_operator and window.start > ALL_HISTORY:
            start = window.start
            if self.lower_operator == "greater-than":  # strict: step back so `start` is included
                start -= ONE_MICROSECOND
            lower = condition(self.lower_operator, self.filter_field, start)
        if self.upper_operator:
            upper = condition(self.upper_operator, self.filter_field, window.end)
        combined = join(params.get("filter"), lower, upper)
        if combined:
            params["filter"] = combined
        return params

    # --- Replication range ------------------------------------------------------------------

    def sync_window(self, context: Context | None) -> Window | None:
        """[start, end) of this run: bookmark minus lookback (or start_date), up to the run's start.

        The end is fixed when the tap starts, so records written during the run wait for the
        next run and the bookmark never passes "now".
        """
        if not self.replication_key:
            return None
        end = self._tap.run_started_at
        start = self.start_date
        if self.reads_whole:
            return Window(start or ALL_HISTORY, end)
        bookmark = self.get_starting_replication_key_value(context)
        if bookmark is None:
            bookmark = self.legacy_bookmark(context)
        if bookmark is not None:
            try:
                resume = timeutil.parse_datetime(bookmark)
            except timeutil.OutOfRangeError:
                resume = dt.datetime.max.replace(tzinfo=timeutil.UTC)
            except ValueError as exc:
                msg = f"State for stream '{self.name}' has an unreadable bookmark {bookmark!r}"
                raise KlaviyoAPIError(msg) from exc
            if resume > end:
                self.logger.warning(
                    "Bookmark %s of stream '%s' is in the future; reading up to now instead.", bookmark, self.name
                )
                resume = end
            resume -= dt.timedelta(minutes=float(self.config["lookback_minutes"]))
            start = max(start, resume) if start else resume
        return Window(start or ALL_HISTORY, end)

    @property
    def reads_whole(self) -> bool:
        """Read everything, whatever the bookmark: a stream without a replication key, or one the
        catalog sets to `replication-method: FULL_TABLE` (the Singer way to force a complete re-read,
        such as a weekly run after which the target drops memberships that ended)."""
        return self.replication_method == REPLICATION_FULL_TABLE

    def _write_activate_version_message(self, full_table_version: int) -> None:
        """Hold ACTIVATE_VERSION until the stream has been read whole (see `sync`).

        The SDK announces it before the first record. A target then deletes, or marks deleted,
        every row older than this version at once, before this run's rows arrive, and keeps them
        so when the run fails half-way. After the last record it removes only what is gone.
        """
        self._version_to_activate = full_table_version

    @cached_property
    def start_date(self) -> dt.datetime | None:
        value = self.config.get("start_date")
        return timeutil.parse_datetime(value) if value else None

    def legacy_bookmark(self, context: Context | None) -> str | None:  # noqa: ARG002
        """A bookmark carried over from another tap's state format (see the event streams)."""
        return None

    def _increment_stream_state(self, latest_record: dict, *, context: Context | None = None) -> None:
        """Advance the bookmark of a sorted stream; never move it back for lookback re-reads.

        This is the SDK's sorted-stream update (set `replication_key_value` in the partition's
        state) without its per-record search of the partitions list, which dominated the tap's
        CPU on event streams. The state dict is looked up once per partition, in open_partition.
        """
        value = latest_record.get(self.replication_key)
        if value is None or (self._bookmark is not None and value < self._bookmark):
            return
        self._bookmark = value
        self._partition_state["replication_key"] = self.replication_key
        self._partition_state["replication_key_value"] = value

    def open_partition(self, context: Context | None) -> None:
        """Bookmark into this partition's state from here on (looked up once, not per record).

        A whole read replaces the bookmark; an incremental one never moves it back.
        """
        self._partition_state = self.get_context_state(context)
        self._bookmark = None if self.reads_whole else self._partition_state.get("replication_key_value")

    def records_in_window(self, context: Context | None, records: t.Iterable[dict]) -> list[dict]:
        """Records already read (e.g. from another stream's include), cut to this run's window and
        sorted on the replication key, so that every STATE's bookmark covers all records before it.
        Copies: the records may be shared with other streams."""
        window = self.sync_window(context)
        key = self.replication_key
        self.open_partition(context)
        start = timeutil.to_rfc3339(window.start) if window.start > ALL_HISTORY else None
        end = timeutil.to_rfc3339(window.end)
        kept = [
            copy.deepcopy(record)
            for record in records
            if (record.get(key) is None and start is None)
            or (record.get(key) is not None and (start is None or record[key] >= start) and record[key] < end)
        ]
        kept.sort(key=lambda record: (record.get(key) or "", str(record.get("id"))))
        return kept

    def log(self, message: str, *args: t.Any, level: int = logging.INFO, **kwargs: t.Any) -> None:
        """The SDK's log, with its bare "An unhandled error occurred" line made useful.

        That line names no cause; the cause is added. It is dropped for the record limit of
        `--test` (a stop the SDK asked for, not an error) and for a cancelled run (said once).
        """
        if message.startswith("An unhandled error occurred"):
            error = sys.exc_info()[1]
            limit = isinstance(getattr(error, "__cause__", None), MaxRecordsLimitException)
            if limit or isinstance(error, SyncCancelled):
                return
            message += ": %s"
            args = (*args, _one_line(error))
        super().log(message, *args, level=level, **kwargs)
    def apply_catalog(self, catalog: singer.Catalog) -> None:
        """Keep the stream's own replication key whatever the catalog names.

        Catalogs in singer-io's style name none (only `valid-replication-keys`, or
        `replication-method: INCREMENTAL` alone), which would silently make every run a full
        re-read; another key would be one the tap neither filters nor sorts on. A catalog's
        `replication-method: FULL_TABLE` keeps the key too: the stream is then read whole, still in
        key order (see `reads_whole`).
        """
        super().apply_catalog(catalog)
        own = type(self).replication_key
        if not own:
            return
        named = self.replication_key
        if named and named != own:
            self.logger.warning(
                "The catalog names replication key %r for stream '%s'; tap-klaviyo can only bookmark it on %r, "
                "which it uses instead.",
                named, self.name, own,
            )
        self.replication_key = own

    def generate_child_contexts(self, record: dict, context: Context | None) -> t.Iterable[Context | None]:
        return ()  # no stream here has child streams

    def _process_record(
        self, record: dict, child_context: Context | None = None, partition_context: Context | None = None
    ) -> None:
        """The SDK's, without its pass over child streams (there are none): a record gets the
        partition's keys it lacks."""
        if partition_context:
            for key, value in partition_context.items():
                if key not in record:
                    record[key] = value

    @cached_property
    def _emitted_fields(self) -> frozenset[str]:
        """Top-level properties that are in the catalog's schema (the SCHEMA message's) and selected."""
        return frozenset(
            name for name in self.effective_schema["properties"] if self.mask[("properties", name)]
        )

    @cached_property
    def _nested_deselection(self) -> bool:
        return any(len(crumb) > 2 and not selected for crumb, selected in self.mask.items())

    def _generate_record_messages(self, record: dict) -> t.Iterator[singer.RecordMessage]:
        """The SDK's RECORD messages without its two recursive walks per record.

        Records are built from decoded JSON here, so their values are already JSON types and
        type conformance has nothing to convert; dropping unknown or deselected top-level keys
        is all that is left. The walks cost more than half the tap's CPU on event streams.
        """
        fields = self._emitted_fields
        extra = [key for key in record if key not in fields]
        if extra:
            # A new dict, not deletions: the SDK bookmarks this record after it is written, and
            # the replication key may be one of the dropped fields.
            record = {key: value for key, value in record.items() if key in fields}
        if extra and not self._warned_extra:
            self._warned_extra = True
            self.logger.debug("Stream '%s' drops properties outside its schema or selection: %s", self.name, extra)
        if self._nested_deselection:
            pop_deselected_record_properties(record, self.schema, self.mask)
        extracted = self._extraction_clock()
        for stream_map in self.stream_maps:
            mapped = stream_map.transform(record)
            if mapped is not None:
                yield singer.RecordMessage(
                    stream=stream_map.stream_alias,
                    record=mapped,
                    version=self._stream_version,
                    time_extracted=extracted,
                )

    def _write_record_message(self, record: dict) -> None:
        """Write one record's messages; a cancelled run stops here, between two whole records.

        A record that goes out as built is encoded straight into the output between the two
        halves of its message (`_record_envelope`): the same bytes as the SDK's RecordMessage
        through the writer, without building that message and its dict for every record.
        """
        self._stop_if_cancelled()
        if self._records_go_out_as_built:
            head, tail = self._record_envelope()
            self._tap.message_writer.write_record(head, record, tail)
            self._records_emitted += 1
        else:
            for message in self._generate_record_messages(record):
                self._tap.write_message(message)
                self._records_emitted += 1
        self.state_manager.is_flushed = False  # the SDK's STATE every STATE_MSG_FREQUENCY records needs it

    def _record_envelope(self) -> tuple[bytes, bytes]:
        """A RECORD line of this stream before and after its record, as the writer encodes the SDK's
        RecordMessage (version and time_extracted included); made again when the clock moves."""
        if time.monotonic() - self._clock_read_at < EXTRACTION_CLOCK_SECONDS and self._envelope_extracted is not None:
            return self._envelope
        extracted = self._extraction_clock()
        if self._envelope_extracted is not extracted:
            message = singer.RecordMessage(
                stream=self.stream_maps[0].stream_alias, record={}, version=self._stream_version, time_extracted=extracted
            )
            head, tail = bytes(self._tap.message_writer.format_message(message)).split(b'"record":{}', 1)
            self._envelope = (head + b'"record":', tail)
            self._envelope_extracted = extracted
        return self._envelope

    def _extraction_clock(self) -> dt.datetime:
        """`time_extracted`, read from the clock at most every 10 ms: the clock was a tenth of the
        per-record cost, and records reach here in bursts of a page decoded at one moment."""
        now = time.monotonic()
        if now - self._clock_read_at >= EXTRACTION_CLOCK_SECONDS:
            self._clock_read_at = now
            self._extracted_at = utc_now()
        return self._extracted_at

    def sync(self, context: Context | None = None) -> None:
        """Sync, then log one summary line per stream (also read by benchmarks/bench.py)."""
        started = time.monotonic()
        self._records_emitted = 0
        self._version_to_activate: int | None = None
        self._first_pages = self._partition_reader(context)
        try:
            super().sync(context)
        finally:
            if self._first_pages is not None:
                self._first_pages.close()
                self.logger.info(
                    "Stream %s: %d partitions' first requests sent ahead, %d of them used",
                    self.name, self._first_pages.sent, self._first_pages.used,
                )
                self._first_pages = None
            self._tap.message_writer.flush()  # this stream's records reach the target now
        if self._version_to_activate is not None:  # read whole: the target may now drop what is gone
            super()._write_activate_version_message(self._version_to_activate)
        elapsed = max(time.monotonic() - started, 1e-9)
        stats = self._tap.request_stats
        self.logger.info(
            "Stream %s synced: %d records in %.2f s (%.0f/s), %d requests, %d throttled (429)",
            self.name,
            self._records_emitted,
            elapsed,
            self._records_emitted / elapsed,
            stats.requests[self.name],
            stats.throttled[self.name],
        )

    def _partition_reader(self, context: Context | None) -> FirstPages | None:
        """The concurrent partition reader, for a stream whose partitions it can read ahead."""
        workers = int(self.config["max_workers"])
        if context is not None or not self.prefetch_partitions or workers < 2 or not self.config.get("concurrent_partitions", True):
            return None
        partitions = self.partitions or []
        if len(partitions) < 2:
            return None
        ahead = min(workers, LOOK_AHEAD_RECORDS // 4 // (self.page_size or 100))
        return FirstPages(partitions, self.first_request, self._send, workers, ahead)

    def _write_starting_replication_value(self, context: Context | None) -> None:
        """Called by the SDK as it starts each partition: the reader sends the next ones' first requests."""
        super()._write_starting_replication_value(context)
        if self._first_pages is not None:
            self._first_pages.advance(context)

    def will_read(self, context: Context | None) -> bool:  # noqa: ARG002
        """Whether this run reads the partition at all (a fan-out stream skips unchanged parents)."""
        return True

    def first_request(self, context: Context | None) -> requests.PreparedRequest | None:
        """The first request the partition's read will send, built as `_read` builds it; None: none."""
        if not self.will_read(context):
            return None
        super()._write_starting_replication_value(context)  # what the SDK sets as the partition starts
        window = self.sync_window(context)
        if window is not None and window.start >= window.end:
            return None
        params = self.range_params(context, window)
        return self.build_prepared_request(method="GET", url=self.get_url(context), params=params, headers=self.http_headers)

    def drop_stale_partition_states(self) -> None:
        """Forget bookmarks of partitions the account no longer has (a deleted list or metric).

        They would otherwise ride along in every STATE message of every run, forever.
        """
        partitions = self.partitions
        states = ((self.tap_state.get("bookmarks") or {}).get(self.name) or {}).get("partitions")
        if partitions is None or not states:
            return
        known = {frozen_context(partition) for partition in partitions}
        kept = [state for state in states if frozen_context(state["context"]) in known]
        if len(kept) < len(states):
            self.logger.info(
                "Stream '%s': dropped the bookmarks of %d partition(s) no longer in the account.",
                self.name, len(states) - len(kept),
            )
            states[:] = kept

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        window = self.sync_window(context)
        if self.replication_key:
            self.open_partition(context)
        if window is not None and window.start >= window.end:
            return
        records = self._read(context, window)
        progress = _Progress(self, context)
        if not self.replication_key:
            for record in records:
                progress.tick(record)
                yield record
            return
        dedup = Deduplicator(self.replication_key, self.natural_key)
        end = timeutil.to_rfc3339(window.end) if window else None
        for record in records:
            value = record.get(self.replication_key)
            if end is not None and value is not None and value >= end:
                continue  # beyond this run's end: the next run reads it
            if dedup.is_new(record):
                progress.tick(record)
                yield record
        progress.done(dedup.dropped)

    def _read(self, context: Context | None, window: Window | None) -> t.Iterator[dict]:
        """The plain cursor walk, or after its first page, concurrent windows for the rest."""
        workers = int(self.config["max_workers"])
        pages = self.iter_pages(context, self.range_params(context, window))
        first = next(pages, None)
        if first is None:
            return
        yield from first
        last = first[-1].get(self.replication_key) if first else None
        # One page was all, or this stream is not windowed, or a null key cannot start a window.
        if not (first.has_next and self.windowed and window is not None and workers > 1 and last is not None):
            for page in pages:
                yield from page
            return
        pages.close()
        # The rest in parallel windows from the first page's last key (its ties are deduplicated).
        cancelled = threading.Event()
        target = self.window_pages * (self.page_size or 100)
        planner = WindowPlanner(timeutil.parse_datetime(last), window.end, target, initial_parts=workers * 2)

        def fetch(part: Window) -> WindowResult:
            return self._fetch_window(context, part, target, workers, cancelled)

        ahead = max(1, min(2 * workers, LOOK_AHEAD_RECORDS // target))
        yield from read_ordered(planner, fetch, workers, ahead=ahead, cancelled=cancelled)

    def _fetch_window(
        self, context: Context | None, window: Window, target: int, workers: int, cancelled: threading.Event
    ) -> WindowResult:
        """Read one window; when its unread rest looks bigger than `target` records, hand it back split.

        The density seen on the first page decides, so a dense window is split after one request
        and its parts are fetched in parallel; a window expected to hold little more is read on.
        """
        records: list[dict] = []
        pages = self.iter_pages(context, self.range_params(context, window), cancelled)
        for page in pages:
            records.extend(page)
            last_value = page[-1].get(self.replication_key) if page else None
            if not page.has_next or last_value is None:  # a null key cannot split a window
                continue
            last = timeutil.parse_datetime(last_value)
            covered = (last - window.start).total_seconds()
            rest = (window.end - last).total_seconds()
            if len(records) >= target or covered <= 0 or len(records) * rest / covered > target:
                remainder = split_remainder(window, last, len(records), target, max_parts=workers * 2)
                if remainder:
                    pages.close()
                    return WindowResult(window, records, last, remainder)
        return WindowResult(window, records, window.end)


class FanOutStream(KlaviyoStream):
    """A child collection read per parent (one partition each), and only where the parent shows a change.

    A partition keeps, beside its bookmark, `read_to` (the end of its last complete read) and
    `digest` (a fingerprint of what the parent shows of its children, when it shows any). It is
    read again when it was never read, when its parent's update time is at or after `read_to`
    minus the lookback, when the digest changed, or when a sweep of every partition is due:
    `sweep_hours` after the stream's last complete sweep (`swept_at` in the stream's state), for
    child edits that move neither the parent's update time nor what it shows. A catalog's FULL_TABLE
    reads every partition (its ACTIVATE_VERSION lets the target drop what the run did not emit).
    Each read is the usual bounded, sorted range from the partition's bookmark.
    """

    def parent_changed_at(self, context: Context) -> str | None:
        """The parent's update time (RFC 3339); None: unknown, so the partition is always read."""
        return None

    def parent_digest(self, context: Context) -> str | None:  # noqa: ARG002
        """A fingerprint of the children as the parent shows them; None: the parent shows nothing."""
        return None

    @cached_property
    def sweep_due(self) -> bool:
        swept = self.stream_state.get("swept_at")
        if not swept:
            return True
        try:
            last = timeutil.parse_datetime(swept)
        except ValueError:
            return True
        hours = float(self.config.get("sweep_hours", 24))
        return self._tap.run_started_at - last >= dt.timedelta(hours=hours)

    prefetch_partitions = True

    def will_read(self, context: Context | None) -> bool:
        return bool(context) and self.needs_read(context)

    def needs_read(self, context: Context) -> bool:
        if self.sweep_due or self.reads_whole:  # a whole read ends with ACTIVATE_VERSION: it must miss no parent
            return True
        state = self.get_context_state(context)
        read_to = state.get("read_to")
        changed = self.parent_changed_at(context)
        if not read_to or changed is None or self.parent_digest(context) != state.get("digest"):
            return True
        try:
            since = timeutil.parse_datetime(read_to) - dt.timedelta(minutes=float(self.config["lookback_minutes"]))
            return timeutil.parse_datetime(changed) >= since
        except ValueError:
            return True

    def get_records(self, context: Context | None) -> t.Iterable[dict]:
        if not context:  # no parent: the SDK still calls once without a partition
            return
        if not self.needs_read(context):
            self._fan_out_skipped = getattr(self, "_fan_out_skipped", 0) + 1
            return
        self._fan_out_read = getattr(self, "_fan_out_read", 0) + 1
        window = self.sync_window(context)
        yield from super().get_records(context)
        state = self.get_context_state(context)
        state["read_to"] = timeutil.to_rfc3339(window.end)
        digest = self.parent_digest(context)
        if digest is not None:
            state["digest"] = digest

    def sync(self, context: Context | None = None) -> None:
        self._fan_out_read = self._fan_out_skipped = 0
        sweep = self.sweep_due
        super().sync(context)
        self.logger.info(
            "Stream %s read %d of %d partitions (%s)",
            self.name,
            self._fan_out_read,
            self._fan_out_read + self._fan_out_skipped,
            "a sweep of every partition" if sweep else "those whose parent changed; no sweep due",
        )
        if sweep and context is None:
            self.stream_state["swept_at"] = timeutil.to_rfc3339(self._tap.run_started_at)
            self.state_manager.is_flushed = False
            self._write_state_message()


class _Progress:
    """Logs records, rate and bookmark of a long sync every few seconds, for a person watching."""

    def __init__(self, stream: KlaviyoStream, context: Context | None) -> None:
        self.stream = stream
        self.label = stream.name + (f" {dict(context)}" if context else "")
        self.count = 0
        self.started = self.last_log = time.monotonic()
        self.last_key: t.Any = None

    def tick(self, record: dict) -> None:
        self.count += 1
        if self.stream.replication_key:
            self.last_key = record.get(self.stream.replication_key)
        if self.count % 1000 == 0:
            now = time.monotonic()
            if now - self.last_log >= PROGRESS_EVERY_SECONDS:
                self.last_log = now
                self._log("progress")

    def done(self, duplicates: int) -> None:
        skipped = (
            f", {duplicates} repeated record(s) skipped (already emitted in this run: the same record read again "
            "where a page or window boundary cut records with equal timestamps)"
        )
        self._log("finished", skipped if duplicates else "")

    def _log(self, what: str, extra: str = "") -> None:
        elapsed = max(time.monotonic() - self.started, 1e-9)
        self.stream.logger.info(
            "%s %s: %d records in %.1f s (%.0f/s), bookmark %s%s",
            self.label,
            what,
            self.count,
            elapsed,
            self.count / elapsed,
            self.last_key,
            extra,
        )


@cache
def load_schema(name: str) -> dict:
    """A stream's JSON schema from tap_klaviyo/schemas/."""
    return json.loads(resources.files(schemas).joinpath(f"{name}.json").read_text())


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _sentence(text: str) -> str:
    """`text` ended by exactly one period, so a further sentence can follow."""
    return text.rstrip().rstrip(".") + "."


def redact(text: str, key: str) -> str:
    """`text` with every run of REDACT_RUN or more characters of the key's secret part replaced by
    `***`, whether written plainly or percent-encoded (`pk_abc...` becomes `pk_***`)."""
    secret = key.removeprefix("pk_")
    if not secret:
        return text
    run = min(REDACT_RUN, len(secret))
    decoded, spans = [], []  # text with %XX decoded, and the span of text each character came from
    i = 0
    while i < len(text):
        escape = _PERCENT_ESCAPE.match(text, i) if text[i] == "%" else None
        if escape:
            decoded.append(chr(int(escape.group(1), 16)))
            spans.append((i, i + 3))
            i += 3
        else:
            decoded.append(text[i])
            spans.append((i, i + 1))
            i += 1
    plain = "".join(decoded)
    out, kept_from, i = [], 0, 0
    while i <= len(plain) - run:
        if plain[i : i + run] not in secret:
            i += 1
            continue
        end = i + run
        while end < len(plain) and plain[i : end + 1] in secret:
            end += 1
        out += [text[kept_from : spans[i][0]], "***"]
        kept_from, i = spans[end - 1][1], end
    out.append(text[kept_from:])
    return "".join(out)


def _representable(value: t.Any, path: str, problems: list[str]) -> t.Any:
    """`value` with what JSON output cannot carry replaced: strings with lone surrogates (from
    `\\ud800` escapes or invalid UTF-8) get U+FFFD, infinite and NaN numbers become null."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            problems.append(f"{path or 'a string'} holds invalid UTF-8 or a lone surrogate, replaced by U+FFFD")
            return _SURROGATE.sub("\ufffd", value)
        return value
    if isinstance(value, float) and not math.isfinite(value):
        problems.append(f"{path} is {value} (beyond a JSON number), emitted as null")
        return None
    if isinstance(value, dict):
        return {
            _representable(key, path, problems): _representable(item, f"{path}.{key}".lstrip("."), problems)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_representable(item, f"{path}[{i}]", problems) for i, item in enumerate(value)]
    return value


def _throttled_retry_after(error: BaseException) -> float | None:
    """The Retry-After of a 429 (the bucket is paused for it), None for any other failure."""
    response = getattr(error, "response", None)
    if response is None or response.status_code != 429:
        return None
    return _retry_after(response)


def _could_not_connect(error: BaseException) -> bool:
    """A connection that was never established (refused, unknown host), not one that broke."""
    if not isinstance(error, requests.exceptions.ConnectionError) or isinstance(error, requests.exceptions.Timeout):
        return False
    reason = getattr(error.args[0], "reason", None) if error.args else None
    return isinstance(reason, urllib3.exceptions.NewConnectionError)


def _origin(url: str) -> tuple[str, str, int | None]:
    """Scheme, host and port of a URL, with the scheme's default port filled in."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1  # an unreadable port matches nothing
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(scheme)


def _origin_text(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}"


def _one_line(exc: BaseException | None) -> str:
    text = str(exc) if exc is not None else ""
    return " ".join(text.split()) or type(exc).__name__
