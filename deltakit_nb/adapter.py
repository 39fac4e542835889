"""Translation of agno 3.x run events into protocol events. Pure: no I/O, no server."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from . import protocol
from .images import ImageCollector, ImageLimits
from .protocol import Event, RunStatus


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


def _requirements(event: Any) -> list[Any]:
    """A RunPaused event's requirements (agno builds them from its tools when it has none)."""
    requirements = list(getattr(event, "requirements", None) or [])
    if requirements:  # a second pause of a run lists the first one's, resolved, too
        return [r for r in requirements if not r.is_resolved()]
    from agno.run.requirement import RunRequirement

    return [RunRequirement(tool_execution=t) for t in getattr(event, "tools", None) or []]


class AgnoAdapter:
    """Feed it agno events in order; it returns the protocol events each one becomes.

    `status` is set once the run's outcome is known (completed, cancelled or failed), and the
    terminal event (`done` or `error`) is emitted exactly once, at that point.
    """

    def __init__(self, image_limits: ImageLimits | None = None) -> None:
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
            tool = event.tool
            return [
                protocol.tool_call(
                    tool.tool_name or "",
                    _arguments(tool.tool_args),
                    tool.tool_call_id,
                    self.clock(),
                )
            ]
        if kind == "ToolCallCompleted" and event.tool is not None:
            tool = event.tool
            return [
                protocol.tool_result(
                    tool.tool_call_id,
                    tool.tool_name or "",
                    _text(tool.result),
                    bool(tool.tool_call_error),
                    self.clock(),
                    self.images.new_images(getattr(event, "images", None)),
                )
            ]
        if kind == "RunPaused":
            from .hitl import requirement_json

            self.paused = [requirement_json(r) for r in _requirements(event)]
            return [protocol.run_paused(self.paused)]
        if kind is None and type(event).__name__ == "RunOutput":
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
