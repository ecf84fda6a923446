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


def decoder():
    return jsonapi.passthrough_decoder(["timestamp", "event_properties", "datetime"], {"event_properties"}, ["profile"])


def test_raw_attributes_keep_their_exact_text_and_unknown_attributes_are_skipped():
    document = decoder()(BODY)
    values = jsonapi.attributes_of(document.data[0])
    assert set(values) == {"timestamp", "event_properties", "datetime"}
    assert bytes(values["event_properties"]) == b'{"Price":12.50,"Items":["a",{"b":null}]}'
    assert msgspec.json.encode({"p": values["event_properties"]}) == b'{"p":{"Price":12.50,"Items":["a",{"b":null}]}}'
    assert jsonapi.related(document.data[0], "profile").id == "p1"
    assert jsonapi.related(document.data[0], "metric") is None


def test_undecoded_attributes_do_not_keep_the_response_body_alive():
    body = bytes(BODY)
    baseline = sys.getrefcount(body)
    document = decoder()(body)
    assert sys.getrefcount(body) > baseline  # the decoded document still views the body
    values = jsonapi.attributes_of(document.data[0])
    del document
    assert sys.getrefcount(body) == baseline
    assert bytes(values["event_properties"]).startswith(b'{"Price"')


def test_single_line_compacts_only_bodies_with_line_breaks():
    assert jsonapi.single_line(BODY) is BODY
    pretty = msgspec.json.format(BODY, indent=2)
    assert b"\n" in pretty
    compact = jsonapi.single_line(pretty.replace(b"\n", b"\r\n"))
    assert b"\n" not in compact and b"\r" not in compact
    assert msgspec.json.decode(compact) == msgspec.json.decode(BODY)
