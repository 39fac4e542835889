"""The Jupyter server extension: configuration, set-up and tear-down."""

from __future__ import annotations

from pathlib import Path

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Float, Int, Unicode, default

from .agents import DEMO_SPEC, AgentCatalog, disable_telemetry_by_default
from .runs import Retention, RunRegistry
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
    default_agent = Unicode("demo", help="The agent used when a client names none.").tag(
        config=True
    )
    max_frame_bytes = Int(1 << 20, help="Largest WebSocket frame a client may send.").tag(
        config=True
    )
    max_message_chars = Int(100_000, help="Longest user message, in characters.").tag(config=True)
    max_concurrent_runs = Int(100, help="Runs in progress at once, server-wide.").tag(config=True)
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
    max_age_days = Float(90.0, help="Finished runs older than this are dropped (0: never).").tag(
        config=True
    )

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
        self.catalog = AgentCatalog(self.agents, self.default_agent, history)
        self.registry = RunRegistry(
            self.catalog.build,
            max_concurrent_runs=self.max_concurrent_runs,
            cancel_grace=self.cancel_grace_seconds,
            store=store,
            retention=Retention(self.runs_per_thread, self.max_age_days * 86400),
        )

    def initialize_handlers(self) -> None:
        from .handlers import default_handlers

        self.handlers.extend(default_handlers)

    async def stop_extension(self) -> None:
        await self.registry.shutdown()
