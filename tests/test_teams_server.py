"""Teams and workflows on a real server: the real agno team loop (offline models), a real
WebSocket; member runs introduced by member_started (`member`, `parent_call_id`), their work
nested by `member_run_id`, workflow steps."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from conftest import TEST_AGENTS
from wsclient import assert_gap_free, recv, recv_until_terminal, send, text

TEAM_AGENTS = {
    **TEST_AGENTS,
    "team": "deltakit_nb.offline:demo_team",
    "workflow": "deltakit_nb.offline:demo_workflow",
}
DELEGATE = "delegate_task_to_member"


@pytest.fixture
def jp_server_config() -> dict[str, object]:
    return {
        "ServerApp": {"jpserver_extensions": {"deltakit_nb": True}},
        "DeltakitApp": {"agents": TEAM_AGENTS, "model": ""},
    }


async def start(jp_ws_fetch: Any, message: str, agent: str = "team") -> tuple[Any, list[dict]]:
    ws = await jp_ws_fetch("deltakit", "ws")
    await send(ws, {"message": message, "agent": agent})
    first = await recv(ws)
    assert first[0]["type"] == "run_started", first
    return ws, first


async def stored(jp_fetch: Any, run_id: str) -> Any:
    return json.loads((await jp_fetch("deltakit", "runs", run_id)).body)


def of_member(events: list[dict], name: str) -> list[dict]:
    """The events of the runs of the member `name`: its member_started, then those that name
    the run by `member_run_id`."""
    runs = {
        e["member"]["run_id"]
        for e in events
        if e["type"] == "member_started" and e["member"]["name"] == name
    }
    return [
        e
        for e in events
        if e.get("member_run_id") in runs
        or (e["type"] == "member_started" and e["member"]["run_id"] in runs)
    ]


def nested(event: dict) -> bool:
    """A member's event (not the leader's own)."""
    return "member" in event or "member_run_id" in event


def member_text(events: list[dict], name: str) -> str:
    return "".join(e["delta"] for e in of_member(events, name) if e["type"] == "member_text_delta")


async def test_delegated_member_work_nests_in_the_leaders_call(
    jp_ws_fetch: Any, jp_fetch: Any
) -> None:
    ws, events = await start(jp_ws_fetch, "delegate researcher what is 6 * 7?")
    events += await recv_until_terminal(ws)
    run_id = events[0]["runId"]
    assert_gap_free(events, run_id)
    print("\n".join(json.dumps(e) for e in events))  # the wire events, for the report
    [delegate] = [e for e in events if e["type"] == "tool_call" and not nested(e)]
    assert delegate["tool_name"] == DELEGATE
    assert json.loads(delegate["argument"]) == {"member_id": "researcher", "task": "what is 6 * 7?"}
    member = of_member(events, "researcher")
    assert [e["type"] for e in member] == [
        "member_started",
        "tool_call",
        "tool_result",
        "member_text_delta",  # its six chunks came in one turn of the loop: one event
        "member_done",
    ]
    started = member[0]
    assert started["parent_call_id"] == delegate["call_id"]
    assert started["member"]["run_id"] != run_id and started["member"]["id"] == "researcher"
    # Who the member is is said once: its later events name its run, nothing more.
    assert {e["member_run_id"] for e in member[1:]} == {started["member"]["run_id"]}
    assert not any("member" in e or "parent_call_id" in e for e in member[1:])
    assert set(member[3]) == {"type", "delta", "member_run_id", "eventId", "runId"}
    assert member[1]["tool_name"] == "calculator" and member[2]["output"] == "42"
    assert member_text(events, "researcher") == "The `calculator` returned **42**."
    assert member[-1]["status"] == "completed"
    # The leader's answer is the only plain text; its delegate result closes the member's card.
    [result] = [e for e in events if e["type"] == "tool_result" and not nested(e)]
    assert result["call_id"] == delegate["call_id"] and events.index(result) > events.index(
        member[-1]
    )
    assert text(events) == "The team's answer:\n\nThe `calculator` returned **42**.\n"
    assert not any(nested(e) for e in events if e["type"] == "text_delta")
    # A team run's footer figures are the leader's run metrics, as for an agent.
    metrics = events[-1].pop("metrics")
    assert metrics["model"] == "offline" and metrics["output_tokens"] > 0
    done = {"type": "done", "status": "completed", "eventId": len(events) - 1, "runId": run_id}
    assert events[-1] == done
    events[-1]["metrics"] = metrics
    assert (await stored(jp_fetch, run_id))["events"] == events
    ws.close()


async def test_parallel_members_each_nest_in_their_own_call(jp_ws_fetch: Any) -> None:
    ws, events = await start(jp_ws_fetch, "delegate all summarise X")
    events += await recv_until_terminal(ws)
    calls = {
        json.loads(e["argument"])["member_id"]: e["call_id"]
        for e in events
        if e["type"] == "tool_call" and not nested(e)
    }
    assert set(calls) == {"researcher", "writer"}
    for name in ("researcher", "writer"):
        member = of_member(events, name)
        assert member[0]["type"] == "member_started" and member[-1]["type"] == "member_done"
        assert member[0]["parent_call_id"] == calls[name]
        assert len({e["member_run_id"] for e in member[1:]}) == 1
    assert member_text(events, "writer") == "Draft: summarise X"
    assert any(e["type"] == "reasoning" for e in of_member(events, "researcher"))
    assert "Draft: summarise X" in text(events) and events[-1]["status"] == "completed"
    ws.close()


async def test_resume_from_the_middle_of_a_members_stream(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    ws, events = await start(jp_ws_fetch, "delegate researcher count 60 delay 0.01")
    while sum(e["type"] == "member_text_delta" for e in events) < 10:
        events += await recv(ws)
    ws.close()
    last = events[-1]["eventId"]
    assert events[-1]["type"] == "member_text_delta"
    ws2 = await jp_ws_fetch("deltakit", "ws")
    await send(ws2, {"runId": events[0]["runId"], "lastEventId": last})
    rest = await recv_until_terminal(ws2)
    whole = events + rest
    assert_gap_free(whole, events[0]["runId"])
    numbers = " ".join(str(i) for i in range(1, 61)) + " "
    assert member_text(whole, "researcher") == numbers
    assert whole == (await stored(jp_fetch, events[0]["runId"]))["events"]
    ws2.close()


async def test_stop_cancels_the_team_and_its_running_member(
    jp_ws_fetch: Any, jp_fetch: Any
) -> None:
    ws, events = await start(jp_ws_fetch, "delegate researcher count 300 delay 0.05")
    run_id = events[0]["runId"]
    while sum(e["type"] == "member_text_delta" for e in events) < 3:
        events += await recv(ws)
    await jp_fetch("deltakit", "jobs", run_id, "cancel", method="POST", body="")
    seen = len(member_text(events, "researcher").split())
    events += await recv_until_terminal(ws)
    assert_gap_free(events, run_id)
    assert [e["status"] for e in events if e["type"] == "member_done"] == ["cancelled"]
    assert events[-1]["type"] == "done" and events[-1]["status"] == "cancelled"
    # agno's cancel reached the member at its next chunk (a task cancel would only come after
    # cancel_grace_seconds, 2 s = 40 more numbers)
    assert len(member_text(events, "researcher").split()) <= seen + 3
    assert text(events) == ""  # the leader never answered
    await asyncio.sleep(0.5)  # the member's agno run is stopped too: nothing more arrives
    assert (await stored(jp_fetch, run_id))["events"] == events
    ws.close()


async def test_a_failing_member_fails_alone_and_the_leader_goes_on(jp_ws_fetch: Any) -> None:
    ws, events = await start(jp_ws_fetch, "delegate researcher fail")
    events += await recv_until_terminal(ws)
    [done] = [e for e in events if e["type"] == "member_done"]
    assert done["status"] == "failed" and "failed on purpose" in done["message"]
    started = of_member(events, "researcher")[0]
    assert done["member_run_id"] == started["member"]["run_id"]
    [result] = [e for e in events if e["type"] == "tool_result" and not nested(e)]
    assert result["call_id"] == started["parent_call_id"]
    assert text(events).startswith("The team's answer:")
    assert "metrics" in events[-1]
    assert {k: v for k, v in events[-1].items() if k != "metrics"} == {
        "type": "done",
        "status": "completed",
        "eventId": len(events) - 1,
        "runId": events[0]["runId"],
    }
    ws.close()


async def test_workflow_steps_stream_in_order(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    ws, events = await start(jp_ws_fetch, "what is 6 * 7?", agent="workflow")
    events += await recv_until_terminal(ws)
    run_id = events[0]["runId"]
    assert_gap_free(events, run_id)
    steps = [(e["type"], e["step"]["name"]) for e in events if e["type"].startswith("step_")]
    assert steps == [
        ("step_started", "research"),
        ("step_completed", "research"),
        ("step_started", "write"),
        ("step_completed", "write"),
    ]
    research, write = (e["step"] for e in events if e["type"] == "step_started")
    assert (research["index"], write["index"]) == (0, 1)
    [call] = [e for e in events if e["type"] == "tool_call"]
    assert call["tool_name"] == "calculator" and call["step"] == research
    deltas = [e for e in events if e["type"] == "text_delta"]
    assert all(e["step"] in (research, write) for e in deltas)
    said = "The `calculator` returned **42**."
    assert text([e for e in deltas if e["step"] == research]) == said
    assert text([e for e in deltas if e["step"] == write]) == "Draft: " + said.replace("`", "'")
    assert all(e["status"] == "completed" for e in events if e["type"] == "step_completed")
    assert events[-1]["type"] == "done" and events[-1]["status"] == "completed"
    assert not any(nested(e) for e in events)
    # The footer's figures: both steps' tokens added up, their model once, the whole duration.
    metrics = events[-1]["metrics"]
    assert metrics["model"] == "offline" and metrics["duration"] > 0
    assert metrics["input_tokens"] > metrics["output_tokens"] > 0
    ws.close()


async def test_agents_listing_has_the_team_and_workflow(jp_fetch: Any) -> None:
    listed = json.loads((await jp_fetch("deltakit", "agents")).body)
    names = {a["name"]: a["description"] for a in listed["agents"]}
    assert names["team"].startswith("Offline demo team")
    assert names["workflow"].startswith("Offline demo workflow")


async def test_a_team_thread_keeps_its_history(jp_ws_fetch: Any) -> None:
    # A second team run in the same thread has the first in its history (db + session id).
    ws = await jp_ws_fetch("deltakit", "ws")
    await send(ws, {"message": "delegate researcher what is 6 * 7?", "agent": "team"})
    first = await recv_until_terminal(ws)
    await send(ws, {"message": "recall", "agent": "team", "threadId": first[0]["threadId"]})
    second = await recv_until_terminal(ws)
    assert "- delegate researcher what is 6 * 7?" in text(second)
    ws.close()


@pytest.mark.parametrize("approve", [True, False])
async def test_a_members_approval_pauses_the_team_and_continues_it(
    jp_ws_fetch: Any, jp_fetch: Any, approve: bool
) -> None:
    ask = 'delegate researcher tool confirm_action {"action": "ship it"}'
    ws, events = await start(jp_ws_fetch, ask)
    events += await recv_until_terminal_or_pause(ws)
    run_id = events[0]["runId"]
    paused = events[-1]
    assert paused["type"] == "run_paused"
    [req] = paused["requirements"]
    [delegate] = [e for e in events if e["type"] == "tool_call" and not nested(e)]
    [started] = [e for e in events if e["type"] == "member_started"]
    assert req["tool_name"] == "confirm_action" and req["member"] == started["member"]
    assert req["parent_call_id"] == delegate["call_id"]
    assert (await stored(jp_fetch, run_id))["status"] == "paused"

    decision = {"id": req["id"], "approve": approve}
    await send(ws, {"runId": run_id, "decisions": [decision]})
    events += await recv_until_terminal(ws)
    assert_gap_free(events, run_id)
    after = events[[e["type"] for e in events].index("run_resumed") + 1 :]
    calls = [e for e in after if e["type"] in ("tool_call", "tool_result") and nested(e)]
    assert calls and all(e["member_run_id"] == started["member"]["run_id"] for e in calls)
    assert started["parent_call_id"] == delegate["call_id"]
    [result] = [e for e in calls if e["type"] == "tool_result"]
    if approve:
        assert result["output"] == "done: ship it" and not result["is_error"]
    else:
        assert result["is_error"] and result["output"].startswith("Rejected by the user")
    assert [e["type"] for e in events].count("member_started") == 1
    assert events[-1]["type"] == "done" and events[-1]["status"] == "completed"
    assert text(after).startswith("The team's answer:")
    ws.close()


async def recv_until_terminal_or_pause(ws: Any) -> list[dict]:
    events: list[dict] = []
    while not events or events[-1]["type"] not in ("done", "error", "run_paused"):
        events.extend(await recv(ws))
    return events
