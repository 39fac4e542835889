"""Runs as server-side jobs: one asyncio task per run, its event log, and the registry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from . import protocol
from .adapter import AgnoAdapter
from .eventlog import EventLog
from .protocol import RunStatus

if TYPE_CHECKING:
    from agno.agent import Agent

log = logging.getLogger("deltakit_nb")

# Hand the event loop back to the sockets every so many agno events, so that a model that
# never awaits (an offline one, a cached one) cannot starve the readers of a long run.
YIELD_EVERY = 64


class RunLimitError(RuntimeError):
    pass


@dataclass
class Run:
    id: str
    thread_id: str
    agent: str
    message: str
    status: RunStatus = RunStatus.PENDING
    created_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    log: EventLog = field(init=False)
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.log = EventLog(self.id)

    @property
    def done(self) -> bool:
        return self.status.finished

    def summary(self) -> dict[str, Any]:
        return {
            "run_id": self.id,
            "thread_id": self.thread_id,
            "agent": self.agent,
            "message": self.message,
            "status": self.status.value,
            "created_at": self.created_at,
            "finished_at": self.finished_at,
        }


class RunRegistry:
    def __init__(
        self,
        build_agent: Callable[[str], Agent],
        max_concurrent_runs: int = 100,
        cancel_grace: float = 2.0,
    ):
        self.build_agent = build_agent
        self.max_concurrent_runs = max_concurrent_runs
        self.cancel_grace = cancel_grace
        self._runs: dict[str, Run] = {}

    def start(self, message: str, thread_id: str | None, agent: str) -> Run:
        active = sum(1 for r in self._runs.values() if not r.done)
        if active >= self.max_concurrent_runs:
            raise RunLimitError(
                f"too many runs in progress: {active} (limit max_concurrent_runs="
                f"{self.max_concurrent_runs})"
            )
        run = Run(
            id=str(uuid.uuid4()),
            thread_id=thread_id or str(uuid.uuid4()),
            agent=agent,
            message=message,
        )
        self._runs[run.id] = run
        run.log.append(protocol.run_started(run.id, run.thread_id, agent))
        run.task = asyncio.create_task(self._execute(run), name=f"deltakit-run-{run.id}")
        return run

    def get(self, run_id: str) -> Run | None:
        return self._runs.get(run_id)

    def runs(self, thread_id: str | None = None) -> list[Run]:
        runs = [r for r in self._runs.values() if thread_id is None or r.thread_id == thread_id]
        return sorted(runs, key=lambda r: r.created_at)

    def active_run(self, thread_id: str | None = None) -> Run | None:
        active = [r for r in self.runs(thread_id) if not r.done]
        return active[-1] if active else None

    async def cancel(self, run_id: str) -> bool:
        """Stop a run: agno's cooperative cancel first, the task after a grace period."""
        run = self._runs.get(run_id)
        if run is None or run.done or run.task is None:
            return False
        from agno.agent import Agent

        with contextlib.suppress(Exception):
            await Agent.acancel_run(run.id)
        _, pending = await asyncio.wait({run.task}, timeout=self.cancel_grace)
        if pending:
            run.task.cancel()
            await asyncio.wait({run.task}, timeout=self.cancel_grace)
        return True

    async def shutdown(self) -> None:
        tasks = [r.task for r in self._runs.values() if r.task is not None and not r.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=self.cancel_grace)

    async def _execute(self, run: Run) -> None:
        adapter = AgnoAdapter()
        run.status = RunStatus.RUNNING
        try:
            agent = await asyncio.to_thread(self.build_agent, run.agent)
            stream = agent.arun(
                run.message,
                stream=True,
                stream_events=True,
                run_id=run.id,
                session_id=run.thread_id,
            )
            count = 0
            async for event in stream:
                for out in adapter.translate(event):
                    run.log.append(out)
                count += 1
                if count % YIELD_EVERY == 0:
                    await asyncio.sleep(0)
            terminal = adapter.finish(RunStatus.COMPLETED)
        except asyncio.CancelledError:
            terminal = adapter.finish(RunStatus.CANCELLED)
        except Exception as exc:
            log.warning("deltakit run %s failed: %s", run.id, exc, exc_info=True)
            terminal = adapter.finish(RunStatus.FAILED, f"{type(exc).__name__}: {exc}")
        for out in terminal:
            run.log.append(out)
        run.status = adapter.status or RunStatus.COMPLETED
        run.finished_at = time.time()
        run.log.close()
