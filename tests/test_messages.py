"""`messages.run_messages` on real event logs (the real agno loop with the offline model), and
against the widget's own `toMessages` (js/src/reducer.js) on the same logs."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_adapter import agno_events, translate

from deltakit_nb.server.eventlog import EventLog
from deltakit_nb.server.messages import run_messages

REDUCER = Path(__file__).parent.parent / "js" / "src" / "reducer.js"
MESSAGES = [
    "hello there",
    "what is 12 * (3 + 4)?",
    'tool broken_tool {"reason": "disk on fire"}',
    "fail",
    "echo a  b\n`c`",
    "markdown 2",
]


def real_log(message: str, run_id: str) -> list[dict[str, Any]]:
    """The events a run of `message` puts on the wire, as a client decodes them."""
    log = EventLog(run_id)
    log.append({"type": "run_started", "runId": run_id, "threadId": "t", "agent": "demo"})
    for event in translate(agno_events(message))[0]:
        log.append(event)
    log.close()
    return [json.loads(text) for text in log.encoded()]


def status_of(events: list[dict[str, Any]]) -> str:
    last = events[-1]
    return "failed" if last["type"] == "error" else str(last["status"])


@pytest.fixture(scope="module")
def runs() -> list[dict[str, Any]]:
    out = []
    for i, message in enumerate(MESSAGES):
        events = real_log(message, f"run-{i}")
        out.append(
            {
                "run_id": f"run-{i}",
                "message": message,
                "status": status_of(events),
                "events": events,
            }
        )
    return out


def test_a_run_with_reasoning(runs: list[dict[str, Any]]) -> None:
    user, answer = run_messages("run-0", "hello there", "completed", runs[0]["events"])
    assert user == {
        "role": "user",
        "content": "hello there",
        "run_id": "run-0",
        "status": "completed",
    }
    assert answer["role"] == "assistant" and answer["content"].startswith("## Offline demo")
    assert answer["reasoning"] == "The user wrote 11 characters. I will answer in markdown."
    assert "tool_calls" not in answer and "error" not in answer
    assert list(answer) == ["role", "content", "reasoning", "run_id", "status"]


def test_tool_calls_get_their_results(runs: list[dict[str, Any]]) -> None:
    _, calc = run_messages("run-1", "m", "completed", runs[1]["events"])
    assert calc["tool_calls"] == [
        {
            "name": "calculator",
            "args": {"expression": "12 * (3 + 4)"},
            "result": "84",
            "is_error": False,
        }
    ]
    assert "84" in calc["content"]
    _, broken = run_messages("run-2", "m", "completed", runs[2]["events"])
    [call] = broken["tool_calls"]
    assert call == {
        "name": "broken_tool",
        "args": {"reason": "disk on fire"},
        "result": "disk on fire",
        "is_error": True,
    }


def test_a_failed_run_and_an_empty_answer(runs: list[dict[str, Any]]) -> None:
    _, failed = run_messages("run-3", "fail", "failed", runs[3]["events"])
    assert failed["status"] == "failed" and "failed on purpose" in failed["error"]
    assert failed["content"] == ""
    quiet = [{"type": "run_started"}, {"type": "done", "status": "cancelled"}]
    _, empty = run_messages("r", "m", "cancelled", quiet)
    assert empty == {"role": "assistant", "content": "", "run_id": "r", "status": "cancelled"}


def test_results_find_their_calls_as_the_widget_does() -> None:
    """By call id, else by name; the newest call still waiting; a stray result gets a call;
    arguments that are not JSON stay text."""
    events = [
        {"type": "tool_call", "tool_name": "a", "argument": "{}", "call_id": None},
        {"type": "tool_call", "tool_name": "a", "argument": "not json", "call_id": None},
        {"type": "tool_call", "tool_name": "b", "argument": "", "call_id": "c1"},
        {"type": "tool_result", "tool_name": "a", "output": "second", "call_id": None},
        {
            "type": "tool_result",
            "tool_name": "b",
            "output": "b!",
            "call_id": "c1",
            "is_error": True,
        },
        {"type": "tool_result", "tool_name": "z", "output": "stray", "call_id": "c9"},
        {"type": "done", "status": "completed"},
    ]
    _, answer = run_messages("r", "m", "completed", events)
    assert answer["tool_calls"] == [
        {"name": "a", "args": {}, "result": None, "is_error": False},
        {"name": "a", "args": "not json", "result": "second", "is_error": False},
        {"name": "b", "args": {}, "result": "b!", "is_error": True},
        {"name": "z", "args": {}, "result": "stray", "is_error": False},
    ]


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_same_messages_as_the_widget(runs: list[dict[str, Any]]) -> None:
    """`ChatWidget.messages` (the reducer's toMessages after a hydrate from the same runs)
    holds the same conversation; it names the text `text` and always has `tool_calls`."""
    script = (
        f"import {{ initialState, reduce, toMessages }} from {json.dumps(REDUCER.as_uri())};\n"
        "let data = '';\n"
        "process.stdin.on('data', (c) => (data += c));\n"
        "process.stdin.on('end', () => {\n"
        "  const state = reduce(initialState(), { type: 'hydrate', thread: JSON.parse(data) });\n"
        "  process.stdout.write(JSON.stringify(toMessages(state)));\n"
        "});\n"
    )
    widget = json.loads(
        subprocess.run(
            ["node", "--input-type=module", "-e", script],
            input=json.dumps({"runs": runs}),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    )
    ours = [
        m for r in runs for m in run_messages(r["run_id"], r["message"], r["status"], r["events"])
    ]
    assert len(widget) == len(ours) == 2 * len(runs)
    for w, o in zip(widget, ours, strict=True):
        as_widget = {k: v for k, v in o.items() if k != "content"}
        as_widget["text"] = o["content"]
        as_widget.setdefault("tool_calls", [])
        assert w == as_widget
