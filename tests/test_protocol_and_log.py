"""Unit tests of the protocol module and the event log."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deltakit_nb import protocol
from deltakit_nb.protocol import FrameError, ResumeFrame, StartFrame
from deltakit_nb.server.eventlog import EventLog


def test_parse_start_and_resume() -> None:
    assert protocol.parse_frame('{"message": "hi", "threadId": "t", "agent": "a"}', 10) == (
        StartFrame("hi", "t", "a")
    )
    assert protocol.parse_frame('{"runId": "r", "lastEventId": 4}', 10) == ResumeFrame("r", 4)
    assert protocol.parse_frame('{"runId": "r"}', 10) == ResumeFrame("r", -1)
    assert protocol.parse_frame('{"runId": "r", "lastEventId": null}', 10) == ResumeFrame("r", -1)


@pytest.mark.parametrize(
    "frame",
    [
        b"{}",
        "nope",
        "[]",
        "null",
        '{"message": ""}',
        '{"message": "12345678901"}',
        '{"runId": ""}',
        '{"runId": "r", "lastEventId": true}',
        '{"runId": "r", "lastEventId": 1.5}',
        '{"message": "x", "agent": ["a"]}',
        '{"message": "x", "threadId": "t\\ud800"}',
        '{"runId": "\\udc00"}',
        "[" * 100000,
    ],
)
def test_bad_frames_raise_frame_error(frame: str | bytes) -> None:
    with pytest.raises(FrameError):
        protocol.parse_frame(frame, 10)


def test_lone_surrogates_in_a_message_become_replacement_characters() -> None:
    frame = protocol.parse_frame('{"message": "a\\ud800b\\ud83d\\ude00"}', 100)
    assert frame == StartFrame("a\ufffdb\U0001f600")
    assert isinstance(frame, StartFrame)
    frame.message.encode("utf-8")  # storable and sendable as it is


def test_batch_is_one_event_or_an_array() -> None:
    one, two = protocol.encode({"a": 1}), protocol.encode({"b": "é"})
    assert json.loads(protocol.batch([one])) == {"a": 1}
    assert json.loads(protocol.batch([one, two])) == [{"a": 1}, {"b": "é"}]


async def test_log_ids_since_and_follow() -> None:
    log = EventLog("r")
    for i in range(5):
        assert log.append({"type": "text_delta", "delta": str(i)}) == i
    assert [json.loads(t)["eventId"] for t in log.encoded()] == [0, 1, 2, 3, 4]
    assert [json.loads(t)["eventId"] for t in log.since(2)] == [3, 4]
    assert json.loads(log.since(-1)[0]) == {
        "type": "text_delta",
        "delta": "0",
        "eventId": 0,
        "runId": "r",
    }

    async def follower(after: int) -> list[int]:
        ids: list[int] = []
        async for batch in log.follow(after, max_batch=3):
            assert len(batch) <= 3
            ids.extend(json.loads(t)["eventId"] for t in batch)
        return ids

    task = asyncio.ensure_future(follower(1))
    await asyncio.sleep(0.01)
    for i in range(5, 12):
        log.append({"type": "text_delta", "delta": str(i)})
        if i % 2:
            await asyncio.sleep(0)
    log.close()
    assert await asyncio.wait_for(task, 2) == list(range(2, 12))
    with pytest.raises(RuntimeError):
        log.append({"type": "done"})


async def test_the_last_event_of_a_closed_log_is_a_batch_of_its_own() -> None:
    """Live and on replay, from the start or the middle: every batch but the terminal one is
    as large as the backlog allows, and the terminal event comes alone."""

    async def batches(log: EventLog, after: int, max_batch: int = 4096) -> list[list[int]]:
        return [
            [json.loads(t)["eventId"] for t in batch]
            async for batch in log.follow(after, max_batch=max_batch)
        ]

    log = EventLog("r")
    live = asyncio.ensure_future(batches(log, -1))
    await asyncio.sleep(0)
    for i in range(5):
        log.append({"type": "text_delta", "delta": str(i)})
    log.append({"type": "done", "status": "completed"})
    log.close()
    assert await asyncio.wait_for(live, 2) == [[0, 1, 2, 3, 4], [5]]
    assert await batches(log, -1) == [[0, 1, 2, 3, 4], [5]]
    assert await batches(log, 2) == [[3, 4], [5]]
    assert await batches(log, 4) == [[5]]
    assert await batches(log, 5) == []
    assert await batches(log, -1, max_batch=2) == [[0, 1], [2, 3], [4], [5]]
    replayed = EventLog("s", log.encoded(), closed=True)  # as a run comes from the store
    assert await batches(replayed, 0) == [[1, 2, 3, 4], [5]]
    # An open log's batches are not split: its last event is not a terminal one.
    open_log = EventLog("o", log.encoded()[:4])
    assert (await anext(aiter(open_log.follow(-1)))) == log.encoded()[:4]


async def test_a_batch_is_capped_in_characters_too() -> None:
    """Past its first event, a batch stops before the event that would take it over
    `max_chars`; an event larger than the cap comes alone."""

    async def batches(log: EventLog, max_chars: int) -> list[list[int]]:
        return [
            [json.loads(t)["eventId"] for t in batch]
            async for batch in log.follow(-1, max_chars=max_chars)
        ]

    log = EventLog("r")
    for delta in ("a" * 100, "b" * 100, "c" * 100, "d" * 1000, "e"):
        log.append({"type": "text_delta", "delta": delta})
    log.append({"type": "done", "status": "completed"})
    log.close()
    size = len(log.encoded()[0])  # ~160 characters with its fields
    assert await batches(log, 2 * size) == [[0, 1], [2], [3], [4], [5]]
    assert await batches(log, 20 * size) == [[0, 1, 2, 3, 4], [5]]
    assert await batches(log, 1) == [[0], [1], [2], [3], [4], [5]]


def test_texts_that_wait_together_are_one_event() -> None:
    """The relay's plain text chunks wait in `texts` until the loop next runs `flush`: those
    that waited together become one text_delta (their concatenation), byte for byte what
    `append` gives it; an event appended meanwhile flushes them first."""
    log = EventLog("r")
    log.texts.extend(["Hel", "lo", ", ", "wé\u2028\ud800"])
    log.flush()
    log.flush()  # nothing waits: no event
    log.texts.append("one")
    log.flush()
    log.texts.extend(["a", "b"])
    log.append(protocol.tool_call("calculator", "{}", "c1", 1.5))
    log.texts.append("c")
    log.close()
    expected = [
        protocol.text_delta("Hello, wé\u2028\ud800"),
        protocol.text_delta("one"),
        protocol.text_delta("ab"),
        protocol.tool_call("calculator", "{}", "c1", 1.5),
        protocol.text_delta("c"),
    ]
    assert log.encoded() == [
        protocol.encode_run_event(e, i, "r", '"r"') for i, e in enumerate(expected)
    ]


async def test_cancelled_waiter_does_not_break_others() -> None:
    log = EventLog("r")
    a = asyncio.ensure_future(log.wait(-1))
    b = asyncio.ensure_future(log.wait(-1))
    await asyncio.sleep(0)
    a.cancel()
    await asyncio.sleep(0)
    log.append({"type": "x"})
    await asyncio.wait_for(b, 1)


@settings(max_examples=300, deadline=None)
@given(delta=st.text(), event_id=st.integers(0, 10**9), run_id=st.text(min_size=1))
def test_text_delta_template_matches_the_generic_encoder(
    delta: str, event_id: int, run_id: str
) -> None:
    event = protocol.text_delta(delta)
    fast = protocol.encode_run_event(event, event_id, run_id, protocol.encode_str(run_id))
    generic = protocol.encode({**event, "eventId": event_id, "runId": run_id})
    assert fast == generic
    assert json.loads(fast) == {
        "type": "text_delta",
        "delta": delta,
        "eventId": event_id,
        "runId": run_id,
    }
