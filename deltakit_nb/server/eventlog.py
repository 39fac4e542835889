"""A run's replayable event log: a list, a cursor per reader, and one shared wake-up.

Each event is serialised once, on append, and the text is reused for every reader, every
replay and the store. Readers never block the writer: each one reads from its own cursor at
its own pace, and a reader that has fallen behind gets its backlog in one batch.

Plain text deltas, most of a run's events, can take a cheaper way in: the run's loop puts the
bare text in `texts` and schedules `flush` (loop.call_soon) when that list was empty; `flush`
makes the waiting texts one `text_delta` (their concatenation) with the next id, before anything
else that was scheduled after them runs. No reader can tell: readers run on the same loop, so
none could have seen those texts apart, and the answer's text is the same. A model that streams
faster than the loop turns (a cached or offline one: hundreds of chunks in the 10 ms a run keeps
the loop) then costs one event per turn instead of one per chunk: in the log, the store, on the
wire and in the client. A model that awaits its network between chunks still gets an event per
chunk. `append` and `close` flush first, so the order of events is the order of arrival.
A team member's text deltas (most of a team run) wait the same way in `member_texts`, all of
one member run (`member_tail`, its `protocol.member_text_tail`); at most one of the two lists
holds texts at any time (see `add_member_text`), so flushing keeps the arrival order.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from ..protocol import Event, encode_member_text, encode_run_event, encode_str, encode_text_delta

# A batch (one frame) holds at most MAX_BATCH events and, past its first event, at most
# MAX_BATCH_CHARS characters of them (the encoded events are ASCII: characters are bytes). A
# reader that is far behind gets its backlog in frames of this size, and a socket that stopped
# reading holds at most one of them in its write buffer.
MAX_BATCH = 4096
MAX_BATCH_CHARS = 512 * 1024


def _capped(pending: list[str], max_chars: int) -> list[str]:
    """The longest head of `pending` within `max_chars` (its first event at least)."""
    size = 0
    for i, text in enumerate(pending):
        size += len(text)
        if size > max_chars and i:
            return pending[:i]
    return pending


class EventLog:
    def __init__(self, run_id: str, encoded: list[str] | None = None, closed: bool = False):
        self.run_id = run_id
        self._run_id_json = encode_str(run_id)
        self._encoded: list[str] = list(encoded or [])
        self._closed = closed
        self._waiter: asyncio.Future[None] | None = None
        # Text deltas that have arrived but have no event id yet (see the module docstring).
        self.texts: list[str] = []
        self.member_texts: list[str] = []
        self.member_tail = ""

    def __len__(self) -> int:
        return len(self._encoded)

    @property
    def closed(self) -> bool:
        return self._closed

    def append(self, event: Event) -> int:
        """Add an event (its eventId and runId are given here); return its id."""
        if self._closed:
            raise RuntimeError(f"event log of run {self.run_id} is closed")
        if self.texts or self.member_texts:
            self.flush()
        event_id = len(self._encoded)
        text = encode_run_event(event, event_id, self.run_id, self._run_id_json)
        self._encoded.append(text)
        self._wake()
        return event_id

    def add_member_text(self, delta: str, tail: str) -> bool:
        """Put a member's text delta (`tail`: its run's `protocol.member_text_tail`) with the
        waiting texts, after flushing those of anyone else; True when none were waiting (the
        caller then schedules `flush`, as for `texts`)."""
        pending = self.member_texts
        if pending and tail is self.member_tail:
            pending.append(delta)
            return False
        if self.texts or pending:
            self.flush()
        self.member_tail = tail
        pending.append(delta)
        return True

    def append_text(self, delta: str) -> int:
        """`append(text_delta(delta))` without the event dict; return its id. (A run's loop
        puts its texts in `texts` instead, and they are flushed together.)"""
        if self._closed:
            raise RuntimeError(f"event log of run {self.run_id} is closed")
        if self.member_texts:
            self.flush()
        self.texts.append(delta)
        self.flush()
        return len(self._encoded) - 1

    def flush(self) -> None:
        """Put the waiting texts (`texts` or `member_texts`) in the log as one text delta or
        member text delta (their concatenation), with the next event id."""
        texts, encoded = self.texts, self._encoded
        if texts:
            self._add_waiting(
                texts, encode_text_delta("".join(texts), len(encoded), self._run_id_json)
            )
        texts = self.member_texts
        if texts:
            delta = "".join(texts)
            self._add_waiting(
                texts, encode_member_text(delta, self.member_tail, len(encoded), self._run_id_json)
            )

    def _add_waiting(self, texts: list[str], event: str) -> None:
        """Add `event`, the encoded concatenation of the waiting `texts`, which it empties."""
        if self._closed:
            raise RuntimeError(f"event log of run {self.run_id} is closed")
        self._encoded.append(event)
        texts.clear()
        self._wake()

    def extend_encoded(self, first_id: int, texts: list[str]) -> int:
        """Add events already encoded elsewhere (another server's run, read from the shared
        store), `texts` holding ids first_id, first_id+1, ...: the ones this log has are
        skipped. Return how many were added; -1 if they start past the end (a gap)."""
        if self._closed:
            raise RuntimeError(f"event log of run {self.run_id} is closed")
        have = len(self._encoded)
        if first_id > have:
            return -1
        new = texts[have - first_id :]
        if new:
            self._encoded.extend(new)
            self._wake()
        return len(new)

    def close(self) -> None:
        self.flush()
        self._closed = True
        self._wake()

    def since(self, event_id: int, limit: int | None = None) -> list[str]:
        """Encoded events with an id greater than event_id (at most `limit` of them)."""
        start = max(event_id + 1, 0)
        stop = None if limit is None else start + limit
        return self._encoded[start:stop]

    def encoded(self) -> list[str]:
        return self._encoded

    async def wait(self, after: int) -> None:
        """Return once an event with an id greater than `after` exists, or the log is closed."""
        while len(self._encoded) <= after + 1 and not self._closed:
            if self._waiter is None:
                self._waiter = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._waiter)

    async def follow(
        self, after: int = -1, max_batch: int = MAX_BATCH, max_chars: int = MAX_BATCH_CHARS
    ) -> AsyncIterator[list[str]]:
        """Batches of encoded events after `after`, live, until the log closes.

        The last event of a closed log (a run's terminal `done`/`error`) comes as a batch of
        its own: DeltaKit's client finishes a message while it handles that event, before it
        has applied the events after it in the same array frame, which would drop the last
        text. Only the final batch of a closed log is split, so the check is once per batch.
        """
        cursor = after
        while True:
            pending = self.since(cursor, max_batch)
            if len(pending) > 1:
                pending = _capped(pending, max_chars)
            if pending:
                cursor += len(pending)
                if self._closed and len(pending) > 1 and cursor + 1 == len(self._encoded):
                    yield pending[:-1]
                    yield pending[-1:]
                else:
                    yield pending
            elif self._closed:
                return
            else:
                await self.wait(cursor)

    def _wake(self) -> None:
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
