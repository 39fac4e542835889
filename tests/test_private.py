"""The data dir and the SQLite files are private to the server's user (0700 / 0600), on real
servers after real runs: on a fresh data dir, on one an older release left 0755 / 0644, and
for store files configured outside the data dir."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyterproc import TOKEN, JupyterProcess
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect
from wsclient import recv_until_terminal, send


@pytest.fixture(autouse=True)
def usual_umask() -> Iterator[None]:
    """The servers inherit the umask most systems have, under which files are made 0644."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(folder: Path) -> dict[str, int]:
    return {p.name: mode(p) for p in sorted(folder.iterdir())}


async def run_to_end(server: JupyterProcess, message: str, thread: str) -> list[dict[str, Any]]:
    req = HTTPRequest(server.ws_url, headers={"Authorization": f"token {TOKEN}"})
    ws = await websocket_connect(req)
    try:
        await send(ws, {"message": message, "threadId": thread})
        return await asyncio.wait_for(recv_until_terminal(ws), 30)
    finally:
        ws.close()


async def wait_for_file(path: Path, timeout: float = 10.0) -> None:
    """The store's writer thread commits within a batch interval; its -wal appears then."""
    for _ in range(int(timeout / 0.05)):
        if await asyncio.to_thread(path.exists):
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{path} was not created")


def assert_private(folder: Path) -> None:
    assert mode(folder) == 0o700, oct(mode(folder))
    assert modes(folder) and all(m == 0o600 for m in modes(folder).values()), {
        k: oct(v) for k, v in modes(folder).items()
    }


async def test_a_fresh_data_dir_is_private_after_a_run(tmp_path: Path) -> None:
    data = tmp_path / "deltakit"
    with JupyterProcess(tmp_path) as server:
        events = await run_to_end(server, "what is 6 * 7?", "t-private")
        assert events[-1]["status"] == "completed"
        await wait_for_file(data / "runs.sqlite-wal")
        names = set(modes(data))
        assert {"runs.sqlite", "runs.sqlite-wal", "runs.sqlite-shm", "history.sqlite"} <= names
        assert (data / "history.sqlite").stat().st_size > 0  # agno wrote the thread's session
        assert_private(data)
    assert_private(data)


async def test_an_open_data_dir_is_tightened_when_the_server_opens_it(tmp_path: Path) -> None:
    data = tmp_path / "deltakit"
    with JupyterProcess(tmp_path) as server:
        await run_to_end(server, "what is 6 * 7?", "t-old")
    # As an older release left them (and SQLite's side files with the db's mode).
    data.chmod(0o755)
    for name in ("runs.sqlite", "history.sqlite", "runs.sqlite-wal", "runs.sqlite-shm"):
        path = data / name
        path.touch()
        path.chmod(0o644)
    with JupyterProcess(tmp_path) as server:
        assert_private(data)  # at start, before any run
        events = await run_to_end(server, "what is 2 + 3?", "t-old")
        assert events[-1]["status"] == "completed"
        await wait_for_file(data / "runs.sqlite-wal")
        assert_private(data)
        # The earlier run is still there: tightening kept the data.
        assert len(server.get("/deltakit/threads/t-old")["runs"]) == 2


async def test_store_files_outside_the_data_dir(tmp_path: Path) -> None:
    """A folder the user already has keeps its mode (it may be shared on purpose); the file in
    it is 0600. A folder made for a store file is 0700."""
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    store = shared / "runs.sqlite"
    history = tmp_path / "made" / "for" / "history.sqlite"
    server = JupyterProcess(
        tmp_path,
        f"--DeltakitApp.store_path={store}",
        f"--DeltakitApp.history_db_path={history}",
    )
    with server:
        events = await run_to_end(server, "what is 6 * 7?", "t-outside")
        assert events[-1]["status"] == "completed"
        await wait_for_file(shared / "runs.sqlite-wal")
        assert mode(shared) == 0o755
        assert {k: oct(v) for k, v in modes(shared).items()} == {
            "runs.sqlite": "0o600",
            "runs.sqlite-shm": "0o600",
            "runs.sqlite-wal": "0o600",
        }
        assert mode(history.parent) == 0o700 and mode(history) == 0o600
        assert history.stat().st_size > 0
    assert not (tmp_path / "deltakit").exists()  # nothing lives in the unused data dir
