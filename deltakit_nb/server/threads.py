"""Finding conversations again: the thread each notebook cell shows, and the recent threads."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ..stores.base import TITLE_CHARS, Store

if TYPE_CHECKING:
    from .runs import Run, RunRegistry

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class CellBindings:
    """Cell key (deltakit_nb.kernel.cellkey) -> the thread that cell last showed: in memory, and in
    the store when there is one. Memory is written through, so a read right after a write sees
    it before the store's writer thread has committed it."""

    def __init__(self, store: Store | None, shared: bool = False):
        self.store = store
        # A store other servers write too (PostgreSQL): what memory holds may be stale, so a
        # read goes to the store, and a binding is committed before it is acknowledged.
        self.shared = shared
        self._bound: dict[str, str] = {}

    async def get(self, key: str) -> str | None:
        if self.shared:
            self._bound.pop(key, None)
        thread_id = self._bound.get(key)
        if thread_id is None and self.store is not None:
            thread_id = await asyncio.to_thread(self.store.cell_thread, key)
            if thread_id is not None:
                self._bound[key] = thread_id
        return thread_id

    async def bind(self, key: str, thread_id: str) -> None:
        self._bound[key] = thread_id
        if self.store is not None:
            self.store.bind_cell(key, thread_id)
            if self.shared:  # the other servers read it once this returns
                await asyncio.to_thread(self.store.flush)

    def forget_thread(self, thread_id: str) -> None:
        """Drop the bindings to a deleted thread (the store drops its own with the thread)."""
        for key in [k for k, t in self._bound.items() if t == thread_id]:
            del self._bound[key]


async def recent_threads(registry: RunRegistry, limit: int) -> list[dict[str, Any]]:
    """Summaries of the threads with the newest activity first (see the README's GET threads)."""
    store = registry.store
    if store is None:
        return _summaries(registry.runs(), limit)
    newest: dict[str, Run] = {}
    for run in registry.runs():  # oldest first: the newest of each thread wins
        newest[run.thread_id] = run
    await asyncio.to_thread(store.flush)  # so runs started a moment ago are listed too
    threads = await asyncio.to_thread(store.thread_summaries, limit)
    for thread in threads:
        live = newest.get(thread["thread_id"])
        if live is not None and not live.done:  # the store has "pending" until the run ends
            thread["status"] = live.status.value
    return threads


def _summaries(runs: list[Run], limit: int) -> list[dict[str, Any]]:
    threads: dict[str, dict[str, Any]] = {}
    for run in runs:  # oldest first
        thread = threads.get(run.thread_id)
        if thread is None:
            thread = threads[run.thread_id] = {
                "thread_id": run.thread_id,
                "title": run.message[:TITLE_CHARS],
                "created_at": run.created_at,
                "runs": 0,
            }
        thread["last_activity"] = run.finished_at or run.created_at
        thread["status"] = run.status.value
        thread["runs"] += 1
    ordered = sorted(threads.values(), key=lambda t: t["last_activity"], reverse=True)
    return ordered[:limit]
