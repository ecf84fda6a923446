"""Property-based tests (Hypothesis) for the pieces correctness rests on: the Deduplicator
against a model, the filter builder read back by the emulator's own filter parser, the
replication windows' filters tiling a range without gaps or overlaps, and datetime
normalisation across renderings and offsets. (test_timeutil.py and test_windows.py hold the
earlier ones.)
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from klaviyo_emulator.filters import Literal, parse_datetime_us, parse_filter
from tap_klaviyo import filters, timeutil
from tap_klaviyo.client import ALL_HISTORY, Deduplicator
from tap_klaviyo.windows import split

UTC = dt.timezone.utc
EPOCH = dt.datetime(1970, 1, 1, tzinfo=UTC)
moments = st.datetimes(min_value=dt.datetime(2000, 1, 2), max_value=dt.datetime(2100, 1, 1), timezones=st.just(UTC))


def micros(moment: dt.datetime) -> int:
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


# --- Deduplicator --------------------------------------------------------------------------


@st.composite
def sorted_reads_with_replays(draw):
    """Distinct records in key order, read the way the tap reads them: a page or window
    boundary may fall anywhere, and the next read restarts *at* the last key (inclusive), so
    the records sharing that key are delivered again."""
    keys = sorted(draw(st.lists(st.integers(0, 30), min_size=0, max_size=80)))
    records = [{"k": key, "id": f"r{i}"} for i, key in enumerate(keys)]
    cuts = sorted(set(draw(st.lists(st.integers(1, max(1, len(records))), max_size=10))))
    stream, replays, done = [], 0, 0
    for cut in [*cuts, len(records)]:
        cut = min(cut, len(records))
        if cut <= done:
            continue
        stream.extend(records[done:cut])
        done = cut
        if done and (done < len(records) or draw(st.booleans())):
            last = records[done - 1]["k"]
            again = [r for r in records[:done] if r["k"] == last]
            stream.extend(dict(r) for r in again)
            replays += len(again)
    return records, stream, replays


@given(sorted_reads_with_replays())
def test_deduplicator_matches_a_seen_set_model_on_sorted_reads(case):
    records, stream, replays = case
    dedup = Deduplicator("k", ("id",))
    out = [r for r in stream if dedup.is_new(r)]
    model, seen = [], set()
    for record in stream:
        if record["id"] not in seen:
            seen.add(record["id"])
            model.append(record)
    assert out == model == records
    assert dedup.dropped == replays


@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from("abcd"), st.none() | st.integers(0, 3)), max_size=60))
def test_deduplicator_only_drops_repeats_within_one_key_value(rows):
    """Whatever the order, a record is dropped only when the same identity was already seen at
    the same key value since that value began; different key values never suppress each other."""
    rows.sort(key=lambda row: row[0])
    dedup = Deduplicator("k", ("id", "part"))
    current, seen = object(), set()
    for key, ident, part in rows:
        record = {"k": key, "id": ident, "part": part}
        if key != current:
            current, seen = key, set()
        expected = (ident, part) not in seen
        seen.add((ident, part))
        assert dedup.is_new(record) is expected


# --- Filter builder read back by the emulator's parser ------------------------------------

fields = st.from_regex(r"[A-Za-z_$][A-Za-z0-9_$.\-]{0,20}", fullmatch=True)
operators = st.sampled_from(["equals", "less-than", "less-or-equal", "greater-than", "greater-or-equal", "contains"])
values = st.one_of(
    st.text(max_size=30),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    moments,
)


def expected_literal(value) -> Literal:
    if isinstance(value, bool):
        return Literal("boolean", value)
    if isinstance(value, int):
        return Literal("number", value)
    if isinstance(value, dt.datetime):
        return Literal("datetime", micros(value))
    return Literal("string", value)


@settings(max_examples=300)
@given(st.lists(st.tuples(operators, fields, values), min_size=1, max_size=5))
def test_filters_round_trip_through_the_emulators_parser(terms):
    text = filters.join(*(filters.condition(op, field, value) for op, field, value in terms))
    parsed = parse_filter(text)
    assert [(c.op, c.field, c.value) for c in parsed] == [(op, f, expected_literal(v)) for op, f, v in terms]


@given(moments, st.integers(-14 * 60, 14 * 60))
def test_filter_datetimes_are_the_same_instant_whatever_the_input_offset(moment, offset_minutes):
    local = moment.astimezone(dt.timezone(dt.timedelta(minutes=offset_minutes)))
    rendered = filters.literal(local)
    assert rendered.endswith("Z") and parse_datetime_us(rendered) == micros(moment)


# --- Replication windows tile the range ---------------------------------------------------


@pytest.fixture(scope="module")
def streams():
    from tap_klaviyo.tap import TapKlaviyo
    from tests.conftest import API_KEY

    tap = TapKlaviyo(config={"api_key": API_KEY}, validate_config=False)
    return {
        "receive": (tap.streams["receive"], {"metric_id": "AbC123"}),
        "profiles": (tap.streams["profiles"], None),
        "list_members": (tap.streams["list_members"], {"list_id": "XyZ789"}),
        "campaigns": (tap.streams["campaigns"], {"channel": "email", "archived": False}),
        "global_exclusions": (tap.streams["global_exclusions"], None),
    }


def admits(conditions, field: str, instant_us: int) -> bool:
    """Whether a parsed filter's conditions on `field` let a record at `instant_us` through."""
    ok = True
    for c in conditions:
        if c.field != field:
            continue
        bound = c.value.value
        ok &= {
            "greater-or-equal": instant_us >= bound,
            "greater-than": instant_us > bound,
            "less-than": instant_us < bound,
            "less-or-equal": instant_us <= bound,
        }[c.op]
    return ok


@settings(max_examples=60, deadline=None)
@given(
    name=st.sampled_from(["receive", "profiles", "list_members", "campaigns", "global_exclusions"]),
    start=moments,
    span=st.integers(1, 10**14),
    parts=st.integers(1, 12),
    probes=st.lists(st.integers(0, 10**14), min_size=1, max_size=20),
    from_all_history=st.booleans(),
)
def test_range_params_windows_cover_a_range_without_gaps_or_overlaps(
    streams, name, start, span, parts, probes, from_all_history
):
    stream, context = streams[name]
    if from_all_history:
        start = ALL_HISTORY
    end = start + dt.timedelta(microseconds=span)
    windows = split(start, end, parts)
    assume(windows)
    parsed = [parse_filter(stream.range_params(context, w)["filter"]) for w in windows]
    field = stream.filter_field
    lo, hi = micros(start), micros(end)
    for probe in [0, span - 1, *probes, -1, span]:
        instant = lo + probe
        inside = lo <= instant < hi
        hits = sum(admits(conditions, field, instant) for conditions in parsed)
        if inside or instant >= hi:
            assert hits == (1 if inside else 0), (name, probe, windows)
        elif not from_all_history:
            assert hits == 0, (name, probe)
    # The partition's own filter (metric, channel, ...) is on every window's query.
    base = stream.base_params(context).get("filter")
    if base:
        assert all(stream.range_params(context, w)["filter"].startswith(base) for w in windows)


@given(moments, st.integers(1, 50))
def test_split_windows_are_consecutive_and_half_open(start, parts):
    end = start + dt.timedelta(hours=parts)
    windows = split(start, end, parts)
    assert windows[0].start == start and windows[-1].end == end
    assert all(a.end == b.start and a.start < a.end for a, b in zip(windows, windows[1:]))


# --- Datetime normalisation ----------------------------------------------------------------


@st.composite
def renderings(draw):
    moment = draw(moments)
    offset = dt.timezone(dt.timedelta(minutes=draw(st.integers(-14 * 60, 14 * 60))))
    local = moment.astimezone(offset)
    sep = draw(st.sampled_from(["T", " "]))
    digits = draw(st.integers(0, 9))
    fraction = f"{local.microsecond:06d}".ljust(9, "7")[:digits]
    text = local.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + (f".{fraction}" if digits else "")
    minutes = int(local.utcoffset().total_seconds() // 60)
    sign = "-" if minutes < 0 else "+"
    hh, mm = divmod(abs(minutes), 60)
    suffix = draw(st.sampled_from([f"{sign}{hh:02d}:{mm:02d}", f"{sign}{hh:02d}{mm:02d}"]))
    if minutes == 0:
        suffix = draw(st.sampled_from([suffix, "Z", "z", ""]))
    kept = int(fraction[:6].ljust(6, "0")) if digits else 0
    instant = moment.replace(microsecond=kept)
    return text + suffix, instant


@given(renderings())
def test_canonical_gives_the_utc_instant_in_one_form(case):
    text, instant = case
    canonical = timeutil.canonical(text)
    assert canonical == timeutil.to_rfc3339(instant)
    assert timeutil.canonical(canonical) == canonical, "idempotent"
    assert timeutil.normalize(text) == canonical


@given(st.text(max_size=30))
def test_canonical_is_none_or_a_parseable_canonical_string(text):
    assume(len(text) != 25 and len(text) != 32)  # the fast path trusts strings of Klaviyo's exact shapes
    canonical = timeutil.canonical(text)
    if canonical is None:
        assert timeutil.normalize(text) == text
    else:
        assert timeutil.to_rfc3339(timeutil.parse_datetime(canonical)) == canonical
