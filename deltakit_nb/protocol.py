"""The wire protocol: event types, client frames, and how both are parsed and encoded.

Compatible with DeltaKit's Agno WebSocket recipe: a client written for it works unchanged.
Our additions (``eventId`` and ``runId`` on every event, ``status`` and ``metrics`` on ``done``,
``ts`` on ``tool_call``/``tool_result``, ``is_error`` and ``images`` on ``tool_result``) are
extra fields such a client ignores.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

Event = dict[str, Any]


class EventType(str, enum.Enum):
    RUN_STARTED = "run_started"
    TEXT_DELTA = "text_delta"
    REASONING = "reasoning"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    DONE = "done"
    ERROR = "error"
    RUN_PAUSED = "run_paused"
    RUN_RESUMED = "run_resumed"
    # Teams and workflows (see README, "Teams and workflows").
    MEMBER_STARTED = "member_started"
    MEMBER_TEXT_DELTA = "member_text_delta"
    MEMBER_DONE = "member_done"
    STEP_STARTED = "step_started"
    STEP_COMPLETED = "step_completed"


TERMINAL_TYPES = frozenset({EventType.DONE.value, EventType.ERROR.value})


class NoticeType(str, enum.Enum):
    """Frames that are not events of a run (no eventId): sent only to sockets that asked."""

    THREAD_RUN = "thread_run"


class RunStatus(str, enum.Enum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    # Waiting for the user's decisions on tool calls (human in the loop): not finished, but
    # no task runs for it and it counts toward no concurrency limit.
    PAUSED = "paused"

    @property
    def finished(self) -> bool:
        return self not in (RunStatus.PENDING, RunStatus.RUNNING, RunStatus.PAUSED)

    @property
    def working(self) -> bool:
        """Pending or running: an agno task is (about to be) busy with it."""
        return self in (RunStatus.PENDING, RunStatus.RUNNING)


# Event constructors: the one place that spells each event's fields.


def run_started(run_id: str, thread_id: str, agent: str) -> Event:
    return {"type": "run_started", "runId": run_id, "threadId": thread_id, "agent": agent}


def text_delta(delta: str) -> Event:
    return {"type": "text_delta", "delta": delta}


def reasoning(text: str) -> Event:
    return {"type": "reasoning", "text": text}


def tool_call(tool_name: str, argument: str, call_id: str | None, ts: float) -> Event:
    """`ts`: the server's clock (epoch seconds) when the call started."""
    return {
        "type": "tool_call",
        "tool_name": tool_name,
        "argument": argument,
        "call_id": call_id,
        "ts": ts,
    }


def tool_result(
    call_id: str | None,
    tool_name: str,
    output: str,
    is_error: bool,
    ts: float,
    images: list[dict[str, Any]] | None = None,
) -> Event:
    """`images`: this call's images (see deltakit_nb.images), present only when it has any."""
    event: Event = {
        "type": "tool_result",
        "call_id": call_id,
        "tool_name": tool_name,
        "output": output,
        "is_error": is_error,
        "ts": ts,
    }
    if images:
        event["images"] = images
    return event


def done(status: RunStatus, metrics: dict[str, Any] | None = None) -> Event:
    """`metrics`: the run's model, tokens and duration as agno reports them (absent if none)."""
    event: Event = {"type": "done", "status": status.value}
    if metrics:
        event["metrics"] = metrics
    return event


def error(message: str) -> Event:
    return {"type": "error", "message": message}


def run_paused(requirements: list[dict[str, Any]]) -> Event:
    """The run waits for a decision on each of `requirements` (see deltakit_nb.hitl)."""
    return {"type": "run_paused", "requirements": requirements}


def run_resumed(decisions: list[dict[str, Any]]) -> Event:
    """The decisions that continued a paused run, as the server accepted them."""
    return {"type": "run_resumed", "decisions": decisions}


# Teams and workflows. A member run is introduced once, by `member_started` (its `member` and the
# leader's `parent_call_id`); its later events are its agent's own (reasoning, tool_call,
# tool_result) with only `member_run_id` added (see `nested`): a member's text is most of a team
# run, and naming the member in full on each chunk made it 2.5 times a text_delta's size.
# Its text is a type of its own so that a client that knows only text_delta never mixes it into
# the leader's answer.

Member = dict[str, Any]  # {"id", "name", "run_id"}
Step = dict[str, Any]  # {"id", "name", "index"}


def nested(event: Event, member_run_id: str | None, step: Step | None = None) -> Event:
    """`event` as the work of a team member's run (introduced by its member_started) or of a
    workflow step: the fields are added only when known."""
    if member_run_id is not None:
        event["member_run_id"] = member_run_id
    if step is not None:
        event["step"] = step
    return event


def member_started(member: Member, parent_call_id: str | None) -> Event:
    """A member's run began, inside the leader's call `parent_call_id` (None: outside any)."""
    return {"type": "member_started", "member": member, "parent_call_id": parent_call_id}


def member_text_delta(delta: str, member_run_id: str) -> Event:
    return {"type": "member_text_delta", "delta": delta, "member_run_id": member_run_id}


def member_done(member_run_id: str, status: RunStatus, message: str = "") -> Event:
    """A member's run ended; `message` says why when it failed."""
    event: Event = {"type": "member_done", "member_run_id": member_run_id, "status": status.value}
    if message:
        event["message"] = message
    return event


def step_started(step: Step) -> Event:
    return {"type": "step_started", "step": step}


def step_completed(step: Step, status: RunStatus, message: str = "") -> Event:
    event: Event = {"type": "step_completed", "step": step, "status": status.value}
    if message:
        event["message"] = message
    return event


def thread_run(thread_id: str, run_id: str, message: str, agent: str, created_at: float) -> Event:
    """Tells a socket following `thread_id` that a run started there (resume it to watch)."""
    return {
        "type": NoticeType.THREAD_RUN.value,
        "threadId": thread_id,
        "runId": run_id,
        "message": message,
        "agent": agent,
        "createdAt": created_at,
    }


# Client frames.


class FrameError(ValueError):
    """A client frame we cannot act on; its message goes back to the client verbatim."""


@dataclass(frozen=True)
class StartFrame:
    message: str
    thread_id: str | None = None
    agent: str | None = None


@dataclass(frozen=True)
class ResumeFrame:
    run_id: str
    last_event_id: int = -1


@dataclass(frozen=True)
class FollowFrame:
    """Follow a thread (None: stop following): be told of every run that starts in it."""

    thread_id: str | None


@dataclass(frozen=True)
class DecisionFrame:
    """Decisions on a paused run's requirements (checked against them in deltakit_nb.hitl)."""

    run_id: str
    decisions: tuple[dict[str, Any], ...]


ClientFrame = StartFrame | ResumeFrame | FollowFrame | DecisionFrame

MAX_ID_CHARS = 200
FOLLOW_KEY = "followThread"


def check_id(value: Any, key: str) -> str:
    """`value` if it is a valid id (thread, run, cell key), else FrameError naming `key`."""
    if not isinstance(value, str) or not value or len(value) > MAX_ID_CHARS:
        raise FrameError(f"'{key}' must be a non-empty string of at most {MAX_ID_CHARS} chars")
    if clean_text(value) != value:
        raise FrameError(f"'{key}' must be valid Unicode text (it holds a lone surrogate)")
    return value


def _optional_str(frame: dict[str, Any], key: str) -> str | None:
    value = frame.get(key)
    return None if value is None else check_id(value, key)


def clean_text(text: str) -> str:
    """`text` with each lone surrogate (valid in JSON as "\\ud800", not encodable as UTF-8)
    replaced by U+FFFD, so it can be stored and handed to a model."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return text


def parse_frame(data: str | bytes, max_message_chars: int) -> ClientFrame:
    """Parse one client frame, or raise FrameError saying what is wrong with it."""
    if isinstance(data, bytes):
        raise FrameError("binary frames are not supported; send JSON text")
    try:
        frame = json.loads(data)
    except (ValueError, RecursionError):
        raise FrameError("frame is not valid JSON") from None
    if not isinstance(frame, dict):
        raise FrameError("frame must be a JSON object")
    if "op" in frame:  # the kernel channel's frames (kernel_wire): a browser may not publish
        raise FrameError("this socket does not take 'op' frames: only a kernel may publish")
    if FOLLOW_KEY in frame:
        return FollowFrame(thread_id=_optional_str(frame, FOLLOW_KEY))
    run_id = frame.get("runId")
    if "decisions" in frame:
        return DecisionFrame(check_id(run_id, "runId"), parse_decisions(frame["decisions"]))
    if run_id is not None:
        run_id = _optional_str(frame, "runId")
        last = frame.get("lastEventId", -1)
        if last is None:
            last = -1
        if isinstance(last, bool) or not isinstance(last, int) or last < -1:
            raise FrameError("'lastEventId' must be an integer >= -1")
        return ResumeFrame(run_id=run_id, last_event_id=last)  # type: ignore[arg-type]
    message = frame.get("message")
    if message is None:
        raise FrameError("Expected message or runId")
    if not isinstance(message, str) or not message.strip():
        raise FrameError("'message' must be a non-empty string")
    if len(message) > max_message_chars:
        raise FrameError(
            f"message too long: {len(message)} chars (limit max_message_chars={max_message_chars})"
        )
    return StartFrame(
        message=clean_text(message),
        thread_id=_optional_str(frame, "threadId"),
        agent=_optional_str(frame, "agent"),
    )


MAX_DECISIONS = 100
# A decision's keys and the JSON types they take (values: an object, checked per requirement).
DECISION_KEYS: dict[str, tuple[type, ...]] = {
    "id": (str,),
    "approve": (bool,),
    "note": (str,),
    "values": (dict,),
    "result": (str,),
}
_TYPE_NAMES = {str: "a string", bool: "true or false", dict: "an object"}


def parse_decisions(decisions: Any) -> tuple[dict[str, Any], ...]:
    """The decisions of a decision frame (or continue request), each checked for its shape:
    an object with a requirement `id` and only the keys of DECISION_KEYS, each of its type."""
    if not isinstance(decisions, list) or not decisions:
        raise FrameError("'decisions' must be a non-empty list of objects")
    if len(decisions) > MAX_DECISIONS:
        raise FrameError(f"too many decisions: {len(decisions)} (limit {MAX_DECISIONS})")
    out: list[dict[str, Any]] = []
    for i, decision in enumerate(decisions):
        if not isinstance(decision, dict):
            raise FrameError(f"decisions[{i}] must be an object")
        for key, value in decision.items():
            types = DECISION_KEYS.get(key)
            if types is None:
                known = ", ".join(DECISION_KEYS)
                raise FrameError(f"decisions[{i}]: unknown key {key!r} (known: {known})")
            if key != "id" and value is not None and not isinstance(value, types):
                raise FrameError(f"decisions[{i}]: {key!r} must be {_TYPE_NAMES[types[0]]}")
        check_id(decision.get("id"), f"decisions[{i}].id")
        out.append(
            {
                k: clean_text(v) if isinstance(v, str) else v
                for k, v in decision.items()
                if v is not None
            }
        )
    return tuple(out)


# ASCII-escaped: a lone surrogate from a model or tool stays valid JSON and valid UTF-8.
_encoder = json.JSONEncoder(separators=(",", ":"), check_circular=False)
encode_str = json.encoder.encode_basestring_ascii  # a JSON string literal, in C


def encode(event: Event) -> str:
    """Serialise one event; the server does this once per event and reuses the text."""
    return _encoder.encode(event)


def encode_run_event(event: Event, event_id: int, run_id: str, run_id_json: str) -> str:
    """Serialise a run event with its eventId and runId (`run_id_json`: run_id as JSON text).

    Text deltas are most of every run, so they take a template: a tenth of json.dumps' cost,
    byte-for-byte the same text as `encode({**event, "eventId": …, "runId": …})`.
    """
    if event["type"] == "text_delta" and len(event) == 2:
        return encode_text_delta(event["delta"], event_id, run_id_json)
    return _encoder.encode({**event, "eventId": event_id, "runId": run_id})


def encode_text_delta(delta: str, event_id: int, run_id_json: str) -> str:
    """`encode_run_event(text_delta(delta), …)` without building the event dict."""
    return (
        f'{{"type":"text_delta","delta":{encode_str(delta)},'
        f'"eventId":{event_id},"runId":{run_id_json}}}'
    )


def member_text_tail(member_run_id: str) -> str:
    """The encoded fields after `delta` of a member run's text deltas, for
    `encode_member_text`."""
    return f'"member_run_id":{encode_str(member_run_id)},'


def encode_member_text(delta: str, tail: str, event_id: int, run_id_json: str) -> str:
    """`encode_run_event(member_text_delta(delta, member_run_id), …)` from the member run's
    `member_text_tail`, without building the event dict: byte-for-byte the same."""
    return (
        f'{{"type":"member_text_delta","delta":{encode_str(delta)},{tail}'
        f'"eventId":{event_id},"runId":{run_id_json}}}'
    )


def batch(encoded: list[str]) -> str:
    """One frame from encoded events: the event itself, or a JSON array of several."""
    return encoded[0] if len(encoded) == 1 else "[" + ",".join(encoded) + "]"
