"""The HTTP side: a threaded HTTP/1.1 keep-alive server and the `Emulator` facade tests drive.

Request pipeline: route (404) -> auth (401/403) -> revision (400/404) ->
rate limit (429) -> query validation (400) -> handler. Latency and faults wrap
the whole pipeline, so a fault can hit any request, valid or not.
"""

from __future__ import annotations

import logging
import re
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, unquote, urlsplit

import msgspec

from .account import Account
from .areas import POST_ENDPOINTS
from .endpoints import OMNI_ROUTES, ROUTES, Handlers, match, parse_query
from .errors import ApiError, not_found, throttled
from .faults import Fault, FaultPlan, FaultQueue
from .ratelimit import RateLimiter

log = logging.getLogger("klaviyo_emulator")

JSONAPI = "application/vnd.api+json"
# Published stable revisions (branches of klaviyo/openapi, plus 2026-10-15 from the SDK), see klaviyo-api.md §1.1.
PUBLISHED_REVISIONS = (
    "2022-10-17", "2023-01-24", "2023-02-22", "2023-06-15", "2023-07-15", "2023-08-15", "2023-09-15", "2023-10-15",
    "2023-12-15", "2024-02-15", "2024-05-15", "2024-06-15", "2024-07-15", "2024-10-15", "2025-01-15", "2025-04-15",
    "2025-07-15", "2025-10-15", "2026-01-15", "2026-04-15", "2026-07-15", "2026-10-15",
)  # fmt: skip
_REVISION_RE = re.compile(r"(\d{4}-\d{2}-\d{2})(?:\.[a-z]+)?\Z")
_KEY_RE = re.compile(r"pk_[A-Za-z0-9]{10,}\Z")
HTML_503 = (
    b"<!DOCTYPE html>\n<html><head><title>503 Service Temporarily Unavailable | a.klaviyo.com | Cloudflare</title></head>"
    b"<body><h1>Error 503</h1><p>Service Temporarily Unavailable</p><p>Cloudflare Ray ID: 8a1b2c3d4e5f6789</p></body></html>\n"
)


@dataclass(frozen=True)
class RequestRecord:
    """One served request as the log keeps it."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    headers: dict[str, str]
    fault: str | None
    time: float
    body: bytes = b""


def check_revision(value: str | None, today: date | None = None) -> str:
    """The revision date to serve, or ApiError. Supported = published and less than 2 years old.

    Missing header -> 400 `invalid` (the spec marks it required); a date that is
    not a published revision -> 404 "No valid revisions found for method" (what
    the live API answers, klaviyo-api.md §1.2); a retired revision -> 400
    `invalid` naming the end of support. A `.pre` suffix serves the stable shape.
    `today` is the emulator's clock (Account.now()), so tests can pin it.
    """
    if not value:
        raise ApiError(400, "invalid", "The 'revision' header is required (format: YYYY-MM-DD[.suffix]).", {"parameter": "revision"})
    m = _REVISION_RE.match(value.strip())
    if not m:
        raise ApiError(400, "invalid", f"'{value}' is not a valid revision (format: YYYY-MM-DD[.suffix]).", {"parameter": "revision"})
    revision = m.group(1)
    if revision not in PUBLISHED_REVISIONS:
        raise not_found("No valid revisions found for method")
    y, mo, d = map(int, revision.split("-"))
    support_end = date(y + 2, mo, d)
    if (today or date.today()) >= support_end:
        raise ApiError(
            400, "invalid",
            f"Revision {revision} is retired (supported until {support_end.isoformat()}); use a revision released in the last two years.",
            {"parameter": "revision"},
        )  # fmt: skip
    return revision


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, address, emulator: "Emulator"):
        self.emulator = emulator
        self.reset_fds: set[int] = set()
        super().__init__(address, _Handler)

    def shutdown_request(self, request):
        """Connections marked for a reset are closed with SO_LINGER 0, i.e. a TCP RST instead of a FIN."""
        try:
            fd = request.fileno()
        except OSError:
            fd = -1
        if fd in self.reset_fds:
            self.reset_fds.discard(fd)
            request.close()
            return
        super().shutdown_request(request)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "klaviyo-emulator"
    sys_version = ""
    timeout = 60

    def setup(self):
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body go out in separate writes

    def do_GET(self):  # noqa: N802 (http.server naming)
        self.server.emulator._serve(self)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format, *args):  # noqa: A002
        log.debug("%s " + format, self.address_string(), *args)


class Emulator:
    """A Klaviyo API emulator serving `account` on host:port (0 = a free port) in a background thread."""

    def __init__(
        self,
        account: Account | None = None,
        rate_limits: bool = False,
        rate_limit_scale: float = 1.0,
        latency_ms: float = 0,
        faults: FaultPlan | None = None,
        forbidden_key_prefix: str | None = "pk_noscope_",
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], float] = time.time,
    ):
        """`clock` (epoch seconds) drives the rate-limit windows and the request log's times: a test
        passes a virtual clock it shares with the client's limiter to check limits without waiting."""
        self.account = account if account is not None else Account.generate()
        self.rate_limits = rate_limits
        self.clock = clock
        self.limiter = RateLimiter(rate_limit_scale, clock)
        self.latency_ms = latency_ms
        self.faults = faults
        self.forbidden_key_prefix = forbidden_key_prefix
        self.host, self.port = host, port
        self.handlers = Handlers(self.account)
        self.requests: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        self._scripted = FaultQueue()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "Emulator":
        """Bind and serve in a daemon thread; returns self."""
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), name="klaviyo-emulator", daemon=True)
        self._thread.start()
        log.info("klaviyo emulator listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "Emulator":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def rate_limit_scale(self) -> float:
        return self.limiter.scale

    @rate_limit_scale.setter
    def rate_limit_scale(self, value: float) -> None:
        self.limiter.scale = value

    # ------------------------------------------------------- test controls
    def inject(self, kind: str, count: int = 1, path: str | None = None, retry_after: int = 1, stall_seconds: float = 5.0) -> None:
        """Apply fault `kind` to the next `count` requests whose path starts with `path` (any path if None)."""
        self._scripted.add(kind, count, path, retry_after, stall_seconds)

    def script(self, path: str, status: int, body: bytes | dict = b"", headers: dict[str, str] | None = None, count: int = 1) -> None:
        """Answer the next `count` requests whose path starts with `path` with exactly this (a dict body is JSON)."""
        if isinstance(body, dict):
            body = msgspec.json.encode(body)
        fault = Fault("response", response=(status, {"Content-Type": JSONAPI, **(headers or {})}, body))
        self._scripted.add_fault(fault, count, path)

    def rewrite_next(self, path: str, rewrite: Callable[[str, str | None], str | None], count: int = 1) -> None:
        """Serve the next `count` requests on `path` normally, but with `links.next` = rewrite(request URL, links.next)."""
        self._scripted.add_fault(Fault("next_link", rewrite_next=rewrite), count, path)

    def clear_faults(self) -> None:
        self._scripted.clear()

    def clear_requests(self) -> None:
        with self._log_lock:
            self.requests.clear()

    # ------------------------------------------------------------- serving
    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        started = self.clock()
        url = urlsplit(h.path)
        path = unquote(url.path)
        params = parse_qsl(url.query, keep_blank_values=True)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        if self.latency_ms:
            time.sleep(self.latency_ms / 1000)
        fault = self._scripted.take(path) or (self.faults.draw() if self.faults is not None else None)
        if fault is not None and fault.kind == "stall":
            time.sleep(fault.stall_seconds)
        status, headers, body_of_fault = self._fault_response(fault) if fault is not None else (None, None, None)
        if status is None:
            post = POST_ENDPOINTS.get(path.rstrip("/"))
            if post is not None:
                status, headers, answer = self.respond_post(h.command, path, params, dict(h.headers.items()), body)
            else:
                status, headers, answer = self.respond(h.command, path, params, dict(h.headers.items()))
            if fault is not None and fault.kind == "next_link" and status == 200:
                answer = _rewrite_next(answer, self.base_url + h.path, fault.rewrite_next)
        else:
            answer = body_of_fault
        with self._log_lock:
            self.requests.append(RequestRecord(h.command, path, dict(params), status, dict(h.headers.items()), fault.kind if fault else None, started, body))
        self._write(h, status, headers, answer, fault.kind if fault else None)

    def _fault_response(self, fault: Fault) -> tuple:
        if fault.kind == "response":
            return fault.response
        if fault.kind == "html_503":
            return 503, {"Content-Type": "text/html; charset=UTF-8"}, HTML_503
        if fault.kind == "429":
            err = throttled(fault.retry_after)
            return 429, {"Content-Type": JSONAPI, **err.headers}, msgspec.json.encode(err.document())
        if fault.kind in ("500", "502", "503", "504"):
            status = int(fault.kind)
            return status, {"Content-Type": JSONAPI}, msgspec.json.encode(ApiError(status, "error", "A server error occurred.").document())
        return None, None, None  # reset / truncate / stall damage a normal response; next_link edits one

    def _write(self, h: BaseHTTPRequestHandler, status: int, headers: dict, body: bytes, fault: str | None) -> None:
        h.send_response(status)
        for name, value in headers.items():
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if fault in ("reset", "truncate"):
            h.wfile.write(body[: max(1, len(body) // 2)])
            h.close_connection = True
            if fault == "reset":
                h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self._server.reset_fds.add(h.connection.fileno())
            return
        h.wfile.write(body)

    def respond(self, method: str, path: str, params: list[tuple[str, str]], headers: dict[str, str]) -> tuple[int, dict, bytes]:
        """Status, headers and body for one request to a GET endpoint, without faults."""
        rate_headers: dict[str, str] = {}
        try:
            lowered = {k.lower(): v for k, v in headers.items()}
            if not any(pattern.match(path) for pattern, _ in ROUTES + OMNI_ROUTES):
                raise not_found(f"The path {path} could not be found.")
            if method != "GET":
                raise ApiError(405, "method_not_allowed", f'Method "{method}" not allowed.')
            api_key = self._authenticate(lowered.get("authorization"))
            revision = check_revision(lowered.get("revision"), self.account.now().date())
            endpoint, path_id = match(path, revision)
            if self.rate_limits:
                predictive = any("predictive_analytics" in v for k, v in params if k.startswith("additional-fields["))
                burst, steady = endpoint.rate_predictive if predictive and endpoint.rate_predictive else endpoint.rate
                bucket = endpoint.rate_bucket + (":predictive" if predictive and endpoint.rate_predictive else "")
                decision = self.limiter.check(api_key, bucket, burst, steady)
                if not decision.allowed:
                    raise throttled(decision.retry_after)
                rate_headers = decision.headers()
            query = parse_query(endpoint, revision, path, params, path_id)
            body = self.handlers.handle(query, self.base_url)
            return 200, {"Content-Type": JSONAPI, **rate_headers}, body
        except ApiError as err:
            extra = err.headers if err.status == 429 else rate_headers
            return err.status, {"Content-Type": JSONAPI, **extra}, msgspec.json.encode(err.document())
        except Exception:  # an emulator bug must still produce an HTTP answer
            log.exception("internal error serving %s", path)
            return 500, {"Content-Type": JSONAPI}, msgspec.json.encode(ApiError(500, "error", "A server error occurred.").document())

    def respond_post(self, method: str, path: str, params: list[tuple[str, str]], headers: dict[str, str], body: bytes) -> tuple[int, dict, bytes]:
        """A POST query endpoint (metric aggregates, reports): auth, revision, its own rate tier, then strict body validation."""
        endpoint = POST_ENDPOINTS[path.rstrip("/")]
        lowered = {k.lower(): v for k, v in headers.items()}
        rate_headers: dict[str, str] = {}
        try:
            if method != "POST":
                raise ApiError(405, "method_not_allowed", f'Method "{method}" not allowed.')
            api_key = self._authenticate(lowered.get("authorization"))
            check_revision(lowered.get("revision"), self.account.now().date())
            if self.rate_limits:
                decision = self.limiter.check(api_key, endpoint.operation, *endpoint.rate)
                if not decision.allowed:
                    raise throttled(decision.retry_after)
                rate_headers = decision.headers()
            content_type = lowered.get("content-type", "")
            if "json" not in content_type:
                raise ApiError(415, "unsupported_media_type", f'Unsupported media type "{content_type}" in request.')
            fields = None
            for key, value in params:
                if key == f"fields[{endpoint.resource_type}]" and all(v in endpoint.fields for v in value.split(",")):
                    fields = value.split(",")
                elif key == "page_cursor" and endpoint.page_cursor:
                    raise ApiError(400, "invalid", "Invalid page cursor.", {"parameter": key})  # these answers are never paged
                else:
                    raise ApiError(400, "invalid", f"'{key}' is not a valid query parameter.", {"parameter": key})
            with self.account.lock:
                answer = getattr(self.handlers, endpoint.handler)(body, self.base_url, endpoint.resource_type, fields)
            return 200, {"Content-Type": JSONAPI, **rate_headers}, answer
        except ApiError as err:
            extra = err.headers if err.status == 429 else rate_headers
            return err.status, {"Content-Type": JSONAPI, **extra}, msgspec.json.encode(err.document())

    def _authenticate(self, authorization: str | None) -> str:
        """The API key, or 401/403 as Klaviyo answers them."""
        scheme, _, key = (authorization or "").partition(" ")
        key = key.strip()
        if scheme == "Klaviyo-API-Key" and self.forbidden_key_prefix and key.startswith(self.forbidden_key_prefix):
            raise ApiError(403, "permission_denied", "You do not have permission to perform this action.", {"pointer": "/data/"})
        if scheme != "Klaviyo-API-Key" or not _KEY_RE.match(key):
            raise ApiError(401, "not_authenticated", "Missing or invalid private key.", {"pointer": "/data/"})
        return key


def _rewrite_next(body: bytes, request_url: str, rewrite: Callable[[str, str | None], str | None]) -> bytes:
    document = msgspec.json.decode(body)
    links = document.setdefault("links", {})
    links["next"] = rewrite(request_url, links.get("next"))
    return msgspec.json.encode(document)
