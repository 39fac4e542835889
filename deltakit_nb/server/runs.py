"""Runs as server-side jobs: one asyncio task per run, its event log, and the registry."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import hitl, protocol
from ..adapter import AgnoAdapter
from ..images import ImageLimits
from ..kernel_wire import AGENT_PREFIX as KERNEL_AGENT
from ..protocol import Event, FrameError, RunStatus
from ..stores.base import Store, StoredRun
from .eventlog import EventLog

if TYPE_CHECKING:
    from .agents import Runnable
    from .cluster import Cluster

log = logging.getLogger("deltakit_nb")

# Hand the event loop back to the sockets once YIELD_AFTER seconds have passed since the run
# last did (looked at every YIELD_EVERY agno events), so that a model that never awaits (an
# offline one, a cached one) cannot starve the readers of a long run. Each hand-back costs a
# flush, a wake-up and a frame per reader: 10 ms batches them (about 250 events of the offline
# model here) without a delay anyone can see; a model that awaits the network hands back on
# every chunk anyway.
YIELD_EVERY = 32
YIELD_AFTER = 0.010
AGE_PRUNE_EVERY = 3600.0  # seconds between age-retention passes while the server runs
# Finished runs kept in memory for fast replay when a store holds them all anyway.
MEMORY_RUNS = 64
# Finished runs kept in memory without a store (DeltakitApp.max_runs_in_memory).
MAX_RUNS_IN_MEMORY = 1000


class _NoFastPath:
    """The content type of runnables whose text always goes through the adapter."""


async def relay(
    stream: AsyncIterator[Any],
    adapter: AgnoAdapter,
    events: EventLog,
    content_type: Any = None,
    run_id: str | None = None,
    member_type: Any = None,
) -> None:
    """Put a run's agno events into its log, as protocol events, until the stream ends.

    This loop runs once per agno event and shares the thread with agno, so the common case
    costs as little as it can: a RunContent event that is only text (no reasoning, a str
    content), for which `adapter.translate` would give `[text_delta(content)]` (or nothing for
    ""), goes into the log's `texts` list as it is; the log encodes those in a batch when the
    loop next yields (see EventLog). Every other event goes through `adapter.translate`.

    `content_type` is that event's class (agno's agent RunContentEvent by default). A team's
    stream also carries its members' agent events, so a team passes its own (team)
    RunContentEvent and its `run_id`: text of any other run (a sub-team's) is a member's.
    A team also passes `member_type`, its members' (agent) RunContentEvent: a member's plain
    text chunk waits in the log's `member_texts` with the member run's encoded field
    (`adapter.member_tails`), without `translate` (the first event of a member run, which sets
    it, goes through it), and is encoded in a batch as the leader's text is.
    """
    if content_type is None:
        from agno.run.agent import RunContentEvent as content_type
    if member_type is None:
        member_type = _NoFastPath
    tails = adapter.member_tails
    add_member_text, member_texts = events.add_member_text, events.member_texts

    texts, flush = events.texts, events.flush
    loop = asyncio.get_running_loop()
    call_soon, clock = loop.call_soon, loop.time
    left = YIELD_EVERY  # events until the next look at the clock
    yielded_at = clock()
    running = adapter.status is None  # only `adapter.translate` changes it
    async for event in stream:
        if (
            type(event) is content_type
            and running
            and not event.reasoning_content
            and type(text := event.content) is str
            and (run_id is None or event.run_id == run_id)
        ):
            if text:
                if not texts:
                    if member_texts:
                        flush()
                    call_soon(flush)
                texts.append(text)
        elif (
            type(event) is member_type
            and (tail := tails.get(event.run_id)) is not None
            and running
            and not event.reasoning_content
            and type(text := event.content) is str
        ):
            if text:
                if member_texts and tail is events.member_tail:
                    member_texts.append(text)  # (add_member_text's common case, inline)
                elif add_member_text(text, tail):
                    call_soon(flush)
        else:
            for out in adapter.translate(event):
                events.append(out)
            running = adapter.status is None
        left -= 1
        if not left:
            left = YIELD_EVERY
            if clock() - yielded_at >= YIELD_AFTER:
                await asyncio.sleep(0)
                yielded_at = clock()


def content_types(runnable: Any, adapter: AgnoAdapter, run_id: str) -> tuple[Any, Any]:
    """The relay's fast-path event classes for `runnable` (its own text, its members'), with
    `adapter` set up for its kind: an Agent's defaults; a Team's own RunContentEvent and its
    members' (agent) one; none for a Workflow (its text comes from its steps' agents, each a
    run of its own, and is rare beside the steps' work)."""
    from agno.agent import Agent

    if isinstance(runnable, Agent):
        return None, None
    adapter.run_id = run_id
    from agno.team import Team

    if isinstance(runnable, Team):
        from agno.run.agent import RunContentEvent as MemberContent
        from agno.run.team import RunContentEvent

        return RunContentEvent, MemberContent
    adapter.workflow = True
    return _NoFastPath, None


class RunLimitError(RuntimeError):
    pass


class DecisionError(FrameError):
    """A decision the run cannot take; `status` is the HTTP status that says why."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


# How long a claim of a paused run waits for this server's writes to reach the store.
CLAIM_FLUSH_SECONDS = 5.0

# A paused run's decisions, checked: (the open requirements, a decision for each).
Continuation = tuple[list[dict[str, Any]], list[dict[str, Any]]]
# Runs a run somewhere else than in this process (a kernel): publishes into `run.log` and
# returns the outcome (status, error message); PAUSED with `run.requirements` set when it waits
# for decisions. Called again with the continuation once they are taken.
Runner = Callable[["Run", Continuation | None], Awaitable[tuple[RunStatus, str]]]


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
    # While paused: the requirements waiting for a decision (protocol form), and agno's
    # RunOutput when this process paused it (the run continues from it if there is no db).
    requirements: list[dict[str, Any]] = field(default_factory=list, repr=False)
    paused_output: Any = field(default=None, repr=False)
    # A run that a Runner executes, and how to stop it (instead of agno's acancel_run here).
    runner: Runner | None = field(default=None, repr=False)
    stop: Callable[[], Awaitable[None]] | None = field(default=None, repr=False)
    # The agno Agent, Team or Workflow of the current task (its cancel stops the run).
    runnable: Any = field(default=None, repr=False)
    # While this server claims the paused run in the shared store (a decision or a Stop):
    # done with whether it won.
    claiming: asyncio.Future[bool] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.log = EventLog(self.id)

    @classmethod
    def from_store(cls, stored: StoredRun) -> Run:
        s = stored.summary
        run = cls(
            id=s["run_id"],
            thread_id=s["thread_id"],
            agent=s["agent"],
            message=s["message"],
            status=RunStatus(s["status"]),
            created_at=s["created_at"],
            finished_at=s["finished_at"],
        )
        paused = run.status is RunStatus.PAUSED
        run.log = EventLog(run.id, stored.events, closed=not paused)
        if paused:
            run.requirements = hitl.requirements_of(stored.events)
        return run

    @property
    def done(self) -> bool:
        return self.status.finished

    @property
    def in_kernel(self) -> bool:
        """A notebook kernel's run: only the server its kernel is linked to can go on."""
        return self.agent.startswith(KERNEL_AGENT)

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


@dataclass
class Retention:
    runs_per_thread: int = 0  # 0: keep every run
    max_age_seconds: float = 0.0  # 0: keep runs forever


class RunRegistry:
    """The runs of this server process in memory; older ones come from the store on demand."""

    def __init__(
        self,
        build_agent: Callable[[str], Runnable],
        max_concurrent_runs: int = 100,
        cancel_grace: float = 2.0,
        store: Store | None = None,
        retention: Retention | None = None,
        max_runs_in_memory: int = MAX_RUNS_IN_MEMORY,
        image_limits: ImageLimits | None = None,
        cluster: Cluster | None = None,
    ):
        self.build_agent = build_agent
        # Other servers on the same store (PostgreSQL): their runs, Stop, ownership.
        self.cluster = cluster
        self.max_concurrent_runs = max_concurrent_runs
        self.cancel_grace = cancel_grace
        self.store = store
        self.retention = retention or Retention()
        # Finished runs held in memory beyond this many go, oldest first: with a store they
        # are read back from it on demand; without one they are gone.
        self.max_finished = MEMORY_RUNS if store is not None else max_runs_in_memory
        # Every run in memory, indexed three ways so that nothing done per run (start, end,
        # look-up) walks all of them: by id; per thread, in start order; and the finished
        # ones in the order they finished (the oldest is dropped first). `_live` holds the
        # runs in progress.
        self.image_limits = image_limits or ImageLimits()
        self._runs: dict[str, Run] = {}
        self._threads: dict[str, dict[str, Run]] = {}
        self._done_runs: OrderedDict[str, Run] = OrderedDict()
        self._live: dict[str, Run] = {}
        self._stopping = False
        # Runs ended because this server lost its lease (the other servers ended them already).
        self._lease_lost: set[str] = set()
        # Called with each run that starts in a thread (sockets that follow it); once per run,
        # never per event.
        self.thread_listeners: dict[str, set[Callable[[Run], None]]] = {}
        # Age retention runs at start and then at most every `age_prune_every` seconds, after
        # a run ends (it looks at every thread; the per-thread limit is applied every time).
        self.age_prune_every = AGE_PRUNE_EVERY
        self._age_pruned_at = time.monotonic()
        # Runs stopped because the store could hold no more of their events: why (see
        # _store_full).
        self._store_failed: dict[str, str] = {}
        self._store_was_full = False
        self._loop: asyncio.AbstractEventLoop | None = None
        if store is not None:
            store.on_backlog_full = self._store_full_soon
            # On a shared store only the runs of servers that are gone; else every run left.
            interrupted = cluster.recover() if cluster else store.recover_interrupted()
            if interrupted:
                log.warning(
                    "deltakit_nb: %d run(s) were cut off by a server stop and are "
                    "marked interrupted",
                    len(interrupted),
                )
            store.prune(self.retention.runs_per_thread, self.retention.max_age_seconds)
            self._load_paused(store)

    def _load_paused(self, store: Store) -> None:
        """Hold the runs a decision may continue (paused before the restart) in memory, so
        every socket and request deals with one Run (one log) of each."""
        store.flush()  # the age retention above goes first
        paused = self.cluster.paused_run_ids() if self.cluster else store.paused_run_ids()
        for run_id in paused:
            stored = store.load_run(run_id)
            if stored is not None:
                run = Run.from_store(stored)
                self._hold(run)
                if run.in_kernel:  # its kernel's link went with the server
                    self.end_paused(run, RunStatus.INTERRUPTED)
        if self._live:
            log.info("deltakit_nb: %d paused run(s) wait for a decision", len(self._live))

    def _hold(self, run: Run) -> None:
        """Index a run in progress (running or paused) in memory."""
        self._runs[run.id] = run
        self._threads.setdefault(run.thread_id, {})[run.id] = run
        self._live[run.id] = run

    def _store_full_soon(self) -> None:
        """The store's writer thread says its backlog is full: handle it on the event loop."""
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is closed: the server stopped
                self._loop.call_soon_threadsafe(self._store_full)

    def _store_full(self) -> None:
        """The database has been out of reach for so long that the events waiting for it
        reached the store's max_backlog: stop adding more. Every run in progress here ends
        failed (its terminal event is the last it waits to be written) and new runs are
        refused until the database is back; nothing already sent to a client is dropped."""
        store = self.store
        if store is None or not store.unreachable:
            return
        reason = (
            f"the event store {store.location} is out of reach and {store.backlog} events "
            f"wait to be written (max_backlog {store.max_backlog})"
        )
        self._store_was_full = True
        for run in list(self._live.values()):
            if run.status.working and run.task is not None and not run.task.done():
                self._store_failed[run.id] = reason
                run.task.cancel()

    def _check_capacity(self) -> None:
        if self._store_was_full and self.store is not None:
            if self.store.unreachable:
                raise RunLimitError(
                    f"the event store {self.store.location} is out of reach and holds no "
                    "more runs until it is back"
                )
            self._store_was_full = False
        active = sum(1 for r in self._live.values() if r.status.working)
        if active >= self.max_concurrent_runs:
            raise RunLimitError(
                f"too many runs in progress: {active} (limit max_concurrent_runs="
                f"{self.max_concurrent_runs})"
            )

    def start(
        self, message: str, thread_id: str | None, agent: str, runner: Runner | None = None
    ) -> Run:
        self._check_capacity()
        self._loop = asyncio.get_running_loop()
        run = Run(
            id=str(uuid.uuid4()),
            thread_id=thread_id or str(uuid.uuid4()),
            agent=agent,
            message=message,
            runner=runner,
        )
        self._hold(run)
        if self.store is not None:
            self.store.save_run(run.summary())
            self.store.follow(run.id, run.log)
        run.log.append(protocol.run_started(run.id, run.thread_id, agent))
        run.task = asyncio.create_task(self._execute(run), name=f"deltakit-run-{run.id}")
        for listener in list(self.thread_listeners.get(run.thread_id, ())):
            listener(run)
        return run

    def get(self, run_id: str) -> Run | None:
        """A run of this server process (no store look-up)."""
        return self._runs.get(run_id)

    async def find(self, run_id: str) -> Run | None:
        """A run of this process, or else one the store holds (another server's live run
        comes followed live)."""
        run = self._runs.get(run_id)
        if run is None and self.cluster is not None:
            return await self.cluster.find(run_id)
        if run is None and self.store is not None:
            # What this server queued (a run's end, a prune that dropped the run) goes first:
            # a client that saw `done` may ask at once, before the writer's next batch.
            await asyncio.to_thread(self.store.flush)
            stored = await asyncio.to_thread(self.store.load_run, run_id)
            run = Run.from_store(stored) if stored is not None else None
        return run

    def runs(self, thread_id: str | None = None) -> list[Run]:
        """The runs in memory (of one thread, when given), oldest first."""
        if thread_id is not None:
            return list(self._threads.get(thread_id, {}).values())
        return sorted(self._runs.values(), key=lambda r: r.created_at)

    async def thread(self, thread_id: str) -> list[Run]:
        """Every run of a thread, oldest first: the store's and this process's."""
        mine = {r.id: r for r in self.runs(thread_id)}
        if self.store is not None:
            # The store lists every run once this server's queued rows and prunes are in (a
            # client that saw a run's `done` may ask at once); shared, another server may
            # also have deleted or pruned runs held here.
            await asyncio.to_thread(self.store.flush)
            ids = await asyncio.to_thread(self.store.thread_run_ids, thread_id)
            if self.cluster is not None:
                listed = set(ids)
                for run_id in [i for i, r in mine.items() if r.done and i not in listed]:
                    self._drop(run_id)
                    del mine[run_id]
            for run_id in ids:
                if run_id not in mine and (run := await self.find(run_id)) is not None:
                    mine[run_id] = run
        return sorted(mine.values(), key=lambda r: r.created_at)

    async def delete_thread(self, thread_id: str) -> int:
        """Cancel the thread's live runs, then forget all of its runs and events."""
        runs = await self.thread(thread_id)
        for run in runs:
            if not run.done:
                await self.cancel(run.id)
            self._drop(run.id)
        if self.store is not None:
            self.store.delete_thread(thread_id)
            await asyncio.to_thread(self.store.flush)
        if self.cluster is not None:
            await self.cluster.thread_deleted(thread_id)
        return len(runs)

    def forget_thread(self, thread_id: str) -> None:
        """Another server deleted the thread: drop its runs held here."""
        for run in self.runs(thread_id):
            self._drop(run.id)

    def active_run(self, thread_id: str | None = None) -> Run | None:
        """The newest run in progress (of one thread, when given)."""
        runs = self._live if thread_id is None else self._threads.get(thread_id, {})
        return next((r for r in reversed(runs.values()) if not r.done), None)

    async def find_active(self, thread_id: str | None = None) -> Run | None:
        """`active_run`, of every server on a shared store (the newest)."""
        local = self.active_run(thread_id)
        if self.cluster is None:
            return local
        for run_id in await self.cluster.live_run_ids(thread_id):  # newest first
            run = await self.find(run_id)
            if run is not None and not run.done:
                if local is None or run.created_at > local.created_at:
                    return run
                break
        return local

    async def decide(self, run: Run, decisions: tuple[dict[str, Any], ...]) -> None:
        """Continue a paused run with the user's decisions (protocol.parse_decisions shaped
        them), in the same log; or DecisionError, and the run stays paused and unchanged.

        Of two decisions (or a decision and a Stop) racing, the first wins and the second
        finds the run no longer paused: here, everything up to the run leaving `paused`
        happens before any await but the claim; on a shared store, the claim (one row
        update) decides between the servers, and the run is continued by the one that won,
        whichever server paused it (a kernel's run excepted: its kernel is on that server)."""
        if run.status is not RunStatus.PAUSED or run.claiming is not None:
            status = "being decided" if run.status is RunStatus.PAUSED else run.status.value
            raise DecisionError(f"run {run.id} is not paused (its status is {status})", 409)
        remote = self.cluster is not None and self.cluster.is_remote(run)
        if remote and run.in_kernel:
            raise DecisionError(
                f"run {run.id} is paused in a notebook kernel of another server: decide it there",
                409,
            )
        if not remote and self._runs.get(run.id) is not run:  # dropped from memory by age
            raise DecisionError(f"run {run.id} has expired (max_age_days)", 409)
        try:
            checked = hitl.check_decisions(run.requirements, decisions)
            self._check_capacity()
        except FrameError as exc:
            raise DecisionError(str(exc)) from None
        except RunLimitError as exc:
            raise DecisionError(str(exc), 429) from None
        if not await self._claim(run, RunStatus.RUNNING):
            raise DecisionError(f"run {run.id} was decided or stopped on another server first", 409)
        open_requirements, run.requirements = run.requirements, []
        run.status = RunStatus.RUNNING
        if self.store is not None:
            self.store.follow(run.id, run.log, len(run.log))
        run.log.append(protocol.run_resumed(checked))
        for requirement, decision in zip(open_requirements, checked, strict=True):
            member = requirement.get("member")  # a team member's call: it nests in its card
            for event in hitl.settled_calls(requirement, decision):
                if isinstance(member, dict):
                    protocol.nested(event, member.get("run_id"))
                run.log.append(event)
        if self.store is not None:
            self.store.save_run(run.summary())
        run.task = asyncio.create_task(
            self._execute(run, (open_requirements, checked)), name=f"deltakit-run-{run.id}"
        )

    async def _claim(self, run: Run, status: RunStatus) -> bool:
        """On a shared store, take the paused `run` for this server (it leaves `paused` for
        `status`); False, and the run followed from the server that took it, if one did first.
        A remote run taken is held here from now on. Always True without other servers."""
        if self.cluster is None:
            return True
        remote = self.cluster.is_remote(run)
        run.claiming = asyncio.get_running_loop().create_future()
        won = False
        try:
            try:
                # The pause this server wrote must be in the store first (the writer commits
                # every 20 ms, later while the database is away), or the claim finds the run
                # still `running` there and takes it for another server's.
                store = self.store
                if not remote and store is not None:
                    if not await asyncio.to_thread(store.flush, CLAIM_FLUSH_SECONDS):
                        raise TimeoutError("its writes wait for the database")
                won = await self.cluster.claim_paused(run, status)
            except Exception as exc:  # the database is out of reach: the run stays paused
                log.warning("deltakit_nb: could not claim run %s: %s", run.id, exc)
                raise DecisionError(
                    f"run {run.id} stays paused: the event store {self.cluster.store.location} "
                    "cannot be reached to take it",
                    503,
                ) from None
            if won and remote:
                self._hold(run)  # from now on the cluster feeds it nothing
                await self.cluster.take(run)
        finally:
            run.claiming.set_result(won)
            run.claiming = None
        if not won:
            self._lost(run)
        return won

    def taken_elsewhere(self, run_id: str) -> None:
        """(A run's row left `paused` somewhere.) A paused run held here, and not being
        claimed by this server, was decided or stopped by another server: follow it."""
        run = self._runs.get(run_id)
        if run is not None and run.status is RunStatus.PAUSED and run.claiming is None:
            self._lost(run)

    def _lost(self, run: Run) -> None:
        if self.cluster is None or self.cluster.is_remote(run):
            return
        if self._runs.get(run.id) is run:
            self._drop(run.id)
        self.cluster.follow(run)

    async def cancel(self, run_id: str) -> bool:
        """Stop a run: agno's cooperative cancel first, the task after a grace period. A
        paused run has no task: it ends cancelled at once (on a shared store, by whichever
        server claims it first)."""
        run = self._runs.get(run_id)
        if run is None and self.cluster is not None:  # another server's: it stops it
            run = await self.cluster.find(run_id)
            # A kernel's paused run is let go by its own server (the kernel is there).
            if run is None or run.status is not RunStatus.PAUSED or run.in_kernel:
                return await self.cluster.cancel(run_id, 2 * self.cancel_grace + 1)
        if run is not None and run.status is RunStatus.PAUSED:
            if run.claiming is not None:  # a decision is being taken: stop what it becomes
                await asyncio.shield(run.claiming)
                return await self.cancel(run_id)
            try:
                won = await self._claim(run, RunStatus.CANCELLED)
            except DecisionError:  # the database is out of reach: it stays paused
                return False
            if not won:  # another server took it first: followed from now on
                assert self.cluster is not None
                return await self.cluster.cancel(run_id, 2 * self.cancel_grace + 1)
            self.end_paused(run, RunStatus.CANCELLED)
            if run.stop is not None:  # a kernel holds the paused run: let it go
                await run.stop()
            return True
        if run is None or run.done or run.task is None:
            return False
        if run.stop is not None:
            await run.stop()
        else:
            from agno.agent import Agent

            # A team's cancel also cancels its members' runs; a workflow's, its steps' agents.
            runnable = run.runnable if run.runnable is not None else Agent
            with contextlib.suppress(Exception):
                await runnable.acancel_run(run.id)
        _, pending = await asyncio.wait({run.task}, timeout=self.cancel_grace)
        if pending:
            run.task.cancel()
            await asyncio.wait({run.task}, timeout=self.cancel_grace)
        return True

    def end_paused(self, run: Run, status: RunStatus) -> None:
        """End a paused run (it has no task to stop) with `status`."""
        if self.store is not None:
            self.store.follow(run.id, run.log, len(run.log))
        run.log.append(protocol.done(status))
        run.requirements, run.paused_output = [], None
        self._finished(run, status)

    def interrupt_working(self) -> int:
        """End every run this server is working on as interrupted: it lost its lease (cut off
        from a shared store for longer), so the other servers have ended them so already."""
        working = [r for r in self._live.values() if r.task is not None and not r.task.done()]
        for run in working:
            self._lease_lost.add(run.id)
            run.task.cancel()  # type: ignore[union-attr]
        return len(working)

    async def shutdown(self) -> None:
        """Stop every live run (each ends as interrupted) and close the store."""
        self._stopping = True
        tasks = [r.task for r in self._live.values() if r.task is not None and not r.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=self.cancel_grace)
        if self.store is not None:
            await asyncio.to_thread(self.store.close)
        if self.cluster is not None:
            await asyncio.to_thread(self.cluster.stop)

    async def _execute(self, run: Run, continuation: Continuation | None = None) -> None:
        """Run (or continue) `run` until it ends or pauses; every way out of it ends here."""
        adapter = AgnoAdapter(self.image_limits)
        run.status = RunStatus.RUNNING
        if self.cluster is not None and self.store is not None:  # other servers show it
            self.store.save_run(run.summary())
        try:
            if run.runner is not None:
                terminal = await self._run_elsewhere(run, run.runner, continuation, adapter)
            else:
                terminal = await self._run_here(run, continuation, adapter)
            if terminal is None:  # paused: no terminal event, the log stays open
                return
        except asyncio.CancelledError:
            if run.id in self._store_failed:
                terminal = adapter.finish(RunStatus.FAILED, self._store_failed.pop(run.id))
            else:
                lost = run.id in self._lease_lost
                status = RunStatus.INTERRUPTED if self._stopping or lost else RunStatus.CANCELLED
                terminal = adapter.finish(status)
        except Exception as exc:
            log.warning("deltakit run %s failed: %s", run.id, exc, exc_info=True)
            terminal = adapter.finish(RunStatus.FAILED, f"{type(exc).__name__}: {exc}")
        for out in terminal:
            run.log.append(out)
        self._finished(run, adapter.status or RunStatus.COMPLETED)

    async def _run_here(
        self, run: Run, continuation: Continuation | None, adapter: AgnoAdapter
    ) -> list[Event] | None:
        """agno in this process: its events into the run's log; the terminal events, or None
        when the run paused."""
        agent = run.runnable = await asyncio.to_thread(self.build_agent, run.agent)
        content_type, member_type = content_types(agent, adapter, run.id)
        if continuation is None:
            kwargs: dict[str, Any] = {"yield_run_output": True} if not adapter.workflow else {}
            stream = agent.arun(
                run.message,
                stream=True,
                stream_events=True,
                run_id=run.id,
                session_id=run.thread_id,
                **kwargs,
            )
        else:
            adapter.images.remember(run.log.encoded())
            adapter.resume_members(continuation[0])
            stream = await self._continue(agent, run, continuation[1])
        await relay(stream, adapter, run.log, content_type, adapter.run_id, member_type)
        if adapter.paused and adapter.status is None:
            self._pause(run, adapter)
            return None
        return adapter.finish(RunStatus.COMPLETED)

    async def _run_elsewhere(
        self, run: Run, runner: Runner, continuation: Continuation | None, adapter: AgnoAdapter
    ) -> list[Event] | None:
        """A run that a Runner executes (it publishes the events): its terminal events, or
        None when it paused."""
        outcome, message = await runner(run, continuation)
        if outcome is RunStatus.PAUSED:
            adapter.paused = run.requirements
            self._pause(run, adapter)
            return None
        return adapter.finish(outcome, message)

    @staticmethod
    async def _continue(agent: Any, run: Run, decisions: list[dict[str, Any]]) -> Any:
        """agno's stream continuing `run` with the decisions applied to its requirements."""
        output = run.paused_output
        run.paused_output = None
        if output is None and agent.db is not None:  # paused before a restart
            output = await agent.aget_run_output(run_id=run.id, session_id=run.thread_id)
        if output is None:
            raise RuntimeError(
                f"agno holds no paused run {run.id}: its agent keeps no history db, and the "
                "server process that paused it is gone"
            )
        requirements = {r.id: r for r in output.requirements or []}
        for decision in decisions:
            requirement = requirements.get(decision["id"])
            if requirement is None:
                raise RuntimeError(f"agno's paused run has no requirement {decision['id']}")
            hitl.apply(requirement, decision)
        kwargs: dict[str, Any] = {
            "requirements": list(requirements.values()),
            "session_id": run.thread_id,
            "stream": True,
            "stream_events": True,
            "yield_run_output": True,
        }
        if agent.db is not None:  # agno loads the run from its db
            return agent.acontinue_run(run_id=run.id, **kwargs)
        hitl.apply_to_output(output, kwargs["requirements"])
        return agent.acontinue_run(run_response=output, **kwargs)

    def _pause(self, run: Run, adapter: AgnoAdapter) -> None:
        """The run waits for decisions: no task, its log open, its store rows up to date."""
        run.status = RunStatus.PAUSED
        run.requirements = adapter.paused or []
        run.paused_output = adapter.output
        run.task = None
        if self.store is not None:
            self.store.save_run(run.summary())
            self.store.unfollow(run.id)

    def _finished(self, run: Run, status: RunStatus) -> None:
        self._lease_lost.discard(run.id)
        run.status = status
        run.finished_at = time.time()
        run.log.close()
        if self._live.pop(run.id, None) is not None:  # not if delete_thread dropped it
            self._done_runs[run.id] = run
        max_age = self.retention.max_age_seconds
        age_due = max_age > 0 and time.monotonic() - self._age_pruned_at >= self.age_prune_every
        if age_due:
            self._age_pruned_at = time.monotonic()
        if self.store is not None:
            self.store.save_run(run.summary())
            if self.retention.runs_per_thread or age_due:
                self.store.prune(
                    self.retention.runs_per_thread, max_age if age_due else 0, run.thread_id
                )
        self._forget_old(run.thread_id, max_age if age_due else 0)

    def _forget_old(self, thread_id: str, max_age: float = 0) -> None:
        """Apply retention to the runs held in memory: the thread's finished runs beyond
        `runs_per_thread`, the oldest finished runs beyond `max_finished` in all (with a store,
        it serves them when asked) and, when `max_age` is given, those older than `max_age`
        seconds in every thread. Without `max_age` this costs O(runs of the thread), not
        O(runs held)."""
        if max_age > 0:  # at most every `age_prune_every` seconds
            cutoff = time.time() - max_age
            paused = [r for r in self._live.values() if r.status is RunStatus.PAUSED]
            for old in [r for r in [*self._done_runs.values(), *paused] if r.created_at < cutoff]:
                self._drop(old.id)
        keep = self.retention.runs_per_thread
        thread = self._threads.get(thread_id, {})
        if keep and len(thread) > keep:
            finished = [r.id for r in thread.values() if r.done]
            for run_id in finished[: len(thread) - keep]:
                self._drop(run_id)
        while self.max_finished and len(self._done_runs) > self.max_finished:
            self._drop(next(iter(self._done_runs)))

    def _drop(self, run_id: str) -> None:
        """Forget a run held in memory (the store keeps its copy, if any)."""
        run = self._runs.pop(run_id, None)
        if run is None:
            return
        self._done_runs.pop(run_id, None)
        self._live.pop(run_id, None)
        thread = self._threads.get(run.thread_id)
        if thread is not None:
            thread.pop(run_id, None)
            if not thread:
                del self._threads[run.thread_id]
