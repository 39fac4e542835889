"""The server extension over a real Jupyter server, real WebSockets and the real agno loop."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError
from wsclient import (
    assert_gap_free,
    recv,
    recv_n,
    recv_until_terminal,
    send,
    text,
)


async def start_run(jp_ws_fetch: Any, message: str, **extra: Any) -> tuple[Any, list[dict]]:
    ws = await jp_ws_fetch("deltakit", "ws")
    await send(ws, {"message": message, **extra})
    first = await recv(ws)
    assert first[0]["type"] == "run_started", first
    return ws, first


async def get_json(jp_fetch: Any, *parts: str, **kw: Any) -> Any:
    response = await jp_fetch("deltakit", *parts, **kw)
    return json.loads(response.body)


async def test_run_streams_to_done(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    ws, events = await start_run(jp_ws_fetch, "echo hello, streaming world!", threadId="t1")
    events += await recv_until_terminal(ws)
    run_id = events[0]["runId"]
    assert_gap_free(events, run_id)
    assert events[0]["threadId"] == "t1" and events[0]["agent"] == "demo"
    assert text(events) == "hello, streaming world!"
    # The offline model (no delay here) streams its 6-character chunks without awaiting: the
    # chunks that reach the log in one turn of the loop are one text_delta.
    assert [e["delta"] for e in events if e["type"] == "text_delta"] == [text(events)]
    metrics = events[-1]["metrics"]  # the run footer's figures, as agno reports them
    assert metrics["model"] == "offline" and metrics["output_tokens"] == 4  # 6-char chunks
    assert metrics["input_tokens"] > 0 and metrics["duration"] >= 0
    assert events[-1] == {
        "type": "done",
        "status": "completed",
        "metrics": metrics,
        "eventId": len(events) - 1,
        "runId": run_id,
    }
    run = await get_json(jp_fetch, "runs", run_id)
    assert run["status"] == "completed" and run["message"] == "echo hello, streaming world!"
    assert run["events"] == events
    ws.close()


async def test_markdown_answer_has_reasoning(jp_ws_fetch: Any) -> None:
    ws, events = await start_run(jp_ws_fetch, "hello there")
    events += await recv_until_terminal(ws)
    kinds = [e["type"] for e in events]
    assert kinds.index("reasoning") < kinds.index("text_delta")
    thinking = "".join(e["text"] for e in events if e["type"] == "reasoning")
    assert thinking == "The user wrote 11 characters. I will answer in markdown."
    assert text(events).startswith("## Offline demo")
    ws.close()


async def test_tool_call_and_result(jp_ws_fetch: Any) -> None:
    ws, events = await start_run(jp_ws_fetch, "what is 12 * (3 + 4)?")
    events += await recv_until_terminal(ws)
    calls = [e for e in events if e["type"] == "tool_call"]
    results = [e for e in events if e["type"] == "tool_result"]
    assert len(calls) == 1 and len(results) == 1
    assert calls[0]["tool_name"] == "calculator"
    assert json.loads(calls[0]["argument"]) == {"expression": "12 * (3 + 4)"}
    assert results[0]["call_id"] == calls[0]["call_id"] and calls[0]["call_id"]
    assert results[0]["output"] == "84" and results[0]["is_error"] is False
    assert events.index(calls[0]) < events.index(results[0])
    assert "84" in text(events)
    assert events[-1]["status"] == "completed"
    ws.close()


async def test_failing_tool_is_flagged_and_the_run_goes_on(jp_ws_fetch: Any) -> None:
    ws, events = await start_run(jp_ws_fetch, 'tool broken_tool {"reason": "disk on fire"}')
    events += await recv_until_terminal(ws)
    [result] = [e for e in events if e["type"] == "tool_result"]
    assert result["is_error"] is True and result["output"] == "disk on fire"
    assert "disk on fire" in text(events[events.index(result) :])
    assert events[-1]["type"] == "done" and events[-1]["status"] == "completed"
    ws.close()


@pytest.mark.parametrize("k", [1, 2, 7, 15, 21, "end"])
async def test_resume_from_every_kind_of_point(jp_ws_fetch: Any, jp_fetch: Any, k: Any) -> None:
    ws, seen = await start_run(jp_ws_fetch, "count 20 delay 0.01")
    run_id = seen[0]["runId"]
    if k == "end":
        seen += await recv_until_terminal(ws)
    else:
        seen += await recv_n(ws, k - len(seen))
        seen = seen[:k]
    ws.close()
    ws2 = await jp_ws_fetch("deltakit", "ws")
    await send(ws2, {"runId": run_id, "lastEventId": seen[-1]["eventId"]})
    if k == "end":
        rest: list[dict] = []
        # A finished run replays nothing more; the socket stays usable.
        await send(ws2, {"runId": "nope"})
        assert (await recv(ws2))[0] == {"type": "error", "message": "Run not found"}
    else:
        rest = await recv_until_terminal(ws2)
    full = seen + rest
    assert_gap_free(full, run_id)
    assert full == (await get_json(jp_fetch, "runs", run_id))["events"]
    assert text(full) == "".join(f"{i} " for i in range(1, 21))
    ws2.close()


async def test_resume_without_last_event_id_replays_everything(jp_ws_fetch: Any) -> None:
    ws, first = await start_run(jp_ws_fetch, "echo abcdefghijklmnop")
    events = first + await recv_until_terminal(ws)
    await send(ws, {"runId": events[0]["runId"]})
    assert await recv_until_terminal(ws) == events
    ws.close()


# A run of N events: the model awaits between its chunks, so each is a text_delta of its own
# (chunks that reach the log in one turn of the loop, as `bench N`'s do, are one event).
MANY_EVENTS = "count {} delay 0.00001"

BAD_FRAMES = [
    ("not json", "frame is not valid JSON"),
    ("[1, 2]", "frame must be a JSON object"),
    ('"text"', "frame must be a JSON object"),
    ("{}", "Expected message or runId"),
    ('{"message": 42}', "'message' must be a non-empty string"),
    ('{"message": "   "}', "'message' must be a non-empty string"),
    ('{"runId": 5}', "'runId' must be a non-empty string"),
    ('{"runId": "x", "lastEventId": "3"}', "'lastEventId' must be an integer >= -1"),
    ('{"runId": "x", "lastEventId": -7}', "'lastEventId' must be an integer >= -1"),
    ('{"runId": "no-such-run"}', "Run not found"),
    ('{"message": "hi", "agent": "nobody"}', "unknown agent 'nobody'"),
    ('{"message": "hi", "threadId": 3}', "'threadId' must be a non-empty string"),
    ('{"message": "' + "x" * 2500 + '"}', "message too long: 2500 chars"),
    ('{"message": "' + "x" * 9000 + '"}', "frame too large"),
    ('{"message": "' + "é" * 4500 + '"}', "frame too large: 9015 bytes"),  # bytes, not chars
]


@pytest.mark.parametrize(("frame", "expected"), BAD_FRAMES)
async def test_bad_frames_get_error_frames(jp_ws_fetch: Any, frame: str, expected: str) -> None:
    ws = await jp_ws_fetch("deltakit", "ws")
    await send(ws, frame)
    [reply] = await recv(ws)
    assert reply["type"] == "error" and expected in reply["message"], reply
    assert "eventId" not in reply
    await send(ws, {"message": "echo still alive"})
    events = await recv_until_terminal(ws)
    assert text(events) == "still alive"
    ws.close()


async def test_binary_frame_gets_error(jp_ws_fetch: Any) -> None:
    ws = await jp_ws_fetch("deltakit", "ws")
    await ws.write_message(b"\x00\x01", binary=True)
    [reply] = await recv(ws)
    assert reply["type"] == "error" and "binary" in reply["message"]
    ws.close()


async def test_cancel_mid_run(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    ws, events = await start_run(jp_ws_fetch, "count 500 delay 0.02")
    run_id = events[0]["runId"]
    events += await recv_n(ws, 4)
    response = await jp_fetch("deltakit", "jobs", run_id, "cancel", method="POST", body="")
    assert json.loads(response.body) == {"status": "ok"}
    events += await recv_until_terminal(ws)
    assert events[-1]["type"] == "done" and events[-1]["status"] == "cancelled"
    assert_gap_free(events, run_id)
    assert len(text(events).split()) < 100
    run = await get_json(jp_fetch, "runs", run_id)
    assert run["status"] == "cancelled" and run["events"] == events
    await asyncio.sleep(0.2)
    assert (await get_json(jp_fetch, "runs", run_id))["events"] == events
    ws.close()


async def test_cancel_unknown_run_is_404(jp_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("deltakit", "jobs", "nope", "cancel", method="POST", body="")
    assert err.value.code == 404


async def test_failing_model_fails_the_run_and_server_goes_on(
    jp_ws_fetch: Any, jp_fetch: Any
) -> None:
    ws, events = await start_run(jp_ws_fetch, "fail")
    events += await recv_until_terminal(ws)
    assert events[-1]["type"] == "error"
    assert "failed on purpose" in events[-1]["message"]
    assert_gap_free(events, events[0]["runId"])
    assert (await get_json(jp_fetch, "runs", events[0]["runId"]))["status"] == "failed"
    await send(ws, {"message": "echo next"})
    assert text(await recv_until_terminal(ws)) == "next"
    ws.close()


async def test_agent_factory_that_fails(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    for agent, reason in [("broken", "broken on purpose"), ("missing", "cannot import")]:
        ws, events = await start_run(jp_ws_fetch, "hi", agent=agent)
        events += await recv_until_terminal(ws)
        assert events[-1]["type"] == "error" and reason in events[-1]["message"]
        assert (await get_json(jp_fetch, "runs", events[0]["runId"]))["status"] == "failed"
        ws.close()


async def test_active_run_threads_and_agents(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    assert await get_json(jp_fetch, "active-run", params={"threadId": "th"}) == {"run_id": None}
    ws, first = await start_run(jp_ws_fetch, "echo one", threadId="th")
    one = first + await recv_until_terminal(ws)
    await send(ws, {"message": "count 100 delay 0.05", "threadId": "th"})
    two = await recv_n(ws, 3)
    active = await get_json(jp_fetch, "active-run", params={"threadId": "th"})
    assert active["run_id"] == two[0]["runId"] and active["message"] == "count 100 delay 0.05"
    assert active["events"][:3] == two
    assert (await get_json(jp_fetch, "active-run"))["run_id"] == two[0]["runId"]
    thread = await get_json(jp_fetch, "threads", "th")
    assert thread["thread_id"] == "th" and thread["active_run_id"] == two[0]["runId"]
    assert [r["message"] for r in thread["runs"]] == ["echo one", "count 100 delay 0.05"]
    assert thread["runs"][0]["events"] == one and thread["runs"][0]["status"] == "completed"
    assert (await get_json(jp_fetch, "threads", "empty")) == {
        "thread_id": "empty",
        "active_run_id": None,
        "runs": [],
    }
    agents = await get_json(jp_fetch, "agents")
    assert agents["default"] == "demo"
    names = {a["name"]: a["description"] for a in agents["agents"]}
    assert names["demo"].startswith("Offline demo agent") and "unavailable" in names["missing"]
    await jp_fetch("deltakit", "jobs", two[0]["runId"], "cancel", method="POST", body="")
    ws.close()


async def test_new_frame_replaces_the_subscription(jp_ws_fetch: Any) -> None:
    ws, first = await start_run(jp_ws_fetch, "count 200 delay 0.02")
    slow_id = first[0]["runId"]
    await send(ws, {"message": "echo second"})
    events: list[dict] = []
    while not any(e["type"] == "done" and e["runId"] != slow_id for e in events):
        events.extend(await recv(ws))
    second = [e for e in events if e["runId"] != slow_id]
    assert text(second) == "second"
    assert all(e["eventId"] < 10 for e in events if e["runId"] == slow_id)
    ws.close()


async def test_several_sockets_follow_one_run(jp_ws_fetch: Any) -> None:
    ws, first = await start_run(jp_ws_fetch, "count 30 delay 0.01")
    run_id = first[0]["runId"]
    others = [await jp_ws_fetch("deltakit", "ws") for _ in range(3)]
    for other in others:
        await send(other, {"runId": run_id, "lastEventId": -1})
    mine = first + await recv_until_terminal(ws)
    for other in others:
        assert await recv_until_terminal(other) == mine
        other.close()
    ws.close()


async def test_slow_reader_does_not_delay_a_fast_one(
    jp_ws_fetch: Any, jp_fetch: Any, jp_http_port: int, jp_base_url: str, jp_serverapp: Any
) -> None:
    """A reader that stops reading backs up its own socket only: the run and a fast reader of
    the same run finish while it sits on a full buffer, and it still gets every event later."""
    from wsclient import RawSocket

    ws, first = await start_run(jp_ws_fetch, "bench 300 size 16000")
    run_id = first[0]["runId"]
    slow = await RawSocket.connect(
        jp_http_port, f"{jp_base_url}deltakit/ws", jp_serverapp.identity_provider.token
    )
    await slow.send({"runId": run_id, "lastEventId": -1})
    fast = first + await recv_until_terminal(ws)
    assert len(text(fast)) == 300 * 16000 and fast[-1]["status"] == "completed"
    run = await get_json(jp_fetch, "runs", run_id)
    assert run["status"] == "completed"
    # Megabytes: far more than the slow socket's buffers hold.
    assert sum(len(json.dumps(e)) for e in fast) > 4 * 2**20
    received: list[dict] = []
    while not received or received[-1]["type"] != "done":
        received.extend(await slow.recv())
    assert received == fast
    slow.close()
    ws.close()


async def test_non_ascii_survives_the_round_trip_and_a_lone_surrogate_is_replaced(
    jp_ws_fetch: Any, jp_fetch: Any
) -> None:
    """A lone surrogate is valid JSON but not valid text: the message gets U+FFFD in its
    place (so the model, the store and every client see the same storable text)."""
    ws = await jp_ws_fetch("deltakit", "ws")
    await send(ws, '{"message": "echo caf\\u00e9 \\ud800 \\u4e2d\\u6587 \\ud83d\\ude00"}')
    events = await recv_until_terminal(ws)
    assert text(events) == "café \ufffd 中文 😀"
    run = await get_json(jp_fetch, "runs", events[0]["runId"])
    assert run["message"] == "echo café \ufffd 中文 😀"
    ws.close()


async def test_batched_array_frames_decode_to_the_same_events(
    jp_ws_fetch: Any, jp_fetch: Any
) -> None:
    """A reader that is behind gets its backlog as JSON-array frames: same events, same order
    (the terminal event comes alone, after them)."""
    ws, first = await start_run(jp_ws_fetch, MANY_EVENTS.format(9000))
    events = first + await recv_until_terminal(ws)
    run_id = first[0]["runId"]
    await send(ws, {"runId": run_id, "lastEventId": 10})
    frames: list[Any] = []
    while not frames or isinstance(frames[-1], list) or frames[-1]["type"] != "done":
        frames.append(json.loads(await asyncio.wait_for(ws.read_message(), 10)))
    *arrays, done = frames
    assert all(isinstance(f, list) for f in arrays) and len(arrays) >= 2  # capped batch size
    replayed = [e for f in arrays for e in f] + [done]
    assert replayed == events[11:]
    assert events == (await get_json(jp_fetch, "runs", run_id))["events"]
    assert_gap_free(events, run_id)
    ws.close()


async def test_a_reader_that_stops_reading_holds_one_frame_at_most(
    jp_ws_fetch: Any, jp_http_port: int, jp_base_url: str, jp_serverapp: Any
) -> None:
    """The server keeps no per-socket backlog: a stalled socket has at most one frame (one
    capped batch) in its write buffer, however long the run it follows grows."""
    import gc

    from wsclient import RawSocket

    from deltakit_nb.server.eventlog import MAX_BATCH_CHARS
    from deltakit_nb.server.handlers import RunSocket

    # Chunks apart in time, so each is an event of its own (~16 KB): 32 make a capped batch.
    ws, first = await start_run(jp_ws_fetch, "bench 400 size 16000 delay 0.0001")
    stalled = await RawSocket.connect(
        jp_http_port, f"{jp_base_url}deltakit/ws", jp_serverapp.identity_provider.token
    )
    await stalled.send({"runId": first[0]["runId"], "lastEventId": -1})
    events = first + await recv_until_terminal(ws)
    assert len(text(events)) == 400 * 16000
    # One capped batch, its commas and brackets, and the frame's header.
    frame_cap = MAX_BATCH_CHARS + len(events) + 16
    buffered = []
    for obj in gc.get_objects():
        if isinstance(obj, RunSocket) and obj.ws_connection is not None:
            stream = obj.ws_connection.stream  # type: ignore[attr-defined]
            buffered.append(len(stream._write_buffer))
    assert max(buffered) > 0, "the stalled socket should have a backed-up buffer"
    assert max(buffered) <= frame_cap, (max(buffered), frame_cap)
    assert sum(len(json.dumps(e)) for e in events) > 10 * frame_cap
    stalled.close()
    ws.close()
