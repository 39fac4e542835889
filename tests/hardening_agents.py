"""Faulty agents for the hardening tests (the server imports them as 'hardening_agents:…')."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from agno.agent import Agent
from agno.models.message import Message
from agno.models.response import ModelResponse

from deltakit_nb.offline import DEMO_TOOLS, OfflineModel


@dataclass
class MidStreamFailingModel(OfflineModel):
    """Streams the first three chunks of its answer, then raises."""

    async def ainvoke_stream(
        self, messages: list[Message], *args: Any, **kwargs: Any
    ) -> AsyncIterator[ModelResponse]:
        chunks, _ = self.plan(messages)
        for chunk in chunks[:3]:
            yield self._parse_provider_response_delta(chunk)
        raise ConnectionError("the model's connection dropped mid-stream")


def midstream_failing_agent() -> Agent:
    return Agent(name="midfail", model=MidStreamFailingModel(), telemetry=False)


async def async_sleep_tool(seconds: float = 1.0) -> str:
    """Sleep without blocking (an async tool), then say how long.

    Args:
        seconds: how long to sleep.
    """
    await asyncio.sleep(seconds)
    return f"slept {seconds} s (async)"


def async_tool_agent() -> Agent:
    tools = [*DEMO_TOOLS, async_sleep_tool]
    return Agent(name="asynctools", model=OfflineModel(), tools=tools, telemetry=False)


def wrong_type_factory() -> Any:
    return 42
