"""Live runs count as server activity, so that idle culling does not stop a server mid-run.

A run goes on with no browser and no kernel, and its socket frames are not API requests, so
jupyter_server would see no activity while it streams: JupyterHub's idle culler and
`ServerApp.shutdown_no_activity_timeout` would stop the server under it. jupyter_server's
`last_activity()` takes the newest of every web-app setting whose name ends in
`_last_activity`; this keeps one such setting fresh while a run is live, from a timer (never
from the streaming loop), and stamps a finished run's end once.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from tornado.ioloop import PeriodicCallback

from .runs import RunRegistry

SETTING = "deltakit_last_activity"
# Idle timeouts are minutes to hours: a few seconds of lag is invisible to them, and a tick
# costs one pass over the runs held in memory.
REFRESH_EVERY = 5.0


class ActivityReporter:
    def __init__(
        self, registry: RunRegistry, settings: dict[str, Any], every: float = REFRESH_EVERY
    ):
        self.registry = registry
        self.settings = settings
        self._timer = PeriodicCallback(self.refresh, every * 1000)

    def live_runs(self) -> list[str]:
        return [run.id for run in self.registry.runs() if not run.done]

    def refresh(self) -> None:
        """Stamp now while a run is live; else the end of the newest finished run, which a run
        that started and ended between two ticks contributes too."""
        newest = 0.0
        for run in self.registry.runs():
            if not run.done:
                newest = datetime.now(timezone.utc).timestamp()
                break
            newest = max(newest, run.finished_at or 0.0)
        if newest:
            stamp = datetime.fromtimestamp(newest, timezone.utc)
            current = self.settings.get(SETTING)
            if current is None or stamp > current:
                self.settings[SETTING] = stamp

    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
