"""The run loop (`relay`): agno events into a run's log, fast for plain text, never late."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from agno.run.agent import RunContentEvent
from test_adapter import agno_events, translate

from deltakit_nb import protocol
from deltakit_nb.adapter import AgnoAdapter
from deltakit_nb.protocol import RunStatus
from deltakit_nb.server.eventlog import EventLog
from deltakit_nb.server.runs import relay


class CountingAdapter(AgnoAdapter):
    def __init__(self) -> None:
        super().__init__()
        self.clock = lambda: 1.0
        self.translated = 0

    def translate(self, event: Any) -> list[dict]:
        self.translated += 1
        return super().translate(event)


async def aiter_of(events: list[Any]) -> AsyncIterator[Any]:
    for event in events:
        yield event


async def run_to_end(raw: list[Any], adapter: AgnoAdapter, log: EventLog) -> None:
    """What RunRegistry._execute does around the relay for a run that ends normally."""
    await relay(aiter_of(raw), adapter, log)
    for out in adapter.finish(RunStatus.COMPLETED):
        log.append(out)
    log.close()


def work(seconds: float) -> None:
    """CPU work that never awaits."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_the_relay_logs_exactly_what_translate_gives() -> None:
    """The run loop (`relay`) lets plain text chunks skip `translate` and go into the log in
    batches, one text_delta a batch; on real runs (reasoning, tools, a failing tool, markdown,
    an empty answer) its log must hold what the log of every event through `translate` holds,
    in the same order: the same events, the same text between them."""
    for message in (
        "hello there",
        "what is 6 * 7",
        'tool broken_tool {"reason": "x"}',
        "echo ",
        "markdown 3",
    ):
        raw = agno_events(message)
        generic = EventLog("r-1")
        for out in translate(raw, clock=lambda: 1.0)[0]:
            generic.append(out)
        fast, adapter = EventLog("r-1"), CountingAdapter()

        asyncio.run(run_to_end(raw, adapter, fast))
        assert merged(fast) == merged(generic), message
        assert [json.loads(e)["eventId"] for e in fast.encoded()] == list(range(len(fast)))
        assert adapter.translated < len(raw), message  # the fast path was taken
        # The fast way, the chunks that waited together are one text_delta.
        assert len(fast) < len(generic), message


def merged(log: EventLog) -> list[dict[str, Any]]:
    """A log's events without their ids, each run of consecutive plain text deltas as one."""
    out: list[dict[str, Any]] = []
    for encoded in log.encoded():
        event = json.loads(encoded)
        del event["eventId"]
        plain = event.keys() == {"type", "delta", "runId"} and event["type"] == "text_delta"
        if plain and out and out[-1].keys() == event.keys() and out[-1]["type"] == "text_delta":
            out[-1]["delta"] += event["delta"]
        else:
            out.append(event)
    return out


def test_relayed_text_reaches_a_reader_before_the_next_chunk() -> None:
    """Batching must not hold text back: when the model awaits between chunks (as a real one
    does, on the network), the text so far is in the log and a waiting reader is woken."""
    chunks = [e for e in agno_events("hello there") if e.event == "RunContent" and e.content]
    gates = [asyncio.Event() for _ in chunks]

    async def slow_model() -> AsyncIterator[Any]:
        for chunk, gate in zip(chunks, gates, strict=True):
            yield chunk
            await gate.wait()

    async def go() -> None:
        log = EventLog("r-1")
        relaying = asyncio.create_task(relay(slow_model(), AgnoAdapter(), log))
        for i, gate in enumerate(gates):
            await asyncio.wait_for(log.wait(i - 1), 5)
            seen = log.since(-1)
            assert [json.loads(e)["delta"] for e in seen] == [c.content for c in chunks[: i + 1]]
            gate.set()
        await relaying

    asyncio.run(go())


def test_a_stream_that_never_awaits_still_lets_readers_in() -> None:
    """A model that never awaits (offline, cached) must not starve the readers: the relay
    hands the loop back while the run goes on, and a reader sees the log grow before the end."""
    total = 400

    async def busy_model() -> AsyncIterator[Any]:
        for i in range(total):
            work(0.0005)  # at least 16 ms per 32 events
            yield RunContentEvent(content=f"{i} ")

    async def go() -> list[int]:
        log = EventLog("r-1")
        relaying = asyncio.create_task(relay(busy_model(), AgnoAdapter(), log))
        seen: list[int] = []
        while not relaying.done():
            seen.append(len(log))
            await asyncio.sleep(0)
        await relaying
        log.close()
        assert "".join(json.loads(e)["delta"] for e in log.encoded()) == "".join(
            f"{i} " for i in range(total)
        )
        return seen

    partial = {n for n in asyncio.run(go()) if 0 < n < total}
    assert len(partial) >= 3, partial


def test_buffered_texts_get_their_ids_before_anything_appended_after_them() -> None:
    log = EventLog("r-1")
    log.texts += ["a", "b"]
    log.append(protocol.tool_call("clock", "{}", "t1", 0.0))
    log.texts.append("c")
    log.close()  # closing flushes too
    events = [json.loads(e) for e in log.encoded()]
    assert [(e["eventId"], e["type"], e.get("delta")) for e in events] == [
        (0, "text_delta", "ab"),
        (1, "tool_call", None),
        (2, "text_delta", "c"),
    ]
    assert log.texts == []
