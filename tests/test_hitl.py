"""Human in the loop over a real Jupyter server, real WebSockets and the real agno loop: a tool
call that waits for the user pauses the run; a decision continues it in the same log."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError
from wsclient import assert_gap_free, recv, recv_until_terminal, send, text

CONFIRM = 'tool confirm_action {"action": "delete the draft"}'
COLLECT = 'tool collect_input {"question": "Which colour?"}'
ELSEWHERE = 'tool run_elsewhere {"task": "restart the printer"}'


@pytest.fixture(params=["history db", "no db"])
def jp_server_config(request: Any) -> dict[str, object]:
    """With the history db agno reloads a paused run by its id; without one (persist off) the
    server continues it from the RunOutput it kept."""
    from conftest import TEST_AGENTS

    return {
        "ServerApp": {"jpserver_extensions": {"deltakit_nb": True}},
        "DeltakitApp": {
            "agents": {**TEST_AGENTS, "builtins": "fixture_agents:builtin_hitl_agent"},
            "model": "",
            "max_frame_bytes": 8000,
            "persist": request.param == "history db",
        },
    }


async def raw_until_terminal(ws: Any, raw: list[str]) -> list[dict]:
    """`recv_until_terminal`, keeping each frame's text as the server sent it in `raw`."""
    events: list[dict] = []
    while not events or events[-1]["type"] not in ("done", "error") or "eventId" not in events[-1]:
        frame = await asyncio.wait_for(ws.read_message(), 10)
        assert frame is not None, "socket closed"
        raw.append(frame)
        data = json.loads(frame)
        events.extend(data if isinstance(data, list) else [data])
    return events


async def recv_until(ws: Any, kind: str) -> list[dict]:
    events: list[dict] = []
    while not events or events[-1]["type"] != kind:
        events.extend(await recv(ws))
    return events


async def pause(
    jp_ws_fetch: Any, message: str, thread: str = "t-hitl", agent: str = "demo"
) -> tuple[Any, list[dict]]:
    """A socket with a run of `message` started on it, and the events up to its run_paused."""
    ws = await jp_ws_fetch("deltakit", "ws")
    await send(ws, {"message": message, "threadId": thread, "agent": agent})
    events = await recv_until(ws, "run_paused")
    return ws, events


async def get_json(jp_fetch: Any, *parts: str, **params: str) -> Any:
    return json.loads((await jp_fetch("deltakit", *parts, params=params)).body)


async def post_continue(jp_fetch: Any, run_id: str, body: Any) -> tuple[int, Any]:
    try:
        response = await jp_fetch(
            "deltakit", "runs", run_id, "continue", method="POST", body=json.dumps(body)
        )
    except HTTPClientError as exc:
        assert exc.response is not None
        return exc.code, json.loads(exc.response.body)
    return response.code, json.loads(response.body)


async def test_approve_runs_the_tool_in_the_same_log(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    ws, events = await pause(jp_ws_fetch, CONFIRM)
    run_id = events[0]["runId"]
    paused = events[-1]
    [req] = paused["requirements"]
    assert req["kind"] == "confirmation" and req["tool_name"] == "confirm_action"
    assert json.loads(req["argument"]) == {"action": "delete the draft"}
    assert req["call_id"] and "fields" not in req
    assert not any(e["type"] in ("tool_call", "done") for e in events)
    run = await get_json(jp_fetch, "runs", run_id)
    assert run["status"] == "paused" and run["finished_at"] is None
    assert run["events"] == events
    active = await get_json(jp_fetch, "active-run", threadId="t-hitl")
    assert active["run_id"] == run_id and active["status"] == "paused"

    await send(ws, {"runId": run_id, "decisions": [{"id": req["id"], "approve": True}]})
    raw: list[str] = []
    events += await raw_until_terminal(ws, raw)
    assert_gap_free(events, run_id)
    kinds = [e["type"] for e in events]
    resumed = kinds.index("run_resumed")
    assert kinds[resumed - 1] == "run_paused"
    assert events[resumed]["decisions"] == [{"id": req["id"], "approve": True}]
    assert kinds[resumed + 1 : resumed + 3] == ["tool_call", "tool_result"]
    result = events[resumed + 2]
    assert result["output"] == "done: delete the draft" and result["is_error"] is False
    assert result["call_id"] == req["call_id"]
    assert text(events) == "The `confirm_action` returned **done: delete the draft**."
    assert events[-1]["status"] == "completed"
    run = await get_json(jp_fetch, "runs", run_id)
    assert run["status"] == "completed" and run["events"] == events
    print("APPROVED, the frames after the decision:\n" + "\n".join(raw))
    ws.close()


async def test_reject_with_note(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    ws, events = await pause(jp_ws_fetch, CONFIRM)
    run_id, [req] = events[0]["runId"], events[-1]["requirements"]
    decision = {"id": req["id"], "approve": False, "note": "keep the draft"}
    await send(ws, {"runId": run_id, "decisions": [decision]})
    raw: list[str] = []
    events += await raw_until_terminal(ws, raw)
    assert_gap_free(events, run_id)
    after = events[[e["type"] for e in events].index("run_resumed") :]
    assert after[0]["decisions"] == [decision]
    call, result = after[1], after[2]
    assert call["type"] == "tool_call" and call["tool_name"] == "confirm_action"
    assert result["type"] == "tool_result" and result["is_error"] is True
    assert result["output"] == "Rejected by the user: keep the draft"
    assert result["call_id"] == call["call_id"] == req["call_id"]
    assert [e for e in events if e["type"] == "tool_result"] == [result]  # agno ran nothing
    assert "keep the draft" in text(events)  # the model was told the note
    assert events[-1]["status"] == "completed"
    print("REJECTED, the frames after the decision:\n" + "\n".join(raw))
    ws.close()


async def test_user_input(jp_ws_fetch: Any) -> None:
    ws, events = await pause(jp_ws_fetch, COLLECT)
    run_id, [req] = events[0]["runId"], events[-1]["requirements"]
    assert req["kind"] == "user_input"
    assert [(f["name"], f["type"]) for f in req["fields"]] == [("answer", "str")]
    await send(
        ws, {"runId": run_id, "decisions": [{"id": req["id"], "values": {"answer": "teal"}}]}
    )
    events += await recv_until_terminal(ws)
    assert_gap_free(events, run_id)
    results = [e for e in events if e["type"] == "tool_result"]
    assert [(r["output"], r["is_error"]) for r in results] == [("teal", False)]
    assert text(events) == "The `collect_input` returned **teal**."
    ws.close()


async def test_external_execution_result(jp_ws_fetch: Any) -> None:
    ws, events = await pause(jp_ws_fetch, ELSEWHERE)
    run_id, [req] = events[0]["runId"], events[-1]["requirements"]
    assert req["kind"] == "external_execution" and req["tool_name"] == "run_elsewhere"
    await send(ws, {"runId": run_id, "decisions": [{"id": req["id"], "result": "printer up"}]})
    events += await recv_until_terminal(ws)
    assert_gap_free(events, run_id)
    results = [e for e in events if e["type"] == "tool_result"]
    assert [(r["output"], r["is_error"], r["call_id"]) for r in results] == [
        ("printer up", False, req["call_id"])
    ]
    assert text(events) == "The `run_elsewhere` returned **printer up**."
    ws.close()


async def test_decision_over_http_continue(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    ws, events = await pause(jp_ws_fetch, CONFIRM)
    run_id, [req] = events[0]["runId"], events[-1]["requirements"]
    code, body = await post_continue(
        jp_fetch, run_id, {"runId": run_id, "decisions": [{"id": req["id"], "approve": True}]}
    )
    assert (code, body) == (200, {"status": "ok"})
    events += await recv_until_terminal(ws)  # the socket that watches sees it continue
    assert_gap_free(events, run_id)
    assert "done: delete the draft" in [e.get("output") for e in events]
    ws.close()


async def test_second_pause_after_continuing(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    """A continuation that pauses again: a second run_paused in the same log."""
    ws, events = await pause(jp_ws_fetch, f"{CONFIRM} then {COLLECT}")
    run_id, [first] = events[0]["runId"], events[-1]["requirements"]
    await send(ws, {"runId": run_id, "decisions": [{"id": first["id"], "approve": True}]})
    events += await recv_until(ws, "run_paused")
    [second] = events[-1]["requirements"]
    assert second["kind"] == "user_input" and second["id"] != first["id"]
    run = await get_json(jp_fetch, "runs", run_id)
    assert run["status"] == "paused" and run["events"] == events
    await send(
        ws, {"runId": run_id, "decisions": [{"id": second["id"], "values": {"answer": "a"}}]}
    )
    events += await recv_until_terminal(ws)
    assert_gap_free(events, run_id)
    kinds = [e["type"] for e in events]
    assert kinds.count("run_paused") == 2 and kinds.count("run_resumed") == 2
    assert [e["output"] for e in events if e["type"] == "tool_result"] == [
        "done: delete the draft",
        "a",
    ]
    assert events[-1]["status"] == "completed"
    ws.close()


BAD_DECISIONS = [
    ({"decisions": []}, "'decisions' must be a non-empty list"),
    ({"decisions": [{"approve": True}]}, "'decisions[0].id' must be a non-empty string"),
    ({"decisions": [{"id": "nope", "approve": True}]}, "unknown requirement id 'nope'"),
    ({"decisions": [{"id": "REQ"}]}, "needs 'approve': true/false"),
    ({"decisions": [{"id": "REQ", "approve": "yes"}]}, "'approve' must be true or false"),
    ({"decisions": [{"id": "REQ", "approve": True, "zap": 1}]}, "unknown key 'zap'"),
    ({"decisions": [{"id": "REQ", "result": "x"}]}, "takes no 'result'"),
    (
        {"decisions": [{"id": "REQ", "approve": True}, {"id": "REQ", "approve": False}]},
        "has more than one decision",
    ),
]


@pytest.mark.parametrize(("body", "problem"), BAD_DECISIONS)
async def test_bad_decision_leaves_the_run_paused(
    jp_ws_fetch: Any, jp_fetch: Any, body: dict, problem: str
) -> None:
    ws, events = await pause(jp_ws_fetch, CONFIRM)
    run_id, [req] = events[0]["runId"], events[-1]["requirements"]
    frame = json.loads(json.dumps(body).replace('"REQ"', json.dumps(req["id"])))
    await send(ws, {"runId": run_id, **frame})
    [error] = await recv(ws)
    assert error["type"] == "error" and problem in error["message"], error
    assert "eventId" not in error
    code, answer = await post_continue(jp_fetch, run_id, frame)
    assert code == 400 and problem in answer["message"], (code, answer)
    run = await get_json(jp_fetch, "runs", run_id)
    assert run["status"] == "paused" and run["events"] == events
    # Still decidable.
    await send(ws, {"runId": run_id, "decisions": [{"id": req["id"], "approve": True}]})
    assert (await recv_until_terminal(ws))[-1]["status"] == "completed"
    ws.close()


@pytest.mark.parametrize(
    ("values", "problem"),
    [
        ({}, "field 'answer' is missing"),
        ({"answer": 3}, "field 'answer' must be of type str, not int"),
        ({"answer": "x", "other": "y"}, "unknown field(s) 'other'"),
    ],
)
async def test_bad_user_input(jp_ws_fetch: Any, jp_fetch: Any, values: dict, problem: str) -> None:
    ws, events = await pause(jp_ws_fetch, COLLECT)
    run_id, [req] = events[0]["runId"], events[-1]["requirements"]
    await send(ws, {"runId": run_id, "decisions": [{"id": req["id"], "values": values}]})
    [error] = await recv(ws)
    assert error["type"] == "error" and problem in error["message"], error
    run = await get_json(jp_fetch, "runs", run_id)
    assert run["status"] == "paused" and run["events"] == events
    ws.close()


async def test_decision_for_unknown_or_unpaused_run(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    ws = await jp_ws_fetch("deltakit", "ws")
    await send(ws, {"runId": "no-such-run", "decisions": [{"id": "r", "approve": True}]})
    [error] = await recv(ws)
    assert error == {"type": "error", "message": "Run not found: no-such-run"}
    code, body = await post_continue(jp_fetch, "no-such-run", {"decisions": [{"id": "r"}]})
    assert code == 404 and body == {"message": "Run not found: no-such-run"}

    await send(ws, {"message": "echo hi"})
    events = await recv_until_terminal(ws)
    run_id = events[0]["runId"]
    decision = {"runId": run_id, "decisions": [{"id": "r", "approve": True}]}
    await send(ws, decision)
    [error] = await recv(ws)
    assert error["message"] == f"run {run_id} is not paused (its status is completed)"
    code, body = await post_continue(jp_fetch, run_id, decision)
    assert code == 409 and body["message"] == error["message"]
    code, body = await post_continue(jp_fetch, run_id, {"runId": "other", "decisions": []})
    assert code == 400 and "names another run" in body["message"]
    code, body = await post_continue(jp_fetch, run_id, ["not", "an", "object"])
    assert code == 400 and body["message"] == "the body must be a JSON object"
    code, body = await post_continue(jp_fetch, run_id, {"decisions": [{"id": "x" * 9000}]})
    assert code == 413 and "(limit max_frame_bytes=8000)" in body["message"]
    response = await jp_fetch(
        "deltakit", "runs", run_id, "continue", method="POST", body="{", raise_error=False
    )
    assert response.code == 400
    assert json.loads(response.body) == {"message": "the body is not valid JSON"}
    ws.close()


async def test_racing_decisions_first_wins(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    ws, events = await pause(jp_ws_fetch, CONFIRM)
    run_id, [req] = events[0]["runId"], events[-1]["requirements"]
    other = await jp_ws_fetch("deltakit", "ws")
    approve = {"runId": run_id, "decisions": [{"id": req["id"], "approve": True}]}
    reject = {"runId": run_id, "decisions": [{"id": req["id"], "approve": False}]}
    # Both frames are on their way before the server reads either.
    await asyncio.gather(send(ws, approve), send(other, reject))
    [error] = await recv(other)
    assert error["type"] == "error" and "is not paused" in error["message"], error
    events += await recv_until_terminal(ws)
    assert_gap_free(events, run_id)
    resumed = [e for e in events if e["type"] == "run_resumed"]
    assert len(resumed) == 1
    winner = resumed[0]["decisions"][0]["approve"]
    results = [e for e in events if e["type"] == "tool_result"]
    assert len(results) == 1 and results[0]["is_error"] is (not winner)
    ws.close()
    other.close()


async def test_stop_while_paused(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    ws, events = await pause(jp_ws_fetch, CONFIRM)
    run_id, [req] = events[0]["runId"], events[-1]["requirements"]
    await jp_fetch("deltakit", "jobs", run_id, "cancel", method="POST", body="")
    events += await recv_until_terminal(ws)
    assert_gap_free(events, run_id)
    assert events[-1]["type"] == "done" and events[-1]["status"] == "cancelled"
    assert [e["type"] for e in events[-2:]] == ["run_paused", "done"]
    await send(ws, {"runId": run_id, "decisions": [{"id": req["id"], "approve": True}]})
    [error] = await recv(ws)
    assert error["message"] == f"run {run_id} is not paused (its status is cancelled)"
    run = await get_json(jp_fetch, "runs", run_id)
    assert run["status"] == "cancelled" and run["events"] == events
    ws.close()


async def test_stop_racing_a_decision(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    """A decision and a Stop at once: the run ends once, cancelled or (if the continuation
    finished first) completed, never both, and a refused decision gets an error."""
    ws, events = await pause(jp_ws_fetch, CONFIRM)
    run_id, [req] = events[0]["runId"], events[-1]["requirements"]
    decide = send(ws, {"runId": run_id, "decisions": [{"id": req["id"], "approve": True}]})
    stop = jp_fetch("deltakit", "jobs", run_id, "cancel", method="POST", body="")
    await asyncio.gather(decide, stop)
    rest: list[dict] = []
    while not rest or rest[-1]["type"] not in ("done", "error") or "eventId" not in rest[-1]:
        rest.extend(await recv(ws))
    refused = [e for e in rest if "eventId" not in e]
    events += [e for e in rest if "eventId" in e]
    assert_gap_free(events, run_id)
    assert [e["type"] for e in events].count("done") == 1
    resumed = any(e["type"] == "run_resumed" for e in events)
    if not resumed:  # the Stop won: the decision was refused
        assert events[-1]["status"] == "cancelled"
        assert [e["message"] for e in refused] == [
            f"run {run_id} is not paused (its status is cancelled)"
        ]
    else:
        assert not refused and events[-1]["status"] in ("cancelled", "completed")
    run = await get_json(jp_fetch, "runs", run_id)
    assert run["status"] == events[-1]["status"] and run["events"] == events
    ws.close()


async def test_second_socket_following_the_thread(jp_ws_fetch: Any) -> None:
    follower = await jp_ws_fetch("deltakit", "ws")
    await send(follower, {"followThread": "t-two-tabs"})
    ws, events = await pause(jp_ws_fetch, CONFIRM, thread="t-two-tabs")
    run_id, [req] = events[0]["runId"], events[-1]["requirements"]
    [notice] = await recv(follower)
    assert notice["type"] == "thread_run" and notice["runId"] == run_id
    await send(follower, {"runId": run_id, "lastEventId": -1})
    seen = await recv_until(follower, "run_paused")
    assert seen == events
    # The follower decides; both see the same continuation.
    await send(follower, {"runId": run_id, "decisions": [{"id": req["id"], "approve": True}]})
    mine = events + await recv_until_terminal(ws)
    theirs = seen + await recv_until_terminal(follower)
    assert mine == theirs
    assert [e["type"] for e in mine].count("run_resumed") == 1
    ws.close()
    follower.close()


GET_USER_INPUT = "tool get_user_input " + json.dumps(
    {
        "user_input_fields": [
            {"field_name": "city", "field_type": "str", "field_description": "Your city"},
            {"field_name": "nights", "field_type": "int", "field_description": "How long"},
        ]
    }
)
QUESTIONS = [
    {
        "question": "Which size?",
        "header": "Size",
        "options": [{"label": "S", "description": "small"}, {"label": "L"}],
        "multi_select": False,
    },
    {
        "question": "Which extras?",
        "header": "Extras",
        "options": [{"label": "milk"}, {"label": "sugar"}],
        "multi_select": True,
    },
]
ASK_USER = "tool ask_user " + json.dumps({"questions": QUESTIONS})


async def test_agnos_user_control_flow_toolkit(jp_ws_fetch: Any) -> None:
    ws, events = await pause(jp_ws_fetch, GET_USER_INPUT, agent="builtins")
    run_id, [req] = events[0]["runId"], events[-1]["requirements"]
    assert req["kind"] == "user_input" and req["tool_name"] == "get_user_input"
    assert req["fields"] == [
        {"name": "city", "type": "str", "description": "Your city"},
        {"name": "nights", "type": "int", "description": "How long"},
    ]
    await send(ws, {"runId": run_id, "decisions": [{"id": req["id"], "values": {"city": 3}}]})
    [error] = await recv(ws)
    assert "field 'city' must be of type str, not int" in error["message"]
    values = {"city": "Oslo", "nights": 2}
    await send(ws, {"runId": run_id, "decisions": [{"id": req["id"], "values": values}]})
    events += await recv_until_terminal(ws)
    assert_gap_free(events, run_id)
    [result] = [e for e in events if e["type"] == "tool_result"]
    assert json.loads(result["output"]) == values and result["call_id"] == req["call_id"]
    # agno handed the model the answers: the offline model quotes its tool message.
    assert text(events) == (
        "The `get_user_input` returned **User inputs retrieved: "
        '[{"name": "city", "value": "Oslo"}, {"name": "nights", "value": 2}]**.'
    )
    ws.close()


async def test_agnos_user_feedback_toolkit(jp_ws_fetch: Any) -> None:
    ws, events = await pause(jp_ws_fetch, ASK_USER, agent="builtins")
    run_id, [req] = events[0]["runId"], events[-1]["requirements"]
    assert req["kind"] == "user_feedback" and req["tool_name"] == "ask_user"
    # Passed on to the card as agno gave them (no field dropped or renamed).
    assert req["questions"] == QUESTIONS
    for values, problem in [
        ({"Which size?": ["S", "L"], "Which extras?": []}, "'Which size?' takes one option"),
        ({"Which size?": ["XL"], "Which extras?": []}, "'XL' is not an option of 'Which size?'"),
        ({"Which size?": ["S"]}, "no answer to question 'Which extras?'"),
        ({"Which size?": "S", "Which extras?": []}, "must be a list of option labels"),
    ]:
        await send(ws, {"runId": run_id, "decisions": [{"id": req["id"], "values": values}]})
        [error] = await recv(ws)
        assert problem in error["message"], error
    values = {"Which size?": ["L"], "Which extras?": ["milk", "sugar"]}
    await send(ws, {"runId": run_id, "decisions": [{"id": req["id"], "values": values}]})
    events += await recv_until_terminal(ws)
    assert_gap_free(events, run_id)
    [result] = [e for e in events if e["type"] == "tool_result"]
    assert json.loads(result["output"]) == values
    assert text(events) == (
        "The `ask_user` returned **User feedback received: "
        '[{"question": "Which size?", "selected": ["L"]}, '
        '{"question": "Which extras?", "selected": ["milk", "sugar"]}]**.'
    )
    ws.close()


async def test_paused_runs_count_toward_no_concurrency_limit(
    jp_ws_fetch: Any, jp_serverapp: Any
) -> None:
    app = next(iter(jp_serverapp.extension_manager.extension_apps["deltakit_nb"]))
    app.registry.max_concurrent_runs = 1
    sockets = []
    for i in range(3):  # each one pauses, so the next may start
        ws, events = await pause(jp_ws_fetch, CONFIRM, thread=f"t-limit-{i}")
        assert events[-1]["type"] == "run_paused"
        assert app.registry.get(events[0]["runId"]).task is None  # no task holds it
        sockets.append((ws, events))
    ws, events = sockets[0]
    await send(ws, {"message": "count 100 delay 0.05", "threadId": "t-busy"})
    busy = await recv(ws)
    assert busy[0]["type"] == "run_started"
    # Continuing a paused run makes it run again: now it is over the limit.
    other, paused = sockets[1]
    run_id, [req] = paused[0]["runId"], paused[-1]["requirements"]
    await send(other, {"runId": run_id, "decisions": [{"id": req["id"], "approve": True}]})
    [error] = await recv(other)
    assert error["message"] == "too many runs in progress: 1 (limit max_concurrent_runs=1)"
    assert app.registry.get(run_id).status.value == "paused"
    for ws, _ in sockets:
        ws.close()
