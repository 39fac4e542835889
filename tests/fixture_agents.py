"""Agents the server tests configure by name (imported by the server as 'fixture_agents:…')."""

from __future__ import annotations

from agno.agent import Agent


def broken_factory() -> Agent:
    raise RuntimeError("this factory is broken on purpose")


def builtin_hitl_agent() -> Agent:
    """The offline model with agno's own user-control-flow and user-feedback toolkits."""
    from agno.tools.user_control_flow import UserControlFlowTools
    from agno.tools.user_feedback import UserFeedbackTools

    from deltakit_nb.offline import OfflineModel

    return Agent(
        name="builtins",
        model=OfflineModel(chunk_delay=0),
        tools=[UserControlFlowTools(), UserFeedbackTools()],
        telemetry=False,
    )
