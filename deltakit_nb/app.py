"""The Jupyter server extension: configuration, set-up and tear-down."""

from __future__ import annotations

from pathlib import Path

from jupyter_server.extension.application import ExtensionApp
from traitlets import Dict, Float, Int, Unicode

from .agents import DEMO_SPEC, AgentCatalog, disable_telemetry_by_default
from .runs import RunRegistry

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

    registry: RunRegistry
    catalog: AgentCatalog

    def initialize_settings(self) -> None:
        disable_telemetry_by_default()
        self.static_paths = [str(STATIC)]
        self.catalog = AgentCatalog(self.agents, self.default_agent)
        self.registry = RunRegistry(
            self.catalog.build,
            max_concurrent_runs=self.max_concurrent_runs,
            cancel_grace=self.cancel_grace_seconds,
        )

    def initialize_handlers(self) -> None:
        from .handlers import default_handlers

        self.handlers.extend(default_handlers)

    async def stop_extension(self) -> None:
        await self.registry.shutdown()
