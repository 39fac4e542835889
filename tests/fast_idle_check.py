"""A server extension for tests only: runs jupyter_server's own idle-shutdown check,
`ServerApp.shutdown_no_activity`, every CHECK_EVERY seconds instead of every 60 s, so that a
test sees its decision in seconds. The decision stays jupyter_server's; this only asks sooner.

The checks begin at `POST /fast-idle-check/start` (itself an API request, so the idle time
counts from there), which keeps a slow server start from eating into a short
`shutdown_no_activity_timeout` before the test is ready.
"""

from __future__ import annotations

from typing import Any

from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.ioloop import PeriodicCallback

CHECK_EVERY = 0.5


class StartChecking(APIHandler):
    @web.authenticated
    def post(self) -> None:
        serverapp = self.settings["serverapp"]
        if "fast_idle_check" not in self.settings:
            check = PeriodicCallback(serverapp.shutdown_no_activity, CHECK_EVERY * 1000)
            check.start()
            self.settings["fast_idle_check"] = check
        self.finish("{}")


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "fast_idle_check"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    route = url_path_join(serverapp.base_url, "fast-idle-check/start")
    serverapp.web_app.add_handlers(".*$", [(route, StartChecking)])
