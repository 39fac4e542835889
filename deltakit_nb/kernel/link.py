"""The kernel's end of the kernel channel (see deltakit_nb.kernel_wire): one WebSocket to the
Jupyter server, kept by a daemon thread with its own asyncio loop, and one thread per run.

Nothing here runs on the kernel's main thread after registration, so cells keep executing while
an agent runs, and Stop reaches a run even while a cell is busy. The server's token stays in
this process's memory (it is sent in a header, never printed or put into widget state).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import threading
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Any

from ..adapter import AgnoAdapter
from ..kernel_wire import KERNEL_PATH, agent_name
from ..protocol import RunStatus
from .serverlink import Server, ServerNotFound, find_server

log = logging.getLogger("deltakit_nb.kernel")

CONNECT_TIMEOUT = 10.0
RECONNECT_DELAY = 2.0
# A run's events go to the server in batches, sent by the link's loop at most this long after
# the first of them arrived (however long the run's thread is then busy in a tool).
BATCH_SECONDS = 0.02


TELEMETRY_ON = ("1", "true", "yes")


class KernelAgentError(RuntimeError):
    pass


@dataclass
class LocalRun:
    run_id: str
    loop: asyncio.AbstractEventLoop | None = None
    cancelled: bool = False
    # While paused for the user's decisions: the agent and agno's paused RunOutput.
    agent: Any = None
    output: Any = None
    pending: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class KernelLink:
    """This kernel's agents and its connection to the server."""

    def __init__(self, server: Server | None = None) -> None:
        self.host = uuid.uuid4().hex[:12]
        self._server = server
        self.agents: dict[str, Any] = {}  # key -> Agent, or a callable returning one
        self.runs: dict[str, LocalRun] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ws: Any = None
        self._ready = threading.Event()
        self._error: str | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    # -- main thread ------------------------------------------------------------------------

    def register(self, agent: Any, name: str = "") -> str:
        """Host `agent` (an agno Agent, or a callable returning one); return its agent name for
        a ChatWidget. Connects to the server first if this kernel is not connected yet."""
        from agno.agent import Agent

        if not isinstance(agent, Agent) and not callable(agent):
            raise TypeError(
                "agent= takes an agent name (str), an agno Agent or a callable returning one, "
                f"not {type(agent).__name__}"
            )
        self.connect()
        label = name or getattr(agent, "name", None) or getattr(agent, "__name__", "") or "agent"
        slug = "".join(c if c.isalnum() or c in "-_" else "-" for c in str(label))[:40]
        with self._lock:
            key = f"{len(self.agents) + 1}-{slug}"
            self.agents[key] = agent
        return agent_name(self.host, key)

    def connect(self) -> bool:
        """Connect (once per kernel). No Jupyter server at all (a script, nbval): warn and
        return False; a server that refuses or does not answer: KernelAgentError."""
        with self._lock:
            if self._thread is None:
                if self._server is None:
                    try:
                        self._server = find_server()
                    except ServerNotFound as exc:
                        warnings.warn(
                            f"{exc}. The agent is registered, but a chat can run it only in a "
                            "kernel of a Jupyter server with deltakit_nb.",
                            stacklevel=4,
                        )
                        return False
                self._thread = threading.Thread(
                    target=self._thread_main, name="deltakit-kernel-link", daemon=True
                )
                self._thread.start()
        if not self._ready.wait(CONNECT_TIMEOUT):
            raise KernelAgentError(
                f"could not connect to the Jupyter server at {self.server.url} in "
                f"{CONNECT_TIMEOUT:.0f} s: {self._error or 'no answer'}"
            )
        return True

    @property
    def server(self) -> Server:
        assert self._server is not None
        return self._server

    # -- link thread ------------------------------------------------------------------------

    def _thread_main(self) -> None:
        asyncio.run(self._main())

    async def _main(self) -> None:
        from tornado.httpclient import HTTPRequest
        from tornado.websocket import websocket_connect

        self._loop = asyncio.get_running_loop()
        url = "ws" + self.server.url[4:] + KERNEL_PATH
        headers = {"Authorization": f"token {self.server.token}"} if self.server.token else {}
        while True:
            try:
                request = HTTPRequest(url, headers=headers, connect_timeout=CONNECT_TIMEOUT)
                self._ws = await websocket_connect(request, max_message_size=16 << 20)
                # Its runs' events go up this socket as many small frames: no Nagle delay.
                self._ws.protocol.set_nodelay(True)
                self._send({"op": "hello", "host": self.host})
                while (raw := await self._ws.read_message()) is not None:
                    self._on_frame(json.loads(raw))
                self._error = "the server closed the connection"
            except Exception as exc:  # a refused or lost connection: say why, try again
                self._error = f"{type(exc).__name__}: {exc}"
            self._ready.clear()
            self._ws = None
            for run in list(self.runs.values()):
                self._cancel(run)  # the server has ended them (interrupted)
            await asyncio.sleep(RECONNECT_DELAY)

    def _on_frame(self, frame: dict[str, Any]) -> None:
        op = frame.get("op")
        if op == "ready":
            self._error = None
            self._ready.set()
        elif op == "start":
            run = self.runs[frame["runId"]] = LocalRun(frame["runId"])
            threading.Thread(
                target=self._run_thread,
                args=(run, frame["agent"], frame["threadId"], frame["message"]),
                name=f"deltakit-run-{run.run_id[:8]}",
                daemon=True,
            ).start()
        elif op == "continue":
            paused = self.runs.get(frame["runId"])
            if paused is not None and paused.output is not None:
                threading.Thread(
                    target=self._run_thread,
                    args=(paused, "", "", "", frame["decisions"]),
                    name=f"deltakit-run-{paused.run_id[:8]}",
                    daemon=True,
                ).start()
        elif op == "cancel":
            stopping = self.runs.get(frame["runId"])
            if stopping is not None and stopping.output is not None:  # paused: nothing runs
                del self.runs[stopping.run_id]
            elif stopping is not None:
                self._cancel(stopping)
        elif op == "error":
            log.warning("deltakit_nb: the server refused a frame: %s", frame.get("message"))

    def _cancel(self, run: LocalRun) -> None:
        run.cancelled = True
        if run.loop is not None:
            from agno.agent import Agent

            with contextlib.suppress(RuntimeError):  # its loop has just ended
                asyncio.run_coroutine_threadsafe(Agent.acancel_run(run.run_id), run.loop)

    def _send(self, frame: dict[str, Any]) -> None:
        if self._ws is not None:
            self._ws.write_message(json.dumps(frame))

    # -- run threads ------------------------------------------------------------------------

    def _run_thread(
        self,
        run: LocalRun,
        key: str,
        thread_id: str,
        message: str,
        decisions: list[dict[str, Any]] | None = None,
    ) -> None:
        try:
            status, text = asyncio.run(self._run(run, key, thread_id, message, decisions))
        except BaseException as exc:
            status, text = RunStatus.FAILED, f"{type(exc).__name__}: {exc}"
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the link's loop has ended
                self._loop.call_soon_threadsafe(self._end, run, status, text)

    async def _run(
        self,
        run: LocalRun,
        key: str,
        thread_id: str,
        message: str,
        decisions: list[dict[str, Any]] | None = None,
    ) -> tuple[RunStatus, str]:
        from agno.agent import Agent

        run.loop = asyncio.get_running_loop()
        if decisions is not None:
            agent, output = run.agent, run.output
            run.agent = run.output = None
            stream = _continue(agent, output, decisions)
        else:
            source = self.agents.get(key)
            if source is None:
                return RunStatus.FAILED, f"this kernel hosts no agent {key!r}"
            agent = source if isinstance(source, Agent) else await asyncio.to_thread(source)
            if not isinstance(agent, Agent):
                return RunStatus.FAILED, f"the agent factory returned {type(agent).__name__}"
            if os.environ.get("AGNO_TELEMETRY", "false").strip().lower() not in TELEMETRY_ON:
                agent.telemetry = False  # agno would post to the internet after every run
            stream = agent.arun(
                message,
                stream=True,
                stream_events=True,
                run_id=run.run_id,
                session_id=thread_id,
                yield_run_output=True,
            )
        adapter = AgnoAdapter()
        terminal: dict[str, Any] = {}
        async for event in stream:
            if run.cancelled:
                break
            out = adapter.translate(event)
            if out and out[-1]["type"] in ("done", "error"):
                terminal = out.pop()
            if out:
                self._publish(run, out)
        if run.cancelled:
            return RunStatus.CANCELLED, ""
        if adapter.paused and adapter.status is None:
            run.agent, run.output = agent, adapter.output
            return RunStatus.PAUSED, ""
        status = adapter.status or RunStatus.COMPLETED
        return status, str(terminal.get("message") or "")

    def _publish(self, run: LocalRun, events: list[dict[str, Any]]) -> None:
        with run.lock:
            first = not run.pending
            run.pending.extend(events)
        if first and self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(
                    self._loop.call_later, BATCH_SECONDS, self._flush, run
                )

    # -- link thread, again -----------------------------------------------------------------

    def _flush(self, run: LocalRun) -> None:
        with run.lock:
            events, run.pending = run.pending, []
        if events and not run.cancelled:
            self._send({"op": "events", "runId": run.run_id, "events": events})

    def _end(self, run: LocalRun, status: RunStatus, text: str) -> None:
        # The last events go in the end frame itself: the server appends them and ends (or
        # pauses) the run in one step, so no reader sees run_paused while the run is running.
        with run.lock:
            events, run.pending = run.pending, []
        if run.cancelled:
            status, text, events = RunStatus.CANCELLED, "", []
        frame = {"op": "end", "runId": run.run_id, "status": status.value, "message": text}
        self._send({**frame, "events": events})
        if status is not RunStatus.PAUSED:
            self.runs.pop(run.run_id, None)


def _continue(agent: Any, output: Any, decisions: list[dict[str, Any]]) -> Any:
    """agno's stream continuing a paused run from its RunOutput, with the decisions (checked by
    the server) applied; as the server does for its own agents (RunRegistry._continue)."""
    from ..hitl import apply, apply_to_output

    requirements = {r.id: r for r in output.requirements or []}
    for decision in decisions:
        requirement = requirements.get(decision["id"])
        if requirement is None:
            raise RuntimeError(f"agno's paused run has no requirement {decision['id']}")
        apply(requirement, decision)
    resolved = list(requirements.values())
    apply_to_output(output, resolved)
    return agent.acontinue_run(
        run_response=output,
        requirements=resolved,
        session_id=output.session_id,
        stream=True,
        stream_events=True,
        yield_run_output=True,
    )


_link: KernelLink | None = None
_link_lock = threading.Lock()


def kernel_link() -> KernelLink:
    """This kernel's link (one per process)."""
    global _link
    with _link_lock:
        if _link is None:
            _link = KernelLink()
        return _link


def host_agent(agent: Any, name: str = "") -> str:
    """Host `agent` in this kernel; the name to give a ChatWidget's `agent`."""
    return kernel_link().register(agent, name)


__all__ = ["KernelAgentError", "KernelLink", "host_agent", "kernel_link"]
