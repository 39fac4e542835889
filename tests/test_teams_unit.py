"""Teams and workflows without a server: the adapter on real agno event objects (built by hand
and from agno's own team and workflow loops), and the relay's fast path on a team's stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from agno.models.response import ToolExecution
from agno.run import agent as agent_events
from agno.run import team as team_events
from agno.run import workflow as workflow_events

from deltakit_nb import protocol
from deltakit_nb.adapter import AgnoAdapter
from deltakit_nb.offline import demo_agent, demo_team, demo_workflow
from deltakit_nb.server.eventlog import EventLog
from deltakit_nb.server.runs import content_types, relay

R = "team-run"
RESEARCHER = {"id": "researcher", "name": "Researcher", "run_id": "m1"}
WRITER = {"id": "writer-bot", "name": "Writer Bot", "run_id": "m2"}


def delegate(call_id: str, member_id: str | None) -> ToolExecution:
    if member_id is None:
        return ToolExecution(
            tool_name="delegate_task_to_members", tool_args={"task": "t"}, tool_call_id=call_id
        )
    args = {"member_id": member_id, "task": "t"}
    return ToolExecution(tool_name="delegate_task_to_member", tool_args=args, tool_call_id=call_id)


def member(cls: Any, who: dict[str, str], **fields: Any) -> Any:
    return cls(
        run_id=who["run_id"], agent_id=who["id"], agent_name=who["name"], parent_run_id=R, **fields
    )


def test_member_events_nest_and_do_not_end_the_team_run() -> None:
    adapter = AgnoAdapter(run_id=R)
    ticks = iter([1.0, 2.0, 3.0, 4.0])
    adapter.clock = lambda: next(ticks)  # a member's tool events are timed as the leader's are
    calc = ToolExecution(tool_name="calculator", tool_args={"expression": "6*7"}, tool_call_id="k")
    done = ToolExecution(tool_name="calculator", tool_call_id="k", result="42")
    out = [
        e
        for event in [
            team_events.ToolCallStartedEvent(run_id=R, tool=delegate("c1", "researcher")),
            member(agent_events.RunStartedEvent, RESEARCHER),
            member(agent_events.RunContentEvent, RESEARCHER, reasoning_content="hmm", content=""),
            member(agent_events.ToolCallStartedEvent, RESEARCHER, tool=calc),
            member(agent_events.ToolCallCompletedEvent, RESEARCHER, tool=done),
            member(agent_events.RunContentEvent, RESEARCHER, content="42"),
            member(agent_events.RunCompletedEvent, RESEARCHER, content="42"),
            team_events.ToolCallCompletedEvent(
                run_id=R,
                tool=ToolExecution(
                    tool_name="delegate_task_to_member", tool_call_id="c1", result="42"
                ),
            ),
            team_events.RunContentEvent(run_id=R, content="It is 42."),
            team_events.RunCompletedEvent(run_id=R, content="It is 42."),
        ]
        for e in adapter.translate(event)
    ]
    # The member run is introduced once; its later events name it by its run id only.
    nest = {"member_run_id": "m1"}
    assert out == [
        {
            "type": "tool_call",
            "tool_name": "delegate_task_to_member",
            "argument": '{"member_id": "researcher", "task": "t"}',
            "call_id": "c1",
            "ts": 1.0,
        },
        {"type": "member_started", "member": RESEARCHER, "parent_call_id": "c1"},
        {"type": "reasoning", "text": "hmm", **nest},
        {
            "type": "tool_call",
            "tool_name": "calculator",
            "argument": '{"expression": "6*7"}',
            "call_id": "k",
            "ts": 2.0,
            **nest,
        },
        {
            "type": "tool_result",
            "call_id": "k",
            "tool_name": "calculator",
            "output": "42",
            "is_error": False,
            "ts": 3.0,
            **nest,
        },
        {"type": "member_text_delta", "delta": "42", **nest},
        {"type": "member_done", "status": "completed", **nest},
        {
            "type": "tool_result",
            "call_id": "c1",
            "tool_name": "delegate_task_to_member",
            "output": "42",
            "is_error": False,
            "ts": 4.0,
        },
        {"type": "text_delta", "delta": "It is 42."},
        {"type": "done", "status": "completed"},
    ]


def test_parallel_delegations_match_their_members_and_a_member_failure_is_its_own() -> None:
    adapter = AgnoAdapter(run_id=R)
    adapter.translate(team_events.ToolCallStartedEvent(run_id=R, tool=delegate("c1", "researcher")))
    # agno names a member without id by its url-safe name: "Writer Bot" → "writer-bot"
    adapter.translate(team_events.ToolCallStartedEvent(run_id=R, tool=delegate("c2", "writer-bot")))
    writer = {**WRITER, "id": ""}
    started_w = adapter.translate(
        agent_events.RunStartedEvent(run_id="m2", agent_name="Writer Bot", parent_run_id=R)
    )
    started_r = adapter.translate(member(agent_events.RunStartedEvent, RESEARCHER))
    assert started_w == [
        {
            "type": "member_started",
            "member": {**writer, "name": "Writer Bot"},
            "parent_call_id": "c2",
        }
    ]
    assert started_r[0]["parent_call_id"] == "c1"
    failed = adapter.translate(member(agent_events.RunErrorEvent, RESEARCHER, content="boom"))
    assert failed == [
        {"type": "member_done", "member_run_id": "m1", "status": "failed", "message": "boom"}
    ]
    # A cancelled member's late RunCompleted (agno sends both) adds nothing.
    assert adapter.translate(member(agent_events.RunCompletedEvent, RESEARCHER)) == []
    assert adapter.status is None  # the team run goes on
    text = adapter.translate(
        agent_events.RunContentEvent(run_id="m2", agent_name="Writer Bot", content="x")
    )
    assert text == [{"type": "member_text_delta", "delta": "x", "member_run_id": "m2"}]


def test_broadcast_members_share_the_one_delegate_call() -> None:
    adapter = AgnoAdapter(run_id=R)
    adapter.translate(team_events.ToolCallStartedEvent(run_id=R, tool=delegate("all", None)))
    for who in (RESEARCHER, WRITER):
        [started] = adapter.translate(member(agent_events.RunStartedEvent, who))
        assert started["parent_call_id"] == "all"


def test_team_cancel_and_error_end_the_run() -> None:
    adapter = AgnoAdapter(run_id=R)
    assert adapter.translate(team_events.RunCancelledEvent(run_id=R)) == [
        {"type": "done", "status": "cancelled"}
    ]
    adapter = AgnoAdapter(run_id=R)
    assert adapter.translate(team_events.RunErrorEvent(run_id=R, content="bad")) == [
        {"type": "error", "message": "bad"}
    ]


def test_workflow_steps_and_their_agents_events() -> None:
    adapter = AgnoAdapter(run_id="w", workflow=True)
    step = {"step_id": "s1", "step_name": "research", "step_index": 0}
    wire_step = {"id": "s1", "name": "research", "index": 0}
    out = [
        e
        for event in [
            workflow_events.WorkflowStartedEvent(run_id="w"),
            workflow_events.StepStartedEvent(run_id="w", **step),
            agent_events.RunStartedEvent(run_id="a1", agent_id="researcher", **step),
            agent_events.RunContentEvent(run_id="a1", agent_id="researcher", content="hi", **step),
            agent_events.RunCompletedEvent(run_id="a1", agent_id="researcher", **step),
            workflow_events.StepCompletedEvent(run_id="w", **step),
            workflow_events.StepErrorEvent(
                run_id="w", step_id="s2", step_name="write", step_index=(1, 0), error="no"
            ),
            workflow_events.WorkflowCompletedEvent(run_id="w"),
        ]
        for e in adapter.translate(event)
    ]
    assert out == [
        {"type": "step_started", "step": wire_step},
        {"type": "text_delta", "delta": "hi", "step": wire_step},
        {"type": "step_completed", "step": wire_step, "status": "completed"},
        {
            "type": "step_completed",
            "step": {"id": "s2", "name": "write", "index": [1, 0]},
            "status": "failed",
            "message": "no",
        },
        {"type": "done", "status": "completed"},
    ]
    failing = AgnoAdapter(run_id="w", workflow=True)
    assert failing.translate(workflow_events.WorkflowErrorEvent(run_id="w", error="oops")) == [
        {"type": "error", "message": "oops"}
    ]


async def relayed(runnable: Any, message: str, fast: bool = True) -> list[dict[str, Any]]:
    adapter, log = AgnoAdapter(), EventLog("R1")
    content_type, member_type = content_types(runnable, adapter, "R1")
    member_type = member_type if fast else None
    kwargs = {} if adapter.workflow else {"yield_run_output": True}
    stream = runnable.arun(
        message, stream=True, stream_events=True, run_id="R1", session_id="s", **kwargs
    )
    await relay(stream, adapter, log, content_type, adapter.run_id, member_type)
    log.close()
    return [json.loads(e) for e in log.encoded()]


def test_relay_keeps_member_text_out_of_the_leaders_text() -> None:
    # A member's chunks are agno *agent* RunContentEvents: the agent fast path would take
    # them for the run's own text.
    events = asyncio.run(relayed(demo_team(0), "delegate writer echo hello world"))
    leader = "".join(e["delta"] for e in events if e["type"] == "text_delta")
    members = "".join(e["delta"] for e in events if e["type"] == "member_text_delta")
    assert members == "hello world"
    assert leader == "The team's answer:\n\nhello world\n"
    assert [e["eventId"] for e in events] == list(range(len(events)))


def test_member_text_fast_path_writes_what_translate_would() -> None:
    for run_id in ("m1", "Ré \u2028\ud800"):
        for delta in ("plain", 'quo"te\n', "\ud800 lone", "é"):
            event = protocol.member_text_delta(delta, run_id)
            tail = protocol.member_text_tail(run_id)
            expected = protocol.encode_run_event(event, 7, "R1", '"R1"')
            assert protocol.encode_member_text(delta, tail, 7, '"R1"') == expected
    team = demo_team(0)
    fast = asyncio.run(relayed(team, "delegate all echo hello there"))
    slow = asyncio.run(relayed(team, "delegate all echo hello there", fast=False))

    def member(events: list[dict[str, Any]], e: dict[str, Any]) -> Any:
        names = {e["member"]["run_id"]: e["member"]["name"] for e in events if "member" in e}
        return names.get(e.get("member_run_id") or (e.get("member") or {}).get("run_id"))

    def shape(events: list[dict[str, Any]]) -> list[Any]:
        return sorted(  # the members' chunks interleave in any order; their run ids are new
            (e["type"], e.get("delta"), member(events, e), e.get("eventId") is not None)
            for e in events
            if e["type"] != "member_text_delta"
        )

    def texts(events: list[dict[str, Any]]) -> dict[Any, str]:
        said: dict[Any, str] = {}
        for e in events:
            if e["type"] == "member_text_delta":
                said[member(events, e)] = said.get(member(events, e), "") + e["delta"]
        return said

    assert shape(fast) == shape(slow)
    assert texts(fast) == texts(slow) == {"researcher": "hello there", "writer": "hello there"}
    # The slow way, an event per chunk; the fast way, a member's chunks that arrived together
    # in one event (the offline members stream without awaiting).
    assert sum(e["type"] == "member_text_delta" for e in slow) == 4
    assert 2 <= sum(e["type"] == "member_text_delta" for e in fast) < 4


def test_relay_of_an_agent_and_a_workflow() -> None:
    agent = asyncio.run(relayed(demo_agent(0), "echo abc"))
    assert [(e["type"], e.get("delta")) for e in agent] == [("text_delta", "abc"), ("done", None)]
    flow = asyncio.run(relayed(demo_workflow(0), "echo abc"))
    kinds = [e["type"] for e in flow]
    assert kinds[0] == "step_started" and kinds[-1] == "done" and kinds.count("step_completed") == 2
    assert all("step" in e for e in flow if e["type"] == "text_delta")


def test_member_texts_wait_and_flush_in_arrival_order() -> None:
    """Members' text deltas are batched as the leader's are: whoever's texts wait are flushed
    (as one event) before anyone else's are added, so ids follow arrival order, byte-for-byte
    as `append`."""
    log, tail1, tail2 = (
        EventLog("R1"),
        protocol.member_text_tail("m1"),
        protocol.member_text_tail("m2"),
    )
    assert log.add_member_text("a", tail1) is True  # the first waiting text: schedule a flush
    assert log.add_member_text("b", tail1) is False
    assert len(log) == 0 and log.member_texts == ["a", "b"]
    assert log.add_member_text("c", tail2) is True  # another member: m1's go first
    assert len(log) == 1 and log.member_texts == ["c"]
    log.flush()  # as the relay does before the leader's first waiting text
    log.texts.append("lead")
    log.flush()
    log.texts.append("lead 2")
    log.append(protocol.text_delta("x"))
    log.add_member_text("d", tail1)
    log.append_text("y")
    log.add_member_text("e", tail2)
    log.close()  # flushes what waits
    expected = [  # what waited together is one event
        protocol.member_text_delta("ab", "m1"),
        protocol.member_text_delta("c", "m2"),
        protocol.text_delta("lead"),
        protocol.text_delta("lead 2"),
        protocol.text_delta("x"),
        protocol.member_text_delta("d", "m1"),
        protocol.text_delta("y"),
        protocol.member_text_delta("e", "m2"),
    ]
    assert log.encoded() == [
        protocol.encode_run_event(e, i, "R1", '"R1"') for i, e in enumerate(expected)
    ]


def test_relay_batches_a_members_text_until_the_loop_yields() -> None:
    """The relay adds a member's chunks to the waiting texts and puts them in the log when the
    loop next runs its callbacks, as for the leader's: as one event, not one per chunk."""

    async def go() -> tuple[int, int, list[dict[str, Any]]]:
        team = demo_team(0)
        adapter, log = AgnoAdapter(), EventLog("R1")
        content_type, member_type = content_types(team, adapter, "R1")
        stream = team.arun(
            "delegate researcher bench 500",
            stream=True,
            stream_events=True,
            run_id="R1",
            session_id="s",
            yield_run_output=True,
        )
        most_waiting = [0]
        flush = log.flush

        def counting_flush() -> None:
            most_waiting[0] = max(most_waiting[0], len(log.member_texts))
            flush()

        log.flush = counting_flush  # type: ignore[method-assign]
        await relay(stream, adapter, log, content_type, adapter.run_id, member_type)
        log.close()
        events = [json.loads(e) for e in log.encoded()]
        return most_waiting[0], len(events), events

    most, _, events = asyncio.run(go())
    texts = [e for e in events if e["type"] == "member_text_delta"]
    assert "".join(e["delta"] for e in texts) == "tok " * 500
    assert most > 1 and len(texts) < 500  # what waited together went in as one event
    [started] = [e for e in events if e["type"] == "member_started"]
    assert {e["member_run_id"] for e in texts} == {started["member"]["run_id"]}
    assert [e["eventId"] for e in events] == list(range(len(events)))
