"""A long-lived server holds bounded memory: runs in memory are bounded in total, old ones come
from the store (or are gone without one), and agno's history cache is bounded in runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hardening_util import deltakit_app
from tornado.httpclient import HTTPClientError
from wsclient import recv_until_terminal, send

from deltakit_nb.server.agents import AgentCatalog
from deltakit_nb.server.history import BoundedRunCache
from deltakit_nb.server.runs import Retention, RunRegistry
from deltakit_nb.stores.sqlite import open_store

DEMO = {"demo": "deltakit_nb.offline:demo_agent"}


@pytest.fixture
def jp_server_config() -> dict[str, object]:
    return {
        "ServerApp": {"jpserver_extensions": {"deltakit_nb": True}},
        "DeltakitApp": {
            "agents": DEMO,
            "model": "",
            "persist": False,
            "max_runs_in_memory": 3,
        },
    }


async def finish(registry: RunRegistry, message: str, thread: str) -> str:
    run = registry.start(message, thread, "demo")
    async for _ in run.log.follow():
        pass
    assert run.task is not None
    await run.task
    return run.id


async def test_persist_off_keeps_the_newest_max_runs_in_memory(
    jp_ws_fetch: Any, jp_fetch: Any, jp_serverapp: Any
) -> None:
    ids = []
    for i in range(5):  # five threads: the per-thread limit plays no part
        ws = await jp_ws_fetch("deltakit", "ws")
        await send(ws, {"message": f"echo run {i}", "threadId": f"t{i}"})
        events = await recv_until_terminal(ws)
        assert events[-1]["status"] == "completed"
        ids.append(events[0]["runId"])
        ws.close()
    registry = deltakit_app(jp_serverapp).registry
    assert len(registry.runs()) == 3
    for run_id in ids[2:]:
        run = json.loads((await jp_fetch("deltakit", "runs", run_id)).body)
        assert run["status"] == "completed" and run["events"][-1]["type"] == "done"
    for run_id in ids[:2]:
        with pytest.raises(HTTPClientError) as err:
            await jp_fetch("deltakit", "runs", run_id)
        assert err.value.code == 404


async def test_persist_on_old_runs_come_from_the_store(tmp_path: Path) -> None:
    store = open_store(tmp_path / "runs.sqlite")
    assert store is not None
    catalog = AgentCatalog(DEMO, "demo", entry_points=False)
    registry = RunRegistry(catalog.build, store=store, max_runs_in_memory=1)
    assert registry.max_finished == 64  # max_runs_in_memory is for persist off
    registry.max_finished = 2
    try:
        ids = [await finish(registry, f"echo {i}", "t") for i in range(4)]
        assert registry.get(ids[0]) is None and [r.id for r in registry.runs("t")] == ids[2:]
        assert store.flush(5)
        old = await registry.find(ids[0])
        assert old is not None and old.status.value == "completed"
        assert json.loads(old.log.encoded()[-1])["type"] == "done"
        assert [r.id for r in await registry.thread("t")] == ids
    finally:
        store.close()


async def test_the_per_thread_limit_still_applies() -> None:
    catalog = AgentCatalog(DEMO, "demo", entry_points=False)
    registry = RunRegistry(catalog.build, retention=Retention(2), max_runs_in_memory=100)
    other = await finish(registry, "echo other", "u")
    ids = [await finish(registry, f"echo {i}", "t") for i in range(4)]
    assert [r.id for r in registry.runs("t")] == ids[2:]
    assert [r.id for r in registry.runs("u")] == [other]
    assert [r.id for r in registry.runs()] == [other, *ids[2:]]


async def test_active_run_and_deleted_threads_keep_the_indexes_right() -> None:
    catalog = AgentCatalog(DEMO, "demo", entry_points=False)
    registry = RunRegistry(catalog.build, cancel_grace=5.0, max_runs_in_memory=2)
    done = await finish(registry, "echo done", "t")
    live = registry.start("count 1000 delay 0.05", "t", "demo")
    assert registry.active_run("t") is live and registry.active_run() is live
    assert registry.active_run("u") is None
    assert await registry.delete_thread("t") == 2
    assert registry.get(done) is None and registry.get(live.id) is None
    assert registry.active_run() is None and registry.runs() == []
    # The deleted live run is not counted as finished, so it does not push others out.
    kept = [await finish(registry, f"echo {i}", "v") for i in range(2)]
    assert [r.id for r in registry.runs()] == kept


async def test_agno_keeps_no_cancellation_entry_for_ended_runs() -> None:
    from agno.run.cancel import get_active_runs

    catalog = AgentCatalog(DEMO, "demo", entry_points=False)
    registry = RunRegistry(catalog.build, cancel_grace=5.0)
    ended = await finish(registry, "echo a", "t")
    live = registry.start("count 1000 delay 0.05", "t", "demo")
    async for batch in live.log.follow():  # until agno streams, so its run is registered
        if any('"text_delta"' in e for e in batch):
            break
    assert await registry.cancel(live.id)
    assert live.status.value == "cancelled"
    assert ended not in get_active_runs() and live.id not in get_active_runs()


async def test_history_cache_holds_a_bounded_number_of_runs(tmp_path: Path) -> None:
    catalog = AgentCatalog(DEMO, "demo", str(tmp_path / "history.sqlite"), entry_points=False)
    cache = catalog.history_db._run_object_cache
    assert isinstance(cache, BoundedRunCache)
    cache.max_runs = 3
    registry = RunRegistry(catalog.build)
    for thread in ("a", "b", "c", "d"):
        for i in range(3):
            await finish(registry, f"echo {i}", thread)
    assert 0 < len(cache) <= 3
    # The session read last stays cached whatever its length.
    cache.max_runs = 1
    await finish(registry, "echo 3", "d")
    assert len(cache) == 3
