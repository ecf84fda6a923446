"""Fault injection: scripted faults for the next N matching requests, and seeded random faults.

Kinds: 500/502/503/504 (JSON:API error), 429 (with Retry-After), html_503 (a
Cloudflare-style text/html page), reset (connection closed mid-body), truncate
(Content-Length larger than the body, then close) and stall (sleep before
answering, to trip client timeouts). Two more are scripted only: response (a canned
status, headers and body) and next_link (the normal answer with `links.next` rewritten).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

KINDS = ("500", "502", "503", "504", "429", "reset", "truncate", "stall", "html_503")
SCRIPTED_KINDS = ("response", "next_link")


@dataclass
class Fault:
    """One fault to apply to a response."""

    kind: str
    retry_after: int = 1
    stall_seconds: float = 5.0
    response: tuple[int, dict[str, str], bytes] | None = None  # kind "response": status, headers, body
    rewrite_next: Callable[[str, str | None], str | None] | None = None  # kind "next_link": (request URL, next) -> next


@dataclass
class FaultPlan:
    """Random faults, deterministic by seed and request order.

    `error_rate` starts a burst of `burst` consecutive 5xx answers; the other
    rates apply per request. `outage=True` answers 503 to everything.
    """

    seed: int = 0
    error_rate: float = 0.0
    burst: int = 1
    reset_rate: float = 0.0
    truncate_rate: float = 0.0
    stall_rate: float = 0.0
    stall_seconds: float = 5.0
    outage: bool = False
    _rng: random.Random = field(init=False, repr=False)
    _burst_left: int = field(default=0, init=False, repr=False)
    _burst_kind: str = field(default="503", init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def draw(self) -> Fault | None:
        """The fault (if any) for the next request."""
        if self.outage:
            return Fault("503")
        with self._lock:
            if self._burst_left:
                self._burst_left -= 1
                return Fault(self._burst_kind)
            r = self._rng.random()
            kind = self._rng.choice(("500", "502", "503", "504"))
            if r < self.error_rate:
                self._burst_left, self._burst_kind = max(0, self.burst - 1), kind
                return Fault(kind)
            r -= self.error_rate
            for rate, name in ((self.reset_rate, "reset"), (self.truncate_rate, "truncate"), (self.stall_rate, "stall")):
                if r < rate:
                    return Fault(name, stall_seconds=self.stall_seconds)
                r -= rate
        return None


@dataclass
class Scripted:
    """A fault queued by Emulator.inject for the next `count` requests whose path starts with `path`."""

    fault: Fault
    count: int
    path: str | None


class FaultQueue:
    """Thread-safe queue of scripted faults, consumed in injection order."""

    def __init__(self) -> None:
        self._items: list[Scripted] = []
        self._lock = threading.Lock()

    def add(self, kind: str, count: int, path: str | None, retry_after: int, stall_seconds: float) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; choose one of {KINDS}")
        self.add_fault(Fault(kind, retry_after, stall_seconds), count, path)

    def add_fault(self, fault: Fault, count: int, path: str | None) -> None:
        with self._lock:
            self._items.append(Scripted(fault, count, path))

    def take(self, path: str) -> Fault | None:
        with self._lock:
            for item in self._items:
                if item.path is None or path.startswith(item.path):
                    item.count -= 1
                    if item.count <= 0:
                        self._items.remove(item)
                    return item.fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
