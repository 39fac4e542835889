"""Agents defined in a notebook cell run in the kernel, and the server's run log is the single
source of truth: a real Jupyter server (under a non-root base_url), a real kernel it started
for a notebook session, real WebSockets, the offline model in agno's real loop."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyterproc import TOKEN, JupyterProcess
from kernelclient import execute, wait_ready
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.websocket import WebSocketClientConnection, websocket_connect
from wsclient import recv, recv_n, recv_until_terminal, send, text

BASE = "/lab/user/x/"  # a non-root base_url, as under JupyterHub

AGENT_CELL = """
import json
import time
from agno.agent import Agent
from deltakit_nb import ChatWidget
from deltakit_nb.offline import OfflineModel

sales = {"region": ["north", "south"], "units": [12, 30]}
counter = {"calls": 0}

def total_units(name: str) -> str:
    '''Sum the units column of the table in variable `name`.'''
    counter["calls"] += 1
    return str(sum(globals()[name]["units"]))

def broken(reason: str = "") -> str:
    '''Always fails.'''
    raise ValueError("no luck: " + reason)

def hang() -> str:
    '''Never returns in time.'''
    time.sleep(30)
    return "late"

def make_agent():
    return Agent(name="cell agent", model=OfflineModel(chunk_delay=0.02),
                 tools=[total_units, broken, hang], telemetry=False)

chat = ChatWidget(agent=make_agent())
chat_factory = ChatWidget(agent=make_agent)
print(json.dumps([chat.agent, chat_factory.agent, repr(chat)]))
"""

MAGIC_CELL = """
import deltakit_nb
tooled = Agent(name="tooled", model=OfflineModel(), tools=deltakit_nb.notebook_tools(),
               telemetry=False)
get_ipython().run_line_magic("load_ext", "deltakit_nb")
get_ipython().run_line_magic("chat", "--agent-var tooled --name via_magic")
print(via_magic.agent)
"""


class BasedJupyter(JupyterProcess):
    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}{BASE.rstrip('/')}"


class Lab:
    def __init__(self, server: JupyterProcess, kc: BlockingKernelClient, kernel_id: str):
        self.server, self.kc, self.kernel_id = server, kc, kernel_id
        self.agent = ""
        self.factory_agent = ""

    def url(self, path: str) -> str:
        return f"{self.server.base}/{path}"

    def request(self, path: str, method: str = "GET", body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else (b"" if method != "GET" else None)
        req = urllib.request.Request(
            self.url(path),
            method=method,
            data=data,
            headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as response:
            return json.loads(response.read() or b"null")

    async def socket(self, path: str = "deltakit/ws", **headers: str) -> WebSocketClientConnection:
        url = "ws" + self.url(path)[4:]
        req = HTTPRequest(url, headers={"Authorization": f"token {TOKEN}", **headers})
        return await websocket_connect(req, max_message_size=1 << 28)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("kernel-agents")
    runtime = tmp / "runtime"
    mp = pytest.MonkeyPatch()
    for name in ("DELTAKIT_SERVER_URL", "DELTAKIT_SERVER_TOKEN", "JUPYTERHUB_API_TOKEN"):
        mp.delenv(name, raising=False)
    env = {"JUPYTER_RUNTIME_DIR": str(runtime)}
    with BasedJupyter(tmp, f"--ServerApp.base_url={BASE}", env=env) as server:
        probe = Lab(server, BlockingKernelClient(), "")
        session = probe.request(
            "api/sessions",
            "POST",
            {
                "path": "nb.ipynb",
                "name": "nb.ipynb",
                "type": "notebook",
                "kernel": {"name": "python3"},
            },
        )
        kernel_id = session["kernel"]["id"]
        kc = BlockingKernelClient()
        kc.load_connection_file(str(runtime / f"kernel-{kernel_id}.json"))
        kc.start_channels()
        try:
            wait_ready(kc)
            out = Lab(server, kc, kernel_id)
            out.agent, out.factory_agent, shown = json.loads(execute(kc, AGENT_CELL, "cell-1"))
            assert shown == "ChatWidget(agent=<kernel agent 'cell agent'>)"
            yield out
        finally:
            kc.stop_channels()
    mp.undo()


async def start(lab: Lab, message: str, agent: str | None = None) -> tuple[Any, list[dict]]:
    ws = await lab.socket()
    await send(ws, {"message": message, "agent": agent or lab.agent, "threadId": "t-kernel"})
    first = await recv(ws)
    assert first[0]["type"] == "run_started", first
    return ws, first


def server_log(lab: Lab, run_id: str) -> list[dict]:
    return list(lab.request(f"deltakit/runs/{run_id}")["events"])


async def test_a_cell_agent_reads_and_changes_kernel_variables(lab: Lab) -> None:
    for agent in (lab.agent, lab.factory_agent):  # an Agent, and a callable returning one
        ws, events = await start(lab, 'tool total_units {"name": "sales"}', agent)
        events += await recv_until_terminal(ws)
        ws.close()
        kinds = [e["type"] for e in events]
        assert kinds[:3] == ["run_started", "tool_call", "tool_result"], kinds
        assert events[2]["output"] == "42" and not events[2]["is_error"]
        assert "`total_units` returned **42**" in text(events)
        assert events[-1] == {**events[-1], "type": "done", "status": "completed"}
        # what the socket showed is the server's log, event for event
        assert server_log(lab, events[0]["runId"]) == events
    assert execute(lab.kc, "print(counter['calls'])").strip() == "2"


async def test_telemetry_is_turned_off_for_a_kernel_agent(lab: Lab) -> None:
    # a kernel that did not inherit the server's AGNO_TELEMETRY=false (a remote one, say)
    made = (
        "import os\n"
        "inherited = os.environ.pop('AGNO_TELEMETRY', None)\n"
        "chatty = Agent(model=OfflineModel())\n"
        "print(chatty.telemetry, ChatWidget(agent=chatty).agent)"
    )
    telemetry, agent = execute(lab.kc, made).split()
    assert telemetry == "True"  # agno's default
    ws, events = await start(lab, "echo hi", agent)
    events += await recv_until_terminal(ws)
    ws.close()
    assert text(events) == "hi"
    assert execute(lab.kc, "print(chatty.telemetry)").strip() == "False"
    execute(lab.kc, "os.environ['AGNO_TELEMETRY'] = inherited or 'false'")


async def test_chat_magic_with_an_agent_variable_and_the_notebook_tools(lab: Lab) -> None:
    agent = execute(lab.kc, MAGIC_CELL, "cell-2").strip()
    assert agent.startswith("kernel:") and agent.endswith("-tooled")
    ws, events = await start(lab, 'tool describe_dataframe {"name": "sales"}', agent)
    events += await recv_until_terminal(ws)
    ws.close()
    result = next(e for e in events if e["type"] == "tool_result")
    assert json.loads(result["output"])["describe"] == {
        "units": {"count": 2, "mean": 21.0, "min": 12, "max": 30}
    }
    assert events[-1]["status"] == "completed"


async def recv_until(ws: Any, kind: str, events: list[dict]) -> list[dict]:
    while not events or events[-1]["type"] != kind:
        events += await recv(ws)
    return events


async def test_run_python_waits_for_approval_then_runs_in_the_notebook(lab: Lab) -> None:
    agent = execute(lab.kc, "print(via_magic.agent)").strip()
    code = {"code": "approved = 7 * 6\nprint('hello')\napproved + 1"}
    ws, events = await start(lab, f"tool run_python {json.dumps(code)}", agent)
    await recv_until(ws, "run_paused", events)
    run_id, [req] = events[0]["runId"], events[-1]["requirements"]
    assert req["kind"] == "confirmation" and req["tool_name"] == "run_python"
    assert lab.request(f"deltakit/runs/{run_id}")["status"] == "paused"
    assert execute(lab.kc, "print('approved' in globals())").strip() == "False"
    await send(ws, {"runId": run_id, "decisions": [{"id": req["id"], "approve": True}]})
    events += await recv_until_terminal(ws)
    ws.close()
    kinds = [e["type"] for e in events]
    assert kinds[kinds.index("run_paused") + 1] == "run_resumed"
    result = next(e for e in events if e["type"] == "tool_result")
    assert json.loads(result["output"]) == {"stdout": "hello\n", "result": "43", "error": ""}
    assert events[-1]["status"] == "completed"
    assert server_log(lab, run_id) == events
    assert execute(lab.kc, "print(approved)").strip() == "42"

    # rejected: the code never runs, the model is told, the run completes
    ws, events = await start(lab, 'tool run_python {"code": "sales = None"}', agent)
    await recv_until(ws, "run_paused", events)
    [req] = events[-1]["requirements"]
    decision = {"id": req["id"], "approve": False, "note": "not now"}
    await send(ws, {"runId": events[0]["runId"], "decisions": [decision]})
    events += await recv_until_terminal(ws)
    ws.close()
    assert events[-1]["status"] == "completed"
    assert execute(lab.kc, "print(sales is not None)").strip() == "True"

    # stopped while paused: cancelled, and the kernel lets go of the paused run
    ws, events = await start(lab, 'tool run_python {"code": "sales = None"}', agent)
    await recv_until(ws, "run_paused", events)
    lab.request(f"deltakit/jobs/{events[0]['runId']}/cancel", "POST")
    events += await recv_until_terminal(ws)
    ws.close()
    assert events[-1]["type"] == "done" and events[-1]["status"] == "cancelled"
    # The kernel hears of the Stop over its link, a moment after the server ends the run.
    held = "from deltakit_nb.kernel.link import kernel_link\nprint(len(kernel_link().runs))"
    deadline = time.monotonic() + 10
    for _ in range(100):
        count = execute(lab.kc, held).strip()
        if count == "0" or time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    assert count == "0"


async def test_the_token_never_reaches_the_notebook(lab: Lab) -> None:
    state = execute(lab.kc, "print(chat.get_state(), repr(chat), chat.agent)")
    assert TOKEN not in state and "kernel:" in state


async def test_a_tool_error_is_a_tool_result_and_the_run_goes_on(lab: Lab) -> None:
    ws, events = await start(lab, 'tool broken {"reason": "test"}')
    events += await recv_until_terminal(ws)
    ws.close()
    result = next(e for e in events if e["type"] == "tool_result")
    assert result["is_error"] and "no luck: test" in result["output"]
    assert events[-1]["type"] == "done" and events[-1]["status"] == "completed"
    assert "`broken` returned" in text(events)


async def test_resume_from_the_middle_and_the_kernel_stays_usable(lab: Lab) -> None:
    ws, events = await start(lab, "count 60 delay 0.03")
    events += await recv_n(ws, 5)
    # a cell runs while the agent runs in its own thread
    assert execute(lab.kc, "print(sum(sales['units']))").strip() == "42"
    run_id = events[0]["runId"]
    assert lab.request(f"deltakit/runs/{run_id}")["status"] == "running"
    second = await lab.socket()
    await send(second, {"runId": run_id, "lastEventId": 3})
    tail = await recv_until_terminal(second)
    events += await recv_until_terminal(ws)
    ws.close()
    second.close()
    assert [e["eventId"] for e in tail] == list(range(4, len(events)))
    assert tail == events[4:] == server_log(lab, run_id)[4:]
    assert text(events) == "".join(f"{i} " for i in range(1, 61))


async def test_stop_reaches_a_tool_that_never_returns(lab: Lab) -> None:
    ws, events = await start(lab, "tool hang {}")
    while not any(e["type"] == "tool_call" for e in events):
        events += await recv(ws)
    stopped = time.monotonic()
    lab.request(f"deltakit/jobs/{events[0]['runId']}/cancel", "POST")
    events += await recv_until_terminal(ws)
    elapsed = time.monotonic() - stopped
    ws.close()
    assert events[-1]["type"] == "done" and events[-1]["status"] == "cancelled"
    assert elapsed < 1.5, elapsed


async def test_stop_while_a_cell_keeps_the_kernel_busy(lab: Lab) -> None:
    ws, events = await start(lab, "count 200 delay 0.02")
    events += await recv_n(ws, 3)
    busy = lab.kc.execute("time.sleep(3)")  # the kernel's main thread is busy from now on
    asked = time.monotonic()
    await asyncio.sleep(0.3)
    lab.request(f"deltakit/jobs/{events[0]['runId']}/cancel", "POST")
    events += await recv_until_terminal(ws)
    stopped_at = time.monotonic()
    ws.close()
    assert events[-1]["status"] == "cancelled"
    assert len(events) < 150
    # ...and the busy cell was still running when the run ended
    while (reply := lab.kc.get_shell_msg(timeout=30))["parent_header"]["msg_id"] != busy:
        pass
    assert reply["content"]["status"] == "ok"
    assert stopped_at - asked < 2.5  # the Stop did not wait for the cell (3 s)


async def test_publishing_is_refused_to_browsers_and_to_other_kernels(lab: Lab) -> None:
    ws, events = await start(lab, "count 100 delay 0.02")
    run_id = events[0]["runId"]
    forged = {"op": "events", "runId": run_id, "events": [{"type": "text_delta", "delta": "X"}]}
    # the browser's socket has no publish frame
    browser = await lab.socket()
    await send(browser, forged)
    assert (await recv(browser))[0]["type"] == "error"
    browser.close()
    # a browser cannot open the kernel channel (it always sends Origin)
    origin = f"http://127.0.0.1:{lab.server.port}"
    with pytest.raises(HTTPClientError) as refused:
        await lab.socket("deltakit/kernel", Origin=origin)
    assert refused.value.code == 403
    # another kernel (here: any token holder that says hello) may not publish into this run
    intruder = await lab.socket("deltakit/kernel")
    await send(intruder, {"op": "hello", "host": "intruder"})
    assert json.loads(await intruder.read_message()) == {"op": "ready"}
    await send(intruder, forged)
    refusal = json.loads(await asyncio.wait_for(intruder.read_message(), 10))
    assert refusal == {"op": "error", "message": f"run {run_id} was not started by this kernel"}
    intruder.close()
    events += await recv_until_terminal(ws)
    ws.close()
    assert "X" not in text(events) and events[-1]["status"] == "completed"
    assert server_log(lab, run_id) == events


async def test_kernel_restart_mid_run_ends_it_interrupted(lab: Lab) -> None:
    # last in this module: the kernel loses its variables
    agent = execute(lab.kc, "print(via_magic.agent)").strip()
    waiting, paused = await start(lab, 'tool run_python {"code": "1"}', agent)
    await recv_until(waiting, "run_paused", paused)
    ws, events = await start(lab, "count 300 delay 0.02")
    events += await recv_n(ws, 3)
    restarted = time.monotonic()
    lab.request(f"api/kernels/{lab.kernel_id}/restart", "POST")
    events += await recv_until_terminal(ws)
    ws.close()
    assert events[-1]["type"] == "done" and events[-1]["status"] == "interrupted"
    assert time.monotonic() - restarted < 10
    assert lab.request(f"deltakit/runs/{events[0]['runId']}")["status"] == "interrupted"
    # a run paused for approval in that kernel ends interrupted too
    paused += await recv_until_terminal(waiting)
    waiting.close()
    assert paused[-1]["type"] == "done" and paused[-1]["status"] == "interrupted"
    ws = await lab.socket()
    await send(ws, {"message": "hello", "agent": lab.agent})
    gone = await recv(ws)
    ws.close()
    assert (
        gone[0]["type"] == "error"
        and "run the cell that made this chat again" in (gone[0]["message"])
    )


async def test_a_paused_kernel_run_is_interrupted_after_a_server_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DELTAKIT_SERVER_URL", "DELTAKIT_SERVER_TOKEN", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    env = {"JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    server = BasedJupyter(tmp_path, f"--ServerApp.base_url={BASE}", env=env)
    server.start()
    kc = BlockingKernelClient()
    try:
        probe = Lab(server, kc, "")
        session = probe.request(
            "api/sessions",
            "POST",
            {"path": "p.ipynb", "type": "notebook", "kernel": {"name": "python3"}},
        )
        kc.load_connection_file(
            str(tmp_path / "runtime" / f"kernel-{session['kernel']['id']}.json")
        )
        kc.start_channels()
        wait_ready(kc)
        agent = execute(kc, AGENT_CELL + MAGIC_CELL).strip().splitlines()[-1]
        ws, events = await start(probe, 'tool run_python {"code": "1"}', agent)
        await recv_until(ws, "run_paused", events)
        ws.close()
        server.kill()  # no clean-up: the run is left paused in the store
    finally:
        kc.execute("import os; os._exit(0)")  # the kernel outlives a killed server
        kc.stop_channels()
    with BasedJupyter(tmp_path, f"--ServerApp.base_url={BASE}", env=env) as again:
        run = Lab(again, kc, "").request(f"deltakit/runs/{events[0]['runId']}")
    assert run["status"] == "interrupted"
    assert run["events"][-1]["type"] == "done" and run["events"][-1]["status"] == "interrupted"
