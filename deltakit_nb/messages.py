"""A thread's conversation as chat messages, built from its runs' events.

The shape is that of `ChatWidget.messages` (js/src/reducer.js `toMessages`, which the browser
computes from the same events) with two differences made for HTTP clients: the text is under
`content`, as chat APIs name it, and `tool_calls`, `reasoning` and `error` appear only when the
answer has them. Each run gives a user message and an assistant message; a run's own status
(the server's word, also for a run cut off without a terminal event) goes on both.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from .protocol import Event

Message = dict[str, Any]


def run_messages(run_id: str, message: str, status: str, events: Iterable[Event]) -> list[Message]:
    """The user's message and the assistant's answer of one run, from the run's events."""
    text: list[str] = []
    reasoning: list[str] = []
    tools: list[dict[str, Any]] = []
    error: str | None = None
    for event in events:
        kind = event.get("type")
        if kind == "text_delta":
            text.append(_str(event.get("delta")))
        elif kind == "reasoning":
            reasoning.append(_str(event.get("text")))
        elif kind == "tool_call":
            tools.append(
                {
                    "call_id": event.get("call_id"),
                    "name": str(event.get("tool_name") or "tool"),
                    "args": _args(event.get("argument")),
                    "result": None,
                    "is_error": False,
                }
            )
        elif kind == "tool_result":
            _apply_result(tools, event)
        elif kind == "error":
            reason = event.get("message")
            error = reason if isinstance(reason, str) else "The run failed."
    for call in tools:
        del call["call_id"]  # matching results to calls only; the widget's shape has none
    user: Message = {"role": "user", "content": message, "run_id": run_id, "status": status}
    answer: Message = {"role": "assistant", "content": "".join(text)}
    if tools:
        answer["tool_calls"] = tools
    if reasoning:
        answer["reasoning"] = "".join(reasoning)
    if error is not None:
        answer["error"] = error
    answer["run_id"] = run_id
    answer["status"] = status
    return [user, answer]


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
            return
    tools.append(
        {
            "call_id": call_id,
            "name": str(name or "tool"),
            "args": {},
            "result": result,
            "is_error": is_error,
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
