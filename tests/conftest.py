from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pgserver import PostgresServer

os.environ["AGNO_TELEMETRY"] = "false"
os.environ.setdefault("DELTAKIT_DEMO_DELAY", "0")

pytest_plugins = ["pytest_jupyter.jupyter_server"]

TEST_AGENTS = {
    "demo": "deltakit_nb.offline:demo_agent",
    "broken": "fixture_agents:broken_factory",
    "missing": "no_such_module_xyz:agent",
}


@pytest.fixture
def jp_server_config() -> dict[str, object]:
    return {
        "ServerApp": {"jpserver_extensions": {"deltakit_nb": True}},
        "DeltakitApp": {
            "agents": TEST_AGENTS,
            "max_message_chars": 2000,
            "max_frame_bytes": 8000,
            "model": "",  # a DELTAKIT_MODEL in the environment must not change the default agent
        },
    }


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session (started on first use; see pgserver.py)."""
    from pgserver import PostgresServer

    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database of the session's server, dropped after the test."""
    if not pg_server.running:  # a fault test that failed while it was stopped
        pg_server.start()
    url = pg_server.create_database()
    try:
        yield url
    finally:
        if not pg_server.running:
            pg_server.start()
        pg_server.drop_database(url.rsplit("/", 1)[1])
