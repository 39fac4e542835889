"""An offline agent that puts each XSS payload in every channel a model or tool controls.

The browser tests' server loads it as `xss_agents:xss_agent`. Message `xss K` makes the model
stream payload K as reasoning and as text, call a tool whose NAME is payload K with payload K as
its argument (the tool returns it: a tool output), call broken_tool with payload K as the reason
(an error output), and finally quote the tool's name and result in its answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agno.agent import Agent
from agno.models.message import Message
from agno.tools import tool
from xss_payloads import PAYLOADS  # the lab loads this module with tests/browser on its path

from deltakit_nb.offline import OfflineModel, _split, _tool_call, broken_tool


def _echo(text: str = "") -> str:
    """Return the text unchanged.

    Args:
        text: anything.
    """
    return text


class XssModel(OfflineModel):
    def plan(self, messages: list[Message]) -> tuple[list[dict[str, Any]], float]:
        last = messages[-1] if messages else None
        if last is not None and last.role == "tool":
            return self._after_tool(messages), 0.0
        users = [m.get_content_string() for m in messages if m.role == "user"]
        m = re.fullmatch(r"xss (\d+)", users[-1].strip() if users else "")
        if not m:
            return super().plan(messages)
        payload = PAYLOADS[int(m.group(1))]
        chunks: list[dict[str, Any]] = [
            {"reasoning": payload[i : i + 5]} for i in range(0, len(payload), 5)
        ]
        chunks += _split(payload + "\n\n")
        chunks.append(_tool_call(payload, json.dumps({"text": payload}), len(messages)))
        chunks.append(_tool_call("broken_tool", json.dumps({"reason": payload}), len(messages) + 1))
        return chunks, 0.0


def xss_agent() -> Agent:
    tools = [tool(name=p)(_echo) for p in PAYLOADS] + [broken_tool]
    return Agent(name="xss", model=XssModel(), tools=tools, telemetry=False)
