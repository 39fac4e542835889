"""Age retention while the server runs (not only at start), in memory and in the store."""

from __future__ import annotations

import asyncio
from pathlib import Path

from deltakit_nb.server.agents import AgentCatalog
from deltakit_nb.server.runs import Retention, RunRegistry
from deltakit_nb.stores.sqlite import open_store


async def finish(registry: RunRegistry, message: str, thread: str) -> str:
    run = registry.start(message, thread, "demo")
    async for _ in run.log.follow():
        pass
    await asyncio.sleep(0)
    return run.id


async def test_runs_past_max_age_go_after_a_later_run(tmp_path: Path) -> None:
    store = open_store(tmp_path / "runs.sqlite")
    assert store is not None
    catalog = AgentCatalog({"demo": "deltakit_nb.offline:demo_agent"}, "demo", entry_points=False)
    registry = RunRegistry(catalog.build, store=store, retention=Retention(0, 0.5))
    registry.age_prune_every = 0  # every run end, for the test
    try:
        old = await finish(registry, "echo old", "t-a")
        await asyncio.sleep(0.6)
        new = await finish(registry, "echo new", "t-b")  # another thread: age is server-wide
        assert store.flush(5)
        assert registry.get(old) is None and await registry.find(old) is None
        assert registry.get(new) is not None
        assert store.load_run(new) is not None
    finally:
        store.close()


async def test_age_retention_waits_for_its_interval(tmp_path: Path) -> None:
    store = open_store(tmp_path / "runs.sqlite")
    assert store is not None
    catalog = AgentCatalog({"demo": "deltakit_nb.offline:demo_agent"}, "demo", entry_points=False)
    registry = RunRegistry(catalog.build, store=store, retention=Retention(0, 0.5))
    try:  # the default interval is an hour: a run past max_age stays until the next pass
        old = await finish(registry, "echo old", "t-a")
        await asyncio.sleep(0.6)
        await finish(registry, "echo new", "t-a")
        assert store.flush(5)
        assert registry.get(old) is not None and store.load_run(old) is not None
    finally:
        store.close()


async def test_age_retention_in_memory_only() -> None:
    catalog = AgentCatalog({"demo": "deltakit_nb.offline:demo_agent"}, "demo", entry_points=False)
    registry = RunRegistry(catalog.build, retention=Retention(0, 0.5))
    registry.age_prune_every = 0
    old = await finish(registry, "echo old", "t")
    await asyncio.sleep(0.6)
    new = await finish(registry, "echo new", "t")
    assert registry.get(old) is None
    assert [r.id for r in registry.runs("t")] == [new]
