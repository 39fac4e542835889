"""Where runs and their events are kept: one interface (base.Store), two stores.

`open_store` picks one by its location: a `postgresql://` URL is a PostgreSQL database
(stores/postgres.py, shared by several servers), anything else a SQLite file (stores/sqlite.py,
the embedded default).
"""

from __future__ import annotations

from pathlib import Path

from .base import Store, StoredRun, StoreError
from .postgres import is_postgres_url

__all__ = ["Store", "StoreError", "StoredRun", "is_postgres_url", "open_store"]


def open_store(location: str | Path) -> Store | None:
    """The store at `location`: a PostgreSQL URL or a SQLite file path.

    A SQLite file that cannot serve as a store gives None (runs stay in memory, as they always
    have; the log says why). A PostgreSQL database that cannot be reached or used raises
    StoreError: its runs are shared with other servers, and keeping them in this process's
    memory instead would lose them without anyone noticing.
    """
    if isinstance(location, str) and is_postgres_url(location):
        from .postgres import PostgresStore

        return PostgresStore(location)
    from .sqlite import open_store as open_sqlite

    return open_sqlite(location)
