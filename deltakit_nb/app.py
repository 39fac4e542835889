"""The Jupyter server extension: configuration, set-up and tear-down."""

from __future__ import annotations

import os
from pathlib import Path

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Float, Int, Unicode, default

from .agents import DEMO_SPEC, AgentCatalog, disable_telemetry_by_default
from .runs import MAX_RUNS_IN_MEMORY, Retention, RunRegistry
from .store import open_store

STATIC = Path(__file__).parent / "static"


class DeltakitApp(ExtensionApp):
    name = "deltakit_nb"
    load_other_extensions = True

    agents = Dict(
        Unicode(),
        default_value={"demo": DEMO_SPEC},
        help='Agents by name: {"name": "module:callable"}; the callable returns an agno Agent.',
    ).tag(config=True)
    default_agent = Unicode(
        help="The agent used when a client names none (default: 'assistant' when a model is "
        "configured, else 'demo')."
    ).tag(config=True)
    model = Unicode(
        help="Model spec of the 'assistant' agent, e.g. 'openai:gpt-4.1-mini', "
        "'openrouter:moonshotai/kimi-k2.5', 'anthropic:MODEL', 'ollama:llama3.2' or "
        "'openai-compatible:MODEL' (default: $DELTAKIT_MODEL). Empty: no assistant agent."
    ).tag(config=True)
    model_base_url = Unicode(
        help="Base URL for the model: an OpenAI-compatible server's, a proxy's or an Ollama "
        "host (default: $DELTAKIT_BASE_URL)."
    ).tag(config=True)
    entry_point_agents = Bool(
        True,
        help="Also offer the agents installed packages register as 'deltakit_nb.agents' "
        "entry points (configured agents win on a name clash).",
    ).tag(config=True)
    max_frame_bytes = Int(1 << 20, help="Largest WebSocket frame a client may send.").tag(
        config=True
    )
    max_message_chars = Int(100_000, help="Longest user message, in characters.").tag(config=True)
    max_concurrent_runs = Int(100, help="Runs in progress at once, server-wide.").tag(config=True)
    max_subscriptions_per_minute = Int(
        120, help="Start and resume frames one WebSocket may send per minute (0: no limit)."
    ).tag(config=True)
    tool_timeout_seconds = Float(
        300.0, help="Longest a tool call may take before it fails with a timeout (0: no limit)."
    ).tag(config=True)
    cancel_grace_seconds = Float(
        2.0, help="How long a cancelled run may wind down before its task is cancelled."
    ).tag(config=True)

    persist = Bool(
        True, help="Keep runs, events and conversation history in SQLite across restarts."
    ).tag(config=True)
    data_dir = Unicode(help="Folder of the event store and the agno history db.").tag(config=True)
    store_path = Unicode(help="The event store's SQLite file (default: data_dir/runs.sqlite).").tag(
        config=True
    )
    history_db_path = Unicode(
        help="agno's SqliteDb file for thread history (default: data_dir/history.sqlite)."
    ).tag(config=True)
    runs_per_thread = Int(200, help="Finished runs kept per thread (0: all).").tag(config=True)
    max_runs_in_memory = Int(
        MAX_RUNS_IN_MEMORY,
        help="With persist off, finished runs kept in memory in all (the oldest go first and "
        "are gone for good; 0: no limit). With persist on, the store keeps them and memory "
        "holds the newest 64.",
    ).tag(config=True)
    max_age_days = Float(90.0, help="Finished runs older than this are dropped (0: never).").tag(
        config=True
    )

    @default("model")
    def _default_model(self) -> str:
        return os.environ.get("DELTAKIT_MODEL", "").strip()

    @default("model_base_url")
    def _default_model_base_url(self) -> str:
        return os.environ.get("DELTAKIT_BASE_URL", "").strip()

    @default("default_agent")
    def _default_default_agent(self) -> str:
        return "assistant" if self.model else "demo"

    @default("data_dir")
    def _default_data_dir(self) -> str:
        return str(Path(jupyter_data_dir()) / "deltakit_nb")

    @default("store_path")
    def _default_store_path(self) -> str:
        return str(Path(self.data_dir) / "runs.sqlite")

    @default("history_db_path")
    def _default_history_db_path(self) -> str:
        return str(Path(self.data_dir) / "history.sqlite")

    registry: RunRegistry
    catalog: AgentCatalog

    def initialize_settings(self) -> None:
        disable_telemetry_by_default()
        self.static_paths = [str(STATIC)]
        store = open_store(self.store_path) if self.persist else None
        history = self.history_db_path if self.persist else ""
        self.catalog = AgentCatalog(
            self.agents,
            self.default_agent,
            history,
            tool_timeout=self.tool_timeout_seconds,
            model=self.model,
            model_base_url=self.model_base_url,
            entry_points=self.entry_point_agents,
        )
        self.registry = RunRegistry(
            self.catalog.build,
            max_concurrent_runs=self.max_concurrent_runs,
            cancel_grace=self.cancel_grace_seconds,
            store=store,
            retention=Retention(self.runs_per_thread, self.max_age_days * 86400),
            max_runs_in_memory=self.max_runs_in_memory,
        )

    def initialize_handlers(self) -> None:
        from .handlers import default_handlers

        self.handlers.extend(default_handlers)

    async def stop_extension(self) -> None:
        await self.registry.shutdown()
