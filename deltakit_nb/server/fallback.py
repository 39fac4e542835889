"""What the extension serves when its set-up failed: every `deltakit/` endpoint answers 503 with
the reason, so a client can tell "failed to load" (see the server log) from "not enabled"
(404).

Imports nothing else of deltakit_nb: the failure may be in any of it.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.base.handlers import APIHandler
from tornado import web


def failure_message(reason: str) -> str:
    return f"deltakit_nb failed to load: {reason}. See the Jupyter server log."


class FailedLoadHandler(APIHandler):
    """Answers 503 {"message"} to every method; only an authenticated user learns the reason,
    since it may name files and modules of the server."""

    def initialize(self, message: str) -> None:
        self.message = message

    def _fail(self) -> None:
        self.set_status(503)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": self.message}))

    @web.authenticated
    def get(self, *args: Any) -> None:
        self._fail()

    @web.authenticated
    def post(self, *args: Any) -> None:
        self._fail()

    @web.authenticated
    def delete(self, *args: Any) -> None:
        self._fail()


def failed_handlers(message: str) -> list[tuple[str, type[APIHandler], dict[str, Any]]]:
    return [(r"/deltakit/(.*)", FailedLoadHandler, {"message": message})]
