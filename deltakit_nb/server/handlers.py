"""HTTP and WebSocket endpoints under {base_url}deltakit/."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from jupyter_server.auth.decorator import authorized, ws_authenticated
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.base.websocket import WebSocketMixin
from jupyter_server.extension.handler import ExtensionHandlerMixin
from tornado import web, websocket
from tornado.iostream import StreamClosedError

from .. import protocol
from ..kernel_wire import AGENT_PREFIX
from ..protocol import DecisionFrame, FollowFrame, FrameError, ResumeFrame, StartFrame
from . import messages
from .agents import AgentError
from .runs import DecisionError, Run, RunLimitError

if TYPE_CHECKING:
    from .app import DeltakitApp

AUTH_RESOURCE = "deltakit"


class DeltakitMixin(ExtensionHandlerMixin):
    auth_resource = AUTH_RESOURCE

    @property
    def deltakit(self) -> DeltakitApp:
        return self.extensionapp  # type: ignore[return-value]


def _run_json(run: Run, **extra: Any) -> str:
    """A run's summary plus its events, spliced from the already-encoded event texts."""
    head = json.dumps({**run.summary(), **extra})
    return head[:-1] + ',"events":[' + ",".join(run.log.encoded()) + "]}"


class StreamSocket(DeltakitMixin, WebSocketMixin, JupyterHandler, websocket.WebSocketHandler):
    """A socket that carries a stream of small frames: the run socket, the kernel channel."""

    def get_compression_options(self) -> dict[str, Any] | None:
        return None

    def open(self, *args: Any, **kwargs: Any) -> None:
        super().open(*args, **kwargs)
        # Tornado leaves Nagle's algorithm on: a small frame written while the previous one is
        # not yet acknowledged waits for that ACK, up to the peer's delayed-ACK time (40 ms
        # on Linux): a stream's last frames, `done` among them, could arrive that late.
        self.set_nodelay(True)


class RunSocket(StreamSocket):
    """Start and resume runs; each socket follows one run at a time, and may also follow a
    thread (it is told when a run starts there)."""

    _subscription: asyncio.Task[None] | None = None
    # The thread of the last run started here: a start without threadId continues it, so a
    # client that never sends one (DeltaKit's own) still has memory between its messages.
    _thread_id: str | None = None
    _thread: str | None = None  # the thread this socket follows (followThread)
    _starting = False

    @ws_authenticated
    @authorized("execute", resource=AUTH_RESOURCE)
    async def get(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        res = super().get(*args, **kwargs)
        if res is not None:
            await res

    async def on_message(self, message: str | bytes) -> None:
        limit = self.deltakit.max_frame_bytes
        size = len(message)
        if isinstance(message, str) and size * 4 > limit:  # a char is 1 to 4 bytes in UTF-8
            size = len(message.encode("utf-8", "surrogatepass"))
        if size > limit:
            self._send_error(f"frame too large: {size} bytes (limit max_frame_bytes={limit})")
            return
        try:
            frame = protocol.parse_frame(message, self.deltakit.max_message_chars)
        except FrameError as exc:
            self._send_error(str(exc))
            return
        if isinstance(frame, FollowFrame):  # not a subscription: it streams nothing by itself
            self._follow_thread(frame.thread_id)
            return
        if isinstance(frame, DecisionFrame):  # the run's followers see what it does
            run = await self.deltakit.registry.find(frame.run_id)
            try:
                if run is None:
                    raise DecisionError(f"Run not found: {frame.run_id}", 404)
                await self.deltakit.registry.decide(run, frame.decisions)
            except DecisionError as exc:
                self._send_error(str(exc))
            return
        if not self._take_subscription():
            return
        if isinstance(frame, StartFrame):
            self._start(frame)
        elif isinstance(frame, ResumeFrame):
            run = await self.deltakit.registry.find(frame.run_id)
            if run is None:
                self._send_error("Run not found")
                return
            self._follow(run, frame.last_event_id)

    _subscribed_at: deque[float] | None = None

    def _take_subscription(self) -> bool:
        """Count a start/resume frame against max_subscriptions_per_minute; over the limit,
        send an error frame naming it and return False (refused frames do not count)."""
        limit = self.deltakit.max_subscriptions_per_minute
        if limit <= 0:
            return True
        now = time.monotonic()
        recent = self._subscribed_at
        if recent is None:
            recent = self._subscribed_at = deque()
        while recent and now - recent[0] >= 60.0:
            recent.popleft()
        if len(recent) >= limit:
            self._send_error(
                f"too many start/resume frames on this socket: {len(recent)} in the last minute "
                f"(limit max_subscriptions_per_minute={limit})"
            )
            return False
        recent.append(now)
        return True

    def _start(self, frame: StartFrame) -> None:
        app = self.deltakit
        self._starting = True  # a run this socket starts is no news to it
        try:
            thread_id = frame.thread_id or self._thread_id
            if frame.agent and frame.agent.startswith(AGENT_PREFIX):
                run = app.kernel_hosts.start(app.registry, frame.message, thread_id, frame.agent)
            else:
                agent = app.catalog.resolve_name(frame.agent)
                run = app.registry.start(frame.message, thread_id, agent)
        except (AgentError, RunLimitError) as exc:
            self._send_error(str(exc))
            return
        finally:
            self._starting = False
        self._thread_id = run.thread_id
        self._follow(run, -1)

    def _follow_thread(self, thread_id: str | None) -> None:
        """Follow `thread_id` instead of any earlier thread (None: none); told of its active
        run at once."""
        self._unfollow_thread()
        if thread_id is None:
            return
        registry = self.deltakit.registry
        self._thread = thread_id
        registry.thread_listeners.setdefault(thread_id, set()).add(self._thread_run)
        active = registry.active_run(thread_id)
        if active is not None:
            self._thread_run(active)
        elif registry.cluster is not None:  # maybe live on another server
            self._thread_lookup = asyncio.create_task(self._tell_remote_active(thread_id))

    _thread_lookup: asyncio.Task[None] | None = None

    async def _tell_remote_active(self, thread_id: str) -> None:
        active = await self.deltakit.registry.find_active(thread_id)
        if active is not None and self._thread == thread_id:
            self._thread_run(active)

    def _thread_run(self, run: Run) -> None:
        if self._starting:
            return
        notice = protocol.thread_run(run.thread_id, run.id, run.message, run.agent, run.created_at)
        with contextlib.suppress(websocket.WebSocketClosedError):
            self.write_message(protocol.encode(notice))

    def _unfollow_thread(self) -> None:
        thread_id, self._thread = self._thread, None
        if thread_id is None:
            return
        listeners = self.deltakit.registry.thread_listeners
        followers = listeners.get(thread_id, set())
        followers.discard(self._thread_run)
        if not followers:
            listeners.pop(thread_id, None)

    def _follow(self, run: Run, after: int) -> None:
        self._unsubscribe()
        self._subscription = asyncio.create_task(self._pump(run, after))

    async def _pump(self, run: Run, after: int) -> None:
        with contextlib.suppress(websocket.WebSocketClosedError, StreamClosedError):
            async for batch in run.log.follow(after):
                await self.write_message(protocol.batch(batch))

    def _send_error(self, message: str) -> None:
        with contextlib.suppress(websocket.WebSocketClosedError):
            self.write_message(protocol.encode(protocol.error(message)))

    def _unsubscribe(self) -> None:
        if self._subscription is not None:
            self._subscription.cancel()
            self._subscription = None

    def on_close(self) -> None:
        self._unsubscribe()
        self._unfollow_thread()


class DeltakitAPIHandler(DeltakitMixin, APIHandler):
    def write_json(self, body: str | dict[str, Any], status: int = 200) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.finish(body if isinstance(body, str) else json.dumps(body))

    async def get_run(self, run_id: str) -> Run:
        run = await self.deltakit.registry.find(run_id)
        if run is None:
            raise web.HTTPError(404, reason="Run not found")
        return run


class ActiveRunHandler(DeltakitAPIHandler):
    @web.authenticated
    @authorized("read", resource=AUTH_RESOURCE)
    async def get(self) -> None:
        registry = self.deltakit.registry
        run = await registry.find_active(self.get_query_argument("threadId", None))
        if run is None:
            self.write_json({"run_id": None})
        else:
            self.write_json(_run_json(run))


class CancelHandler(DeltakitAPIHandler):
    @web.authenticated
    @authorized("execute", resource=AUTH_RESOURCE)
    async def post(self, run_id: str) -> None:
        await self.get_run(run_id)
        await self.deltakit.registry.cancel(run_id)
        self.write_json({"status": "ok"})


class ContinueHandler(DeltakitAPIHandler):
    """A paused run's decisions over HTTP: the body of a decision frame."""

    @web.authenticated
    @authorized("execute", resource=AUTH_RESOURCE)
    async def post(self, run_id: str) -> None:
        run = await self.deltakit.registry.find(run_id)
        if run is None:
            self.write_json({"message": f"Run not found: {run_id}"}, 404)
            return
        limit = self.deltakit.max_frame_bytes
        if len(self.request.body) > limit:
            message = (
                f"body too large: {len(self.request.body)} bytes (limit max_frame_bytes={limit})"
            )
            self.write_json({"message": message}, 413)
            return
        try:
            body = json.loads(self.request.body or b"null")
        except (ValueError, RecursionError):
            self.write_json({"message": "the body is not valid JSON"}, 400)
            return
        if not isinstance(body, dict):
            self.write_json({"message": "the body must be a JSON object"}, 400)
            return
        if body.get("runId", run_id) != run_id:
            self.write_json({"message": "'runId' in the body names another run"}, 400)
            return
        try:
            decisions = protocol.parse_decisions(body.get("decisions"))
            await self.deltakit.registry.decide(run, decisions)
        except DecisionError as exc:
            self.write_json({"message": str(exc)}, exc.status)
            return
        except FrameError as exc:
            self.write_json({"message": str(exc)}, 400)
            return
        self.write_json({"status": "ok"})


class RunHandler(DeltakitAPIHandler):
    @web.authenticated
    @authorized("read", resource=AUTH_RESOURCE)
    async def get(self, run_id: str) -> None:
        self.write_json(_run_json(await self.get_run(run_id)))


class ThreadHandler(DeltakitAPIHandler):
    @web.authenticated
    @authorized("read", resource=AUTH_RESOURCE)
    async def get(self, thread_id: str) -> None:
        registry = self.deltakit.registry
        active = await registry.find_active(thread_id)
        runs = ",".join(_run_json(run) for run in await registry.thread(thread_id))
        head = json.dumps({"thread_id": thread_id, "active_run_id": active and active.id})
        self.write_json(head[:-1] + ',"runs":[' + runs + "]}")

    @web.authenticated
    @authorized("write", resource=AUTH_RESOURCE)
    async def delete(self, thread_id: str) -> None:
        """Forget a thread: its runs, their events and its agno session."""
        deleted = await self.deltakit.registry.delete_thread(thread_id)
        self.deltakit.cells.forget_thread(thread_id)
        await asyncio.to_thread(self.deltakit.catalog.delete_history, thread_id)
        self.write_json({"status": "ok", "deleted_runs": deleted})


class ThreadMessagesHandler(DeltakitAPIHandler):
    @web.authenticated
    @authorized("read", resource=AUTH_RESOURCE)
    async def get(self, thread_id: str) -> None:
        """The thread's finished runs as chat messages (a live run is the socket's business:
        a page resumes it with `active-run`, as the recipe does)."""
        out: list[messages.Message] = []
        for run in await self.deltakit.registry.thread(thread_id):
            if run.done:
                events = json.loads("[" + ",".join(run.log.encoded()) + "]")
                out += messages.run_messages(run.id, run.message, run.status.value, events)
        self.write_json(json.dumps(out))


class AgentsHandler(DeltakitAPIHandler):
    @web.authenticated
    @authorized("read", resource=AUTH_RESOURCE)
    async def get(self) -> None:
        catalog = self.deltakit.catalog
        agents = await asyncio.to_thread(catalog.describe)
        self.write_json({"default": catalog.default, "agents": agents})


_ID = r"([^/]+)"
default_handlers = [
    (r"/deltakit/ws", RunSocket),
    (r"/deltakit/active-run", ActiveRunHandler),
    (rf"/deltakit/jobs/{_ID}/cancel", CancelHandler),
    (rf"/deltakit/runs/{_ID}", RunHandler),
    (rf"/deltakit/runs/{_ID}/continue", ContinueHandler),
    (rf"/deltakit/threads/{_ID}", ThreadHandler),
    (rf"/deltakit/threads/{_ID}/messages", ThreadMessagesHandler),
    (r"/deltakit/agents", AgentsHandler),
]
