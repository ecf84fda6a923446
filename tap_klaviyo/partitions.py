"""Concurrent reading of a stream's partitions: first pages fetched ahead, records emitted in order.

An incremental run of a partitioned stream (one partition per list, segment, metric, flow action
or form) mostly costs one request per partition: the first page of its range, often empty. Read
one partition after another, the run waits a round trip per partition, far below what the rate
limit allows. The reader here sends the first request of the next partitions ahead, on a pool of
`max_workers` threads paced only by the endpoint's limiter, while the SDK's loop still takes the
partitions one at a time in their order: each partition's records are emitted together and in
replication-key order, its bookmark and STATE behave exactly as in a sequential read, and a
partition with more pages continues on the main thread (with the window reader where the stream
has one) from the prefetched first page.

The request to send ahead is planned on the main thread from the partition's state, the same way
its read will build it; the read takes the prefetched page only when it asks for that very URL,
so a plan that no longer holds costs one request and never a wrong record. At most `ahead`
first pages are held at any time (the memory bound): `max_workers`, or fewer where so many full
pages would hold more records than the stream's buffer.
"""

from __future__ import annotations

import threading
import typing as t
from concurrent.futures import Future, ThreadPoolExecutor

from tap_klaviyo.state import frozen_context

if t.TYPE_CHECKING:
    import requests
    from singer_sdk.helpers.types import Context


class FirstPages:
    """First pages of the partitions after the current one, fetched by a bounded pool."""

    def __init__(
        self,
        partitions: t.Sequence[Context],
        plan: t.Callable[[Context], requests.PreparedRequest | None],
        fetch: t.Callable[[requests.PreparedRequest, Context], t.Any],
        workers: int,
        ahead: int,
    ) -> None:
        """`plan` gives the first request of a partition's read (None: it sends none); `fetch` sends it,
        on `workers` threads, for at most `ahead` partitions at a time."""
        self._partitions = list(partitions)
        self._index = {frozen_context(partition): i for i, partition in enumerate(self._partitions)}
        self._plan = plan
        self._fetch = fetch
        self._ahead = max(1, ahead)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="klaviyo-partition")
        self._lock = threading.Lock()
        self._pending: dict[tuple, tuple[int, str, Future]] = {}  # context -> (position, url, first page)
        self._planned_to = 0  # partitions before this position have been planned
        self.sent = self.used = 0

    def advance(self, context: Context | None) -> None:
        """The SDK starts reading `context`: forget what lies before it, send ahead what follows.

        Runs on the main thread, like every plan: plans read the partitions' state.
        """
        position = self._index.get(frozen_context(context)) if context else None
        if position is None:
            return
        with self._lock:
            for key, (at, _, future) in list(self._pending.items()):
                if at < position:  # its read did not take it (the plan no longer held)
                    future.cancel()
                    del self._pending[key]
            waiting = sum(1 for at, _, _ in self._pending.values() if at >= position)
        self._planned_to = max(self._planned_to, position)
        while waiting < self._ahead and self._planned_to < len(self._partitions):
            partition = self._partitions[self._planned_to]
            self._planned_to += 1
            prepared = self._plan(partition)
            if prepared is None:
                continue
            future = self._pool.submit(self._fetch, prepared, partition)
            with self._lock:
                self._pending[frozen_context(partition)] = (self._planned_to - 1, prepared.url, future)
                self.sent += 1
            waiting += 1

    def take(self, context: Context | None, url: str) -> Future | None:
        """The prefetched first page of `context` if it was fetched from `url` (any thread may ask)."""
        if not context:
            return None
        key = frozen_context(context)
        with self._lock:
            pending = self._pending.get(key)
            if pending is None or pending[1] != url:
                return None
            del self._pending[key]
            self.used += 1
        return pending[2]

    def close(self) -> None:
        """Drop what no read took and wait for requests in flight (a cancelled run stops them at once)."""
        with self._lock:
            for _, _, future in self._pending.values():
                future.cancel()
            self._pending.clear()
        self._pool.shutdown(wait=True, cancel_futures=True)
