"""The kernel's way to its own Jupyter server, for the calls the kernel makes over HTTP
(``deltakit_nb.list_threads``).

The server is found in this order: ``DELTAKIT_SERVER_URL`` (with ``DELTAKIT_SERVER_TOKEN``, else
``JUPYTERHUB_API_TOKEN``, as the token); else the running server (jupyter_server's server info
files) whose process started this kernel; else the only running server. The token is sent in a
header and never appears in a message or an output.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

TIMEOUT = 10.0


class ServerNotFound(RuntimeError):
    pass


@dataclass(frozen=True)
class Server:
    url: str  # the server's base URL, ending in "/"
    token: str = field(default="", repr=False)

    def get_json(self, path: str) -> Any:
        headers = {"Authorization": f"token {self.token}"} if self.token else {}
        request = urllib.request.Request(self.url + path, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise RuntimeError(
                f"GET {self.url}{path} failed: HTTP {exc.code} {_reason(exc)}"
            ) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ServerNotFound(
                f"cannot reach the Jupyter server at {self.url}: {reason}"
            ) from None


def _reason(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read())
        return str(body.get("message") or exc.reason)
    except (ValueError, AttributeError, OSError):
        return str(exc.reason)


def find_server() -> Server:
    url = os.environ.get("DELTAKIT_SERVER_URL", "").strip()
    hub_token = os.environ.get("JUPYTERHUB_API_TOKEN", "")
    if url:
        token = os.environ.get("DELTAKIT_SERVER_TOKEN") or hub_token
        return Server(url.rstrip("/") + "/", token)
    try:
        from jupyter_server.serverapp import list_running_servers
    except ImportError:
        raise ServerNotFound(
            "jupyter_server is not importable in this kernel, so its server cannot be found; "
            "set DELTAKIT_SERVER_URL (and DELTAKIT_SERVER_TOKEN)"
        ) from None
    servers = [s for s in list_running_servers() if isinstance(s.get("url"), str)]
    mine = [s for s in servers if s.get("pid") == os.getppid()]
    if not mine and len(servers) == 1:
        mine = servers
    if not mine:
        found = f"{len(servers)} running servers, none of them this kernel's parent process"
        raise ServerNotFound(
            f"no Jupyter server found for this kernel ({found if servers else 'none running'}); "
            "set DELTAKIT_SERVER_URL (and DELTAKIT_SERVER_TOKEN)"
        )
    info = mine[0]
    return Server(info["url"].rstrip("/") + "/", info.get("token") or hub_token)


def list_threads(limit: int = 50) -> list[dict[str, Any]]:
    """The recent conversations of this kernel's Jupyter server, newest activity first: dicts
    with ``thread_id``, ``title``, ``created_at``, ``last_activity``, ``status`` and ``runs``.
    Open one with ``ChatWidget(thread_id=...)``."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, not {limit!r}")
    query = urllib.parse.urlencode({"limit": limit})
    threads = find_server().get_json(f"deltakit/threads?{query}")["threads"]
    return list(threads)
