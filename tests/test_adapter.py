"""The agno adapter, fed the events of real agno runs (the offline model in agno's own loop)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from deltakit_nb.adapter import AgnoAdapter
from deltakit_nb.offline import demo_agent
from deltakit_nb.protocol import RunStatus


def agno_events(message: str, **kwargs: Any) -> list[Any]:
    async def collect() -> list[Any]:
        agent = demo_agent(chunk_delay=0)
        return [e async for e in agent.arun(message, stream=True, stream_events=True, **kwargs)]

    return asyncio.run(collect())


def translate(
    events: list[Any], clock: Callable[[], float] | None = None
) -> tuple[list[dict], AgnoAdapter]:
    adapter = AgnoAdapter()
    if clock is not None:
        adapter.clock = clock
    return [out for e in events for out in adapter.translate(e)], adapter


def test_text_and_reasoning() -> None:
    raw = agno_events("hello there")
    out, adapter = translate(raw)
    assert adapter.status is RunStatus.COMPLETED
    assert out[-1]["type"] == "done" and out[-1]["status"] == "completed"
    answer = "".join(e["delta"] for e in out if e["type"] == "text_delta")
    completed = next(e for e in raw if e.event == "RunCompleted")
    assert answer == completed.content
    reasoning = "".join(e["text"] for e in out if e["type"] == "reasoning")
    assert reasoning == "The user wrote 11 characters. I will answer in markdown."
    # agno's empty reasoning_content ('') on plain text chunks must not become events.
    assert all(e["text"] for e in out if e["type"] == "reasoning")


def test_tool_call_and_result() -> None:
    raw = agno_events("what is 6 * 7")
    before = time.time()
    out, _ = translate(raw)
    after = time.time()
    [call] = [e for e in out if e["type"] == "tool_call"]
    [result] = [e for e in out if e["type"] == "tool_result"]
    started = next(e for e in raw if e.event == "ToolCallStarted")
    # the server's clock when each was translated (appended), for the card's duration
    assert before <= call.pop("ts") <= result["ts"] <= after
    result.pop("ts")
    assert call == {
        "type": "tool_call",
        "tool_name": "calculator",
        "argument": json.dumps({"expression": "6 * 7"}),
        "call_id": started.tool.tool_call_id,
    }
    assert result == {
        "type": "tool_result",
        "call_id": started.tool.tool_call_id,
        "tool_name": "calculator",
        "output": "42",
        "is_error": False,
    }


def test_tool_error_is_flagged_and_run_continues() -> None:
    raw = agno_events('tool broken_tool {"reason": "nope"}')
    assert any(e.event == "ToolCallError" for e in raw)
    out, adapter = translate(raw)
    [result] = [e for e in out if e["type"] == "tool_result"]
    assert result["is_error"] is True and result["output"] == "nope"
    assert adapter.status is RunStatus.COMPLETED


def test_model_failure_becomes_error_event() -> None:
    out, adapter = translate(agno_events("fail"))
    assert adapter.status is RunStatus.FAILED
    assert out[-1] == {"type": "error", "message": "the offline model failed on purpose"}
    assert [e for e in out if e["type"] in ("done", "error")] == [out[-1]]


def test_cancelled_run_ends_with_done_cancelled() -> None:
    async def run() -> list[Any]:
        agent = demo_agent(chunk_delay=0.01)
        events = []
        async for e in agent.arun("count 200", stream=True, stream_events=True, run_id="rc1"):
            events.append(e)
            if len(events) == 5:
                await agent.acancel_run("rc1")
        return events

    raw = asyncio.run(run())
    # agno 3.1 yields RunCancelled and then, oddly, RunCompleted: the first outcome wins.
    assert "RunCancelled" in [e.event for e in raw]
    out, adapter = translate(raw)
    assert adapter.status is RunStatus.CANCELLED
    assert out[-1] == {"type": "done", "status": "cancelled"}


def test_nothing_after_terminal_and_finish_is_once() -> None:
    adapter = AgnoAdapter()
    raw = agno_events("echo abc")
    out = [o for e in raw for o in adapter.translate(e)]
    assert out[-1]["type"] == "done"
    assert adapter.translate(raw[-2]) == [] and adapter.finish(RunStatus.FAILED, "x") == []
    fresh = AgnoAdapter()
    assert fresh.finish(RunStatus.FAILED, "boom") == [{"type": "error", "message": "boom"}]
    assert fresh.status is RunStatus.FAILED


def test_a_workflows_footer_adds_up_its_steps() -> None:
    """WorkflowMetrics (agno's, real objects): tokens added over the steps, each model once in
    step order, the workflow's own duration; nothing when agno reports nothing."""
    from agno.metrics import ModelMetrics, RunMetrics
    from agno.workflow.types import StepMetrics, WorkflowMetrics

    from deltakit_nb.adapter import workflow_metrics_json

    def step(name: str, model: str, tokens: tuple[int, int]) -> StepMetrics:
        run = RunMetrics(input_tokens=tokens[0], output_tokens=tokens[1])
        run.details = {"model": [ModelMetrics(id=model, provider="p")]}
        return StepMetrics(step_name=name, executor_type="agent", executor_name=name, metrics=run)

    steps = {
        "a": step("a", "small", (10, 5)),
        "b": step("b", "large", (100, 50)),
        "c": step("c", "small", (1, 1)),
    }
    assert workflow_metrics_json(WorkflowMetrics(steps=steps, duration=1.23456)) == {
        "model": "small, large",
        "input_tokens": 111,
        "output_tokens": 56,
        "duration": 1.235,
    }
    assert workflow_metrics_json(WorkflowMetrics(steps={})) is None
    assert workflow_metrics_json(None) is None
