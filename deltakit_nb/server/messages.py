"""A thread's conversation as chat messages, built from its runs' events.

The shape is that of `ChatWidget.messages` (js/src/reducer.js `toMessages`, which the browser
computes from the same events) with two differences made for HTTP clients: the text is under
`content`, as chat APIs name it, and `tool_calls`, `reasoning` and `error` appear only when the
answer has them. Each run gives a user message and an assistant message; a run's own status
(the server's word, also for a run cut off without a terminal event) goes on both.

A team's or a workflow's nested work stays nested, in the widget's shape at every level: a
delegate call lists its members' work under `members`, a member with no delegate call to sit in
is in the answer's `members`, and a workflow's steps are in `steps`. Each such entry has `text`
(its own; a member's text is never the leader's, a step's text is also the workflow's answer),
`tool_calls`, `status`, and `reasoning`, `members`, `steps`, `error` when it has them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..protocol import Event

Message = dict[str, Any]

_TERMINAL = ("completed", "cancelled", "failed", "interrupted")


class _Work:
    """What a run, a member or a step did, as the events arrive (the reducer's `parts`)."""

    def __init__(self, **meta: Any) -> None:
        self.meta = meta
        self.status = "running"
        self.error: str | None = None
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.tools: list[dict[str, Any]] = []
        self.members: list[_Work] = []
        self.steps: list[_Work] = []
        self.key = ""

    def own_text(self) -> str:
        """Its text and its steps' (a workflow's answer), never its members'."""
        return "".join(self.text) + "".join(s.own_text() for s in self.steps)

    def plain(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.meta, "status": self.status, "text": self.own_text()}
        out.update(self.nested())
        out.setdefault("tool_calls", [])
        if self.error is not None:
            out["error"] = self.error
        return out

    def nested(self) -> dict[str, Any]:
        """`tool_calls`, `reasoning`, `members` and `steps`, each only when there are some."""
        out: dict[str, Any] = {}
        if self.tools:
            out["tool_calls"] = [_call(t) for t in self.tools]
        if self.reasoning:
            out["reasoning"] = "".join(self.reasoning)
        if self.members:
            out["members"] = [m.plain() for m in self.members]
        if self.steps:
            out["steps"] = [s.plain() for s in self.steps]
        return out

    def settle(self, status: str) -> None:
        """Members and steps still running end with their host (as the widget shows them)."""
        for entry in [*self.members, *self.steps, *(m for t in self.tools for m in t["members"])]:
            if entry.status == "running":
                entry.status = status
            entry.settle(status)


def _call(tool: dict[str, Any]) -> dict[str, Any]:
    call = {k: tool[k] for k in ("name", "args", "result", "is_error")}
    if tool["members"]:
        call["members"] = [m.plain() for m in tool["members"]]
    return call


def run_messages(run_id: str, message: str, status: str, events: Iterable[Event]) -> list[Message]:
    """The user's message and the assistant's answer of one run, from the run's events."""
    run = _Work()
    for event in events:
        _apply(run, event)
    if status in _TERMINAL:
        run.settle(status)
    user: Message = {"role": "user", "content": message, "run_id": run_id, "status": status}
    answer: Message = {"role": "assistant", "content": run.own_text()}
    answer.update(run.nested())
    if run.error is not None:
        answer["error"] = run.error
    answer["run_id"] = run_id
    answer["status"] = status
    return [user, answer]


def _apply(run: _Work, event: Event) -> None:
    kind = event.get("type")
    step = _step(event.get("step"))
    if kind in ("step_started", "step_completed"):
        if step is None:
            return
        host = _entry(run.steps, step)
        if kind == "step_completed":
            host.status = _str(event.get("status")) or "completed"
            if _str(event.get("message")):
                host.error = _str(event.get("message"))
            host.settle(host.status)
        return
    member = _member(event.get("member"))
    if member is not None and kind not in _CONTENT and kind not in _MEMBER_EVENTS:
        member = None  # another kind of event: the run's own (as the widget reads it)
    host = _entry(run.steps, step) if step is not None and (member or kind in _CONTENT) else run
    if member is not None:
        host = _member_host(host, member, event.get("parent_call_id"))
        if kind in ("member_done", "done", "error"):
            if host.status in _TERMINAL:  # the first end is the member's (as in the widget)
                return
            end = "failed" if kind == "error" else _str(event.get("status"))
            host.status = end if end in _TERMINAL else "completed"
            if host.status == "failed":
                host.error = _str(event.get("message")) or "The member failed."
            host.settle(host.status)
            return
    if kind in ("text_delta", "member_text_delta"):
        host.text.append(_str(event.get("delta")))
    elif kind == "reasoning":
        host.reasoning.append(_str(event.get("text")))
    elif kind == "tool_call":
        _apply_call(host, event)
    elif kind == "tool_result":
        _apply_result(host.tools, event)
    elif kind == "error" and host is run:
        reason = event.get("message")
        run.error = reason if isinstance(reason, str) else "The run failed."


_CONTENT = ("text_delta", "member_text_delta", "reasoning", "tool_call", "tool_result")
_MEMBER_EVENTS = ("member_started", "run_started", "member_done", "done", "error")


def _member(raw: Any) -> dict[str, str] | None:
    if not isinstance(raw, dict):
        return None
    mid, run_id = _str(raw.get("id")), _str(raw.get("run_id"))
    if not mid and not run_id:
        return None
    return {"id": mid, "name": _str(raw.get("name")) or mid or "member", "run_id": run_id}


def _step(raw: Any) -> dict[str, Any] | None:
    if not isinstance(raw, dict):
        return None
    sid = _str(raw.get("id"))
    index = raw.get("index")
    index = index if isinstance(index, int) and not isinstance(index, bool) else None
    if not sid and index is None:
        return None
    name = _str(raw.get("name")) or sid or f"step {(index or 0) + 1}"
    return {"id": sid, "name": name, "index": index}


def _entry(entries: list[_Work], meta: dict[str, Any]) -> _Work:
    """The newest entry for this member run or step, made when it is the first event of it."""
    if "run_id" in meta:  # a member: one entry per member run
        key = meta["run_id"] or meta["id"]
    else:
        key = meta["id"] or f"#{meta['index']}"
    for entry in reversed(entries):
        if entry.key == key:
            return entry
    entry = _Work(**meta)
    entry.key = key
    entries.append(entry)
    return entry


def _member_host(host: _Work, member: dict[str, str], parent_call_id: Any) -> _Work:
    """The member's entry in the delegate call it works for, else in `host`'s own members."""
    if isinstance(parent_call_id, str):
        for call in reversed(host.tools):
            if call["call_id"] == parent_call_id:
                return _entry(call["members"], member)
    return _entry(host.members, member)


def _apply_call(host: _Work, event: Event) -> None:
    call_id = event.get("call_id")
    for call in reversed(host.tools):
        # The continuation of a paused call announces it again: it stays the same call.
        if call_id is not None and call["call_id"] == call_id and call["result"] is None:
            call["name"] = str(event.get("tool_name") or call["name"])
            call["args"] = _args(event.get("argument"))
            return
    host.tools.append(
        {
            "call_id": call_id,
            "name": str(event.get("tool_name") or "tool"),
            "args": _args(event.get("argument")),
            "result": None,
            "is_error": False,
            "members": [],
        }
    )


def _apply_result(tools: list[dict[str, Any]], event: Event) -> None:
    """Put a result on the newest call still waiting for one (by call id, or by tool name
    when the event has none), as the widget does; a result without its call gets one."""
    call_id = event.get("call_id")
    output = event.get("output")
    result = output if isinstance(output, str) else json.dumps(output)
    is_error = event.get("is_error") is True
    name = event.get("tool_name")
    for call in reversed(tools):
        if call["result"] is not None:
            continue
        wanted = call["call_id"] == call_id if call_id is not None else call["name"] == name
        if wanted:
            call["result"], call["is_error"] = result, is_error
            # A failed delegation fails its members still going (a good result does not end
            # them: agno also ends the call of a member that waits for the user).
            for member in call["members"]:
                if is_error and member.status == "running":
                    member.status = "failed"
            return
    tools.append(
        {
            "call_id": call_id,
            "name": str(name or "tool"),
            "args": {},
            "result": result,
            "is_error": is_error,
            "members": [],
        }
    )


def _args(argument: Any) -> Any:
    """A tool call's arguments as JSON, or the text itself when it is not JSON (as the
    widget's `parseArgs`)."""
    if not isinstance(argument, str):
        return argument if argument is not None else {}
    if argument == "":
        return {}
    try:
        return json.loads(argument)
    except ValueError:
        return argument


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ""
