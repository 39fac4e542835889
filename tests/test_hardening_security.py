"""Jupyter's authorisation is obeyed by every endpoint, and tokens stay out of our logs.

(Authentication, the origin check, XSRF and uuid4 run ids are in tests/test_security.py.)
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from conftest import TEST_AGENTS
from hardening_util import capture_server_log
from jupyter_server.auth.authorizer import Authorizer
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect
from wsclient import recv_until_terminal, send

from deltakit_nb.server.handlers import AUTH_RESOURCE


class DenyListAuthorizer(Authorizer):
    """Denies every action on the resources in `deny`; records every question it is asked."""

    deny: set[str] = set()
    asked: list[tuple[str, str]] = []

    def is_authorized(self, handler: Any, user: Any, action: str, resource: str) -> bool:
        DenyListAuthorizer.asked.append((action, resource))
        return resource not in DenyListAuthorizer.deny


@pytest.fixture
def jp_server_config() -> dict[str, object]:
    return {
        "ServerApp": {
            "jpserver_extensions": {"deltakit_nb": True},
            "authorizer_class": DenyListAuthorizer,
        },
        "DeltakitApp": {"agents": TEST_AGENTS, "persist": False},
    }


@pytest.fixture
def deny_deltakit(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str]]:
    asked: list[tuple[str, str]] = []
    monkeypatch.setattr(DenyListAuthorizer, "deny", {AUTH_RESOURCE})
    monkeypatch.setattr(DenyListAuthorizer, "asked", asked)
    return asked


ENDPOINTS = [
    ("GET", ("active-run",), "read"),
    ("GET", ("agents",), "read"),
    ("GET", ("runs", "some-run"), "read"),
    ("GET", ("threads", "some-thread"), "read"),
    ("GET", ("threads", "some-thread", "messages"), "read"),
    ("DELETE", ("threads", "some-thread"), "write"),
    ("POST", ("jobs", "some-run", "cancel"), "execute"),
    ("POST", ("runs", "some-run", "continue"), "execute"),
    ("GET", ("cells", "some-cell"), "read"),
    ("PUT", ("cells", "some-cell"), "write"),
    ("GET", ("threads",), "read"),
]
BODIES = {"POST": "", "PUT": '{"thread_id": "some-thread"}'}


@pytest.mark.parametrize(("method", "parts", "action"), ENDPOINTS)
async def test_authorizer_denying_deltakit_is_obeyed_over_http(
    jp_fetch: Any,
    deny_deltakit: list[tuple[str, str]],
    method: str,
    parts: tuple[str, ...],
    action: str,
) -> None:
    body = BODIES.get(method)
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("deltakit", *parts, method=method, body=body)
    assert err.value.code == 403
    assert deny_deltakit == [(action, AUTH_RESOURCE)]


async def test_authorizer_denying_deltakit_is_obeyed_by_the_socket(
    jp_ws_fetch: Any, deny_deltakit: list[tuple[str, str]]
) -> None:
    with pytest.raises(HTTPClientError) as err:
        await jp_ws_fetch("deltakit", "ws")
    assert err.value.code == 403
    assert deny_deltakit == [("execute", AUTH_RESOURCE)]


async def test_other_resources_still_work_while_deltakit_is_denied(
    jp_fetch: Any, deny_deltakit: list[tuple[str, str]]
) -> None:
    response = await jp_fetch("api", "contents")
    assert response.code == 200
    assert ("read", "contents") in deny_deltakit
    assert all(resource != AUTH_RESOURCE for _, resource in deny_deltakit)


@pytest.mark.parametrize(("method", "parts", "action"), ENDPOINTS)
async def test_the_same_endpoints_answer_when_allowed(
    jp_fetch: Any, monkeypatch: pytest.MonkeyPatch, method: str, parts: tuple[str, ...], action: str
) -> None:
    """The 403s above are the authorizer's: with it allowing, the endpoints answer."""
    asked: list[tuple[str, str]] = []
    monkeypatch.setattr(DenyListAuthorizer, "asked", asked)
    body = BODIES.get(method)
    response = await jp_fetch("deltakit", *parts, method=method, body=body, raise_error=False)
    assert response.code in (200, 404)  # 404: no such run
    assert (action, AUTH_RESOURCE) in asked


async def test_tokens_never_appear_in_our_log_lines(
    jp_serverapp: Any, jp_fetch: Any, jp_http_port: int, jp_base_url: str
) -> None:
    # (jp_fetch: it is what makes the test server listen on jp_http_port)
    token = jp_serverapp.identity_provider.token
    assert token
    base = f"127.0.0.1:{jp_http_port}{jp_base_url}deltakit"
    q = f"token={token}"
    no_header = {"Authorization": ""}  # the token travels in the URL only
    client = AsyncHTTPClient()
    with capture_server_log(jp_serverapp) as log:
        logging.getLogger("deltakit_nb").setLevel(logging.DEBUG)
        # Runs that fail (and are logged, with their tracebacks), and one that completes.
        for frame in (
            {"message": "fail", "threadId": "thread-t"},
            {"message": "hi", "agent": "missing"},
            {"message": "hi", "agent": "broken"},
            {"message": "echo fine"},
        ):
            ws = await websocket_connect(HTTPRequest(f"ws://{base}/ws?{q}", headers=no_header))
            await send(ws, frame)
            events = await recv_until_terminal(ws)
            ws.close()
        for path, method in [
            ("/agents", "GET"),
            ("/active-run", "GET"),
            (f"/runs/{events[0]['runId']}", "GET"),
            ("/threads/thread-t", "GET"),
            ("/runs/no-such-run", "GET"),
            ("/jobs/no-such-run/cancel", "POST"),
            ("/threads/thread-t", "DELETE"),
        ]:
            response = await client.fetch(
                f"http://{base}{path}?{q}",
                method=method,
                body="" if method == "POST" else None,
                headers=no_header,
                raise_error=False,
            )
            assert response.code in (200, 404), (path, response.code)
        json.loads(response.body)

    ours = log.lines("deltakit_nb")
    assert ours, "the failing runs were logged"
    assert not [line for line in ours if token in line]
    # Jupyter's own request log lines for our endpoints (logged by the extension's logger) are
    # scrubbed too.
    extension = log.lines("DeltakitApp") + log.lines("ServerApp")
    assert any("/deltakit/ws?token=[secret]" in line for line in extension)
    assert not [line for line in extension if token in line]
