from __future__ import annotations

import os

import pytest

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
