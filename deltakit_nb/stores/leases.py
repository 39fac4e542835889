"""Run ownership on a database several Jupyter servers share: leases, heartbeats and the sweep.

Each server process registers itself in `deltakit.servers` with a lease (`expires_at`, in the
database's clock, so the servers' clocks do not matter) that its heartbeat renews; each run
is owned by the server that writes its events (`run_owners`, claimed with its first batch).
A run left `pending` or `running` by a server that is gone is ended `interrupted` by whichever
server sweeps first: a terminal event after the events it has, its status, and the
notifications its followers wait for, in one transaction; a second sweeper finds it ended.

A server is gone when its lease has expired, or at once when it ran on this machine (same
boot, same pid namespace) and its process is no longer there (or the pid is another process
now): so a server restarted after a SIGKILL ends its old runs at start, without waiting for
the lease.

These are blocking calls on a psycopg connection (autocommit), for the cluster's threads.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

from ..protocol import RunStatus
from .base import interrupted_event

CHANNEL_EVENTS = "deltakit_events"  # "{newest event id} {run id}": a commit wrote events
CHANNEL_RUNS = "deltakit_runs"  # "{status} {run id} {thread id}": a run row was written
CHANNEL_CANCEL = "deltakit_cancel"  # "{run id}": Stop it, whichever server runs it
CHANNEL_THREADS = "deltakit_threads"  # "{thread id}": a thread was deleted
CHANNELS = (CHANNEL_EVENTS, CHANNEL_RUNS, CHANNEL_CANCEL, CHANNEL_THREADS)

SCHEMA_LOCK = 0x64656C7462  # pg_advisory_xact_lock key: two servers starting at once
S = "deltakit"  # the PostgreSQL store's schema (stores/postgres.py)
# servers: the registered server processes and their leases. run_owners: the server that last
# wrote each run's events (filled by before_commit; goes with the run). The trigger tells
# every server about each run row written (a start, a status, an end), whoever wrote it.
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {S}.servers (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    pid_started TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS {S}.run_owners (
    run_id TEXT PRIMARY KEY REFERENCES {S}.runs (id) ON DELETE CASCADE,
    owner TEXT NOT NULL
);
CREATE OR REPLACE FUNCTION {S}.notify_run() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('{CHANNEL_RUNS}', NEW.status || ' ' || NEW.id || ' ' || NEW.thread_id);
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER notify_run AFTER INSERT OR UPDATE ON {S}.runs
    FOR EACH ROW EXECUTE FUNCTION {S}.notify_run();
"""
LIVE = (RunStatus.PENDING.value, RunStatus.RUNNING.value)


def host_key() -> str:
    """This machine and pid namespace: where a pid names the same process as here."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}/{boot}/{namespace}"


def process_started(pid: int) -> str:
    """When process `pid` started (clock ticks since boot), '' if there is none or /proc
    cannot say: with the pid, it names one process, never a later one that reuses the pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def ensure_schema(conn: Any) -> None:
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        conn.execute(SCHEMA)


def register(conn: Any, server_id: str, host: str, lease: float) -> None:
    pid = os.getpid()
    conn.execute(
        f"INSERT INTO {S}.servers (id, host, pid, pid_started, expires_at) "
        "VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s)) "
        "ON CONFLICT (id) DO UPDATE SET expires_at = EXCLUDED.expires_at",
        (server_id, host, pid, process_started(pid), lease),
    )


def heartbeat(conn: Any, server_id: str, lease: float) -> bool:
    """Renew the lease; False if it was gone (another server swept this one: it was cut off
    from the database for longer than the lease)."""
    cur = conn.execute(
        f"UPDATE {S}.servers SET expires_at = now() + make_interval(secs => %s) WHERE id = %s",
        (lease, server_id),
    )
    return bool(cur.rowcount)


def deregister(conn: Any, server_id: str) -> None:
    conn.execute(f"DELETE FROM {S}.servers WHERE id = %s", (server_id,))


def forget_dead_servers(conn: Any, server_id: str, host: str, expired: bool) -> list[str]:
    """Drop the servers known to be gone: those of this machine whose process is not there,
    and, when `expired`, those whose lease has run out. Their ids."""
    rows = conn.execute(
        f"SELECT id, pid, pid_started FROM {S}.servers WHERE host = %s AND id <> %s",
        (host, server_id),
    ).fetchall()
    dead = [sid for sid, pid, started in rows if started and process_started(pid) != started]
    if expired:
        dead += [
            r[0]
            for r in conn.execute(
                f"SELECT id FROM {S}.servers WHERE expires_at < now() AND id <> %s",
                (server_id,),
            )
        ]
    if dead:
        conn.execute(f"DELETE FROM {S}.servers WHERE id = ANY(%s)", (dead,))
    return dead


def orphaned_runs(conn: Any, grace: float) -> list[str]:
    """The runs left pending or running by a server that is not registered (any more); a run
    no server has written events of yet counts once it is `grace` seconds old."""
    return [
        r[0]
        for r in conn.execute(
            f"SELECT r.id FROM {S}.runs r LEFT JOIN {S}.run_owners o ON o.run_id = r.id "
            "WHERE r.status IN (%s, %s) AND CASE WHEN o.owner IS NULL THEN r.created_at < %s "
            f"ELSE o.owner NOT IN (SELECT id FROM {S}.servers) END",
            (*LIVE, time.time() - grace),
        )
    ]


def interrupt(conn: Any, run_id: str) -> bool:
    """End an orphaned run `interrupted` (one transaction; False if it has ended meanwhile)."""
    with conn.transaction():
        row = conn.execute(
            f"UPDATE {S}.runs SET status = %s, finished_at = %s WHERE id = %s "
            "AND status IN (%s, %s) RETURNING thread_id",
            (RunStatus.INTERRUPTED.value, time.time(), run_id, *LIVE),
        ).fetchone()
        if row is None:
            return False
        (last,) = conn.execute(
            f"SELECT COALESCE(MAX(last_id), -1) FROM {S}.event_batches WHERE run_id = %s",
            (run_id,),
        ).fetchone()
        event_id = last + 1
        conn.execute(
            f"INSERT INTO {S}.event_batches (run_id, first_id, last_id, body) "
            "VALUES (%s, %s, %s, %s)",
            (run_id, event_id, event_id, interrupted_event(run_id, event_id)),
        )
        notify(conn, CHANNEL_EVENTS, f"{event_id} {run_id}")  # (the trigger tells the status)
    return True


def sweep(conn: Any, server_id: str, host: str, expired: bool, grace: float) -> list[str]:
    """Forget the servers that are gone and interrupt their runs; the runs interrupted."""
    forget_dead_servers(conn, server_id, host, expired)
    return [run_id for run_id in orphaned_runs(conn, grace) if interrupt(conn, run_id)]


def event_payloads(newest: dict[str, int]) -> list[str]:
    """The deltakit_events payloads for a commit that wrote events up to `newest` per run."""
    return [f"{last} {run_id}" for run_id, last in newest.items()]


def before_commit(cur: Any, newest: dict[str, int], owner: str, claims: list[str]) -> None:
    """In the writer's transaction that wrote events (newest event id per run): tell the
    other servers (delivered at the commit, so a reader woken by it finds the rows), and
    claim the runs this server writes the events of for the first time."""
    cur.executemany(
        "SELECT pg_notify(%s, %s)", [(CHANNEL_EVENTS, p) for p in event_payloads(newest)]
    )
    if claims:
        cur.executemany(
            f"INSERT INTO {S}.run_owners VALUES (%s, %s) "
            "ON CONFLICT (run_id) DO UPDATE SET owner = EXCLUDED.owner",
            [(run_id, owner) for run_id in claims],
        )


def claim_paused(conn: Any, run_id: str, owner: str, status: str) -> bool:
    """Take a paused run out of `paused` (to `status`: running for a decision, cancelled for
    a Stop) and make it `owner`'s, unless a server has already (one transaction): of two
    servers deciding one run at once, the first wins and the second finds it taken."""
    with conn.transaction():
        cur = conn.execute(
            f"UPDATE {S}.runs SET status = %s WHERE id = %s AND status = %s",
            (status, run_id, RunStatus.PAUSED.value),
        )
        if cur.rowcount != 1:
            return False
        conn.execute(
            f"INSERT INTO {S}.run_owners VALUES (%s, %s) "
            "ON CONFLICT (run_id) DO UPDATE SET owner = EXCLUDED.owner",
            (run_id, owner),
        )
    return True


def paused_run_ids(conn: Any, server_id: str) -> list[str]:
    """The paused runs no other registered server owns (a server holds its own paused runs),
    oldest first."""
    return [
        r[0]
        for r in conn.execute(
            f"SELECT r.id FROM {S}.runs r LEFT JOIN {S}.run_owners o ON o.run_id = r.id "
            "WHERE r.status = %s AND (o.owner IS NULL OR o.owner = %s "
            f"OR o.owner NOT IN (SELECT id FROM {S}.servers)) ORDER BY r.created_at",
            (RunStatus.PAUSED.value, server_id),
        )
    ]


def notify(conn: Any, channel: str, payload: str) -> None:
    conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


def live_run_ids(conn: Any, thread_id: str | None) -> list[str]:
    """The runs in progress (pending, running or paused), newest first."""
    where, args = ("AND thread_id = %s", (thread_id,)) if thread_id is not None else ("", ())
    return [
        r[0]
        for r in conn.execute(
            f"SELECT id FROM {S}.runs WHERE status IN (%s, %s, %s) {where} "
            "ORDER BY created_at DESC LIMIT 20",
            (*LIVE, RunStatus.PAUSED.value, *args),
        )
    ]


def batches_after(conn: Any, run_id: str, after: int) -> tuple[str | None, list[tuple[int, str]]]:
    """A run's status (None: no such run now) and its event batches holding ids > `after`,
    as (first id, texts one per line), in order; one round trip."""
    rows = conn.execute(
        f"SELECT r.status, b.first_id, b.body FROM {S}.runs r LEFT JOIN {S}.event_batches b "
        "ON b.run_id = r.id AND b.last_id > %s WHERE r.id = %s ORDER BY b.first_id",
        (after, run_id),
    ).fetchall()
    if not rows:
        return None, []
    return rows[0][0], [(first, body) for _, first, body in rows if first is not None]
