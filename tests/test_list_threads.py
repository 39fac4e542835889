"""`deltakit_nb.list_threads()` in a kernel that a real Jupyter server started for a notebook:
the kernel finds its own server (by its parent process, among several servers), and the cell
key there holds the notebook's full path."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.blocking.client import BlockingKernelClient
from jupyterproc import TOKEN, JupyterProcess, free_port
from kernelclient import execute, wait_ready
from test_durability import run_to_end

import deltakit_nb
from deltakit_nb.kernel.cellkey import cell_key
from deltakit_nb.kernel.serverlink import ServerNotFound


def post(server: JupyterProcess, path: str, body: dict[str, Any]) -> Any:
    req = urllib.request.Request(
        server.base + path,
        method="POST",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"token {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as response:
        return json.loads(response.read())


async def test_a_notebook_kernel_lists_the_threads_of_its_own_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "runtime"  # both servers' info files side by side
    env = {"JUPYTER_RUNTIME_DIR": str(runtime)}
    for name in ("DELTAKIT_SERVER_URL", "DELTAKIT_SERVER_TOKEN", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)  # the servers and their kernels inherit these
    with (
        JupyterProcess(tmp_path / "mine", env=env) as mine,
        JupyterProcess(tmp_path / "other", env=env) as other,
    ):
        await run_to_end(mine, "echo in my server", "t-mine")
        await run_to_end(other, "echo in the other server", "t-other")
        session = post(
            mine,
            "/api/sessions",
            {
                "path": "nb.ipynb",
                "name": "nb.ipynb",
                "type": "notebook",
                "kernel": {"name": "python3"},
            },
        )
        kc = BlockingKernelClient()
        kc.load_connection_file(str(runtime / f"kernel-{session['kernel']['id']}.json"))
        kc.start_channels()
        try:
            wait_ready(kc)
            code = (
                "import json, deltakit_nb\n"
                "from deltakit_nb import ChatWidget\n"
                "print(json.dumps([deltakit_nb.list_threads(), ChatWidget().cell_key]))\n"
            )
            threads, key = json.loads(execute(kc, code, "the-cell"))
        finally:
            kc.stop_channels()
        assert [(t["thread_id"], t["title"], t["runs"]) for t in threads] == [
            ("t-mine", "echo in my server", 1)
        ]
        assert threads == mine.get("/deltakit/threads")["threads"]
        notebook = str((tmp_path / "mine" / "root" / "nb.ipynb").resolve())
        assert key == cell_key(notebook, "the-cell")


async def test_environment_overrides_and_clear_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("DELTAKIT_SERVER_URL", "DELTAKIT_SERVER_TOKEN", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "no-servers-here"))
    with pytest.raises(ServerNotFound, match=r"none running.*set DELTAKIT_SERVER_URL"):
        deltakit_nb.list_threads()
    with pytest.raises(ValueError, match="positive integer"):
        deltakit_nb.list_threads(0)

    with JupyterProcess(tmp_path / "server") as server:
        for i in range(3):
            await run_to_end(server, f"echo number {i}", f"t-{i}")
        monkeypatch.setenv("DELTAKIT_SERVER_URL", server.base)
        monkeypatch.setenv("DELTAKIT_SERVER_TOKEN", TOKEN)
        assert [t["thread_id"] for t in deltakit_nb.list_threads()] == ["t-2", "t-1", "t-0"]
        assert [t["thread_id"] for t in deltakit_nb.list_threads(limit=1)] == ["t-2"]
        monkeypatch.delenv("DELTAKIT_SERVER_TOKEN")
        monkeypatch.setenv("JUPYTERHUB_API_TOKEN", TOKEN)  # as a JupyterHub kernel has it
        assert len(deltakit_nb.list_threads()) == 3
        monkeypatch.setenv("DELTAKIT_SERVER_TOKEN", "wrong-secret-token")
        with pytest.raises(RuntimeError, match="HTTP 403") as err:
            deltakit_nb.list_threads()
        assert "wrong-secret-token" not in str(err.value)
    monkeypatch.setenv("DELTAKIT_SERVER_URL", f"http://127.0.0.1:{free_port()}/")
    with pytest.raises(ServerNotFound, match="cannot reach the Jupyter server"):
        deltakit_nb.list_threads()
