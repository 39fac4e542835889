"""Where agents come from: names mapped to "module:callable" specs, loaded lazily.

A spec names either a callable that returns an agno Agent, Team or Workflow (called once per
run, so runs never share mutable agent state) or such an instance (shared by its runs).

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
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .tooltimeout import apply_tool_timeout

if TYPE_CHECKING:
    from agno.agent import Agent
    from agno.team import Team
    from agno.workflow import Workflow

    Runnable = Agent | Team | Workflow

DEMO_SPEC = "deltakit_nb.offline:demo_agent"
TEAM_SPEC = "deltakit_nb.offline:demo_team"
WORKFLOW_SPEC = "deltakit_nb.offline:demo_workflow"
# The agents of a server with no `agents` configured: the offline demos.
DEFAULT_AGENTS = {"demo": DEMO_SPEC, "team": TEAM_SPEC, "workflow": WORKFLOW_SPEC}
ASSISTANT_SPEC = "deltakit_nb.server.providers:assistant_agent"
ENTRY_POINT_GROUP = "deltakit_nb.agents"
# What agno 3.x imports lazily during an agent's first run (agno.team alone is ~0.1 s). A name a
# later agno drops is skipped: importing these only saves time, nothing depends on it.
AGNO_FIRST_RUN_MODULES = (
    "agno.agent",
    "agno.run.agent",
    "agno.team",
    "agno.agent._hooks",
    "agno.agent._response",
    "agno.agent._telemetry",
    "agno.utils.reasoning",
    "agno.utils.json_schema",
)
# The history db's tables a run writes: created by warm_up() rather than at the first run's end,
# where agno does it on the event loop's thread.
HISTORY_TABLES = ("sessions", "runs")
WARM_UP_SESSION = "deltakit-warm-up"  # read (never written) to warm the db's first query


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
    """The configured agents. With `history_db_path` (a SQLite file, or a PostgreSQL URL), every
    agent that brings no db of its own gets an agno SqliteDb (PostgresDb) there, and each
    thread is an agno session (session_id = thread id) whose history goes into the agent's
    context."""

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
        self.default = default or self._fallback_default(specs, model)
        self.default_chosen = not default  # picked by the rule below, not configured
        if self.default not in self.entries:
            known = ", ".join(sorted(self.entries)) or "none"
            raise AgentError(
                f"default_agent {self.default!r} names no agent (the agents are: {known}); "
                "set c.DeltakitApp.default_agent to one of them, or leave it unset"
            )
        self.history_db_path = history_db_path
        self._history_db: Any = None
        self._loaded: dict[str, Any] = {}
        self.tool_timeout = tool_timeout  # seconds per tool call; 0: no limit
        # Held by warm_up() and by every build until one has finished: the first use imports
        # agno and creates the history db, which two threads must not do side by side (a run
        # that arrives during the warm-up waits for it, then finds everything ready).
        self._first_use = threading.RLock()
        self._warm = False

    def _fallback_default(self, specs: Mapping[str, str], model: str) -> str:
        """The default when none is configured: `assistant` with a model, else `demo`, else the
        first configured agent (then the first entry point), so a config that replaces the
        agents without naming a default still loads."""
        for name in ("assistant" if model else "", "demo", *specs, *self.entries):
            if name in self.entries:
                return name
        raise AgentError(
            "no agents: c.DeltakitApp.agents is empty, no model is configured and no package "
            "offers 'deltakit_nb.agents' entry points"
        )

    @property
    def history_db(self) -> Any:
        if self._history_db is None and self.history_db_path:
            with self._first_use:
                if self._history_db is None:
                    from .history import open_history_db

                    self._history_db = open_history_db(self.history_db_path)
        return self._history_db

    def warm_up(self) -> None:
        """Do now, in the calling (worker) thread, what the first run would do before its first
        token: import agno, build the default agent once (discarded) and create the history
        db's tables. Writes no session and calls no model. Raises what building raises."""
        with self._first_use:
            for module in AGNO_FIRST_RUN_MODULES:
                try:
                    importlib.import_module(module)
                except ImportError:
                    pass
            warm_tools(self.build(self.default))
            db = self.history_db
            get_table = getattr(db, "_get_table", None)  # agno's, private: skipped if gone
            if get_table is not None:
                for table in HISTORY_TABLES:
                    get_table(table, create_table_if_not_found=True)
            if db is not None:
                from agno.db.base import SessionType

                db.get_session(session_id=WARM_UP_SESSION, session_type=SessionType.AGENT)

    def delete_history(self, thread_id: str) -> None:
        if self.history_db is not None:
            self.history_db.delete_session(thread_id)

    def resolve_name(self, name: str | None) -> str:
        name = name or self.default
        if name not in self.entries:
            known = ", ".join(sorted(self.entries))
            raise AgentError(f"unknown agent {name!r}; configured agents: {known}")
        return name

    def build(self, name: str) -> Runnable:
        """A ready agent for one run (telemetry off unless the user opted in)."""
        if not self._warm:
            with self._first_use:
                agent = self._build(name)
                self._warm = True
                return agent
        return self._build(name)

    def _build(self, name: str) -> Runnable:
        from agno.agent import Agent
        from agno.team import Team
        from agno.workflow import Workflow

        runnables = (Agent, Team, Workflow)
        entry = self.entries[self.resolve_name(name)]
        target = self._loaded.get(entry.name)
        if target is None:
            target = self._loaded[entry.name] = entry.load()
        if isinstance(target, runnables):
            agent = target
        elif callable(target):
            try:
                agent = target()
            except Exception as exc:
                raise AgentError(f"agent {entry.name!r} failed to build: {exc}") from exc
        else:
            raise AgentError(
                f"agent spec {entry.spec!r} is neither an Agent nor a callable "
                "(nor a Team or Workflow)"
            )
        if not isinstance(agent, runnables):
            raise AgentError(
                f"agent {entry.name!r} factory returned {type(agent).__name__} "
                "(expected an agno Agent, Team or Workflow)"
            )
        if not telemetry_opted_in():
            agent.telemetry = False
            for member in _members(agent):
                member.telemetry = False
        # A leader's delegate calls last as long as its members work: the limit goes on the
        # members' tools, never on the leader's.
        for tooled in [agent] if isinstance(agent, Agent) else _members(agent):
            if isinstance(tooled, Agent):
                apply_tool_timeout(tooled, self.tool_timeout)
        if agent.db is None and self.history_db is not None:
            agent.db = self.history_db
            if not isinstance(agent, Workflow):
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


def _members(runnable: Any) -> list[Any]:
    """A team's members, its sub-teams' members too (agents and teams), in order."""
    found: list[Any] = []
    members = getattr(runnable, "members", None)
    for member in members if isinstance(members, list) else []:
        found.append(member)
        found.extend(_members(member))
    return found


def warm_tools(agent: Runnable) -> None:
    """Fill agno's cache of tool schemas (docstring parsing, validation wrappers: ~50 ms for
    the demo's four tools), which the first run of each function tool would otherwise fill."""
    from agno.tools.function import Function
    from agno.tools.toolkit import Toolkit

    tools = getattr(agent, "tools", None)  # a Workflow has none
    for tool in tools if isinstance(tools, list) else []:
        if callable(tool) and not isinstance(tool, Function | Toolkit):
            Function.from_callable(tool)


def assistant_entry(model: str, base_url: str | None = None) -> AgentEntry:
    """The `assistant` agent on the model spec `model` (see providers.py)."""

    def loader() -> Callable[[], Agent]:
        from .providers import assistant_agent

        return functools.partial(assistant_agent, model, base_url=base_url)

    return AgentEntry("assistant", ASSISTANT_SPEC, source=f"model {model}", loader=loader)
