"""HTTP endpoints for finding conversations again: cell bindings and the recent threads."""

from __future__ import annotations

import json

from jupyter_server.auth.decorator import authorized
from tornado import web

from ..protocol import FrameError, check_id
from .handlers import AUTH_RESOURCE, DeltakitAPIHandler
from .threads import DEFAULT_LIMIT, MAX_LIMIT, recent_threads


def _valid_id(value: object, name: str) -> str:
    try:
        return check_id(value, name)
    except FrameError as exc:
        raise web.HTTPError(400, str(exc)) from None


class CellHandler(DeltakitAPIHandler):
    """The thread a notebook cell last showed, by the cell's key (deltakit_nb.kernel.cellkey)."""

    @web.authenticated
    @authorized("read", resource=AUTH_RESOURCE)
    async def get(self, key: str) -> None:
        key = _valid_id(key, "key")
        self.write_json({"key": key, "thread_id": await self.deltakit.cells.get(key)})

    @web.authenticated
    @authorized("write", resource=AUTH_RESOURCE)
    async def put(self, key: str) -> None:
        key = _valid_id(key, "key")
        try:
            body = json.loads(self.request.body or b"null")
        except (ValueError, RecursionError):
            raise web.HTTPError(400, "body is not valid JSON") from None
        if not isinstance(body, dict):
            raise web.HTTPError(400, 'body must be a JSON object: {"thread_id": "..."}')
        await self.deltakit.cells.bind(key, _valid_id(body.get("thread_id"), "thread_id"))
        self.write_json({"status": "ok"})


class ThreadsHandler(DeltakitAPIHandler):
    @web.authenticated
    @authorized("read", resource=AUTH_RESOURCE)
    async def get(self) -> None:
        raw = self.get_query_argument("limit", str(DEFAULT_LIMIT))
        if not raw.isascii() or not raw.isdigit() or int(raw) < 1:
            raise web.HTTPError(400, "'limit' must be a positive integer")
        limit = min(int(raw), MAX_LIMIT)
        self.write_json({"threads": await recent_threads(self.deltakit.registry, limit)})


default_handlers = [
    (r"/deltakit/cells/([^/]+)", CellHandler),
    (r"/deltakit/threads", ThreadsHandler),
]
