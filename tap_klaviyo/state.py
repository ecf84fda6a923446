"""STATE messages that stay cheap when the state is large.

Singer states are re-emitted whole, and the SDK's StateWriter compares the live state with a
deep copy of the last one, then serialises it through `dataclasses.asdict`, which copies it once
more: a 55 MB state cost about 6 s per STATE message. One msgspec encoding does the comparison.
"""

from __future__ import annotations

import typing as t

from singer_sdk import singerlib as singer
from singer_sdk.contrib.msgspec import encoder
from singer_sdk.helpers._state import StateWriter


class StateValueMessage(singer.StateMessage):
    """A STATE message whose dict form refers to the state instead of copying it."""

    def to_dict(self) -> dict[str, t.Any]:
        return {"type": "STATE", "value": self.value}


class EncodedStateWriter(StateWriter):
    """Writes a STATE message only when the state changed, judged by its JSON encoding."""

    def __init__(self, message_writer: t.Any) -> None:
        super().__init__(message_writer)
        self._last_encoded: bytes | None = None

    def write_state(self, state: dict) -> None:
        encoded = encoder.encode(state)
        if encoded != self._last_encoded:
            self._message_writer.write_message(StateValueMessage(value=state))
            self._last_encoded = encoded
