"""AgentCatalog.describe: each agent is built once for its description, not per request."""

from __future__ import annotations

from typing import Any

from deltakit_nb.server.agents import AgentCatalog

BUILDS: list[str] = []


def plain_agent() -> Any:
    """An agent factory whose agent has no description."""
    from agno.agent import Agent

    from deltakit_nb.offline import OfflineModel

    BUILDS.append("plain")
    return Agent(name="plain", model=OfflineModel(), telemetry=False)


def test_an_agent_without_description_is_built_once_for_the_listing() -> None:
    BUILDS.clear()
    catalog = AgentCatalog({"plain": "test_catalog:plain_agent"}, "plain", entry_points=False)
    first = catalog.describe()
    second = catalog.describe()
    assert first == second == [{"name": "plain", "description": ""}]
    assert BUILDS == ["plain"]
    catalog.build("plain")  # a run still gets a fresh agent
    assert BUILDS == ["plain", "plain"]


def test_an_unavailable_agent_is_described_once_with_its_error() -> None:
    catalog = AgentCatalog(
        {"demo": "deltakit_nb.offline:demo_agent", "gone": "no_such_module_xyz:agent"},
        "demo",
        entry_points=False,
    )
    described = {a["name"]: a["description"] for a in catalog.describe()}
    assert described["gone"].startswith("(unavailable: ")
    assert "no_such_module_xyz" in described["gone"]
    assert described["demo"].startswith("Offline demo agent")
