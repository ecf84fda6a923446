"""The passthrough decoder: only the schema's attributes, undecoded where asked, nothing kept alive."""

from __future__ import annotations

import sys

import msgspec

from tap_klaviyo import jsonapi

BODY = (
    b'{"data":[{"type":"event","id":"e1","attributes":{"timestamp":1,"event_properties":{"Price":12.50,'
    b'"Items":["a",{"b":null}]},"datetime":"2024-01-01 00:00:00+00:00","extra":{"x":1}},"relationships":'
    b'{"profile":{"data":{"type":"profile","id":"p1"},"links":{"self":"s"}},"attributions":{"links":{"self":"s"}}},'
    b'"links":{"self":"s"}}],"links":{"self":"s","next":null}}'
)


COLUMNS = ["id", "timestamp", "event_properties", "datetime", "profile_id", "metric_id"]


def decoder():
    return jsonapi.PassthroughDecoder(
        COLUMNS, {"event_properties"}, {"profile": "profile_id", "metric": "metric_id"}, other_relationships=["attributions"]
    )


def test_records_hold_every_column_in_order_and_raw_attributes_their_exact_text():
    (record,) = decoder().records(decoder()(BODY))
    assert list(record) == COLUMNS  # "extra" is not a column: skipped
    assert record["id"] == "e1" and record["timestamp"] == 1 and record["datetime"] == "2024-01-01 00:00:00+00:00"
    assert record["profile_id"] == "p1" and record["metric_id"] is None
    assert bytes(record["event_properties"]) == b'{"Price":12.50,"Items":["a",{"b":null}]}'
    assert msgspec.json.encode(record).startswith(b'{"id":"e1","timestamp":1,"event_properties":{"Price":12.50,"Items":')


def test_to_many_relationships_become_lists_of_ids():
    body = b'{"data":[{"id":"a","relationships":{"tags":{"data":[{"type":"tag","id":"t1"},{"type":"tag","id":"t2"}]}}},{"id":"b"}]}'
    passthrough = jsonapi.PassthroughDecoder(["id", "tag_ids"], (), {}, {"tags": "tag_ids"})
    assert passthrough.records(passthrough(body)) == [{"id": "a", "tag_ids": ["t1", "t2"]}, {"id": "b", "tag_ids": []}]


def test_undecoded_attributes_do_not_keep_the_response_body_alive():
    body = bytes(BODY)
    baseline = sys.getrefcount(body)
    passthrough = decoder()
    document = passthrough(body)
    assert sys.getrefcount(body) > baseline  # the decoded document still views the body
    (record,) = passthrough.records(document)
    del document
    assert sys.getrefcount(body) == baseline
    assert bytes(record["event_properties"]).startswith(b'{"Price"')


def test_single_line_compacts_only_bodies_with_line_breaks():
    assert jsonapi.single_line(BODY) is BODY
    pretty = msgspec.json.format(BODY, indent=2)
    assert b"\n" in pretty
    compact = jsonapi.single_line(pretty.replace(b"\n", b"\r\n"))
    assert b"\n" not in compact and b"\r" not in compact
    assert msgspec.json.decode(compact) == msgspec.json.decode(BODY)
