"""The agno history db of the threads (a SqliteDb, or a PostgresDb with a PostgreSQL store), with
its run cache bounded in runs.

agno's SqliteDb (and PostgresDb) reads a thread's whole session (every run of it) at the start
of each run and keeps the deserialized runs of the 64 sessions read last
(agno.db.utils.SessionRunObjectCache), about 15 KB per run for short runs. Sessions only grow,
so that cache grows with the length of the threads: with 400 threads it was most of the
server's growth per run (1.8 KB, measured with tracemalloc). The cache here has agno's
interface and keys (a run is rebuilt when its row's text changes) but holds at most
HISTORY_CACHE_RUNS runs in all, dropping the sessions read least recently; the session being
read is always kept, however long.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("deltakit_nb")

HISTORY_CACHE_RUNS = 500

Entry = tuple[tuple[int, int], Any]  # (hash and length of the row's text, the run object)


class BoundedRunCache:
    """agno's SessionRunObjectCache, bounded by the number of runs it holds."""

    def __init__(self, max_runs: int = HISTORY_CACHE_RUNS):
        self.max_runs = max_runs
        self._sessions: OrderedDict[str, dict[str, Entry]] = OrderedDict()
        self._held = 0  # runs in _sessions
        self._lock = threading.Lock()  # agno reads sessions from worker threads

    def __len__(self) -> int:
        return self._held

    def runs_from_rows(self, session_id: str, rows: Sequence[tuple[str, str]]) -> list[Any]:
        """The run objects for `rows` of (run_id, raw run text), in order."""
        from agno.db.utils import deserialize_history_run

        cache = self.drop_session(session_id)
        fresh: dict[str, Entry] = {}
        objects: list[Any] = []
        for run_id, text in rows:
            token = (hash(text), len(text))
            entry = cache.get(run_id)
            if entry is None or entry[0] != token:
                entry = (token, deserialize_history_run(json.loads(text)))
            fresh[run_id] = entry
            if entry[1] is not None:
                objects.append(entry[1])
        with self._lock:
            self._held -= len(self._sessions.pop(session_id, {}))  # a concurrent read's
            self._sessions[session_id] = fresh
            self._held += len(fresh)
            while self._held > self.max_runs and len(self._sessions) > 1:
                _, dropped = self._sessions.popitem(last=False)
                self._held -= len(dropped)
        return objects

    def drop_session(self, session_id: str) -> dict[str, Entry]:
        with self._lock:
            entries = self._sessions.pop(session_id, {})
            self._held -= len(entries)
        return entries


# agno's tables go into the PostgreSQL schema of the event store's (their names never clash):
# all of deltakit_nb's data in one place, apart from anything else in the database.
POSTGRES_SCHEMA = "deltakit"


def open_history_db(location: str) -> Any:
    """agno's SqliteDb at a file path, or its PostgresDb at a PostgreSQL URL, its run cache
    bounded (see the module docstring; agno's PostgresDb has the same cache)."""
    from ..stores.postgres import is_postgres_url, sqlalchemy_url

    db: Any
    if is_postgres_url(location):
        from agno.db.postgres import PostgresDb

        db = PostgresDb(db_url=sqlalchemy_url(location), db_schema=POSTGRES_SCHEMA)
    else:
        from agno.db.sqlite import SqliteDb

        db = SqliteDb(db_file=location)
    if hasattr(db, "_run_object_cache"):
        # Same interface (runs_from_rows, drop_session), not a subclass: agno's keeps its
        # entries in a private dict this need not know.
        db._run_object_cache = BoundedRunCache()
    else:  # another agno version: nothing of ours to bound
        log.debug("deltakit_nb: agno's %s has no run cache to bound", type(db).__name__)
    return db
