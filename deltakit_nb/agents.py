"""Where agents come from: names mapped to "module:callable" specs, loaded lazily.

A spec names either a callable that returns an agno Agent (called once per run, so runs never
share mutable agent state) or an Agent instance (shared by its runs).

Three sources, the first winning on a name clash: the configured specs; the `assistant` agent
when a model spec is configured (DELTAKIT_MODEL, see providers.py); and entry points in the
`deltakit_nb.agents` group, which lets another package ship agents:

    [project.entry-points."deltakit_nb.agents"]
    researcher = "my_package.agents:researcher"

Entry points are listed when the catalog is built; their targets are imported on first use.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .tooltimeout import apply_tool_timeout

if TYPE_CHECKING:
    from agno.agent import Agent

DEMO_SPEC = "deltakit_nb.offline:demo_agent"
ASSISTANT_SPEC = "deltakit_nb.providers:assistant_agent"
ENTRY_POINT_GROUP = "deltakit_nb.agents"


class AgentError(LookupError):
    """An agent that is not configured or cannot be built; the message says which and why."""


def telemetry_opted_in() -> bool:
    return os.environ.get("AGNO_TELEMETRY", "false").strip().lower() in ("1", "true", "yes")


def disable_telemetry_by_default() -> None:
    """agno posts telemetry to the internet after every run unless told not to."""
    os.environ.setdefault("AGNO_TELEMETRY", "false")


def load_object(spec: str) -> Any:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise AgentError(f"agent spec {spec!r} is not of the form 'module:callable'")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except Exception as exc:
        raise AgentError(f"cannot import agent {spec!r}: {type(exc).__name__}: {exc}") from exc
    return obj


@dataclass
class AgentEntry:
    name: str
    spec: str
    description: str = ""
    source: str = "config"  # "config", "model <spec>" or "entry point <distribution>"
    # Returns the target (an Agent or a factory) instead of load_object(spec) when set.
    loader: Callable[[], Any] | None = field(default=None, repr=False)
    described: bool = field(default=False, repr=False)  # built once for its description

    def load(self) -> Any:
        if self.loader is None:
            return load_object(self.spec)
        try:
            return self.loader()
        except AgentError:
            raise
        except Exception as exc:
            raise AgentError(
                f"cannot load agent {self.name!r} ({self.source}: {self.spec!r}): "
                f"{type(exc).__name__}: {exc}"
            ) from exc


def entry_point_agents() -> list[AgentEntry]:
    """Agents that installed packages register in the `deltakit_nb.agents` group (not imported
    here). The first of two with one name wins."""
    found: dict[str, AgentEntry] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in found:
            continue
        dist = getattr(ep.dist, "name", None) or "?"
        found[ep.name] = AgentEntry(ep.name, ep.value, source=f"entry point {dist}", loader=ep.load)
    return list(found.values())


class AgentCatalog:
    """The configured agents. With `history_db_path`, every agent that brings no db of its own
    gets an agno SqliteDb there, and each thread is an agno session (session_id = thread id)
    whose history goes into the agent's context."""

    def __init__(
        self,
        specs: Mapping[str, str],
        default: str,
        history_db_path: str = "",
        tool_timeout: float = 0.0,
        *,
        model: str = "",
        model_base_url: str | None = None,
        entry_points: bool = True,
    ):
        # Lowest precedence first, so configured specs overwrite the others.
        self.entries: dict[str, AgentEntry] = {}
        if entry_points:
            self.entries.update((e.name, e) for e in entry_point_agents())
        if model:
            self.entries["assistant"] = assistant_entry(model, model_base_url)
        self.entries.update((name, AgentEntry(name, spec)) for name, spec in specs.items())
        if default not in self.entries:
            raise AgentError(f"default agent {default!r} is not among {sorted(self.entries)}")
        self.default = default
        self.history_db_path = history_db_path
        self._history_db: Any = None
        self._loaded: dict[str, Any] = {}
        self.tool_timeout = tool_timeout  # seconds per tool call; 0: no limit

    @property
    def history_db(self) -> Any:
        if self._history_db is None and self.history_db_path:
            from .history import open_history_db

            self._history_db = open_history_db(self.history_db_path)
        return self._history_db

    def delete_history(self, thread_id: str) -> None:
        if self.history_db is not None:
            self.history_db.delete_session(thread_id)

    def resolve_name(self, name: str | None) -> str:
        name = name or self.default
        if name not in self.entries:
            known = ", ".join(sorted(self.entries))
            raise AgentError(f"unknown agent {name!r}; configured agents: {known}")
        return name

    def build(self, name: str) -> Agent:
        """A ready agent for one run (telemetry off unless the user opted in)."""
        from agno.agent import Agent

        entry = self.entries[self.resolve_name(name)]
        target = self._loaded.get(entry.name)
        if target is None:
            target = self._loaded[entry.name] = entry.load()
        if isinstance(target, Agent):
            agent = target
        elif callable(target):
            try:
                agent = target()
            except Exception as exc:
                raise AgentError(f"agent {entry.name!r} failed to build: {exc}") from exc
        else:
            raise AgentError(f"agent spec {entry.spec!r} is neither an Agent nor a callable")
        if not isinstance(agent, Agent):
            raise AgentError(f"agent {entry.name!r} factory returned {type(agent).__name__}")
        if not telemetry_opted_in():
            agent.telemetry = False
        apply_tool_timeout(agent, self.tool_timeout)
        if agent.db is None and self.history_db is not None:
            agent.db = self.history_db
            agent.add_history_to_context = True
        if not entry.described:
            entry.description = entry.description or agent.description or ""
            entry.described = True
        return agent

    def describe(self) -> list[dict[str, str]]:
        for entry in self.entries.values():
            if not entry.described:  # build each agent once, for its description
                try:
                    self.build(entry.name)
                except AgentError as exc:
                    entry.description = f"(unavailable: {exc})"
                    entry.described = True
        return [{"name": e.name, "description": e.description} for e in self.entries.values()]


def assistant_entry(model: str, base_url: str | None = None) -> AgentEntry:
    """The `assistant` agent on the model spec `model` (see providers.py)."""

    def loader() -> Callable[[], Agent]:
        from .providers import assistant_agent

        return functools.partial(assistant_agent, model, base_url=base_url)

    return AgentEntry("assistant", ASSISTANT_SPEC, source=f"model {model}", loader=loader)
