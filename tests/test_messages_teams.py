"""`messages.run_messages` on a team's and a workflow's nested events (hand-written in the wire
shape of issue 15), and against the widget's `toMessages` on the same events."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_teams_unit import relayed

from deltakit_nb.offline import demo_team, demo_workflow
from deltakit_nb.server.messages import run_messages

REDUCER = Path(__file__).parent.parent / "js" / "src" / "reducer.js"
R = {"id": "researcher", "name": "researcher", "run_id": "m1"}
W = {"id": "writer", "name": "writer", "run_id": "m2"}
S1 = {"id": "s1", "name": "research", "index": 0}
S2 = {"id": "s2", "name": "write", "index": 1}


def _in(member: dict[str, str], call: str | None, **event: Any) -> dict[str, Any]:
    return {**event, "member": member, "parent_call_id": call}


TEAM = [
    {"type": "run_started", "agent": "team"},
    {"type": "text_delta", "delta": "Asking. "},
    {
        "type": "tool_call",
        "tool_name": "delegate_task_to_member",
        "call_id": "d1",
        "argument": {"member_id": "researcher", "task": "what is 6 * 7?"},
    },
    _in(R, "d1", type="member_started"),
    _in(R, "d1", type="reasoning", text="Multiply."),
    _in(R, "d1", type="tool_call", tool_name="multiply", call_id="c1", argument='{"a": 6}'),
    _in(R, "d1", type="tool_result", tool_name="multiply", call_id="c1", output="42"),
    _in(R, "d1", type="member_text_delta", delta="It is 42."),
    _in(R, "d1", type="member_done", status="completed"),
    {
        "type": "tool_result",
        "tool_name": "delegate_task_to_member",
        "call_id": "d1",
        "output": "42",
    },
    {"type": "text_delta", "delta": "The answer is 42."},
    {"type": "done", "status": "completed"},
]

PARALLEL = [
    {"type": "run_started", "agent": "team"},
    {"type": "tool_call", "tool_name": "delegate_task_to_members", "call_id": "d2", "argument": {}},
    _in(R, "d2", type="member_text_delta", delta="R1 "),
    _in(W, "d2", type="member_text_delta", delta="W1"),
    _in(R, "d2", type="member_done", status="failed", message="boom"),
    _in(R, "d2", type="member_done", status="completed"),  # the first end stands
    _in(W, None, type="member_text_delta", delta=" stray"),
    {"type": "text_delta", "delta": "Done."},
    {"type": "done", "status": "cancelled"},
]

WORKFLOW = [
    {"type": "run_started", "agent": "workflow"},
    {"type": "step_started", "step": S1},
    {**_in(R, None, type="member_text_delta", delta="Facts."), "step": S1},
    {"type": "step_completed", "step": S1, "status": "completed"},
    {"type": "step_started", "step": S2},
    {"type": "tool_call", "tool_name": "add", "call_id": "c9", "argument": "{}", "step": S2},
    {"type": "tool_result", "tool_name": "add", "call_id": "c9", "output": "3", "step": S2},
    {"type": "text_delta", "delta": "Essay.", "step": S2},
    {"type": "step_completed", "step": S2, "status": "failed", "message": "no ink"},
    {"type": "error", "message": "the workflow failed"},
]

RUNS = [("team", "completed", TEAM), ("parallel", "cancelled", PARALLEL)]
RUNS += [("workflow", "failed", WORKFLOW)]


def _log(run_id: str, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**e, "runId": run_id, "eventId": i} for i, e in enumerate(events)]


def test_members_text_stays_out_of_the_answer() -> None:
    _, answer = run_messages("r", "m", "completed", _log("r", TEAM))
    assert answer["content"] == "Asking. The answer is 42."
    assert answer["tool_calls"][0]["members"] == [
        {
            "id": "researcher",
            "name": "researcher",
            "run_id": "m1",
            "status": "completed",
            "text": "It is 42.",
            "reasoning": "Multiply.",
            "tool_calls": [
                {"name": "multiply", "args": {"a": 6}, "result": "42", "is_error": False}
            ],
        }
    ]


def test_failed_stopped_and_stray_members() -> None:
    _, answer = run_messages("r", "m", "cancelled", _log("r", PARALLEL))
    assert answer["content"] == "Done."
    researcher, writer = answer["tool_calls"][0]["members"]
    assert (researcher["status"], researcher["error"], researcher["text"]) == (
        "failed",
        "boom",
        "R1 ",
    )
    assert (writer["status"], writer["text"]) == ("cancelled", "W1")
    # A member event with no delegate call to sit in is a member of the answer itself.
    assert [(m["name"], m["text"], m["status"]) for m in answer["members"]] == [
        ("writer", " stray", "cancelled")
    ]


def test_workflow_steps() -> None:
    _, answer = run_messages("r", "m", "failed", _log("r", WORKFLOW))
    assert answer["content"] == "Essay.", "a step's text is the answer, its member's is not"
    assert answer["error"] == "the workflow failed"
    first, second = answer["steps"]
    assert (first["name"], first["status"], first["members"][0]["text"]) == (
        "research",
        "completed",
        "Facts.",
    )
    assert (second["index"], second["status"], second["error"]) == (1, "failed", "no ink")
    assert second["tool_calls"][0]["result"] == "3"


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_same_nested_messages_as_the_widget() -> None:
    runs = [
        {"run_id": name, "message": name, "status": status, "events": _log(name, events)}
        for name, status, events in RUNS
    ]
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
    assert len(widget) == len(ours) == 6
    for w, o in zip(widget, ours, strict=True):
        as_widget = {k: v for k, v in o.items() if k != "content"}
        as_widget["text"] = o["content"]
        as_widget.setdefault("tool_calls", [])
        assert w == as_widget


# Real wire events of the offline team and workflow (agno's own loops through the adapter and
# the relay), for the widget's reducer and for `run_messages`.
REAL = [
    ("team", "delegate researcher what is 6 * 7?", "completed"),
    ("team", "delegate all summarise X", "completed"),
    ("team", "delegate researcher fail", "completed"),
    ("workflow", "what is 6 * 7?", "completed"),
]

NODE_REAL = """
import { initialState, reduce, toMessages } from %s;
let data = '';
process.stdin.on('data', (c) => (data += c));
process.stdin.on('end', () => {
  const runs = JSON.parse(data);
  const feed = (s, events) => reduce(s, { type: 'events', events });
  const out = { same: [], messages: null };
  for (const run of runs) {
    let one = initialState();
    for (const e of run.events) one = feed(one, [e]);
    const all = feed(initialState(), run.events);
    const hydrated = reduce(initialState(), { type: 'hydrate', thread: { runs: [run] } });
    const replay = feed(hydrated, run.events);
    const parts = (s) => JSON.stringify(s.runs[0].parts);
    out.same.push(parts(one) === parts(all) && parts(replay) === parts(all));
  }
  out.messages = toMessages(reduce(initialState(), { type: 'hydrate', thread: { runs } }));
  process.stdout.write(JSON.stringify(out));
});
"""


def _real_run(agent: str, message: str, status: str, i: int) -> dict[str, Any]:
    runnable = demo_team(0) if agent == "team" else demo_workflow(0)
    wire = asyncio.run(relayed(runnable, message))
    run_id = f"run-{i}"
    events = [{"type": "run_started", "agent": agent}, *wire]
    return {"run_id": run_id, "message": message, "status": status, "events": _log(run_id, events)}


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_real_team_and_workflow_runs_in_the_widget_and_in_messages() -> None:
    """Events one at a time == one batch == a replay after a hydrate, in the widget's reducer;
    and the widget's messages are the server's, on real team and workflow runs."""
    runs = [_real_run(*spec, i) for i, spec in enumerate(REAL)]
    out = json.loads(
        subprocess.run(
            ["node", "--input-type=module", "-e", NODE_REAL % json.dumps(REDUCER.as_uri())],
            input=json.dumps(runs),
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
    )
    assert out["same"] == [True] * len(runs)
    ours = [
        m for r in runs for m in run_messages(r["run_id"], r["message"], r["status"], r["events"])
    ]
    for w, o in zip(out["messages"], ours, strict=True):
        as_widget = {k: v for k, v in o.items() if k != "content"}
        as_widget["text"] = o["content"]
        as_widget.setdefault("tool_calls", [])
        assert w == as_widget
    one, both, failing, flow = (ours[i] for i in (1, 3, 5, 7))
    [researcher] = one["tool_calls"][0]["members"]
    assert researcher["tool_calls"][0]["result"] == "42"
    assert "42" in researcher["text"] and one["content"].startswith("The team's answer")
    assert [c["members"][0]["name"] for c in both["tool_calls"]] == ["researcher", "writer"]
    [broken] = failing["tool_calls"][0]["members"]
    assert broken["status"] == "failed" and broken["error"]
    assert [s["name"] for s in flow["steps"]] == ["research", "write"]
    assert flow["content"] == "".join(s["text"] for s in flow["steps"])
