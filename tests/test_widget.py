"""ChatWidget, kernel side only: traits, requests through synced state, export, repr."""

from __future__ import annotations

from typing import Any

import pytest
import traitlets

from deltakit_nb import __version__
from deltakit_nb.kernel.widget import STATIC, ChatWidget


def front_end_sets(widget: ChatWidget, **state: Any) -> None:
    """What a state update from the browser does to the kernel-side widget."""
    widget.set_state(state)


def synced_state(widget: ChatWidget) -> dict[str, Any]:
    return dict(widget.get_state())


def test_defaults_and_thread_id_is_fixed_at_creation() -> None:
    a, b = ChatWidget(), ChatWidget()
    assert len(a.thread_id) == 32
    assert a.thread_id != b.thread_id
    assert a.thread_id == a.thread_id
    assert a._instance_id != b._instance_id
    assert (a.agent, a.title, a.height, a.status, a.run_id) == ("", "", 480, "idle", "")
    assert a.messages == []
    state = synced_state(a)
    for name in (
        "agent",
        "thread_id",
        "title",
        "placeholder",
        "height",
        "messages",
        "run_id",
        "status",
    ):
        assert name in state


def test_options() -> None:
    w = ChatWidget(agent="demo", thread_id="t-1", title="Ask", placeholder="?", height="60vh")
    assert (w.agent, w.thread_id, w.title, w.placeholder, w.height) == (
        "demo",
        "t-1",
        "Ask",
        "?",
        "60vh",
    )
    w.height = 300
    assert w.height == 300
    with pytest.raises(traitlets.TraitError):
        ChatWidget(thread_id="  ")
    with pytest.raises(traitlets.TraitError):
        ChatWidget(height=[1])


def test_repr_is_stable_and_shows_only_what_the_user_chose() -> None:
    assert repr(ChatWidget()) == "ChatWidget()"
    assert repr(ChatWidget()) == repr(ChatWidget())
    assert repr(ChatWidget(agent="demo")) == "ChatWidget(agent='demo')"
    assert (
        repr(ChatWidget(thread_id="abc", agent="demo"))
        == "ChatWidget(thread_id='abc', agent='demo')"
    )
    assert "0x" not in repr(ChatWidget(title="t"))
    w = ChatWidget()
    w.agent = "other"
    assert repr(w) == "ChatWidget(agent='other')"


def test_mimebundle_text_plain_is_the_repr() -> None:
    bundle = ChatWidget(agent="demo")._repr_mimebundle_()
    data = bundle[0] if isinstance(bundle, tuple) else bundle
    assert data["text/plain"] == "ChatWidget(agent='demo')"
    assert "application/vnd.jupyter.widget-view+json" in data


def test_send_and_stop_queue_requests_in_synced_state() -> None:
    w = ChatWidget()
    w.send("hello")
    w.stop()
    w.send("again")
    reqs = synced_state(w)["_requests"]
    assert [(r["op"], r.get("text")) for r in reqs] == [
        ("send", "hello"),
        ("stop", None),
        ("send", "again"),
    ]
    assert len({r["id"] for r in reqs}) == 3
    with pytest.raises(ValueError):
        w.send("   ")
    with pytest.raises(ValueError):
        w.send(42)  # type: ignore[arg-type]


def test_requests_a_front_end_has_taken_are_forgotten() -> None:
    w = ChatWidget()
    w.send("one")
    w.send("two")
    first = w._requests[0]["id"]
    front_end_sets(w, _handled=[first])
    assert [r["text"] for r in w._requests] == ["two"]
    assert w._handled == [first]
    front_end_sets(w, _handled=[first, w._requests[0]["id"]])
    assert w._requests == []


def test_front_end_writes_messages_status_and_run_id() -> None:
    w = ChatWidget()
    with pytest.raises(traitlets.TraitError):
        w.status = "running"
    front_end_sets(w, status="running", run_id="r1")
    assert (w.status, w.run_id) == ("running", "r1")
    msgs = [
        {"role": "user", "text": "hi", "tool_calls": [], "status": "completed", "run_id": "r1"},
        {"role": "assistant", "text": "hello", "tool_calls": [], "status": "completed"},
    ]
    front_end_sets(w, messages=msgs, status="completed")
    assert w.messages == msgs


CONVERSATION = [
    {"role": "user", "text": "add 2 and 3", "tool_calls": [], "status": "completed"},
    {
        "role": "assistant",
        "text": "The sum is **5**.",
        "tool_calls": [
            {"name": "add", "args": {"a": 2, "b": 3}, "result": "5", "is_error": False},
            {"name": "shell", "args": "not json", "result": "```boom```", "is_error": True},
        ],
        "status": "completed",
    },
    {"role": "user", "text": "go on", "tool_calls": [], "status": "cancelled"},
    {"role": "assistant", "text": "Well", "tool_calls": [], "status": "cancelled"},
    {"role": "user", "text": "again", "tool_calls": [], "status": "failed"},
    {"role": "assistant", "text": "", "tool_calls": [], "status": "failed", "error": "no model"},
]


def test_to_markdown() -> None:
    w = ChatWidget()
    assert w.to_markdown() == ""
    front_end_sets(w, messages=CONVERSATION)
    md = w.to_markdown()
    assert md.startswith("**You:** add 2 and 3\n\n---\n\n**Assistant:**")
    assert 'Tool call `add`:\n\n```json\n{\n  "a": 2,\n  "b": 3\n}\n```' in md
    assert "Result:\n\n```\n5\n```" in md
    # A result with backticks gets a longer fence, so it cannot end the block early.
    assert "Error:\n\n````\n```boom```\n````" in md
    assert "The sum is **5**." in md
    assert "Well\n\n_(stopped)_" in md
    assert "_(failed: no model)_" in md
    assert md.endswith("\n")


def test_esm_is_the_small_loader_with_a_version_stamp() -> None:
    esm = ChatWidget._esm
    assert isinstance(esm, str)
    assert "__DELTAKIT_NB_VERSION__" not in esm
    assert f'const VERSION = "{__version__}-' in esm
    assert "static/deltakit_nb/chat.js" in esm
    assert "jupyter server extension enable deltakit_nb" in esm
    assert len(esm) < 4000
    assert (STATIC / "loader.js").exists()


def test_cell_key_new_and_explicit_threads() -> None:
    """(Outside a notebook cell here; the key of a real cell is in tests/test_cellkey.py.)"""
    plain = ChatWidget()
    assert (plain.cell_key, plain._fresh) == ("", False) and len(plain.thread_id) == 32
    fresh = ChatWidget(new=True)
    assert fresh._fresh and len(fresh.thread_id) == 32 and fresh.thread_id != plain.thread_id
    in_cell = ChatWidget(cell_key="cell-k")
    assert (in_cell.thread_id, in_cell._fresh) == ("cell-k", False)
    again = ChatWidget(cell_key="cell-k", new=True)
    assert again.thread_id.startswith("cell-k-") and len(again.thread_id) == 6 + 1 + 12
    assert again._fresh
    chosen = ChatWidget(cell_key="cell-k", thread_id="t-9")
    assert (chosen.thread_id, chosen._fresh) == ("t-9", True)  # the explicit thread wins
    with pytest.raises(ValueError, match="new=True"):
        ChatWidget(new=True, thread_id="t-9")
    state = synced_state(again)
    assert state["cell_key"] == "cell-k" and state["_fresh"] is True
    # nbval compares reprs: what the kernel chose by itself is not in them.
    assert repr(fresh) == repr(in_cell) == repr(again) == "ChatWidget()"


CONFIRM = {
    "id": "q1",
    "kind": "confirmation",
    "run_id": "r1",
    "call_id": "c1",
    "tool_name": "confirm_action",
    "args": {"action": "x"},
}
INPUT = {
    "id": "q2",
    "kind": "user_input",
    "run_id": "r1",
    "call_id": "c2",
    "tool_name": "collect_input",
    "args": {"question": "q", "answer": ""},
    "fields": [{"name": "answer", "type": "str", "description": ""}],
}
EXTERNAL = {**CONFIRM, "id": "q3", "kind": "external_execution", "tool_name": "run_elsewhere"}
FEEDBACK = {
    **CONFIRM,
    "id": "q4",
    "kind": "user_feedback",
    "tool_name": "ask",
    "questions": [{"question": "Which?", "options": [{"label": "A"}], "multi_select": False}],
}


def decisions(w: ChatWidget) -> list[tuple[str, list[dict[str, Any]]]]:
    reqs = synced_state(w)["_requests"]
    assert all(r["op"] == "decide" for r in reqs)
    return [(r["run_id"], r["decisions"]) for r in reqs]


def test_pending_is_written_by_the_front_end_and_read_only_here() -> None:
    w = ChatWidget()
    assert w.pending == [] and synced_state(w)["pending"] == []
    with pytest.raises(traitlets.TraitError):
        w.pending = [CONFIRM]
    front_end_sets(w, pending=[CONFIRM], status="paused")
    assert (w.pending, w.status) == ([CONFIRM], "paused")


def test_approve_and_reject_decide_the_open_confirmations_through_synced_requests() -> None:
    w = ChatWidget()
    front_end_sets(w, pending=[CONFIRM, INPUT])
    w.approve()
    w.reject(note="not today")
    w.approve(note="  ")  # a blank note is no note
    assert decisions(w) == [
        ("r1", [{"id": "q1", "approve": True}]),
        ("r1", [{"id": "q1", "approve": False, "note": "not today"}]),
        ("r1", [{"id": "q1", "approve": True}]),
    ]
    with pytest.raises(TypeError, match="note"):
        w.approve(note=3)  # type: ignore[arg-type]


def test_respond_gives_values_choices_or_a_result() -> None:
    w = ChatWidget()
    front_end_sets(w, pending=[CONFIRM, INPUT])
    w.respond({"answer": "42"})
    front_end_sets(w, pending=[EXTERNAL])
    w.respond("it worked")
    front_end_sets(w, pending=[FEEDBACK])
    w.respond({"Which?": "A"})
    assert decisions(w) == [
        ("r1", [{"id": "q2", "values": {"answer": "42"}}]),
        ("r1", [{"id": "q3", "result": "it worked"}]),
        ("r1", [{"id": "q4", "values": {"Which?": ["A"]}}]),
    ]


def test_decisions_without_a_waiting_request_are_clear_errors_and_send_nothing() -> None:
    w = ChatWidget()
    for call in (w.approve, w.reject, lambda: w.respond({"answer": "x"})):
        with pytest.raises(RuntimeError, match="no run is waiting for a decision"):
            call()
    front_end_sets(w, pending=[INPUT])
    with pytest.raises(ValueError, match=r"for confirmation; waiting: collect_input"):
        w.approve()
    with pytest.raises(ValueError, match=r"missing \['answer'\]"):
        w.respond({})
    with pytest.raises(ValueError, match=r"unknown \['nope'\]"):
        w.respond({"answer": "a", "nope": 1})
    with pytest.raises(ValueError, match="external_execution"):
        w.respond("a result for a tool that asked for fields")
    with pytest.raises(TypeError):
        w.respond(42)  # type: ignore[arg-type]
    front_end_sets(w, pending=[INPUT, {**INPUT, "id": "q5"}])
    with pytest.raises(ValueError, match="several requests wait"):
        w.respond({"answer": "a"})
    w.respond({"answer": "a"}, id="q5")
    with pytest.raises(ValueError, match="the request 'zz'"):
        w.respond({"answer": "a"}, id="zz")
    assert decisions(w) == [("r1", [{"id": "q5", "values": {"answer": "a"}}])]


def finished(run_id: str, text: str, status: str) -> list[dict[str, Any]]:
    """The two `messages` entries the front end writes for a finished run."""
    base = {"tool_calls": [], "status": status, "run_id": run_id}
    return [{"role": "user", "text": text, **base}, {"role": "assistant", "text": "", **base}]


@pytest.mark.parametrize("status", ["failed", "cancelled", "interrupted"])
def test_retry_sends_the_last_runs_message_again(status: str) -> None:
    w = ChatWidget()
    messages = finished("r1", "first", "completed") + finished("r2", "do it again", status)
    front_end_sets(w, messages=messages, run_id="r2", status=status)
    w.retry()
    [req] = synced_state(w)["_requests"]
    assert (req["op"], req["run_id"], req["text"]) == ("retry", "r2", "do it again")


def test_retry_when_the_last_run_did_not_fail_is_a_clear_error_and_sends_nothing() -> None:
    w = ChatWidget()
    with pytest.raises(RuntimeError, match="the last run is 'idle'; only a failed"):
        w.retry()
    front_end_sets(w, messages=finished("r1", "hi", "completed"), run_id="r1", status="completed")
    with pytest.raises(RuntimeError, match="the last run is 'completed'"):
        w.retry()
    front_end_sets(w, run_id="r2", status="running")  # a new run after a failed one
    with pytest.raises(RuntimeError, match="the last run is 'running'"):
        w.retry()
    # failed, but `messages` (written when it ended) does not hold it yet
    front_end_sets(w, run_id="r2", status="failed")
    with pytest.raises(RuntimeError, match="message is not known yet"):
        w.retry()
    assert synced_state(w)["_requests"] == []
