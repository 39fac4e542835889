"""Several Jupyter servers on one PostgreSQL database: live follow, Stop and ownership.

A run lives in the server process that started it (its owner). Another server serves it from
the shared store, and follows it live without polling: the owner's store commits a batch of
events and, in the same transaction, notifies `deltakit_events` with the run id and the newest
event id (see stores/leases.py for the channels). This server LISTENs on a dedicated connection
in a thread; when a run it follows has news, that thread reads the new batches by id (one
query) and hands them to the event loop, which appends them, as encoded by the owner, to a
local Run's log: the sockets follow that log exactly as they follow a local run's, and a replay
is byte-identical on every server.

A Run of another server is "remote" here: made from the store when someone asks for it while
it is live, fed as above, closed when its row says it has ended (or is gone), and forgotten
then. Stop on a remote run notifies `deltakit_cancel`; the owner cancels it, and the request
returns once the end has arrived here.

Ownership: a heartbeat thread renews this server's lease and sweeps: the runs of servers that
are gone end `interrupted` (stores/leases.py). Leases are only judged expired once this server
has been connected for a whole lease (after a database restart every lease looks expired; each
server needs one heartbeat to renew its own).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .. import hitl
from ..protocol import RunStatus
from ..stores import leases
from ..stores.base import StoredRun
from .eventlog import EventLog

if TYPE_CHECKING:
    from ..stores.postgres import PostgresStore
    from .runs import Run, RunRegistry

log = logging.getLogger("deltakit_nb")

LEASE_SECONDS = 25.0
HEARTBEAT_SECONDS = 5.0
LISTEN_TIMEOUT = 1.0  # how often the listener looks up from its socket (to stop, to reconnect)
RECONNECT_FIRST, RECONNECT_MAX = 0.1, 2.0
MAX_OWNED = 10_000  # runs remembered as claimed by this server


@dataclass
class _Tail:
    """A remote run this server follows (listener-thread side; guarded by Cluster._lock)."""

    ready: threading.Event = field(default_factory=threading.Event)
    run: Run | None = None
    known: int = -1  # the newest event id handed to the loop
    last: str = ""  # the text of that event
    dirty: bool = False  # news arrived while its first snapshot was being read


class Cluster:
    def __init__(
        self,
        store: PostgresStore,
        lease: float = LEASE_SECONDS,
        heartbeat: float = HEARTBEAT_SECONDS,
    ):
        if not 0 < heartbeat <= lease / 2:
            raise ValueError(
                f"heartbeat_seconds ({heartbeat}) must be positive and at most half of "
                f"lease_seconds ({lease})"
            )
        self.store = store
        self.lease = lease
        self.heartbeat = heartbeat
        self.id = uuid.uuid4().hex
        self.host = leases.host_key()
        self.registry: RunRegistry | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        # Called on the loop with each thread deleted on any server (cell bindings forget it).
        self.thread_deleted_listeners: list[Callable[[str], None]] = []
        self._lock = threading.Lock()  # the tails and the query connection
        self._tails: dict[str, _Tail] = {}
        self._remote: dict[str, Run] = {}  # loop side: the remote runs followed here
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stop = threading.Event()
        self._query: Any = None  # psycopg connection for fetches, notifies and look-ups
        self._beat: Any = None  # the heartbeat thread's connection
        self._sweep_from = 0.0  # monotonic time from which expired leases count
        self._threads: list[threading.Thread] = []
        self.swept = 0  # runs this server interrupted for servers that are gone
        # Writer thread only: runs whose ownership this server has claimed (committed), and
        # those the transaction being written claims.
        self._owned: set[str] = set()
        self._claiming: list[str] = []

    # Set-up (blocking), from the registry's constructor.

    def recover(self) -> list[str]:
        """Join: register this server and end the runs of servers known to be gone."""
        self._beat = self.store.connect()
        self._query = self.store.connect()
        leases.ensure_schema(self._beat)
        leases.register(self._beat, self.id, self.host, self.lease)
        (uptime,) = self._beat.execute(
            "SELECT extract(epoch FROM now() - pg_postmaster_start_time())::float8"
        ).fetchone()
        self._sweep_from = time.monotonic() + max(0.0, self.lease - uptime)
        self.store.on_commit = self._before_commit
        self.store.event_notices = self._event_notices
        self.store.on_committed = self._committed
        swept = self._sweep()
        # From now on, not from when the server listens: its start may take longer than a lease.
        self._spawn_thread(self._heartbeat, "heartbeat")
        return swept

    def _spawn_thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"deltakit-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def _before_commit(self, cur: Any, newest: dict[str, int]) -> None:
        """(Writer thread, in its transaction.) Notify, and claim the runs new to it."""
        self._claiming = [run_id for run_id in newest if run_id not in self._owned]
        leases.before_commit(cur, newest, self.id, self._claiming)

    def _event_notices(self, newest: dict[str, int]) -> list[str] | None:
        """(Writer thread.) The notifications of a write of events, if it claims no run."""
        if any(run_id not in self._owned for run_id in newest):
            return None
        return leases.event_payloads(newest)

    def _committed(self, newest: dict[str, int]) -> None:
        """(Writer thread, after the commit.) The claimed runs are this server's now."""
        if len(self._owned) > MAX_OWNED:  # a claim again is harmless (an upsert)
            self._owned.clear()
        self._owned.update(self._claiming)
        self._claiming = []

    def _sweep(self) -> list[str]:
        expired = time.monotonic() >= self._sweep_from
        swept = leases.sweep(self._beat, self.id, self.host, expired, self.lease)
        self.swept += len(swept)
        return swept

    def start(self, registry: RunRegistry, loop: asyncio.AbstractEventLoop) -> None:
        """Start listening (once the event loop runs)."""
        self.registry, self.loop = registry, loop
        self._spawn_thread(self._listen, "listen")

    def stop(self) -> None:
        """Leave: the runs of this server have ended (the registry stopped them)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(LISTEN_TIMEOUT + 2)
        try:
            if self._beat is not None:
                leases.deregister(self._beat, self.id)
        except Exception as exc:
            log.warning("deltakit_nb: could not deregister from the store: %s", exc)
        for conn in (self._beat, self._query):
            if conn is not None:
                conn.close()

    # The loop side: what the registry asks.

    async def find(self, run_id: str) -> Run | None:
        """A run of another server (followed live while it is), or a finished stored run."""
        from .runs import Run

        run = self._remote.get(run_id)
        if run is not None:
            return run
        remote, stored = await asyncio.to_thread(self._tail, run_id)
        if remote is not None:
            if not remote.done:
                remote = self._remote.setdefault(run_id, remote)
            return remote
        return Run.from_store(stored) if stored is not None else None

    def is_remote(self, run: Run) -> bool:
        """Whether `run` is another server's, followed here."""
        return self._remote.get(run.id) is run

    # Paused runs: a decision (or a Stop) is taken by the server that claims the run first.

    def paused_run_ids(self) -> list[str]:
        """(Blocking, at start.) The paused runs to hold here: those no other live server
        holds (its own paused runs stay its; from here they are followed)."""
        return list(self._locked(leases.paused_run_ids, self.id))

    async def claim_paused(self, run: Run, status: RunStatus) -> bool:
        """Take `run` out of `paused` for this server (to `status`); False if another server
        has taken it (decided or stopped it) first."""
        return bool(
            await asyncio.to_thread(
                self._locked, leases.claim_paused, run.id, self.id, status.value
            )
        )

    async def take(self, run: Run) -> None:
        """A remote run this server claimed is its own now: stop following it."""
        self._remote.pop(run.id, None)

        def untail() -> None:
            with self._lock:
                tail = self._tails.get(run.id)
                if tail is not None and tail.run is run:
                    del self._tails[run.id]

        await asyncio.to_thread(untail)

    def follow(self, run: Run) -> None:
        """(Loop.) Follow a run held here that another server has taken over (it decided or
        stopped it): its log goes on with what that server writes."""
        self._remote[run.id] = run
        known = len(run.log) - 1
        last = run.log.encoded()[-1] if known >= 0 else ""

        def tail() -> None:
            with self._lock:
                entry = self._tails[run.id] = _Tail(run=run, known=known, last=last)
                entry.ready.set()
                self._fetch(run.id, entry)  # what it wrote before this tail existed

        self._spawn(asyncio.to_thread(tail))

    async def cancel(self, run_id: str, wait: float) -> bool:
        """Stop a run another server runs: ask its owner, and wait (at most `wait` seconds)
        until its end has arrived here."""
        run = await self.find(run_id)
        if run is None or run.done:
            return False
        await asyncio.to_thread(self._notify, leases.CHANNEL_CANCEL, run_id)
        deadline = time.monotonic() + wait
        while not run.log.closed and (left := deadline - time.monotonic()) > 0:
            try:
                await asyncio.wait_for(run.log.wait(len(run.log) - 1), left)
            except asyncio.TimeoutError:
                break
        return True

    async def live_run_ids(self, thread_id: str | None) -> list[str]:
        return await asyncio.to_thread(self._locked, leases.live_run_ids, thread_id)

    async def thread_deleted(self, thread_id: str) -> None:
        await asyncio.to_thread(self._notify, leases.CHANNEL_THREADS, thread_id)

    def _locked(self, fn: Callable[..., Any], *args: Any) -> Any:
        with self._lock:
            return self._with_query(fn, *args)

    def _with_query(self, fn: Callable[..., Any], *args: Any) -> Any:
        """fn(query connection, *args), reconnecting once if the connection broke."""
        import psycopg

        try:
            return fn(self._query, *args)
        except psycopg.OperationalError:
            if not (self._query.broken or self._query.closed):
                raise
            self._query = self.store.connect()
            return fn(self._query, *args)

    def _notify(self, channel: str, payload: str) -> None:
        self._locked(leases.notify, channel, payload)

    # Following a remote run: the snapshot, then the news (listener thread).

    def _tail(self, run_id: str) -> tuple[Run | None, StoredRun | None]:
        """(In a worker thread.) Start following `run_id` if it is live: the Run fed from now
        on, or else (None, the stored run or None)."""
        with self._lock:
            tail = self._tails.get(run_id)
            first = tail is None
            if tail is None:
                tail = self._tails[run_id] = _Tail()
        if not first:  # someone else is reading its snapshot
            tail.ready.wait(10)
            if tail.run is not None:
                return tail.run, None
            return None, self.store.load_run(run_id)
        try:
            # Read after the tail exists: news committed from here on marks it dirty, and
            # what came before is in the snapshot.
            stored = self.store.load_run(run_id)
            run = None
            if stored is not None and not RunStatus(stored.summary["status"]).finished:
                run = _remote_run(stored)
            with self._lock:
                if run is None:
                    del self._tails[run_id]
                    return None, stored
                tail.run, tail.known = run, len(stored.events) - 1  # type: ignore[union-attr]
                tail.last = stored.events[-1] if stored.events else ""  # type: ignore[union-attr]
                if tail.dirty:
                    self._fetch(run_id, tail)
            return run, None
        finally:
            tail.ready.set()

    def _fetch(self, run_id: str, tail: _Tail) -> None:
        """(Lock held.) Read the run's events after the newest one handed over, and its
        status; hand them to the loop. A run that has ended (or is gone) is done with."""
        status, batches = self._with_query(leases.batches_after, run_id, tail.known)
        texts: list[str] = []
        start = tail.known + 1
        for first, body in batches:
            lines = body.split("\n")
            expected = start + len(texts)
            if first > expected:
                log.error("deltakit_nb: run %s has no events %d..%d", run_id, expected, first - 1)
                break
            texts += lines[expected - first :]
        tail.known = start + len(texts) - 1
        if texts:
            tail.last = texts[-1]
        # Ended: its row says so and its terminal event is here (the owner commits both at
        # once, but a write retried alone may commit the row first), or it is gone.
        new = RunStatus(status) if status is not None else RunStatus.INTERRUPTED
        if new.finished and status is not None and not _terminal(tail.last):
            new = RunStatus.RUNNING
        if new.finished:
            self._tails.pop(run_id, None)
        run = tail.run
        assert run is not None and self.loop is not None
        self.loop.call_soon_threadsafe(self._deliver, run, start, texts, new)

    def _deliver(self, run: Run, first: int, texts: list[str], new: RunStatus) -> None:
        """(Loop.) Append another server's events to the remote run's log, and give it the
        status its row has; a run that ended (or is gone: interrupted) is done with here."""
        registry = self.registry
        if run.log.closed or (registry is not None and registry.get(run.id) is run):
            return  # (a run this server has taken over writes its own log)
        if texts and run.log.extend_encoded(first, texts) < 0:
            log.error("deltakit_nb: run %s: events from %d arrive after a gap", run.id, first)
        if new is RunStatus.PAUSED and run.status is not RunStatus.PAUSED:
            run.requirements = hitl.requirements_of(run.log.encoded())
        run.status = new
        if new.finished:
            run.finished_at = run.finished_at or time.time()
            run.log.close()
            self._remote.pop(run.id, None)

    def _listen(self) -> None:
        import psycopg

        delay = RECONNECT_FIRST
        while not self._stop.is_set():
            conn = None
            try:
                conn = self.store.connect()
                for channel in leases.CHANNELS:
                    conn.execute(f"LISTEN {channel}")
                with self._lock:  # news may have been missed while not listening
                    for run_id, tail in list(self._tails.items()):
                        if tail.run is not None:
                            self._fetch(run_id, tail)
                delay = RECONNECT_FIRST
                while not self._stop.is_set():
                    got = list(conn.notifies(timeout=LISTEN_TIMEOUT, stop_after=1))
                    if got:
                        got += conn.notifies(timeout=0)
                        self._on_notifies(got)
            except psycopg.Error as exc:
                if self._stop.is_set():
                    break
                log.warning("deltakit_nb: listening to the store failed (%s); reconnecting", exc)
                self._stop.wait(delay)
                delay = min(delay * 2, RECONNECT_MAX)
            except Exception:
                log.error("deltakit_nb: the store listener failed", exc_info=True)
                self._stop.wait(RECONNECT_MAX)
            finally:
                if conn is not None:
                    conn.close()

    def _on_notifies(self, notifies: list[Any]) -> None:
        due: list[str] = []
        loop = self.loop
        assert loop is not None
        with self._lock:
            for n in notifies:
                channel, payload = n.channel, n.payload
                if channel == leases.CHANNEL_EVENTS or channel == leases.CHANNEL_RUNS:
                    head, run_id = payload.split(" ", 1)
                    if channel == leases.CHANNEL_RUNS:
                        run_id, _, thread_id = run_id.partition(" ")
                        if head == RunStatus.PENDING.value:
                            loop.call_soon_threadsafe(self._run_started, run_id, thread_id)
                        elif head != RunStatus.PAUSED.value:  # maybe a paused run held here
                            loop.call_soon_threadsafe(self._left_paused, run_id)
                    tail = self._tails.get(run_id)
                    if tail is None:
                        continue
                    if tail.run is None:
                        tail.dirty = True
                    elif run_id not in due and (
                        channel == leases.CHANNEL_RUNS or int(head) > tail.known
                    ):
                        due.append(run_id)
                elif channel == leases.CHANNEL_CANCEL:
                    loop.call_soon_threadsafe(self._cancel_requested, payload)
                elif channel == leases.CHANNEL_THREADS:
                    loop.call_soon_threadsafe(self._thread_deleted_elsewhere, payload)
            for run_id in due:
                tail = self._tails.get(run_id)
                if tail is not None:
                    self._fetch(run_id, tail)

    # Loop callbacks for other servers' news.

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _run_started(self, run_id: str, thread_id: str) -> None:
        registry = self.registry
        if registry is None or registry.get(run_id) is not None:
            return
        if registry.thread_listeners.get(thread_id):
            self._spawn(self._tell_thread(registry, run_id, thread_id))

    async def _tell_thread(self, registry: RunRegistry, run_id: str, thread_id: str) -> None:
        run = await self.find(run_id)
        if run is not None and not run.done:
            for listener in list(registry.thread_listeners.get(thread_id, ())):
                listener(run)

    def _left_paused(self, run_id: str) -> None:
        if self.registry is not None:
            self.registry.taken_elsewhere(run_id)

    def _cancel_requested(self, run_id: str) -> None:
        registry = self.registry
        if registry is None:
            return
        run = registry.get(run_id)
        if run is not None and not run.done:
            self._spawn(registry.cancel(run_id))

    def _thread_deleted_elsewhere(self, thread_id: str) -> None:
        if self.registry is not None:
            self.registry.forget_thread(thread_id)
        for listener in self.thread_deleted_listeners:
            listener(thread_id)

    def _lease_lost(self) -> None:
        if self.registry is not None:
            self.registry.interrupt_working()

    # The heartbeat thread.

    def _heartbeat(self) -> None:
        import psycopg

        while not self._stop.wait(self.heartbeat):
            try:
                if self._beat is None or self._beat.closed or self._beat.broken:
                    self._beat = self.store.connect()
                    # Everyone may have been cut off: give them a lease to renew theirs.
                    self._sweep_from = time.monotonic() + self.lease
                if not leases.heartbeat(self._beat, self.id, self.lease):
                    log.error(
                        "deltakit_nb: this server's lease had expired (cut off from the store "
                        "for more than %.0f s): the other servers have ended its runs; they "
                        "end here too",
                        self.lease,
                    )
                    leases.register(self._beat, self.id, self.host, self.lease)
                    if self.loop is not None:
                        self.loop.call_soon_threadsafe(self._lease_lost)
                swept = self._sweep()
                if swept:
                    log.warning(
                        "deltakit_nb: %d run(s) of a server that is gone are marked interrupted",
                        len(swept),
                    )
            except psycopg.Error as exc:
                log.warning("deltakit_nb: heartbeat failed (%s); retrying", exc)
                if self._beat is not None and not self._beat.closed:
                    self._beat.close()
            except Exception:
                log.error("deltakit_nb: heartbeat failed", exc_info=True)


def _terminal(text: str) -> bool:
    """Whether an encoded event is a run's terminal one (the type comes first)."""
    return text.startswith(('{"type":"done"', '{"type":"error"'))


def _remote_run(stored: StoredRun) -> Run:
    """A Run for a live run of another server: its log open, fed by the listener."""
    from .runs import Run

    run = Run.from_store(stored)
    run.log = EventLog(run.id, stored.events)
    if run.status is RunStatus.PAUSED:
        run.requirements = hitl.requirements_of(stored.events)
    return run


def for_store(store: Any, lease: float, heartbeat: float) -> Cluster | None:
    """The cluster side of a store several servers may share (PostgreSQL), else None."""
    from ..stores.postgres import PostgresStore

    return Cluster(store, lease, heartbeat) if isinstance(store, PostgresStore) else None
