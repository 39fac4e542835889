"""Agents the server tests configure by name (imported by the server as 'fixture_agents:…')."""

from __future__ import annotations

from agno.agent import Agent


def broken_factory() -> Agent:
    raise RuntimeError("this factory is broken on purpose")
