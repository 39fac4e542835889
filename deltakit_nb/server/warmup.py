"""Warming agno up in the background once the server listens.

The first run after a start would otherwise pay for importing agno, building its agent and
creating the history db (about a second, against ~45 ms for a warm run). Start-up itself must
not pay for it either, so the work runs in a thread of its own after the server is up; a run
that arrives meanwhile waits for it in AgentCatalog.build (see AgentCatalog.warm_up).
"""

from __future__ import annotations

import logging
import threading
import time

from .agents import AgentCatalog


def warm_up(catalog: AgentCatalog, log: logging.Logger) -> None:
    start = time.perf_counter()
    try:
        catalog.warm_up()
    except Exception as exc:  # the first run meets the same error and reports it to its client
        log.warning("deltakit_nb: warm-up of agent %r failed: %s", catalog.default, exc)
        return
    log.info(
        "deltakit_nb: agno and agent %r warmed up in %.2f s",
        catalog.default,
        time.perf_counter() - start,
    )


def start_warm_up(catalog: AgentCatalog, log: logging.Logger) -> threading.Thread:
    """Warm up in a daemon thread: the imports hold the GIL in bursts but never the event loop,
    and a server stopped meanwhile does not wait for them."""
    thread = threading.Thread(
        target=warm_up, args=(catalog, log), name="deltakit-warm-up", daemon=True
    )
    thread.start()
    return thread
