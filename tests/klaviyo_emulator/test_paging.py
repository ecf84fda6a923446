"""Keyset pagination and cursors."""

from __future__ import annotations

import pytest

from klaviyo_emulator.paging import CursorError, decode_cursor, encode_cursor, keyset_page

ORDER = list(range(10))
KEY = lambda i: (i // 2, i)  # noqa: E731  (pairs share a first key component)


def test_cursor_round_trip_and_rejection():
    token = encode_cursor([1700000000, "abc"])
    assert decode_cursor(token) == (1700000000, "abc")
    assert "=" not in token
    for bad in ("", "!!!", encode_cursor([])[:-2] + "zz", "bm90IGEgY3Vyc29y"):
        with pytest.raises(CursorError):
            decode_cursor(bad)


def test_pages_ascending_and_descending():
    page, more = keyset_page(ORDER, KEY, 4)
    assert page == [0, 1, 2, 3] and more
    page, more = keyset_page(ORDER, KEY, 4, after=KEY(3))
    assert page == [4, 5, 6, 7] and more
    page, more = keyset_page(ORDER, KEY, 4, after=KEY(7))
    assert page == [8, 9] and not more
    page, more = keyset_page(ORDER, KEY, 4, desc=True, after=KEY(6))
    assert page == [5, 4, 3, 2] and more


def test_exact_fit_has_no_next_page():
    assert keyset_page(ORDER, KEY, 10) == (ORDER, False)


def test_bounds_and_predicate():
    page, _ = keyset_page(ORDER, KEY, 10, lo=(1, False), hi=(3, True))
    assert page == [4, 5, 6, 7]
    page, _ = keyset_page(ORDER, KEY, 10, lo=(1, True), hi=(3, False), pred=lambda i: i % 2 == 0)
    assert page == [2, 4]
    page, _ = keyset_page(ORDER, KEY, 10, desc=True, lo=(4, True))
    assert page == [9, 8]


def test_cursor_of_the_wrong_shape():
    with pytest.raises(CursorError):
        keyset_page(ORDER, KEY, 3, after=("x", None))
