"""What DeltaKit's own client (`useStreamChat`, websocket transport), driven unchanged, needs
from the server, checked on the wire: a real server, a real WebSocket, the real agno loop.

- It finishes a message while it handles `done`, before it has applied the rest of the same
  array frame: the terminal event must come in a frame of its own, live and on replay.
- It never sends `threadId`: a socket's starts without one continue the socket's thread.
- It loads history on mount: `threads/{id}/messages`.
"""

from __future__ import annotations

import json
from typing import Any

from wsclient import (
    assert_gap_free,
    events_of,
    recv_frames_until_terminal,
    recv_n,
    recv_until_terminal,
    send,
    text,
)


async def get_json(jp_fetch: Any, *parts: str) -> Any:
    return json.loads((await jp_fetch("deltakit", *parts)).body)


def ids(frame: Any) -> Any:
    return [e["eventId"] for e in frame] if isinstance(frame, list) else frame["eventId"]


async def test_the_terminal_event_comes_alone_live_and_on_replay(
    jp_ws_fetch: Any, jp_fetch: Any
) -> None:
    # No delay between chunks: the tool call, its result, the answer's text and `done` reach
    # the log before the socket's reader next runs, so they would share one array frame.
    ws = await jp_ws_fetch("deltakit", "ws")
    await send(ws, {"message": "what is 6 * 7?"})
    frames = await recv_frames_until_terminal(ws)
    events = events_of(frames)
    run_id, n = events[0]["runId"], len(events)
    assert_gap_free(events, run_id)
    kinds = [e["type"] for e in events]
    assert kinds == ["run_started", "tool_call", "tool_result", "text_delta", "done"], kinds
    assert text(events) == "The `calculator` returned **42**."
    assert events == (await get_json(jp_fetch, "runs", run_id))["events"]
    *body, last = frames
    assert last["metrics"]["output_tokens"] > 0  # an extra field the client ignores
    assert {k: v for k, v in last.items() if k != "metrics"} == {
        "type": "done",
        "status": "completed",
        "eventId": n - 1,
        "runId": run_id,
    }
    assert isinstance(body[-1], list) and body[-1][-1]["type"] == "text_delta"
    assert any(isinstance(f, list) and len(f) > 1 for f in body)  # events are still batched

    # Replay of the finished run on another socket: its events in one array, `done` after it.
    replay = await jp_ws_fetch("deltakit", "ws")
    for after in (-1, 0, 1):
        await send(replay, {"runId": run_id, "lastEventId": after})
        frames = await recv_frames_until_terminal(replay)
        assert [ids(f) for f in frames] == [list(range(after + 1, n - 1)), n - 1]
        assert events_of(frames) == events[after + 1 :]
    await send(replay, {"runId": run_id, "lastEventId": n - 3})
    assert await recv_frames_until_terminal(replay) == events[n - 2 :]  # two frames of one
    await send(replay, {"runId": run_id, "lastEventId": n - 2})
    assert await recv_frames_until_terminal(replay) == [events[-1]]

    # An `error` ends a run too: alone as well.
    await send(ws, {"message": "fail"})
    failed = events_of(await recv_frames_until_terminal(ws))
    await send(replay, {"runId": failed[0]["runId"], "lastEventId": -1})
    *body, last = await recv_frames_until_terminal(replay)
    assert last == failed[-1] and last["type"] == "error"
    assert events_of(body) == failed[:-1]
    ws.close()
    replay.close()


async def test_a_socket_without_thread_ids_remembers_its_thread(jp_ws_fetch: Any) -> None:
    ws = await jp_ws_fetch("deltakit", "ws")
    await send(ws, {"message": "hello there"})
    first = await recv_until_terminal(ws)
    await send(ws, {"message": "recall"})
    second = await recv_until_terminal(ws)
    thread = first[0]["threadId"]
    assert second[0]["threadId"] == thread and second[0]["runId"] != first[0]["runId"]
    assert text(second) == "Earlier in this thread you said:\n\n- hello there\n"

    # Another socket's first start without a threadId makes a new thread.
    other = await jp_ws_fetch("deltakit", "ws")
    await send(other, {"message": "recall"})
    fresh = await recv_until_terminal(other)
    assert fresh[0]["threadId"] != thread
    assert text(fresh) == "Earlier in this thread you said:\n\n- (nothing yet)\n"
    other.close()

    # A start with a threadId moves the socket to that thread; later starts without one follow.
    await send(ws, {"message": "echo elsewhere", "threadId": "chosen"})
    assert (await recv_until_terminal(ws))[0]["threadId"] == "chosen"
    await send(ws, {"message": "recall"})
    again = await recv_until_terminal(ws)
    assert again[0]["threadId"] == "chosen"
    assert text(again) == "Earlier in this thread you said:\n\n- echo elsewhere\n"

    # A start the server refuses does not move the socket's thread.
    await send(ws, {"message": "hi", "threadId": "refused", "agent": "nobody"})
    [reply] = await recv_n(ws, 1)
    assert reply["type"] == "error" and "unknown agent" in reply["message"]
    await send(ws, {"message": "echo still here"})
    assert (await recv_until_terminal(ws))[0]["threadId"] == "chosen"
    ws.close()


async def test_thread_messages(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    assert await get_json(jp_fetch, "threads", "nobody-wrote-here", "messages") == []
    ws = await jp_ws_fetch("deltakit", "ws")
    runs = []
    for message in ("hello there", "what is 12 * (3 + 4)?", "fail", "recall"):
        await send(ws, {"message": message})
        runs.append(await recv_until_terminal(ws))
    thread = runs[0][0]["threadId"]
    await send(ws, {"message": "count 200 delay 0.05"})
    live = await recv_n(ws, 3)

    got = await get_json(jp_fetch, "threads", thread, "messages")
    assert len(got) == 8  # the live run is not there yet
    assert [m["role"] for m in got] == ["user", "assistant"] * 4
    for (user, answer), events, message in zip(
        zip(got[::2], got[1::2], strict=True),
        runs,
        ("hello there", "what is 12 * (3 + 4)?", "fail", "recall"),
        strict=True,
    ):
        run_id = events[0]["runId"]
        assert user == {
            "role": "user",
            "content": message,
            "run_id": run_id,
            "status": answer["status"],
        }
        assert answer["run_id"] == run_id and answer["content"] == text(events)
    hello, calc, fail, recall = got[1::2]
    assert hello["reasoning"] == "The user wrote 11 characters. I will answer in markdown."
    assert hello["content"].startswith("## Offline demo") and "tool_calls" not in hello
    assert calc["tool_calls"] == [
        {
            "name": "calculator",
            "args": {"expression": "12 * (3 + 4)"},
            "result": "84",
            "is_error": False,
        }
    ]
    assert "84" in calc["content"] and calc["status"] == "completed"
    assert fail["status"] == "failed" and "failed on purpose" in fail["error"]
    # (agno keeps a failed run out of the history it gives the model)
    assert recall["content"].endswith("said:\n\n- hello there\n- what is 12 * (3 + 4)?\n")
    assert "error" not in hello and "reasoning" not in calc

    await jp_fetch("deltakit", "jobs", live[0]["runId"], "cancel", method="POST", body="")
    await recv_until_terminal(ws)
    got = await get_json(jp_fetch, "threads", thread, "messages")
    assert len(got) == 10 and got[-1]["status"] == got[-2]["status"] == "cancelled"
    assert got[-2]["content"] == "count 200 delay 0.05"
    ws.close()
