"""The shared store: runs and their events in PostgreSQL (psycopg 3), for several servers.

Same tables as the SQLite store, in their own PostgreSQL schema `deltakit` (so they sit beside
agno's history tables in one database), with a `schema_version` table instead of SQLite's
user_version. Every write is an upsert by key, so the writer may retry a transaction whose
commit it never heard back about (a server restart) without writing anything twice.

Connections: the writer thread has one, the reads share another (under a lock); both are
opened again when the server went away. `connect()` gives a new one (e.g. to LISTEN).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ..protocol import RunStatus
from .base import (
    SUMMARY_KEYS,
    TITLE_CHARS,
    Batch,
    Op,
    Store,
    StoredRun,
    StoreError,
    interrupted_event,
)
from .leases import CHANNEL_EVENTS

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger("deltakit_nb")

T = TypeVar("T")

SCHEMA_NAME = "deltakit"
SCHEMA_VERSION = 1
CONNECT_TIMEOUT = 5  # seconds: an unreachable server fails the start, not hangs it
# Taken while the schema is created or migrated, so two servers starting on one new database
# do not both create it (CREATE ... IF NOT EXISTS races on the catalog).
SCHEMA_LOCK = 0x64656C7461  # "delta"
SCHEMA = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA_NAME};
CREATE TABLE IF NOT EXISTS {SCHEMA_NAME}.schema_version (version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS {SCHEMA_NAME}.runs (
    id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    message TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS runs_by_thread ON {SCHEMA_NAME}.runs (thread_id, created_at);
CREATE INDEX IF NOT EXISTS runs_in_progress ON {SCHEMA_NAME}.runs (status)
    WHERE status IN ('pending', 'running', 'paused');
CREATE TABLE IF NOT EXISTS {SCHEMA_NAME}.event_batches (
    run_id TEXT NOT NULL,
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (run_id, first_id)
);
CREATE TABLE IF NOT EXISTS {SCHEMA_NAME}.cell_threads (
    key TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL,
    updated_at DOUBLE PRECISION
);
CREATE INDEX IF NOT EXISTS cell_threads_by_thread ON {SCHEMA_NAME}.cell_threads (thread_id);
"""
# SQL taking the schema from the version it is keyed by to the next one (none yet: version 1 is
# the first). Each runs in the transaction that then records the new version; a new database
# gets SCHEMA (version 1) and then every migration, so SCHEMA itself never changes.
MIGRATIONS: dict[int, str] = {}

S = SCHEMA_NAME
UPSERT_RUN = (
    f"INSERT INTO {S}.runs VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
    "thread_id = EXCLUDED.thread_id, agent = EXCLUDED.agent, message = EXCLUDED.message, "
    "status = EXCLUDED.status, created_at = EXCLUDED.created_at, "
    "finished_at = EXCLUDED.finished_at"
)
UPSERT_BATCH = (
    f"INSERT INTO {S}.event_batches VALUES (%s, %s, %s, %s) ON CONFLICT (run_id, first_id) "
    "DO UPDATE SET last_id = EXCLUDED.last_id, body = EXCLUDED.body"
)
# The common write while runs stream (only new batches, of runs this server already owns):
# one statement, its own transaction, that writes them and sends the notifications the other
# servers wait for (delivered at its commit). About a quarter of the client CPU of BEGIN, the
# upserts, the notifies and COMMIT one by one (psycopg's Python code in the writer thread,
# which shares the GIL with the runs' event loop). Rows go in as plain parameters: a text[]
# of bodies costs psycopg a Python regex pass over every quote of the JSON.
WRITE_BATCHES = (
    f"WITH written AS (INSERT INTO {S}.event_batches VALUES {{values}} "
    "ON CONFLICT (run_id, first_id) DO UPDATE SET last_id = EXCLUDED.last_id, "
    "body = EXCLUDED.body RETURNING 1) {notifies}"
)


def write_batches_sql(rows: int, notifies: int) -> str:
    return WRITE_BATCHES.format(
        values=", ".join(["(%s, %s, %s, %s)"] * rows),
        notifies=" UNION ALL ".join(["SELECT pg_notify(%s, %s)"] * notifies) or "SELECT 1",
    )


UPSERT_CELL = (
    f"INSERT INTO {S}.cell_threads VALUES (%s, %s, %s) ON CONFLICT (key) DO UPDATE SET "
    "thread_id = EXCLUDED.thread_id, updated_at = EXCLUDED.updated_at"
)
# As the SQLite store's: per thread its newest run (DISTINCT ON takes the whole row of it) and
# the run count, then the title of the listed threads only, from the runs_by_thread index.
THREAD_SUMMARIES = f"""
WITH newest AS (
    SELECT DISTINCT ON (thread_id) thread_id,
           COALESCE(finished_at, created_at) AS last_activity, status
    FROM {S}.runs ORDER BY thread_id, created_at DESC
), counts AS (
    SELECT thread_id, MIN(created_at) AS started, COUNT(*) AS runs
    FROM {S}.runs GROUP BY thread_id
)
SELECT n.thread_id,
       (SELECT substr(message, 1, %s) FROM {S}.runs f WHERE f.thread_id = n.thread_id
        ORDER BY created_at LIMIT 1),
       c.started, n.last_activity, n.status, c.runs
FROM newest n JOIN counts c USING (thread_id)
ORDER BY n.last_activity DESC
LIMIT %s
"""


def is_postgres_url(url: str) -> bool:
    return url.split(":", 1)[0].lower() in ("postgresql", "postgres", "postgresql+psycopg")


def psycopg_url(url: str) -> str:
    """The URL as psycopg (libpq) takes it: without a SQLAlchemy driver name."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and is_postgres_url(scheme) else url


def sqlalchemy_url(url: str) -> str:
    """The URL as agno's PostgresDb (SQLAlchemy) takes it: with the psycopg 3 driver."""
    return "postgresql+psycopg://" + psycopg_url(url).partition("://")[2]


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")
    user = netloc[0].partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[2]}"))


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise StoreError(
            "a postgresql:// store needs psycopg 3: pip install 'deltakit_nb[postgres]'"
        ) from exc
    return psycopg


def _nul_free_dumper(psycopg: Any) -> type:
    """psycopg's default str dumper, with NUL (which PostgreSQL text cannot hold; SQLite can)
    replaced by U+FFFD instead of an error: a user's message or thread id may hold one."""
    from psycopg.types.string import StrDumperUnknown

    class NulFreeStrDumper(StrDumperUnknown):
        def dump(self, obj: str) -> Any:
            return super().dump(obj.replace("\x00", "\ufffd") if "\x00" in obj else obj)

    return NulFreeStrDumper


class PostgresStore(Store):
    def __init__(self, url: str):
        super().__init__()
        self.url = psycopg_url(url)
        self.location = redacted(self.url)
        self._psycopg = _psycopg()
        self._str_dumper = _nul_free_dumper(self._psycopg)
        self._read_lock = threading.Lock()
        try:
            self._read = self.connect()
            self._set_up_schema(self._read)
            self._write: psycopg.Connection[Any] | None = self.connect()
        except (self._psycopg.Error, StoreError) as exc:
            if getattr(self, "_read", None) is not None:
                self._read.close()
            if isinstance(exc, StoreError):
                raise
            raise StoreError(
                f"PostgreSQL at {self.location} is unusable: {type(exc).__name__}: "
                f"{str(exc).strip()}"
            ) from exc
        self._start_writer()

    def connect(self, **kwargs: Any) -> psycopg.Connection[Any]:
        """A new connection to the store's database (autocommit unless told otherwise)."""
        kwargs.setdefault("autocommit", True)
        kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT)
        conn: psycopg.Connection[Any] = self._psycopg.connect(self.url, **kwargs)
        conn.adapters.register_dumper(str, self._str_dumper)
        return conn

    @staticmethod
    def _set_up_schema(conn: psycopg.Connection[Any]) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            conn.execute(SCHEMA)
            row = conn.execute(f"SELECT max(version) FROM {S}.schema_version").fetchone()
            version = row[0] if row else None
            if version is None:  # a new database: SCHEMA made version 1, migrations go on
                conn.execute(f"INSERT INTO {S}.schema_version VALUES (1)")
                version = 1
            while version < SCHEMA_VERSION:
                if version not in MIGRATIONS:
                    raise StoreError(f"no migration from schema version {version}")
                conn.execute(MIGRATIONS[version])
                version += 1
                conn.execute(f"UPDATE {S}.schema_version SET version = %s", (version,))
            if version != SCHEMA_VERSION:
                raise StoreError(
                    f"schema version {version}, expected {SCHEMA_VERSION} (a newer "
                    "deltakit_nb wrote this database)"
                )
            PostgresStore._compress_with_lz4(conn)

    @staticmethod
    def _compress_with_lz4(conn: psycopg.Connection[Any]) -> None:
        """Batch bodies over ~2 KB are compressed by PostgreSQL (TOAST), with pglz unless told
        otherwise: lz4 does it at about half the server's CPU per streamed run (a live run's
        batches are written while it streams, on the same machine as often as not). Only where
        the server has lz4 (PostgreSQL 14+, built with it); existing rows stay as they are."""
        row = conn.execute(
            "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
        ).fetchone()
        if not (row and row[0]):
            return
        row = conn.execute(
            "SELECT attcompression FROM pg_attribute "
            f"WHERE attrelid = '{S}.event_batches'::regclass AND attname = 'body'"
        ).fetchone()
        if row and row[0] != "l":
            conn.execute(f"ALTER TABLE {S}.event_batches ALTER COLUMN body SET COMPRESSION lz4")

    def schema_version(self) -> int:
        row = self._reading(
            lambda c: c.execute(f"SELECT max(version) FROM {S}.schema_version").fetchone()
        )
        return int(row[0]) if row and row[0] is not None else 0

    # The writer thread.

    def _unreachable(self, exc: Exception) -> bool:
        """A lost connection, or one that cannot be made (a server stopping or starting);
        or a transaction the server rolled back (a deadlock): worth retrying as it is. An
        error on a live connection (a statement timeout, bad data) is the write's."""
        psycopg = self._psycopg
        if isinstance(exc, psycopg.errors.TransactionRollback):
            return True
        if not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
            return False
        conn = self._write
        return conn is None or conn.closed or conn.broken

    def _apply(self, ops: list[Op]) -> None:
        if not ops:
            return
        conn = self._write
        if conn is not None and not conn.closed and not conn.broken:
            try:
                self._transaction(conn, ops)
                return
            except (self._psycopg.OperationalError, self._psycopg.InterfaceError):
                # The connection went stale while the writer was idle (a server restart
                # it has not used it since): once more at once, on a new one, before the
                # writer calls the database unreachable. (Upserts: a commit whose answer
                # was lost is harmless to repeat.)
                if not conn.broken:
                    raise
        if conn is not None:
            conn.close()
        self._write = None
        self._write = self.connect()
        self._transaction(self._write, ops)

    def _transaction(self, conn: psycopg.Connection[Any], ops: list[Op]) -> None:
        if all(kind == "rows" for kind, _ in ops) and self._write_batches(conn, ops):
            return
        newest: dict[str, int] = {}
        with conn.transaction(), conn.cursor() as cur:
            events: list[Batch] = []
            for kind, arg in ops:
                if kind == "rows":
                    events += arg
                    continue
                if events:
                    self._insert_batches(cur, events, newest)
                    events = []
                if kind == "run":
                    cur.execute(UPSERT_RUN, arg)
                elif kind == "bind_cell":
                    cur.execute(UPSERT_CELL, arg)
                elif kind == "delete_thread":
                    cur.execute(f"DELETE FROM {S}.cell_threads WHERE thread_id = %s", (arg,))
                    cur.execute(
                        f"DELETE FROM {S}.event_batches WHERE run_id IN "
                        f"(SELECT id FROM {S}.runs WHERE thread_id = %s)",
                        (arg,),
                    )
                    cur.execute(f"DELETE FROM {S}.runs WHERE thread_id = %s", (arg,))
                elif kind == "prune":
                    self._prune(cur, *arg)
            if events:
                self._insert_batches(cur, events, newest)
            if newest:
                self._before_commit(cur, newest)

    @staticmethod
    def _insert_batches(
        cur: psycopg.Cursor[Any], events: list[Batch], newest: dict[str, int]
    ) -> None:
        cur.executemany(UPSERT_BATCH, events)
        for run_id, _, last, _ in events:
            newest[run_id] = last

    def _write_batches(self, conn: psycopg.Connection[Any], ops: list[Op]) -> bool:
        """Write batch rows (and their notifications) in one statement, if they can be: no
        run among them is new to this server (its claim goes with the long way), and no two
        rows share a key (an upsert touches a row once per statement). False if not."""
        rows = [row for _, batch in ops for row in batch]
        if not rows:
            return True
        newest = {run_id: last for run_id, _, last, _ in rows}
        payloads = self.event_notices(newest) if self.event_notices is not None else []
        if payloads is None or len({(row[0], row[1]) for row in rows}) < len(rows):
            return False
        params = [value for row in rows for value in row]
        params += [value for payload in payloads for value in (CHANNEL_EVENTS, payload)]
        conn.execute(write_batches_sql(len(rows), len(payloads)), params)
        return True

    # Set by the cross-server side (server/cluster.py): the writer hooks below call them.
    on_commit: Callable[[psycopg.Cursor[Any], dict[str, int]], None] | None = None
    on_committed: Callable[[dict[str, int]], None] | None = None
    # The notification payloads for a write of batches (newest event id per run), or None
    # when it must take the long way (_before_commit: it claims a run).
    event_notices: Callable[[dict[str, int]], list[str] | None] | None = None

    def _before_commit(self, cur: psycopg.Cursor[Any], newest: dict[str, int]) -> None:
        """Called inside the writer's transaction that wrote events, with the newest event id
        written per run; a NOTIFY sent here is delivered exactly when the batch is committed
        (and never if it is not)."""
        if self.on_commit is not None:
            self.on_commit(cur, newest)

    def batches_committed(self, newest: dict[str, int]) -> None:
        if self.on_committed is not None:
            self.on_committed(newest)

    def _prune(
        self, cur: psycopg.Cursor[Any], keep_per_thread: int, max_age: float, thread_id: str | None
    ) -> None:
        doomed: set[str] = set()
        if max_age > 0:
            cur.execute(
                f"SELECT id FROM {S}.runs WHERE created_at < %s "
                "AND status NOT IN ('pending', 'running')",
                (time.time() - max_age,),
            )
            doomed.update(r[0] for r in cur.fetchall())
        if keep_per_thread > 0:
            where, args = ("WHERE thread_id = %s", (thread_id,)) if thread_id else ("", ())
            # A paused run waits for the user: only its age removes it.
            cur.execute(
                "SELECT id FROM (SELECT id, status, ROW_NUMBER() OVER (PARTITION BY thread_id "
                f"ORDER BY created_at DESC) AS n FROM {S}.runs {where}) AS ranked "
                "WHERE n > %s AND status NOT IN ('pending', 'running', 'paused')",
                (*args, keep_per_thread),
            )
            doomed.update(r[0] for r in cur.fetchall())
        self._delete_runs(cur, doomed)

    @staticmethod
    def _delete_runs(cur: psycopg.Cursor[Any], run_ids: Iterable[str]) -> None:
        ids = list(run_ids)
        if ids:
            cur.execute(f"DELETE FROM {S}.event_batches WHERE run_id = ANY(%s)", (ids,))
            cur.execute(f"DELETE FROM {S}.runs WHERE id = ANY(%s)", (ids,))

    def _close_writer(self) -> None:
        if self._write is not None:
            self._write.close()

    def _close_reader(self) -> None:
        with self._read_lock:
            self._read.close()

    # Reads: blocking, for a worker thread.

    def _reading(self, read: Callable[[psycopg.Connection[Any]], T]) -> T:
        """`read` on the read connection; once more on a new one if the server went away
        since it was last used (a restart)."""
        with self._read_lock:
            try:
                if self._read.closed or self._read.broken:
                    raise self._psycopg.OperationalError("connection lost")
                return read(self._read)
            except (self._psycopg.OperationalError, self._psycopg.InterfaceError):
                self._read.close()
                self._read = self.connect()
                return read(self._read)

    def load_run(self, run_id: str) -> StoredRun | None:
        def read(conn: psycopg.Connection[Any]) -> StoredRun | None:
            with conn.transaction():  # one snapshot: the run and its events agree
                row = conn.execute(f"SELECT * FROM {S}.runs WHERE id = %s", (run_id,)).fetchone()
                if row is None:
                    return None
                rows = conn.execute(
                    f"SELECT body FROM {S}.event_batches WHERE run_id = %s ORDER BY first_id",
                    (run_id,),
                ).fetchall()
            return StoredRun(self._summary(row), [t for (body,) in rows for t in body.split("\n")])

        return self._reading(read)

    def load_events(self, run_id: str, after: int = -1) -> list[str]:
        rows = self._reading(
            lambda c: c.execute(
                f"SELECT first_id, body FROM {S}.event_batches WHERE run_id = %s "
                "AND last_id > %s ORDER BY first_id",
                (run_id, after),
            ).fetchall()
        )
        return self._events_after(rows, after)

    def thread_run_ids(self, thread_id: str) -> list[str]:
        rows = self._reading(
            lambda c: c.execute(
                f"SELECT id FROM {S}.runs WHERE thread_id = %s ORDER BY created_at", (thread_id,)
            ).fetchall()
        )
        return [r[0] for r in rows]

    def paused_run_ids(self) -> list[str]:
        rows = self._reading(
            lambda c: c.execute(
                f"SELECT id FROM {S}.runs WHERE status = %s ORDER BY created_at",
                (RunStatus.PAUSED.value,),
            ).fetchall()
        )
        return [r[0] for r in rows]

    def cell_thread(self, key: str) -> str | None:
        row = self._reading(
            lambda c: c.execute(
                f"SELECT thread_id FROM {S}.cell_threads WHERE key = %s", (key,)
            ).fetchone()
        )
        return None if row is None else str(row[0])

    def thread_summaries(self, limit: int) -> list[dict[str, Any]]:
        rows = self._reading(lambda c: c.execute(THREAD_SUMMARIES, (TITLE_CHARS, limit)).fetchall())
        return [dict(zip(SUMMARY_KEYS, row, strict=True)) for row in rows]

    def recover_interrupted(self) -> list[str]:
        now = time.time()

        def recover(conn: psycopg.Connection[Any]) -> list[str]:
            with conn.transaction():
                rows = conn.execute(
                    f"SELECT id, (SELECT COALESCE(MAX(last_id), -1) FROM {S}.event_batches "
                    f"WHERE run_id = id) FROM {S}.runs "
                    "WHERE status IN ('pending', 'running') FOR UPDATE"
                ).fetchall()
                with conn.cursor() as cur:
                    cur.executemany(
                        UPSERT_BATCH,
                        [
                            (run_id, last + 1, last + 1, interrupted_event(run_id, last + 1))
                            for run_id, last in rows
                        ],
                    )
                    cur.executemany(
                        f"UPDATE {S}.runs SET status = %s, finished_at = %s WHERE id = %s",
                        [(RunStatus.INTERRUPTED.value, now, run_id) for run_id, _ in rows],
                    )
            return [r[0] for r in rows]

        return self._reading(recover)
