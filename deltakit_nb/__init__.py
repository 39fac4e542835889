"""Resumable agno agent streaming in Jupyter.

`%load_ext deltakit_nb`, then `ChatWidget()` in a cell. The server extension (enabled on
install) runs the agents as server-side jobs, so a run outlives page reloads and kernels.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["ChatWidget", "__version__", "list_threads", "notebook_tools"]


def __getattr__(name: str) -> Any:
    # The widget pulls in ipywidgets; the server extension must start without it.
    if name == "ChatWidget":
        from .kernel.widget import ChatWidget

        return ChatWidget
    if name == "list_threads":
        from .kernel.serverlink import list_threads

        return list_threads
    if name == "notebook_tools":
        from .kernel.tools import notebook_tools

        return notebook_tools
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load_ipython_extension(ip: Any) -> None:
    """`%load_ext deltakit_nb`: registers the %chat and %%chat magics."""
    from .kernel.magics import load

    load(ip)


def unload_ipython_extension(ip: Any) -> None:
    """`%unload_ext deltakit_nb`: removes them again."""
    from .kernel.magics import unload

    unload(ip)


def _jupyter_server_extension_points() -> list[dict[str, Any]]:
    from .server.app import DeltakitApp

    return [{"module": "deltakit_nb.server.app", "app": DeltakitApp}]
