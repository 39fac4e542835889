"""Runs of agents that live in a kernel: the server side of the kernel channel (kernel_wire).

A kernel that hosts agents keeps one WebSocket open to ``deltakit/kernel``. A browser's start
frame naming ``kernel:HOST/KEY`` makes a normal run in the registry (same log, store, resume
and Stop) whose runner sends ``start`` to that kernel's socket and appends the events the kernel
publishes. A kernel may publish only into runs the server gave it; a browser may not open this
socket at all (a browser always sends ``Origin`` with a WebSocket, a kernel never does). When
the socket closes (kernel death, restart, shutdown) its live runs end ``interrupted`` at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jupyter_server.auth.decorator import authorized, ws_authenticated
from tornado import web, websocket

from .. import hitl
from ..kernel_wire import END_STATUSES, KERNEL_PATH, PUBLISHABLE, split_agent_name
from ..protocol import FrameError, RunStatus, check_id
from .agents import AgentError
from .handlers import StreamSocket

if TYPE_CHECKING:
    from .runs import Continuation, Run, RunRegistry

log = logging.getLogger("deltakit_nb")

# After Stop, how long the kernel has to confirm before the run ends cancelled anyway (a tool
# that never returns keeps its kernel thread busy; the run must not wait for it).
STOP_WAIT = 0.5
MAX_KERNEL_FRAME = 16 << 20


@dataclass
class KernelRun:
    run: Run
    outcome: asyncio.Future[tuple[RunStatus, str]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )

    def end(self, status: RunStatus, message: str = "") -> None:
        if not self.outcome.done():
            self.outcome.set_result((status, message))


class KernelHosts:
    """The kernels connected now, by host id, and the runs each one was given."""

    def __init__(self) -> None:
        self.sockets: dict[str, KernelSocket] = {}

    def start(self, registry: RunRegistry, message: str, thread_id: str | None, agent: str) -> Run:
        parsed = split_agent_name(agent)
        if parsed is None:
            raise AgentError(f"{agent!r} is not a kernel agent name")
        host, key = parsed
        sock = self.sockets.get(host)
        if sock is None:
            raise AgentError(
                f"agent {agent!r} lived in a kernel that is gone (restarted or shut down); "
                "run the cell that made this chat again"
            )
        return sock.start_run(registry, message, thread_id, agent, key)


class KernelSocket(StreamSocket):
    host: str | None = None
    runs: dict[str, KernelRun]

    @ws_authenticated
    @authorized("execute", resource="deltakit")
    async def get(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        if self.request.headers.get("Origin"):
            raise web.HTTPError(403, reason="the kernel channel is not for browsers")
        self.runs = {}
        res = super().get(*args, **kwargs)
        if res is not None:
            await res

    @property
    def max_message_size(self) -> int:
        return MAX_KERNEL_FRAME

    @property
    def hosts(self) -> KernelHosts:
        return self.deltakit.kernel_hosts

    def start_run(
        self, registry: RunRegistry, message: str, thread_id: str | None, agent: str, key: str
    ) -> Run:
        async def runner(run: Run, continuation: Continuation | None) -> tuple[RunStatus, str]:
            kernel_run = self.runs[run.id]
            if continuation is None:
                frame = {"op": "start", "runId": run.id, "threadId": run.thread_id}
                self._send({**frame, "agent": key, "message": run.message})
            else:
                if self.ws_connection is None:  # gone while the run was paused
                    return RunStatus.INTERRUPTED, ""
                kernel_run.outcome = asyncio.get_running_loop().create_future()
                self._send({"op": "continue", "runId": run.id, "decisions": continuation[1]})
            return await kernel_run.outcome

        run = registry.start(message, thread_id, agent, runner)
        kernel_run = self.runs[run.id] = KernelRun(run)

        async def stop() -> None:
            # Running: the kernel cancels it. Paused (the registry has ended it): the kernel
            # lets go of the paused agno run it holds.
            self._send({"op": "cancel", "runId": run.id})
            if not kernel_run.outcome.done():
                loop = asyncio.get_running_loop()
                loop.call_later(STOP_WAIT, kernel_run.end, RunStatus.CANCELLED)

        run.stop = stop
        return run

    def on_message(self, message: str | bytes) -> None:
        try:
            frame = json.loads(message)
            if not isinstance(frame, dict):
                raise FrameError("frame must be a JSON object")
            self._handle(frame)
        except (ValueError, FrameError) as exc:
            self._send({"op": "error", "message": str(exc)})

    def _handle(self, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        if op == "hello":
            host = check_id(frame.get("host"), "host")
            if self.host is not None:
                raise FrameError("hello was already sent on this socket")
            old = self.hosts.sockets.get(host)
            if old is not None:
                old.close()
            self.host = host
            self.hosts.sockets[host] = self
            self._send({"op": "ready"})
            return
        if self.host is None:
            raise FrameError("send hello first")
        if op not in ("events", "end"):
            raise FrameError(f"unknown op {op!r}")
        run_id = check_id(frame.get("runId"), "runId")
        kernel_run = self.runs.get(run_id)
        if kernel_run is None:
            raise FrameError(f"run {run_id} was not started by this kernel")
        if kernel_run.outcome.done() or kernel_run.run.log.closed:
            return  # stopped here already: what the kernel still sends is late, not wrong
        if op == "end":
            status, message = frame.get("status"), frame.get("message") or ""
            if status not in END_STATUSES or not isinstance(message, str):
                raise FrameError("end needs a status (completed, cancelled, failed) and a message")
            self._append(kernel_run, frame.get("events", []))
            if status == "paused":
                run = kernel_run.run
                run.requirements = hitl.requirements_of(run.log.since(len(run.log) - 2))
                if not run.requirements:
                    raise FrameError("a run pauses right after its run_paused event")
            kernel_run.end(RunStatus(status), message)
            return
        self._append(kernel_run, frame.get("events"))

    def _append(self, kernel_run: KernelRun, events: Any) -> None:
        if not isinstance(events, list):
            raise FrameError("events must be a list")
        checked = [_check_event(e) for e in events]
        log = kernel_run.run.log
        texts = log.texts  # plain text deltas take the log's batch path (see EventLog)
        for event in checked:
            if event["type"] == "text_delta" and len(event) == 2 and type(event["delta"]) is str:
                texts.append(event["delta"])
            else:
                log.append(event)
        log.flush()

    def _send(self, frame: dict[str, Any]) -> None:
        with contextlib.suppress(websocket.WebSocketClosedError):
            self.write_message(json.dumps(frame))

    def on_close(self) -> None:
        if self.host is not None and self.hosts.sockets.get(self.host) is self:
            del self.hosts.sockets[self.host]
        registry = self.deltakit.registry
        for kernel_run in getattr(self, "runs", {}).values():
            if kernel_run.run.status is RunStatus.PAUSED:
                registry.end_paused(kernel_run.run, RunStatus.INTERRUPTED)
            else:
                kernel_run.end(RunStatus.INTERRUPTED)


def _check_event(event: Any) -> dict[str, Any]:
    if not isinstance(event, dict) or event.get("type") not in PUBLISHABLE:
        kind = event.get("type") if isinstance(event, dict) else type(event).__name__
        raise FrameError(f"a kernel may not publish {kind!r} events")
    if "eventId" in event or "runId" in event:  # the server gives those
        return {k: v for k, v in event.items() if k not in ("eventId", "runId")}
    return event


default_handlers = [(rf"/{KERNEL_PATH}", KernelSocket)]
