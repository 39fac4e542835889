"""Agents shipped by another package through the `deltakit_nb.agents` entry-point group.

The "package" is a real distribution on sys.path: a `*.dist-info` folder with METADATA and
entry_points.txt, found by importlib.metadata like any installed one; nothing is mocked.
"""

from __future__ import annotations

import json
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import TEST_AGENTS
from wsclient import recv, recv_until_terminal, send, text

from deltakit_nb.server.agents import DEMO_SPEC, AgentCatalog, AgentError, entry_point_agents

MODULE = "dk_ep_sample_pkg"

AGENTS_PY = """
from agno.agent import Agent

from deltakit_nb.offline import DEMO_TOOLS, OfflineModel

IMPORTED = True


def researcher() -> Agent:
    return Agent(
        name="researcher", model=OfflineModel(), tools=DEMO_TOOLS, description="From a plugin."
    )


shared = Agent(name="shared", model=OfflineModel(), description="A shared instance.")


def demo() -> Agent:
    raise AssertionError("the configured demo agent must win over this one")


class Namespace:
    @staticmethod
    def nested() -> Agent:
        return Agent(name="nested", model=OfflineModel())


not_an_agent = 42
"""

ENTRY_POINTS = f"""
[deltakit_nb.agents]
researcher = {MODULE}.agents:researcher
shared = {MODULE}.agents:shared
demo = {MODULE}.agents:demo
nested = {MODULE}.agents:Namespace.nested
gone = {MODULE}.agents:no_such_attribute
missing_module = {MODULE}.no_such_module:agent
not_an_agent = {MODULE}.agents:not_an_agent

[some.other.group]
ignored = {MODULE}.agents:researcher
"""


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Install the sample distribution by putting it on sys.path."""
    package = tmp_path / MODULE
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "agents.py").write_text(textwrap.dedent(AGENTS_PY))
    info = tmp_path / "dk_ep_sample-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: dk-ep-sample\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(ENTRY_POINTS)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m == MODULE or m.startswith(MODULE + ".")]:
        del sys.modules[name]


def test_entry_points_are_listed_without_importing_them(plugin: Path) -> None:
    found = {e.name: e for e in entry_point_agents()}
    assert {"researcher", "shared", "demo", "nested", "gone"} <= set(found)
    assert "ignored" not in found
    assert found["researcher"].spec == f"{MODULE}.agents:researcher"
    assert found["researcher"].source == "entry point dk-ep-sample"
    catalog = AgentCatalog({"demo": DEMO_SPEC}, "demo")
    assert "researcher" in catalog.entries
    assert f"{MODULE}.agents" not in sys.modules  # listed, not imported


def test_an_entry_point_agent_builds_and_runs(plugin: Path) -> None:
    catalog = AgentCatalog({"demo": DEMO_SPEC}, "demo")
    agent = catalog.build("researcher")
    assert agent.name == "researcher" and agent.telemetry is False
    assert sys.modules[f"{MODULE}.agents"].IMPORTED is True
    assert catalog.build("researcher") is not agent  # a factory: one agent per run
    shared = catalog.build("shared")
    assert catalog.build("shared") is shared  # an instance: shared by its runs
    assert catalog.build("nested").name == "nested"
    output = agent.run("what is 3 * 5?")
    assert "15" in str(output.content)


def test_configured_agents_win_over_entry_points(plugin: Path) -> None:
    catalog = AgentCatalog({"demo": DEMO_SPEC}, "demo")
    assert catalog.entries["demo"].spec == DEMO_SPEC and catalog.entries["demo"].source == "config"
    assert catalog.build("demo").name == "demo"


def test_broken_entry_points_are_clear_agent_errors(plugin: Path) -> None:
    catalog = AgentCatalog({"demo": DEMO_SPEC}, "demo")
    with pytest.raises(AgentError, match="cannot load agent 'gone'") as err:
        catalog.build("gone")
    assert "entry point dk-ep-sample" in str(err.value) and "no_such_attribute" in str(err.value)
    with pytest.raises(AgentError, match="ModuleNotFoundError"):
        catalog.build("missing_module")
    with pytest.raises(AgentError, match="neither an Agent nor a callable"):
        catalog.build("not_an_agent")
    assert catalog.build("researcher").name == "researcher"  # the others still work


def test_entry_points_can_be_turned_off(plugin: Path) -> None:
    catalog = AgentCatalog({"demo": DEMO_SPEC}, "demo", entry_points=False)
    assert list(catalog.entries) == ["demo"]


def test_describe_lists_entry_point_agents(plugin: Path) -> None:
    catalog = AgentCatalog({"demo": DEMO_SPEC}, "demo")
    described = {a["name"]: a["description"] for a in catalog.describe()}
    assert described["researcher"] == "From a plugin."
    assert described["gone"].startswith("(unavailable: cannot load agent 'gone'")


@pytest.fixture
def jp_server_config(plugin: Path) -> dict[str, object]:
    # Depends on `plugin`, so the distribution is on sys.path before the server starts.
    return {
        "ServerApp": {"jpserver_extensions": {"deltakit_nb": True}},
        "DeltakitApp": {"agents": TEST_AGENTS},
    }


async def test_server_offers_and_runs_an_entry_point_agent(jp_ws_fetch: Any, jp_fetch: Any) -> None:
    listing = json.loads((await jp_fetch("deltakit", "agents")).body)
    assert listing["default"] == "demo"
    assert "researcher" in [a["name"] for a in listing["agents"]]

    ws = await jp_ws_fetch("deltakit", "ws")
    await send(ws, {"message": "what is 12 * (3 + 4)?", "agent": "researcher"})
    events = await recv(ws)
    assert events[0]["type"] == "run_started" and events[0]["agent"] == "researcher"
    events += await recv_until_terminal(ws)
    assert events[-1]["type"] == "done" and events[-1]["status"] == "completed"
    assert "84" in text(events)
    assert any(e["type"] == "tool_call" and e["tool_name"] == "calculator" for e in events)
    ws.close()
