"""A real `jupyter lab` process for the browser tests and the browser benchmark.

Everything it touches lives in one temporary folder: notebooks (root dir), workspaces, Jupyter
data and config dirs, IPython dir, the extension's event store. Started once per test session
(a cold start costs seconds on this machine), stopped with SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import nbformat
from jupyterproc import (  # tests/ is on the path (pytest's rootdir, the benchmarks)
    free_port,
    terminate,
)

HERE = Path(__file__).resolve().parent
LAB_CONFIG_PATH = HERE.parents[1] / "jupyter-config" / "make-lab"
TOKEN = "browser-test-token"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
# Agents the browser tests use: the offline demo, and one that puts the XSS corpus in every
# channel a model controls (text, reasoning, tool names, tool arguments, tool results).
AGENTS = {
    "demo": "deltakit_nb.offline:demo_agent",
    "team": "deltakit_nb.offline:demo_team",
    "workflow": "deltakit_nb.offline:demo_workflow",
    "xss": "xss_agents:xss_agent",
    "rich": "rich_agents:rich_agent",
}


class LabProcess:
    def __init__(
        self,
        base_url: str = "/",
        *,
        demo_delay: float = 0.01,
        extra_args: list[str] | None = None,
        app: str = "jupyterlab",
    ) -> None:
        self.base_url = "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"
        self.tmp = Path(tempfile.mkdtemp(prefix="deltakit-browser-"))
        self.root = self.tmp / "root"
        self.root.mkdir()
        self.demo_delay = demo_delay
        self.extra_args = extra_args or []
        self.app = app
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.tmp / "lab.log"
        self._log: Any = None

    # ---- urls ----------------------------------------------------------------------------

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base(self) -> str:
        """Absolute URL of the server's base, ending with a slash."""
        return self.origin + self.base_url

    def lab_url(self, notebook: str, *, reset: bool = True) -> str:
        return f"{self.base}lab/tree/{notebook}?token={TOKEN}" + ("&reset" if reset else "")

    # ---- life cycle ------------------------------------------------------------------------

    def start(self, timeout: float = 90.0) -> float:
        self.port = free_port()
        config_dir = self.tmp / "jupyter-config"
        config_dir.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("DELTAKIT_")}
        pythonpath = os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p)
        env.update(
            AGNO_TELEMETRY="false",
            DELTAKIT_DEMO_DELAY=str(self.demo_delay),
            JUPYTER_DATA_DIR=str(self.tmp / "jupyter-data"),
            JUPYTER_CONFIG_DIR=str(config_dir),
            # `make lab`'s default settings: no "get notified about Jupyter news?" toast over the
            # notebook (it covers the widget's Send button).
            JUPYTER_CONFIG_PATH=str(LAB_CONFIG_PATH),
            JUPYTER_RUNTIME_DIR=str(self.tmp / "jupyter-runtime"),
            IPYTHONDIR=str(self.tmp / "ipython"),
            PYTHONPATH=pythonpath,
        )
        cmd = [
            sys.executable,
            "-m",
            self.app,
            f"--port={self.port}",
            "--ip=127.0.0.1",
            "--no-browser",
            "--allow-root",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={self.root}",
            f"--ServerApp.base_url={self.base_url}",
            f"--LabApp.workspaces_dir={self.tmp / 'workspaces'}",
            "--LabApp.expose_app_in_browser=True",
            # Nothing may call an outside host: no news feed, update check or PyPI manager.
            "--LabApp.news_url=None",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
            "--JupyterNotebookApp.expose_app_in_browser=True",
            f"--DeltakitApp.data_dir={self.tmp / 'deltakit'}",
            f"--DeltakitApp.agents={json.dumps(AGENTS)}",
            "--DeltakitApp.entry_point_agents=False",
            *self.extra_args,
        ]
        self._log = open(self.log_path, "ab")
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd, env=env, cwd=self.tmp, stdout=self._log, stderr=subprocess.STDOUT
        )
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited ({self.proc.returncode}):\n{self.log()}")
            try:
                self.get("api/status")
                return time.perf_counter() - t0
            except OSError:
                time.sleep(0.05)
        raise TimeoutError(f"jupyter lab did not answer in {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        terminate(self.proc)
        if self._log is not None:
            self._log.close()
            self._log = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    # ---- REST ------------------------------------------------------------------------------

    def request(self, path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(
            self.base + path.lstrip("/"),
            method=method,
            headers={"Authorization": f"token {TOKEN}"},
        )
        with urllib.request.urlopen(req, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def get(self, path: str) -> Any:
        return self.request(path)

    def run(self, run_id: str) -> dict[str, Any]:
        """GET {base}deltakit/runs/{id}: the server's record of a run, events included."""
        data: dict[str, Any] = self.get(f"deltakit/runs/{run_id}")
        return data

    def run_text(self, run_id: str) -> str:
        events = self.run(run_id)["events"]
        return "".join(e["delta"] for e in events if e["type"] == "text_delta")

    def shutdown_kernels(self) -> None:
        for kernel in self.get("api/kernels"):
            self.request(f"api/kernels/{kernel['id']}", method="DELETE")

    # ---- notebooks -------------------------------------------------------------------------

    def write_notebook(self, name: str, *sources: str) -> str:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(src) for src in sources]
        nb.metadata["kernelspec"] = {
            "name": "python3",
            "display_name": "Python 3 (ipykernel)",
            "language": "python",
        }
        nbformat.write(nb, self.root / name)
        return name

    def read_notebook(self, name: str) -> Any:
        return nbformat.read(self.root / name, as_version=4)

    def sessions(self) -> list[dict[str, Any]]:
        data: list[dict[str, Any]] = self.get("api/sessions")
        return data

    def shutdown_sessions(self) -> None:
        """Delete every session, which shuts its kernel down (the notebook stays on disk)."""
        for s in self.sessions():
            self.request(f"api/sessions/{s['id']}", method="DELETE")


@contextmanager
def running_lab(**kwargs: Any) -> Iterator[LabProcess]:
    """A started LabProcess(**kwargs), stopped (and its folder removed) on the way out."""
    proc = LabProcess(**kwargs)
    try:
        proc.start()
        yield proc
    finally:
        proc.stop()
