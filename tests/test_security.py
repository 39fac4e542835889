"""Every endpoint sits behind Jupyter's authentication, origin check and XSRF check."""

from __future__ import annotations

import json
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest
from tornado.websocket import websocket_connect
from wsclient import recv, recv_until_terminal, send, text

NO_AUTH = {"Authorization": ""}


async def test_unauthenticated_socket_is_refused(jp_ws_fetch: Any) -> None:
    with pytest.raises(HTTPClientError) as err:
        await jp_ws_fetch("deltakit", "ws", headers=dict(NO_AUTH))
    assert err.value.code == 403


@pytest.mark.parametrize(
    ("method", "parts"),
    [
        ("GET", ("active-run",)),
        ("GET", ("agents",)),
        ("GET", ("runs", "x")),
        ("GET", ("threads", "x")),
        ("GET", ("threads", "x", "messages")),
        ("POST", ("jobs", "x", "cancel")),
        ("POST", ("runs", "x", "continue")),
        ("GET", ("cells", "x")),
        ("PUT", ("cells", "x")),
        ("GET", ("threads",)),
    ],
)
async def test_unauthenticated_http_is_refused(jp_fetch: Any, method: str, parts: tuple) -> None:
    body = {"POST": "", "PUT": '{"thread_id": "t"}'}.get(method)
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("deltakit", *parts, method=method, body=body, headers=dict(NO_AUTH))
    assert err.value.code == 403


async def login_cookies(jp_fetch: Any) -> dict[str, str]:
    """The cookies a browser holds after a token login (login cookie and _xsrf)."""
    response = await jp_fetch("deltakit", "agents")
    jar: dict[str, str] = {}
    for header in response.headers.get_list("Set-Cookie"):
        for name, morsel in SimpleCookie(header).items():
            jar[name] = morsel.value
    if "_xsrf" not in jar:
        page = await jp_fetch("login", headers=dict(NO_AUTH), raise_error=False)
        for header in page.headers.get_list("Set-Cookie"):
            for name, morsel in SimpleCookie(header).items():
                jar[name] = morsel.value
    assert any(name.startswith("username-") for name in jar), jar
    assert "_xsrf" in jar, jar
    return jar


def cookie_header(jar: dict[str, str]) -> str:
    return "; ".join(f"{k}={v}" for k, v in jar.items())


def ws_url(port: int, base_url: str) -> str:
    return f"ws://127.0.0.1:{port}{base_url}deltakit/ws"


async def test_cookie_socket_checks_origin(
    jp_fetch: Any, jp_http_port: int, jp_base_url: str
) -> None:
    jar = await login_cookies(jp_fetch)
    url = ws_url(jp_http_port, jp_base_url)
    cookie = cookie_header(jar)
    evil = HTTPRequest(url, headers={"Cookie": cookie, "Origin": "http://evil.example"})
    with pytest.raises(HTTPClientError) as err:
        await websocket_connect(evil)
    assert err.value.code == 403
    # The same cookie from the server's own origin works: the refusal above is the origin's.
    same = HTTPRequest(
        url, headers={"Cookie": cookie, "Origin": f"http://127.0.0.1:{jp_http_port}"}
    )
    ws = await websocket_connect(same)
    await send(ws, {"message": "echo via cookie"})
    assert text(await recv_until_terminal(ws)) == "via cookie"
    ws.close()


async def test_post_needs_xsrf_with_cookie_auth(
    jp_fetch: Any, jp_http_port: int, jp_base_url: str
) -> None:
    jar = await login_cookies(jp_fetch)
    client = AsyncHTTPClient()
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}deltakit/jobs/nope/cancel"
    cookie = cookie_header(jar)
    without = await client.fetch(
        url, method="POST", body="", headers={"Cookie": cookie}, raise_error=False
    )
    assert without.code == 403
    with_xsrf = await client.fetch(
        url,
        method="POST",
        body="",
        raise_error=False,
        headers={"Cookie": cookie, "X-XSRFToken": jar["_xsrf"]},
    )
    assert with_xsrf.code == 404  # past the XSRF check: the run does not exist
    assert "Run not found" in with_xsrf.body.decode() or with_xsrf.reason == "Run not found"
    # The continue endpoint of human in the loop is guarded the same way.
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}deltakit/runs/nope/continue"
    body = '{"decisions": [{"id": "r", "approve": true}]}'
    without = await client.fetch(
        url, method="POST", body=body, headers={"Cookie": cookie}, raise_error=False
    )
    assert without.code == 403
    with_xsrf = await client.fetch(
        url + "?_xsrf=" + jar["_xsrf"],
        method="POST",
        body=body,
        raise_error=False,
        headers={"Cookie": cookie},
    )
    assert with_xsrf.code == 404 and json.loads(with_xsrf.body) == {
        "message": "Run not found: nope"
    }


async def test_cancel_url_may_carry_xsrf_as_a_query_argument(
    jp_fetch: Any, jp_ws_fetch: Any, jp_http_port: int, jp_base_url: str
) -> None:
    """DeltaKit's client cancels with a bare `fetch(cancelUrl, {method: "POST"})`: no headers.
    A cookie-authenticated page passes the `_xsrf` cookie's value in the URL instead."""
    jar = await login_cookies(jp_fetch)
    ws = await jp_ws_fetch("deltakit", "ws")
    await send(ws, {"message": "count 500 delay 0.02"})
    run_id = (await recv(ws))[0]["runId"]
    client = AsyncHTTPClient()
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}deltakit/jobs/{run_id}/cancel"
    cookie = {"Cookie": cookie_header(jar)}
    without = await client.fetch(url, method="POST", body="", headers=cookie, raise_error=False)
    assert without.code == 403
    wrong = await client.fetch(
        f"{url}?_xsrf=not-the-cookie", method="POST", body="", headers=cookie, raise_error=False
    )
    assert wrong.code == 403
    with_xsrf = await client.fetch(
        f"{url}?_xsrf={quote(jar['_xsrf'])}", method="POST", body="", headers=cookie
    )
    assert with_xsrf.code == 200 and json.loads(with_xsrf.body) == {"status": "ok"}
    events = await recv_until_terminal(ws)
    assert events[-1]["type"] == "done" and events[-1]["status"] == "cancelled"
    ws.close()


async def test_put_cell_needs_xsrf_with_cookie_auth(
    jp_fetch: Any, jp_http_port: int, jp_base_url: str
) -> None:
    jar = await login_cookies(jp_fetch)
    client = AsyncHTTPClient()
    url = f"http://127.0.0.1:{jp_http_port}{jp_base_url}deltakit/cells/cell-x"
    cookie = cookie_header(jar)
    body = '{"thread_id": "t-x"}'
    without = await client.fetch(
        url, method="PUT", body=body, headers={"Cookie": cookie}, raise_error=False
    )
    assert without.code == 403
    assert json.loads((await jp_fetch("deltakit", "cells", "cell-x")).body)["thread_id"] is None
    headers = {"Cookie": cookie, "X-XSRFToken": jar["_xsrf"]}
    with_xsrf = await client.fetch(url, method="PUT", body=body, headers=headers)
    assert json.loads(with_xsrf.body) == {"status": "ok"}
    assert json.loads((await jp_fetch("deltakit", "cells", "cell-x")).body)["thread_id"] == "t-x"


async def test_run_ids_are_uuid4(jp_ws_fetch: Any) -> None:
    import uuid

    ws = await jp_ws_fetch("deltakit", "ws")
    await send(ws, {"message": "echo x"})
    events = await recv_until_terminal(ws)
    assert uuid.UUID(events[0]["runId"]).version == 4
    assert json.loads(json.dumps(events))  # plain JSON all the way
    ws.close()
