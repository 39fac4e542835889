"""An offline agno model and the `demo` agent built on it: no key, no network, deterministic.

The model runs inside agno's real agent loop (tools included). The last user message picks
what it does:

  bench N [size S] [delay D]   N chunks of "tok " (or of S characters), as fast as agno
                          allows (or D seconds apart)
  count N [delay S]       "1 2 … N", one number a chunk, S seconds between chunks
  echo TEXT               TEXT back verbatim, in 6-character chunks
  tool NAME {json}        call tool NAME with those arguments, then report its result
                          (tool plot {"kind": "line", "n": 50} draws a matplotlib figure)
  tool A {…} then tool B {…}   call A, then B, then report
                          (confirm_action, collect_input and run_elsewhere pause the run
                          for the user's approval, answer or result)
  fail                    the model raises (the run fails)
  recall                  list the earlier user messages of this thread (history check)
  … a + b … / … time …    call the calculator / current_time tool, then answer
  anything else           a short markdown answer, with reasoning first
"""

from __future__ import annotations

import ast
import asyncio
import json
import operator
import os
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from agno.agent import Agent
from agno.media import Image
from agno.metrics import MessageMetrics
from agno.models.base import Model
from agno.models.message import Message
from agno.models.response import ModelResponse
from agno.tools import tool
from agno.tools.function import ToolResult

Chunk = dict[str, Any]

_ARITHMETIC = re.compile(r"[-+(\d][\d\s.+\-*/^%()]*[\d)]")
_BINARY_OP = re.compile(r"[\d)]\s*(?:\*\*|[-+*/^%])\s*[-+(\d]")


def find_expression(text: str) -> str | None:
    """The longest arithmetic expression in `text` with an operator in it, e.g. "2 ** 10 - 24"
    or "(1+2)*3" (parentheses balanced), or None."""
    best: str | None = None
    for m in _ARITHMETIC.finditer(text):
        candidate = m.group(0).strip()
        while candidate.count("(") > candidate.count(")") and candidate.startswith("("):
            candidate = candidate[1:].strip()  # "(see 2+2" → "2+2"
        while candidate.count(")") > candidate.count("(") and candidate.endswith(")"):
            candidate = candidate[:-1].strip()  # "2+2)" → "2+2"
        if not _BINARY_OP.search(candidate):
            continue
        try:
            ast.parse(candidate.replace("^", "**"), mode="eval")
        except SyntaxError:
            continue
        if best is None or len(candidate) > len(best):
            best = candidate
    return best


_OPS: dict[type, Any] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.USub: operator.neg,
    ast.UAdd: operator.pos,
}


def calculator(expression: str) -> str:
    """Evaluate an arithmetic expression (+, -, *, /, %, ** and parentheses).

    Args:
        expression: the expression, for example "12 * (3 + 4)".
    """

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            if isinstance(node.op, ast.Pow) and abs(ev(node.right)) > 100:
                raise ValueError("exponent too large")
            return _OPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.operand))
        raise ValueError(f"not an arithmetic expression: {expression!r}")

    value = ev(ast.parse(expression.replace("^", "**"), mode="eval").body)
    return str(int(value)) if float(value).is_integer() else repr(value)


def current_time(timezone_name: str = "UTC") -> str:
    """Return the current date and time (ISO 8601) in UTC or the server's local zone.

    Args:
        timezone_name: "UTC" or "local".
    """
    now = datetime.now(timezone.utc)
    if timezone_name.lower() == "local":
        now = now.astimezone()
    return now.isoformat(timespec="seconds")


def broken_tool(reason: str = "it always fails") -> str:
    """A tool that raises, to show how a failing tool looks.

    Args:
        reason: the error message.
    """
    raise RuntimeError(reason)


def sleep_tool(seconds: float = 1.0) -> str:
    """Sleep, then say how long it slept (shows a long-running tool).

    Args:
        seconds: how long to sleep.
    """
    time.sleep(min(seconds, 600.0))
    return f"slept {seconds} s"


PLOT_KINDS = ("line", "bar", "scatter")
MAX_PLOT_POINTS = 1000


def plot(kind: str = "line", n: int = 50) -> ToolResult:
    """Draw a demo plot with matplotlib and return it as a PNG image.

    Args:
        kind: "line", "bar" or "scatter".
        n: how many points, 1 to 1000.
    """
    if kind not in PLOT_KINDS:
        raise ValueError(f"kind must be one of {', '.join(PLOT_KINDS)}, not {kind!r}")
    if not 1 <= n <= MAX_PLOT_POINTS:
        raise ValueError(f"n must be between 1 and {MAX_PLOT_POINTS}, not {n}")
    try:
        # Figure + Agg, not pyplot: no global state, safe in agno's tool thread.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise RuntimeError(
            "the plot tool needs matplotlib: pip install 'deltakit_nb[lab]' "
            "(or pip install matplotlib) where the Jupyter server runs, then restart it"
        ) from None
    import io
    import math

    xs = list(range(n))
    # Deterministic data: the same picture every time.
    ys = [math.sin(x / 6) + 0.3 * math.sin(x / 1.7) for x in xs]
    fig = Figure(figsize=(6.4, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if kind == "line":
        ax.plot(xs, ys)
    elif kind == "bar":
        ax.bar(xs, ys)
    else:
        ax.scatter(xs, ys, s=12)
    ax.set_title(f"{kind} plot of {n} points")
    ax.grid(alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    data = buffer.getvalue()
    return ToolResult(
        content=f"a {kind} plot of {n} points ({len(data)} bytes of PNG)",
        images=[Image(content=data, mime_type="image/png")],
    )


# Human in the loop: each of these pauses the run until the user decides. (Never name one
# ask_user or get_user_input: agno 3.1.10 treats tools of those names as its own built-ins.)


@tool(requires_confirmation=True)
def confirm_action(action: str) -> str:
    """Carry out an action once the user has approved it.

    Args:
        action: what to do, in a few words.
    """
    return f"done: {action}"


@tool(requires_user_input=True, user_input_fields=["answer"])
def collect_input(question: str, answer: str) -> str:
    """Ask the user a question; the user fills in the answer.

    Args:
        question: the question to ask.
        answer: the user's answer (the user provides it).
    """
    return answer


@tool(external_execution=True)
def run_elsewhere(task: str) -> str:
    """A task the user carries out outside the agent and reports the result of.

    Args:
        task: what to do.
    """
    raise RuntimeError("run_elsewhere is executed by the user, not by the agent")


DEMO_TOOLS: list[Any] = [
    calculator,
    current_time,
    broken_tool,
    sleep_tool,
    plot,
    confirm_action,
    collect_input,
    run_elsewhere,
]


def _split(text: str, size: int = 6) -> list[Chunk]:
    return [{"text": text[i : i + size]} for i in range(0, len(text), size)]


def _markdown_sections(n: int) -> str:
    """A long markdown answer (n sections of headings, paragraphs, lists and code) for
    streaming benchmarks."""
    return "\n".join(
        f"## Section {i}\n\nSome *text* with **bold**, `code` and a "
        f"[link](https://example.org/{i}).\n\n- item a{i}\n- item b{i}\n\n"
        f"```python\nx = {i}\n```\n"
        for i in range(1, n + 1)
    )


_TOOL = re.compile(r"tool (\w+) (\{.*\})", re.S)


def _tool_calls(text: str) -> list[tuple[str, str]]:
    """The (name, JSON arguments) of "tool NAME {json}", or of each part of "tool A {…} then
    tool B {…}" (a chain of calls, one after the other's result); [] for other text."""
    parts = [_TOOL.fullmatch(part) for part in text.split(" then ")]
    if len(parts) > 1 and all(parts):
        return [(m.group(1), m.group(2)) for m in parts if m is not None]
    whole = _TOOL.fullmatch(text)
    return [(whole.group(1), whole.group(2))] if whole else []


def _tool_call(name: str, arguments: str, n: int) -> Chunk:
    call = {"id": f"call_{n}_{name}", "type": "function"}
    call["function"] = {"name": name, "arguments": arguments}  # type: ignore[assignment]
    return {"tool_call": call}


@dataclass
class OfflineModel(Model):
    """A deterministic agno model that needs no network; see the module docstring."""

    id: str = "offline"
    name: str = "OfflineModel"
    provider: str = "deltakit_nb"
    chunk_delay: float = 0.0

    def plan(self, messages: list[Message]) -> tuple[list[Chunk], float]:
        """The chunks to stream for this conversation, and the delay between them."""
        # agno hands a tool's images to the model in a user message right after the tool's
        # result: not something the user said.
        messages = [
            m
            for i, m in enumerate(messages)
            if not (m.role == "user" and i > 0 and messages[i - 1].role == "tool")
        ]
        users = [m.get_content_string() for m in messages if m.role == "user"]
        text = users[-1].strip() if users else ""
        last = messages[-1] if messages else None
        calls = _tool_calls(text)
        if last is not None and last.role == "tool":
            asked = max(i for i, m in enumerate(messages) if m.role == "user")
            done = sum(m.role == "assistant" and bool(m.tool_calls) for m in messages[asked:])
            if done < len(calls):  # "tool A {…} then tool B {…}": B's turn
                name, arguments = calls[done]
                return [_tool_call(name, arguments, len(messages))], self.chunk_delay
            return self._after_tool(messages), self.chunk_delay
        if m := re.fullmatch(r"bench (\d+)(?: size (\d+))?(?: delay (\d+(?:\.\d+)?))?", text):
            size, delay = int(m.group(2) or 4), m.group(3)
            chunk = ("tok " * (size // 4 + 1))[:size]
            chunks = [{"text": chunk} for _ in range(int(m.group(1)))]
            return chunks, float(delay) if delay else self.chunk_delay
        if m := re.fullmatch(r"markdown (\d+)", text):
            return _split(_markdown_sections(int(m.group(1))), 4), self.chunk_delay
        if m := re.fullmatch(r"count (\d+)(?: delay (\d+(?:\.\d+)?))?", text):
            n, delay = int(m.group(1)), m.group(2)
            chunks = [{"text": f"{i} "} for i in range(1, n + 1)]
            return chunks, float(delay) if delay else self.chunk_delay
        if m := re.fullmatch(r"echo (.*)", text, re.S):
            return _split(m.group(1)), self.chunk_delay
        if calls:
            return [_tool_call(*calls[0], len(messages))], self.chunk_delay
        if text == "fail":
            raise RuntimeError("the offline model failed on purpose")
        if text == "recall":
            earlier = users[:-1]
            said = "\n".join(f"- {u}" for u in earlier) if earlier else "- (nothing yet)"
            return _split(f"Earlier in this thread you said:\n\n{said}\n"), self.chunk_delay
        if "time" in text.lower().split() or "time?" in text.lower():
            return [_tool_call("current_time", "{}", len(messages))], self.chunk_delay
        if expression := find_expression(text):
            args = json.dumps({"expression": expression})
            return [_tool_call("calculator", args, len(messages))], self.chunk_delay
        return self._answer(text), self.chunk_delay

    def _after_tool(self, messages: list[Message]) -> list[Chunk]:
        results: list[str] = []
        for m in reversed(messages):
            if m.role != "tool":
                break
            name = m.tool_name or "tool"
            results.append(f"`{name}` returned **{m.get_content_string()}**")
        return _split("The " + " and ".join(reversed(results)) + ".")

    def _answer(self, text: str) -> list[Chunk]:
        thinking = f"The user wrote {len(text)} characters. I will answer in markdown."
        reasoning = [{"reasoning": thinking[i : i + 12]} for i in range(0, len(thinking), 12)]
        quoted = text.replace("`", "'")
        answer = (
            "## Offline demo\n\n"
            f"You said: *{quoted}*\n\n"
            "I am the **offline demo model** — no key and no network. Try:\n\n"
            "- `what is 12 * (3 + 4)?` — a calculator tool call\n"
            "- `what time is it?` — the clock tool\n"
            "- `count 50 delay 0.2` — a slow stream you can stop or reload\n\n"
            "```python\nfrom deltakit_nb import ChatWidget\nChatWidget()\n```\n"
        )
        return reasoning + _split(answer, 8)

    # agno's Model interface ------------------------------------------------------------

    def _parse_provider_response_delta(self, response: Any) -> ModelResponse:
        delta = ModelResponse(role="assistant")
        if "text" in response:
            delta.content = response["text"]
        if "reasoning" in response:
            delta.reasoning_content = response["reasoning"]
        if "tool_call" in response:
            delta.tool_calls = [response["tool_call"]]
        return delta

    def _parse_provider_response(self, response: Any, **kwargs: Any) -> ModelResponse:
        full = ModelResponse(role="assistant")
        for chunk in response:
            delta = self._parse_provider_response_delta(chunk)
            if delta.content:
                full.content = (full.content or "") + delta.content
            if delta.reasoning_content:
                full.reasoning_content = (full.reasoning_content or "") + delta.reasoning_content
            full.tool_calls.extend(delta.tool_calls)
        return full

    @staticmethod
    def usage(messages: list[Message], chunks: list[Chunk]) -> ModelResponse:
        """Token counts, deterministic for the demo's run footer: a word of the prompt is an
        input token, a chunk streamed is an output token."""
        words = sum(len(m.get_content_string().split()) for m in messages)
        return ModelResponse(
            role="assistant",
            response_usage=MessageMetrics(
                input_tokens=words, output_tokens=len(chunks), total_tokens=words + len(chunks)
            ),
        )

    def invoke(self, messages: list[Message], *args: Any, **kwargs: Any) -> ModelResponse:
        chunks, _ = self.plan(messages)
        full = self._parse_provider_response(chunks)
        full.response_usage = self.usage(messages, chunks).response_usage
        return full

    async def ainvoke(self, messages: list[Message], *args: Any, **kwargs: Any) -> ModelResponse:
        return self.invoke(messages)

    def invoke_stream(
        self, messages: list[Message], *args: Any, **kwargs: Any
    ) -> Iterator[ModelResponse]:
        chunks, delay = self.plan(messages)
        for chunk in chunks:
            if delay:
                time.sleep(delay)
            yield self._parse_provider_response_delta(chunk)
        yield self.usage(messages, chunks)

    async def ainvoke_stream(
        self, messages: list[Message], *args: Any, **kwargs: Any
    ) -> AsyncIterator[ModelResponse]:
        chunks, delay = self.plan(messages)
        for chunk in chunks:
            if delay:
                await asyncio.sleep(delay)
            yield self._parse_provider_response_delta(chunk)
        yield self.usage(messages, chunks)


def demo_agent(chunk_delay: float | None = None, **agent_kwargs: Any) -> Agent:
    """The offline `demo` agent. Chunk delay: argument, else $DELTAKIT_DEMO_DELAY, else 0.02 s."""
    if chunk_delay is None:
        chunk_delay = float(os.environ.get("DELTAKIT_DEMO_DELAY", "0.02"))
    agent_kwargs.setdefault("telemetry", False)
    return Agent(
        name="demo",
        description="Offline demo agent: markdown answers, reasoning, a calculator and a clock.",
        model=OfflineModel(chunk_delay=chunk_delay),
        tools=list(DEMO_TOOLS),
        **agent_kwargs,
    )


# Teams and workflows -----------------------------------------------------------------------

_DELEGATE = re.compile(r"delegate (\w+) (.+)", re.S)


@dataclass
class OfflineLeader(OfflineModel):
    """The `team` demo's leader: "delegate MEMBER TASK" calls delegate_task_to_member,
    "delegate all TASK" delegate_task_to_members; it then answers with what they returned.
    Any other message is the offline model's."""

    name: str = "OfflineLeader"
    members: tuple[str, ...] = ("researcher", "writer")

    def plan(self, messages: list[Message]) -> tuple[list[Chunk], float]:
        last = messages[-1] if messages else None
        users = [m.get_content_string() for m in messages if m.role == "user"]
        m = _DELEGATE.fullmatch(users[-1].strip()) if users else None
        if m is None:
            return super().plan(messages)
        if last is not None and last.role == "tool":
            results: list[str] = []
            for t in reversed(messages):  # every member's result of the last delegation
                if t.role != "tool":
                    break
                results.insert(0, t.get_content_string())
            said = "\n\n".join(results)
            if len(said) > 400:  # a summary, not a copy of a long member answer
                said = said[:400] + " …"
            return _split(f"The team's answer:\n\n{said}\n", 8), self.chunk_delay
        member, task = m.group(1), m.group(2).strip()
        # "all": one call per member in the same response; agno's arun runs them at once.
        members = list(self.members) if member == "all" else [member]
        calls = [
            _tool_call(
                "delegate_task_to_member",
                json.dumps({"member_id": name, "task": task}),
                len(messages) * 10 + i,
            )
            for i, name in enumerate(members)
        ]
        return calls, self.chunk_delay


@dataclass
class OfflineWriter(OfflineModel):
    """The writer member: a one-line draft of whatever it is given (other prompts as the
    offline model's)."""

    name: str = "OfflineWriter"

    def _answer(self, text: str) -> list[Chunk]:
        quoted = text.replace("`", "'")
        return _split(f"Draft: {quoted}")


def _delay(chunk_delay: float | None) -> float:
    if chunk_delay is None:
        return float(os.environ.get("DELTAKIT_DEMO_DELAY", "0.02"))
    return chunk_delay


def demo_members(chunk_delay: float | None = None) -> list[Agent]:
    """The team demo's members: `researcher` (the calculator) and `writer`."""
    delay = _delay(chunk_delay)
    return [
        Agent(
            name="researcher",
            id="researcher",
            role="Looks things up and does arithmetic with the calculator.",
            model=OfflineModel(chunk_delay=delay),
            # confirm_action: a member's call that waits for the user's approval
            tools=[calculator, confirm_action],
            telemetry=False,
        ),
        Agent(
            name="writer",
            id="writer",
            role="Writes a short draft of what it is given.",
            model=OfflineWriter(chunk_delay=delay),
            telemetry=False,
        ),
    ]


def demo_team(chunk_delay: float | None = None, **team_kwargs: Any) -> Any:
    """The offline `team` agent: a leader that delegates to `researcher` and `writer`.
    Prompts: "delegate researcher what is 6 * 7?", "delegate researcher count 300 delay
    0.05", "delegate all summarise X"."""
    from agno.team import Team

    team_kwargs.setdefault("telemetry", False)
    return Team(
        name="team",
        id="team",
        description="Offline demo team: a leader delegating to a researcher and a writer.",
        model=OfflineLeader(chunk_delay=_delay(chunk_delay)),
        members=list(demo_members(chunk_delay)),
        **team_kwargs,
    )


def demo_workflow(chunk_delay: float | None = None, **workflow_kwargs: Any) -> Any:
    """The offline `workflow` agent: step `research` (the researcher on the message), then
    step `write` (the writer on the research)."""
    from agno.workflow import Step, Workflow

    researcher, writer = demo_members(chunk_delay)
    workflow_kwargs.setdefault("telemetry", False)
    return Workflow(
        name="workflow",
        id="workflow",
        description="Offline demo workflow: a research step, then a writing step.",
        steps=[Step(name="research", agent=researcher), Step(name="write", agent=writer)],
        **workflow_kwargs,
    )
