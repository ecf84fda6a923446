"""State handling that stays cheap when the state is large (many partitions, long-lived accounts)."""

from __future__ import annotations

import typing as t

import msgspec
from singer_sdk import singerlib as singer
from singer_sdk.contrib.msgspec import encoder
from singer_sdk.helpers._state import StateWriter
from singer_sdk.streams._state import StreamStateManager

if t.TYPE_CHECKING:
    from singer_sdk.helpers.types import Context


class StateValueMessage(singer.StateMessage):
    """A STATE message whose dict form refers to the state instead of copying it."""

    def to_dict(self) -> dict[str, t.Any]:
        return {"type": "STATE", "value": self.value}


class EncodedStateWriter(StateWriter):
    """Writes a STATE message only when the state changed, judged by its JSON encoding.

    Singer states are re-emitted whole, and the SDK's StateWriter compares the live state with a
    deep copy of the last one, then serialises it through `dataclasses.asdict`, which copies it
    once more: a 55 MB state cost about 6 s per STATE message.
    """

    def __init__(self, message_writer: t.Any) -> None:
        super().__init__(message_writer)
        self._last_encoded: bytes | None = None

    def write_state(self, state: dict) -> None:
        encoded = encoder.encode(state)
        if encoded != self._last_encoded:
            self._message_writer.write_message(StateValueMessage(value=state))
            self._last_encoded = encoded


class IndexedStateManager(StreamStateManager):
    """Partition states found through a dict instead of a search of the partitions list.

    The SDK searches the list on every lookup, about five per partition synced, so a stream
    with one partition per list costs time quadratic in the lists: 6.5 s of CPU for 3,000.
    """

    def __init__(self, **kwargs: t.Any) -> None:
        super().__init__(**kwargs)
        self._index: dict[bytes, dict] = {}
        self._indexed: tuple[int, int] = (0, -1)  # identity and length of the list indexed

    def get_context_state(self, context: Context | None) -> dict:
        partition = self.get_state_partition_context(context)
        if not partition:
            return self.stream_state
        partitions = self.stream_state.setdefault("partitions", [])
        if self._indexed != (id(partitions), len(partitions)):
            self._index = {}
            for state in partitions:
                self._index.setdefault(frozen_context(state["context"]), state)
        key = frozen_context(partition)
        state = self._index.get(key)
        if state is None:
            state = {"context": dict(partition)}
            partitions.append(state)
            self._index[key] = state
        self._indexed = (id(partitions), len(partitions))
        return state


def frozen_context(context: t.Mapping[str, t.Any]) -> bytes:
    """A partition context as a dict key or set member (its values may be anything a state holds)."""
    return msgspec.json.encode(context, order="sorted")
