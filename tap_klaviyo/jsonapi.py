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


def attributes_of(resource: Resource) -> dict[str, t.Any]:
    """A resource's attributes as a dict, empty when it has none (spread or copy it to change it)."""
    return resource.attributes or {}


def related(resource: Resource, name: str) -> Ref | list[Ref] | None:
    """The `data` of one relationship (None when absent or not included), from either decoder."""
    relationships = resource.relationships
    if relationships is None:
        return None
    if isinstance(relationships, dict):
        relationship = relationships.get(name)
    else:
        relationship = getattr(relationships, _field(name), None)
    return relationship.data if relationship is not None else None


class PassthroughDecoder:
    """Decodes one stream's documents straight into the layout of its records.

    Each resource's attributes decode into a struct with one field per record column, in the
    record's order (`columns`, which must be Python identifiers). The attributes among them are
    read from the JSON; `records` fills in the others (id and relationship columns) and makes
    each record in one step, at half the cost of flattening a decoded resource. Only those attributes and the named relationships are
    decoded; everything else a resource carries is skipped without being built. Attributes in
    `raw` stay undecoded (`msgspec.Raw`) and are written out byte for byte, so a large nested
    object such as an event's `event_properties` costs no Python objects at all. Bodies with
    line breaks are compacted first, since the undecoded parts are written out as they are.
    """

    def __init__(
        self,
        columns: t.Iterable[str],
        raw: t.Collection[str],
        to_one: t.Mapping[str, str],
        to_many: t.Mapping[str, str] | None = None,
        other_relationships: t.Iterable[str] = (),
    ) -> None:
        """`to_one` and `to_many` map a relationship to the column of its id(s), e.g. {"profile": "profile_id"}."""
        self.raw = tuple(raw)
        self.record = msgspec.defstruct("Record", [(name, msgspec.Raw if name in raw else t.Any, None) for name in columns])
        to_many = to_many or {}
        self.to_one = tuple((_field(name), column) for name, column in to_one.items())
        self.to_many = tuple((_field(name), column) for name, column in to_many.items())
        relationships = [*to_one, *to_many, *other_relationships]
        relationship_struct = msgspec.defstruct(
            "Relationships",
            [(_field(name), Relationship | None, None) for name in relationships],
            rename={_field(name): name for name in relationships},
        )
        resource = msgspec.defstruct(
            "PassthroughResource",
            [("id", t.Any, None), ("attributes", self.record | None, None),
             ("relationships", relationship_struct | None, None)],
        )
        document = msgspec.defstruct(
            "PassthroughDocument",
            [("data", list[resource] | None, None), ("included", list[Resource] | None, None), ("links", Links | None, None)],
        )
        self._decode = msgspec.json.Decoder(document).decode

    def __call__(self, body: bytes) -> Document:
        if not body.isascii():  # undecoded parts are not checked by msgspec: check the whole body
            check_utf8(body)
        return self._decode(single_line(body))

    def records(self, document: Document) -> list[dict[str, t.Any]]:
        """The document's resources as records: every column, in order (None where a resource has no value).

        Undecoded values are copied out of the response body: a `msgspec.Raw` is a view that would
        otherwise keep the whole body (1 MB for an event page) alive as long as any one record.
        """
        asdict = msgspec.structs.asdict
        records = []
        for resource in document.data or ():
            values = resource.attributes or self.record()
            values.id = resource.id
            relationships = resource.relationships
            for field, column in self.to_one:
                relationship = getattr(relationships, field) if relationships is not None else None
                data = relationship.data if relationship is not None else None
                setattr(values, column, data.id if type(data) is Ref else None)
            for field, column in self.to_many:
                relationship = getattr(relationships, field) if relationships is not None else None
                data = relationship.data if relationship is not None else None
                setattr(values, column, [ref.id for ref in data] if type(data) is list else [])
            record = asdict(values)
            for name in self.raw:
                value = record[name]
                if value is not None:
                    record[name] = value.copy()
            records.append(record)
        return records


def check_utf8(body: bytes) -> None:
    """DecodeError unless `body` is valid UTF-8."""
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise msgspec.DecodeError(f"Invalid UTF-8 at byte {exc.start}") from None


def single_line(body: bytes) -> bytes:
    """A JSON body without line breaks: undecoded parts of it are written out as they are, and
    a line break would split a Singer message line. Compact bodies (Klaviyo's) are returned as is."""
    if b"\n" in body or b"\r" in body:
        return msgspec.json.format(body, indent=-1)
    return body


def _field(name: str) -> str:
    """A Python identifier for a JSON member name such as `campaign-messages`."""
    return name.replace("-", "_")
