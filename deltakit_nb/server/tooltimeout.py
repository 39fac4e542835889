"""A time limit for every tool call of an agent, as an agno tool hook.

agno runs a sync tool in a worker thread (`asyncio.to_thread(FunctionCall.execute)`) and an
async tool on the event loop; either way it calls the agent's `tool_hooks` around the tool.
Our hook runs the rest of the chain with a deadline:

- sync chain: the tool runs in its own daemon thread and the hook waits for it at most
  `seconds`. A thread cannot be killed, so a hung sync tool keeps its thread until it returns
  (it is a daemon, so it never holds up the server's exit); the run goes on without it.
- async chain: the tool's coroutine is awaited under `asyncio.wait_for`, which cancels it.

On a timeout the hook raises ToolTimeoutError; agno turns a raising tool into a failed tool
call (`tool_call_error=True`, its result is the message) and the model carries on, so the
client sees a `tool_result` with `is_error: true` that names the limit.

Limitation: a *sync* tool on an agent that also has an *async* tool hook is run by agno on the
event loop itself; nothing can time that out without blocking the loop.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from agno.agent import Agent


class ToolTimeoutError(TimeoutError):
    pass


class ToolTimeout:
    """An agno tool hook that gives up on a tool call after `seconds` (0 or less: no limit)."""

    def __init__(self, seconds: float):
        self.seconds = seconds

    def message(self, name: str) -> str:
        return (
            f"tool {name!r} timed out after {self.seconds:g} s "
            f"(limit tool_timeout_seconds={self.seconds:g})"
        )

    # agno passes hook arguments by parameter name: function_name, function_call, arguments.
    def __call__(
        self, function_name: str, function_call: Callable[..., Any], arguments: dict[str, Any]
    ) -> Any:
        if self.seconds <= 0:
            return function_call(**arguments)
        if inspect.iscoroutinefunction(function_call):
            return self._async(function_name, function_call, arguments)
        return self._sync(function_name, function_call, arguments)

    async def _async(
        self, name: str, function_call: Callable[..., Any], arguments: dict[str, Any]
    ) -> Any:
        try:
            return await asyncio.wait_for(function_call(**arguments), self.seconds)
        except asyncio.TimeoutError:
            raise ToolTimeoutError(self.message(name)) from None

    def _sync(self, name: str, function_call: Callable[..., Any], arguments: dict[str, Any]) -> Any:
        outcome: dict[str, Any] = {}
        finished = threading.Event()

        def target() -> None:
            try:
                outcome["result"] = function_call(**arguments)
            except BaseException as exc:
                outcome["error"] = exc
            finally:
                finished.set()

        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run, args=(target,), name=f"deltakit-tool-{name}", daemon=True
        )
        thread.start()
        if not finished.wait(self.seconds):
            raise ToolTimeoutError(self.message(name))
        if "error" in outcome:
            raise outcome["error"]
        return outcome.get("result")


def apply_tool_timeout(agent: Agent, seconds: float) -> None:
    """Give every tool call of `agent` a time limit (idempotent; 0 or less: no limit).

    The hook goes last in `tool_hooks`, so it wraps the tool itself and the agent's own hooks
    run outside it.
    """
    hooks = [h for h in (agent.tool_hooks or []) if not isinstance(h, ToolTimeout)]
    if seconds > 0:
        hooks.append(ToolTimeout(seconds))
    agent.tool_hooks = hooks or None
