"""Keyset pagination and opaque cursors shared by every collection endpoint.

A cursor is the sort key of the last record served, so records inserted or
updated between two pages are neither skipped nor repeated by position: a
record whose key moves past the cursor simply shows up later, as in a real
keyset scan.
"""

from __future__ import annotations

import base64
import binascii
from bisect import bisect_left, bisect_right
from typing import Any, Callable, Sequence

import msgspec

Bound = tuple[Any, bool]  # (value, inclusive)


class CursorError(ValueError):
    """The page[cursor] value was not produced by this emulator."""


def encode_cursor(key: Sequence[Any]) -> str:
    """Opaque, URL-safe cursor for a sort key."""
    raw = b"next::" + msgspec.json.encode(list(key))
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str) -> tuple:
    """Inverse of encode_cursor; raises CursorError on anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        if not raw.startswith(b"next::"):
            raise CursorError(token)
        key = msgspec.json.decode(raw[6:])
    except (binascii.Error, ValueError, msgspec.DecodeError) as exc:
        raise CursorError(token) from exc
    if not isinstance(key, list) or not key:
        raise CursorError(token)
    return tuple(key)


def keyset_page(
    order: Sequence[Any],
    keyfn: Callable[[Any], tuple],
    size: int,
    *,
    after: tuple | None = None,
    desc: bool = False,
    pred: Callable[[Any], bool] | None = None,
    lo: Bound | None = None,
    hi: Bound | None = None,
) -> tuple[list, bool]:
    """One page of `order` (sorted ascending by keyfn) after the cursor key.

    `lo`/`hi` bound the first key component and only serve to skip work; `pred`
    decides membership. Returns the records and whether more remain.
    """
    first = lambda item: keyfn(item)[0]  # noqa: E731
    try:
        if not desc:
            start = bisect_right(order, after, key=keyfn) if after is not None else 0
            if lo is not None:
                start = max(start, (bisect_left if lo[1] else bisect_right)(order, lo[0], key=first))
            indexes = range(start, len(order))
            beyond = None if hi is None else (lambda v: v > hi[0] or (v == hi[0] and not hi[1]))
        else:
            end = bisect_left(order, after, key=keyfn) if after is not None else len(order)
            if hi is not None:
                end = min(end, (bisect_right if hi[1] else bisect_left)(order, hi[0], key=first))
            indexes = range(end - 1, -1, -1)
            beyond = None if lo is None else (lambda v: v < lo[0] or (v == lo[0] and not lo[1]))
    except TypeError as exc:  # a cursor key of the wrong shape for this sort
        raise CursorError(str(after)) from exc
    out: list = []
    for i in indexes:
        item = order[i]
        if beyond is not None and beyond(first(item)):
            break
        if pred is None or pred(item):
            if len(out) == size:
                return out, True
            out.append(item)
    return out, False
