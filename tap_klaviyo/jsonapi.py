"""Typed decoding of JSON:API documents.

Decoding into these structs skips what the tap never reads (every `links` object, the
relationship links) and is about three times faster than decoding to plain dicts on event
pages of 1,000. Attribute values stay plain JSON (dicts, lists, strings, numbers).
"""

from __future__ import annotations

import typing as t

import msgspec


class Ref(msgspec.Struct):
    """A resource identifier: `{"type": ..., "id": ...}`."""

    id: t.Any = None
    type: t.Any = None


class Relationship(msgspec.Struct):
    data: Ref | list[Ref] | None = None


class Resource(msgspec.Struct):
    id: t.Any = None
    type: t.Any = None
    attributes: dict[str, t.Any] | None = None
    relationships: dict[str, Relationship] | None = None


class Links(msgspec.Struct):
    next: str | None = None


class Document(msgspec.Struct):
    data: list[Resource] | None = None
    included: list[Resource] | None = None
    links: Links | None = None


decode_document = msgspec.json.Decoder(Document).decode
decode_json = msgspec.json.Decoder().decode
DecodeError = (msgspec.DecodeError, msgspec.ValidationError)


def related(resource: Resource, name: str) -> Ref | list[Ref] | None:
    """The `data` of one relationship (None when absent or not included)."""
    relationship = (resource.relationships or {}).get(name)
    return relationship.data if relationship is not None else None
