"""The background warm-up: after a start the server imports agno, builds the default agent and
creates the history db's tables before any run; a run that arrives meanwhile waits for it
(one history db, no error). First-token figures: benchmarks/bench_stream.py --first-token."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from jupyterproc import TOKEN, JupyterProcess
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect
from wsclient import assert_gap_free, recv_until_terminal, send, text

from deltakit_nb.server.agents import DEMO_SPEC, AgentCatalog
from deltakit_nb.server.warmup import warm_up

WARMED_UP = "warmed up in"


def tables(path: Path) -> set[str]:
    if not path.exists():  # (sqlite3.connect would create it)
        return set()
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def sessions(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM agno_sessions").fetchone()[0])


async def test_the_server_warms_up_after_start_and_a_first_run_meets_it(tmp_path: Path) -> None:
    history = tmp_path / "deltakit" / "history.sqlite"
    with JupyterProcess(tmp_path) as server:
        # At once: the run most likely meets the warm-up, and must simply wait for it.
        req = HTTPRequest(server.ws_url, headers={"Authorization": f"token {TOKEN}"})
        ws = await websocket_connect(req)
        await send(ws, {"message": "echo first words"})
        events = await recv_until_terminal(ws)
        ws.close()
        assert_gap_free(events, events[0]["runId"])
        assert events[-1]["type"] == "done" and text(events) == "first words"
        deadline = time.monotonic() + 60
        while WARMED_UP not in server.log():
            assert time.monotonic() < deadline, server.log()
            await asyncio.sleep(0.1)
        assert "Traceback" not in server.log() and "warm-up" not in server.log()
    assert {"agno_sessions", "agno_runs"} <= tables(history)
    assert sessions(history) == 1  # the run's; the warm-up writes none


async def test_with_warm_up_off_the_first_run_builds_everything(tmp_path: Path) -> None:
    history = tmp_path / "deltakit" / "history.sqlite"
    with JupyterProcess(tmp_path, "--DeltakitApp.warm_up=False") as server:
        await asyncio.sleep(2)  # far longer than an (unwanted) warm-up needs to begin
        assert "agno_sessions" not in tables(history) and WARMED_UP not in server.log()
        req = HTTPRequest(server.ws_url, headers={"Authorization": f"token {TOKEN}"})
        ws = await websocket_connect(req)
        await send(ws, {"message": "echo still works"})
        events = await recv_until_terminal(ws)
        ws.close()
        assert text(events) == "still works"
    assert sessions(history) == 1


class SlowSqliteDb:
    """agno's SqliteDb, slow to construct: makes two threads' lazy creation overlap."""

    made: list[Any] = []
    real: Any = None

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)
        db = cls.real(*args, **kwargs)
        cls.made.append(db)
        return db


def test_a_build_during_warm_up_waits_for_it_and_shares_one_history_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import agno.db.sqlite

    SlowSqliteDb.real, SlowSqliteDb.made = agno.db.sqlite.SqliteDb, []
    monkeypatch.setattr(agno.db.sqlite, "SqliteDb", SlowSqliteDb)
    history = tmp_path / "history.sqlite"
    catalog = AgentCatalog({"demo": DEMO_SPEC}, "demo", str(history), entry_points=False)
    built: list[Any] = []
    warming = threading.Thread(target=catalog.warm_up)
    warming.start()
    time.sleep(0.05)  # the warm-up holds the first use now
    building = threading.Thread(target=lambda: built.append(catalog.build("demo")))
    building.start()
    warming.join(30)
    building.join(30)
    assert not warming.is_alive() and not building.is_alive()
    assert len(SlowSqliteDb.made) == 1
    assert built[0].db is catalog.history_db is SlowSqliteDb.made[0]
    assert {"agno_sessions", "agno_runs"} <= tables(history)
    assert sessions(history) == 0


def test_a_failed_warm_up_is_logged_and_leaves_the_catalog_usable(
    caplog: pytest.LogCaptureFixture,
) -> None:
    catalog = AgentCatalog(
        {"broken": "fixture_agents:broken_factory", "demo": DEMO_SPEC},
        "broken",
        entry_points=False,
    )
    log = logging.getLogger("test_warmup")
    with caplog.at_level(logging.INFO, logger="test_warmup"):
        warm_up(catalog, log)
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert "warm-up of agent 'broken' failed" in caplog.records[0].getMessage()
    assert catalog.build("demo").name == "demo"  # nothing left locked


def test_warm_up_without_a_history_db_builds_the_agent_only() -> None:
    catalog = AgentCatalog({"demo": DEMO_SPEC}, "demo", "", entry_points=False)  # persist off
    catalog.warm_up()
    assert catalog.history_db is None
    assert catalog.build("demo").db is None
