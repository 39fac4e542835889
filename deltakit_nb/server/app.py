"""The Jupyter server extension: configuration, set-up and tear-down."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

from jupyter_core.paths import jupyter_data_dir
from jupyter_server.extension.application import ExtensionApp
from traitlets import Bool, Dict, Float, Int, Unicode, default

from ..images import ImageLimits
from ..stores import Store, open_store
from ..stores.base import MAX_BACKLOG
from ..stores.postgres import is_postgres_url
from .activity import ActivityReporter
from .agents import DEFAULT_AGENTS, AgentCatalog, AgentError, disable_telemetry_by_default
from .cluster import HEARTBEAT_SECONDS, LEASE_SECONDS, for_store
from .kernel_runs import KernelHosts
from .private import private_store
from .runs import MAX_RUNS_IN_MEMORY, Retention, RunRegistry
from .threads import CellBindings
from .warmup import start_warm_up

STATIC = Path(__file__).parent.parent / "static"


class DeltakitApp(ExtensionApp):
    name = "deltakit_nb"
    load_other_extensions = True

    agents = Dict(
        Unicode(),
        default_value=DEFAULT_AGENTS,
        help='Agents by name: {"name": "module:callable"}; the callable returns an agno Agent, '
        "Team or Workflow.",
    ).tag(config=True)
    default_agent = Unicode(
        help="The agent used when a client names none (default: 'assistant' when a model is "
        "configured, else 'demo' if there is one, else the first configured agent)."
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
        True,
        help="Keep runs, events and conversation history across restarts (in SQLite, or in "
        "PostgreSQL with store_url).",
    ).tag(config=True)
    data_dir = Unicode(help="Folder of the event store and the agno history db.").tag(config=True)
    store_path = Unicode(help="The event store's SQLite file (default: data_dir/runs.sqlite).").tag(
        config=True
    )
    history_db_path = Unicode(
        help="agno's SqliteDb file for thread history (default: data_dir/history.sqlite)."
    ).tag(config=True)
    store_url = Unicode(
        help="Where runs, events and agno's thread history are kept: empty for the SQLite "
        "files (store_path, history_db_path), or a PostgreSQL URL "
        "('postgresql://user:password@host:5432/dbname', needs deltakit_nb[postgres]) for "
        "both, shared by every server configured with it (default: $DELTAKIT_STORE_URL)."
    ).tag(config=True)
    store_max_backlog = Int(
        MAX_BACKLOG,
        help="Events that may wait for a PostgreSQL store out of reach (restarting) before "
        "the runs in progress end failed and new runs are refused until it is back.",
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
    max_image_bytes = Int(
        2 << 20,
        help="Largest image a tool may return that is sent (raw bytes); a larger one is "
        "replaced by a placeholder saying so.",
    ).tag(config=True)
    max_run_image_bytes = Int(
        8 << 20,
        help="Tool images sent per run in total (raw bytes); images over it become placeholders.",
    ).tag(config=True)
    lease_seconds = Float(
        LEASE_SECONDS,
        help="With a PostgreSQL store several servers share: how long a server's runs stay "
        "its own without a heartbeat. A server killed mid-run has its runs ended "
        "'interrupted' by another server within lease_seconds + heartbeat_seconds (at once "
        "by its own next start on the same machine).",
    ).tag(config=True)
    heartbeat_seconds = Float(
        HEARTBEAT_SECONDS,
        help="With a PostgreSQL store: seconds between a server's lease renewals (and its "
        "sweeps for the runs of servers that are gone); at most half of lease_seconds.",
    ).tag(config=True)
    warm_up = Bool(
        True,
        help="Once the server listens, import agno and build the default agent in a background "
        "thread, so that the first run starts as fast as later ones.",
    ).tag(config=True)

    @default("model")
    def _default_model(self) -> str:
        return os.environ.get("DELTAKIT_MODEL", "").strip()

    @default("model_base_url")
    def _default_model_base_url(self) -> str:
        return os.environ.get("DELTAKIT_BASE_URL", "").strip()

    @default("store_url")
    def _default_store_url(self) -> str:
        return os.environ.get("DELTAKIT_STORE_URL", "").strip()

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
    cells: CellBindings
    kernel_hosts: KernelHosts
    load_error = ""  # why set-up failed; the endpoints then answer 503 with it
    activity: ActivityReporter | None = None

    def initialize_settings(self) -> None:
        # Set first: after a failed set-up the bundle must still load and show the reason.
        self.static_paths = [str(STATIC)]
        try:
            self._set_up()
        except Exception as exc:
            # Caught, not raised: Jupyter would log a warning and leave no endpoint, and the
            # widget would then say the extension is not enabled.
            self.load_error = (
                str(exc) if isinstance(exc, AgentError) else f"{type(exc).__name__}: {exc}"
            )
            self.log.error(
                "deltakit_nb failed to load: %s. Its endpoints answer 503 until the server is "
                "restarted with a fixed configuration.",
                self.load_error,
                exc_info=True,
            )

    def _open_store(self) -> tuple[Store | None, str]:
        """The event store and the history db's location (a SQLite file or the URL)."""
        if not self.persist:
            return None, ""
        url = self.store_url.strip()
        if url:
            if not is_postgres_url(url):
                raise ValueError(
                    "store_url must be a PostgreSQL URL "
                    "('postgresql://user:password@host:5432/dbname'), not one starting "
                    f"{url.partition(':')[0]!r}; leave it empty for the SQLite files"
                )
            from ..stores.postgres import PostgresStore

            private_store(self.data_dir)
            # Raises when the database cannot be reached: no silent fallback to memory, which
            # would lose runs other servers expect to find there.
            store = PostgresStore(url)
            self.log.info("deltakit_nb: runs and history in PostgreSQL at %s", store.location)
            return store, url
        private_store(self.data_dir, self.store_path, self.history_db_path)
        return open_store(self.store_path), self.history_db_path

    def _set_up(self) -> None:
        disable_telemetry_by_default()
        store, history = self._open_store()
        if store is not None:
            store.max_backlog = self.store_max_backlog
        cluster = None
        try:
            self.catalog = AgentCatalog(
                self.agents,
                self.default_agent,
                history,
                tool_timeout=self.tool_timeout_seconds,
                model=self.model,
                model_base_url=self.model_base_url,
                entry_points=self.entry_point_agents,
            )
            if self.catalog.default_chosen and self.catalog.default not in ("assistant", "demo"):
                self.log.info(
                    "deltakit_nb: default agent %r, the first configured agent "
                    "(c.DeltakitApp.default_agent chooses another)",
                    self.catalog.default,
                )
            cluster = for_store(store, self.lease_seconds, self.heartbeat_seconds)
            self.registry = RunRegistry(
                self.catalog.build,
                max_concurrent_runs=self.max_concurrent_runs,
                cancel_grace=self.cancel_grace_seconds,
                store=store,
                retention=Retention(self.runs_per_thread, self.max_age_days * 86400),
                max_runs_in_memory=self.max_runs_in_memory,
                image_limits=ImageLimits(self.max_image_bytes, self.max_run_image_bytes),
                cluster=cluster,
            )
            self.cells = CellBindings(store, shared=cluster is not None)
            if cluster is not None:
                cluster.thread_deleted_listeners.append(self.cells.forget_thread)
            self.kernel_hosts = KernelHosts()
        except BaseException:
            if store is not None:
                store.close()
            if cluster is not None:
                cluster.stop()
            raise

    def initialize_handlers(self) -> None:
        if self.load_error:
            from .fallback import failed_handlers, failure_message

            self.handlers.extend(failed_handlers(failure_message(self.load_error)))
            return
        from .handlers import default_handlers
        from .kernel_runs import default_handlers as kernel_handlers
        from .thread_handlers import default_handlers as thread_handlers

        self.handlers.extend(default_handlers + thread_handlers + kernel_handlers)

    async def _start_jupyter_server_extension(self, serverapp: Any) -> None:
        # Called once the event loop runs and the server listens: nothing here delays start-up.
        if getattr(self, "registry", None) is None:
            return  # the extension failed to load
        if self.registry.cluster is not None:
            self.registry.cluster.start(self.registry, asyncio.get_running_loop())
        self.activity = ActivityReporter(self.registry, serverapp.web_app.settings)
        self.activity.start()
        if self.warm_up:
            start_warm_up(self.catalog, self.log)

    def current_activity(self) -> list[str] | None:
        """The live runs' ids: jupyter_server's idle shutdown waits while there are any."""
        if self.activity is None:
            return None
        # Stamp a run that ended since the last refresh now: the idle check that follows
        # then counts from that run's end, not from the refresh before it.
        self.activity.refresh()
        return self.activity.live_runs()

    async def stop_extension(self) -> None:
        # Must not raise whatever failed before: an exception here stops Jupyter's shutdown
        # before its event loop is stopped, and the server then never exits.
        if self.activity is not None:
            self.activity.stop()
        registry = getattr(self, "registry", None)
        if registry is None:
            return
        try:
            await registry.shutdown()
        except Exception:
            self.log.error("deltakit_nb: error while stopping", exc_info=True)
