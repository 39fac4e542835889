"""Translation of agno 3.x run events into protocol events. Pure: no I/O, no server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from . import protocol
from .images import ImageCollector, ImageLimits
from .protocol import Event, Member, RunStatus, Step

# The leader's tools that hand work to members (agno/team/_default_tools.py): the member runs
# they start nest inside their call.
DELEGATE_TOOLS = frozenset({"delegate_task_to_member", "delegate_task_to_members"})
# agno's terminal events of a member's (or step executor's) run, and the outcome each is.
_MEMBER_ENDS = {
    "RunCompleted": RunStatus.COMPLETED,
    "RunCancelled": RunStatus.CANCELLED,
    "RunError": RunStatus.FAILED,
}


def _arguments(args: Any) -> str:
    if isinstance(args, str):
        return args
    try:
        return json.dumps(args if args is not None else {}, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return json.dumps(str(args))


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def metrics_json(metrics: Any) -> dict[str, Any] | None:
    """The run footer's figures from agno's RunMetrics: model, tokens, duration (seconds);
    None when agno reports none of them."""
    if metrics is None:
        return None
    out: dict[str, Any] = {}
    details = getattr(metrics, "details", None) or {}
    models = details.get("model") or []
    if models:
        out["model"] = str(getattr(models[0], "id", "") or "")
    for key in ("input_tokens", "output_tokens"):
        value = getattr(metrics, key, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            out[key] = value
    duration = getattr(metrics, "duration", None)
    if isinstance(duration, (int, float)) and not isinstance(duration, bool):
        out["duration"] = round(float(duration), 3)
    if not out.get("model"):
        out.pop("model", None)
    return out or None


def workflow_metrics_json(metrics: Any) -> dict[str, Any] | None:
    """The run footer's figures from agno's WorkflowMetrics: its steps' tokens added up, their
    models (each once, in step order) and the workflow's duration; None when it has none."""
    if metrics is None:
        return None
    out: dict[str, Any] = {}
    models: list[str] = []
    for step in (getattr(metrics, "steps", None) or {}).values():
        figures = metrics_json(getattr(step, "metrics", None)) or {}
        for key in ("input_tokens", "output_tokens"):
            if key in figures:
                out[key] = out.get(key, 0) + figures[key]
        if figures.get("model") and figures["model"] not in models:
            models.append(figures["model"])
    if models:
        out["model"] = ", ".join(models)
    duration = getattr(metrics, "duration", None)
    if isinstance(duration, (int, float)) and not isinstance(duration, bool):
        out["duration"] = round(float(duration), 3)
    return out or None


def _requirements(event: Any) -> list[Any]:
    """A RunPaused event's requirements (agno builds them from its tools when it has none)."""
    requirements = list(getattr(event, "requirements", None) or [])
    if requirements:  # a second pause of a run lists the first one's, resolved, too
        return [r for r in requirements if not r.is_resolved()]
    from agno.run.requirement import RunRequirement

    return [RunRequirement(tool_execution=t) for t in getattr(event, "tools", None) or []]


def _step(event: Any) -> Step | None:
    """The workflow step an event belongs to, or None outside a step."""
    step_id = getattr(event, "step_id", None)
    if step_id is None:
        return None
    index = getattr(event, "step_index", None)
    return {
        "id": step_id,
        "name": getattr(event, "step_name", None) or "",
        "index": list(index) if isinstance(index, tuple) else index,
    }


class AgnoAdapter:
    """Feed it agno events in order; it returns the protocol events each one becomes.

    `status` is set once the run's outcome is known (completed, cancelled or failed), and the
    terminal event (`done` or `error`) is emitted exactly once, at that point.

    With `run_id` (the run agno was started with), events of any other agno run are a team
    member's (or, in a workflow, a step executor's): they nest instead of ending the run.
    """

    def __init__(
        self,
        image_limits: ImageLimits | None = None,
        *,
        run_id: str | None = None,
        workflow: bool = False,
    ) -> None:
        self.run_id = run_id
        self.workflow = workflow
        # Member runs seen so far: their `member` field and the leader's call they nest in.
        self._members: dict[str, tuple[Member, str | None]] = {}
        # The delegate calls under way: call id → the member_id they name (None: all).
        self._delegations: dict[str, str | None] = {}
        # Member runs that have ended: agno may send a cancelled member's RunCompleted after
        # its RunCancelled; one end per member run.
        self._ended: set[str] = set()
        # The live member runs' `protocol.member_text_tail`s: the relay writes a member's plain
        # text chunks with it, past `translate`.
        self.member_tails: dict[str, str] = {}
        self.status: RunStatus | None = None
        self.images = ImageCollector(image_limits or ImageLimits())
        self.metrics: dict[str, Any] | None = None
        self.clock: Callable[[], float] = time.time  # the `ts` of tool events
        # Set by a RunPaused event: the run waits for decisions on these (protocol form).
        self.paused: list[dict[str, Any]] | None = None
        # agno's RunOutput, which the stream yields last (yield_run_output=True): a paused run
        # continues from it when its agent has no db to load it from.
        self.output: Any = None

    def translate(self, event: Any) -> list[Event]:
        if self.status is not None:
            return []
        kind = getattr(event, "event", None)
        if kind is not None:
            run_id = getattr(event, "run_id", None)
            if self.run_id is not None and run_id is not None and run_id != self.run_id:
                return self._inner(event, kind, run_id)
            if kind.startswith("Team"):  # a team's own events: TeamRunContent, …
                kind = kind[4:]
            elif self.workflow:
                return self._workflow(event, kind)
        if kind == "RunContent":
            out: list[Event] = []
            reasoning = getattr(event, "reasoning_content", None)
            if reasoning:
                out.append(protocol.reasoning(reasoning))
            content = getattr(event, "content", None)
            if content is not None and content != "":
                out.append(protocol.text_delta(_text(content)))
            return out
        if kind == "ReasoningContentDelta":
            text = getattr(event, "reasoning_content", None)
            return [protocol.reasoning(text)] if text else []
        if kind == "ToolCallStarted" and event.tool is not None:
            return [self._tool_call(event.tool)]
        if kind == "ToolCallCompleted" and event.tool is not None:
            return [self._tool_result(event)]
        if kind == "RunPaused":
            from .hitl import requirement_json

            self.paused = [self._member_of(requirement_json(r), r) for r in _requirements(event)]
            return [protocol.run_paused(self.paused)]
        if kind is None and type(event).__name__ in ("RunOutput", "TeamRunOutput"):
            self.output = event
            return []
        if kind == "RunCompleted":
            self.metrics = metrics_json(getattr(event, "metrics", None))
            return self._finish(RunStatus.COMPLETED)
        if kind == "RunCancelled":
            return self._finish(RunStatus.CANCELLED)
        if kind == "RunError":
            return self._finish(RunStatus.FAILED, _text(getattr(event, "content", None)))
        return []

    def _member_of(self, out: dict[str, Any], requirement: Any) -> dict[str, Any]:
        """A requirement of a member's run (a team's pause) gets `member` / `parent_call_id`."""
        run_id = getattr(requirement, "member_run_id", None)
        if run_id is not None and not self.workflow:
            entry = self._members.get(run_id)
            if entry is None:
                agent_id = getattr(requirement, "member_agent_id", None) or ""
                name = getattr(requirement, "member_agent_name", None) or agent_id
                entry = ({"id": agent_id, "name": name, "run_id": run_id}, None)
            # A requirement names its member in full: a client shows it even without the
            # member's member_started (a paused run's requirements are also stored apart).
            out["member"], out["parent_call_id"] = entry
        return out

    def resume_members(self, requirements: list[dict[str, Any]]) -> None:
        """Before a paused team run continues: the members it paused in are known already
        (no second member_started; their events nest in the same delegate call)."""
        for requirement in requirements:
            member = requirement.get("member")
            if isinstance(member, dict) and member.get("run_id"):
                entry = (member, requirement.get("parent_call_id"))
                self._members[member["run_id"]] = entry
                self.member_tails[member["run_id"]] = protocol.member_text_tail(member["run_id"])

    def _tool_call(self, tool: Any) -> Event:
        self._delegation_started(tool)
        return protocol.tool_call(
            tool.tool_name or "", _arguments(tool.tool_args), tool.tool_call_id, self.clock()
        )

    def _tool_result(self, event: Any) -> Event:
        tool = event.tool
        self._delegations.pop(tool.tool_call_id, None)
        return protocol.tool_result(
            tool.tool_call_id,
            tool.tool_name or "",
            _text(tool.result),
            bool(tool.tool_call_error),
            self.clock(),
            self.images.new_images(getattr(event, "images", None)),
        )

    def _delegation_started(self, tool: Any) -> None:
        if tool.tool_name in DELEGATE_TOOLS:
            args = tool.tool_args if isinstance(tool.tool_args, dict) else {}
            member_id = (
                args.get("member_id") if tool.tool_name == "delegate_task_to_member" else None
            )
            self._delegations[tool.tool_call_id] = member_id

    def _parent_call(self, agent_id: str, name: str) -> str | None:
        """The delegate call under way that names this member (the latest, if several do)."""
        from agno.utils.string import url_safe_string  # how agno names a member without id

        names = {agent_id, name, str(url_safe_string(name))}  # type: ignore[no-untyped-call]
        for call_id, member_id in reversed(self._delegations.items()):
            if member_id is None or member_id in names:
                return call_id
        return next(reversed(self._delegations), None)

    def _inner(self, event: Any, kind: str, run_id: str) -> list[Event]:
        """An event of a member's run (a team) or a step executor's run (a workflow)."""
        if run_id in self._ended:
            return []
        if kind.startswith("Team"):  # a member that is itself a team
            kind = kind[4:]
        out: list[Event] = []
        step = _step(event) if self.workflow else None
        entry = self._members.get(run_id)
        if entry is None:
            agent_id = getattr(event, "agent_id", None) or getattr(event, "team_id", None) or ""
            name = getattr(event, "agent_name", None) or getattr(event, "team_name", None) or ""
            new: Member = {"id": agent_id, "name": name or agent_id, "run_id": run_id}
            entry = self._members[run_id] = (new, self._parent_call(agent_id, name))
            if not self.workflow:
                out.append(protocol.member_started(*entry))
                self.member_tails[run_id] = protocol.member_text_tail(run_id)
        # A step's work is the workflow's answer: plain events with `step`, no member.
        member = None if self.workflow else run_id
        if kind == "RunContent":
            reasoning = getattr(event, "reasoning_content", None)
            if reasoning:
                out.append(protocol.nested(protocol.reasoning(reasoning), member, step))
            content = getattr(event, "content", None)
            if content is not None and content != "":
                if member is None:
                    out.append(protocol.nested(protocol.text_delta(_text(content)), None, step))
                else:
                    out.append(protocol.member_text_delta(_text(content), member))
        elif kind == "ReasoningContentDelta":
            text = getattr(event, "reasoning_content", None)
            if text:
                out.append(protocol.nested(protocol.reasoning(text), member, step))
        elif kind == "ToolCallStarted" and event.tool is not None:
            # (a member team's own delegations are noted as the leader's are)
            out.append(protocol.nested(self._tool_call(event.tool), member, step))
        elif kind == "ToolCallCompleted" and event.tool is not None:
            out.append(protocol.nested(self._tool_result(event), member, step))
        elif kind in _MEMBER_ENDS and member is not None:
            status = _MEMBER_ENDS[kind]
            self._ended.add(run_id)
            self.member_tails.pop(run_id, None)
            message = _text(getattr(event, "content", None)) if status is RunStatus.FAILED else ""
            out.append(protocol.member_done(member, status, message))
        return out

    def _workflow(self, event: Any, kind: str) -> list[Event]:
        """An event of the workflow itself: its steps and its outcome."""
        if kind == "StepStarted" and (step := _step(event)) is not None:
            return [protocol.step_started(step)]
        if kind == "StepCompleted" and (step := _step(event)) is not None:
            return [protocol.step_completed(step, RunStatus.COMPLETED)]
        if kind == "StepError" and (step := _step(event)) is not None:
            message = _text(getattr(event, "error", None))
            return [protocol.step_completed(step, RunStatus.FAILED, message)]
        if kind == "WorkflowCompleted":
            self.metrics = workflow_metrics_json(getattr(event, "metrics", None))
            return self._finish(RunStatus.COMPLETED)
        if kind == "WorkflowCancelled":
            return self._finish(RunStatus.CANCELLED)
        if kind == "WorkflowError":
            why = getattr(event, "error", None) or getattr(event, "content", None)
            return self._finish(RunStatus.FAILED, _text(why))
        return []

    def finish(self, status: RunStatus, message: str = "") -> list[Event]:
        """The terminal event for an outcome found outside agno's stream (if none was sent)."""
        if self.status is not None:
            return []
        return self._finish(status, message)

    def _finish(self, status: RunStatus, message: str = "") -> list[Event]:
        self.status = status
        if status is RunStatus.FAILED:
            return [protocol.error(message or "the agent run failed")]
        return [protocol.done(status, self.metrics)]
