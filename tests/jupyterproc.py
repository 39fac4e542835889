"""A real `jupyter server` process with the extension: started, killed and restarted for real.

Used by the durability tests and by the benchmarks.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

TOKEN = "test-token"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def terminate(proc: subprocess.Popen[bytes] | None, grace: float = 15.0) -> None:
    """Stop a server as a user would (SIGTERM: it runs its clean-up), SIGKILL after `grace`."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class JupyterProcess:
    def __init__(
        self,
        data_dir: Path | None = None,
        *args: str,
        extension: bool = True,
        env: dict[str, str] | None = None,
    ):
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix="deltakit-data-"))
        self.args = list(args)
        self.extension = extension
        self.env = env or {}
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "server.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/deltakit/ws"

    def start(self, timeout: float = 60.0) -> float:
        """Start the server; return the seconds until it answered."""
        self.port = free_port()
        root = self.data_dir / "root"
        root.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "AGNO_TELEMETRY": "false",
            "DELTAKIT_DEMO_DELAY": "0",
            "JUPYTER_DATA_DIR": str(self.data_dir / "jupyter-data"),
            **self.env,
        }
        cmd = [
            sys.executable,
            "-m",
            "jupyter_server",
            f"--port={self.port}",
            "--no-browser",
            "--allow-root",
            f"--IdentityProvider.token={TOKEN}",
            f"--ServerApp.root_dir={root}",
            f'--ServerApp.jpserver_extensions={{"deltakit_nb": {self.extension}}}',
            f"--DeltakitApp.data_dir={self.data_dir / 'deltakit'}",
            *self.args,
        ]
        self._log = open(self.log_path, "ab")
        start = time.perf_counter()
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        while time.perf_counter() - start < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log()}")
            try:
                self.get("/api/status")
                return time.perf_counter() - start
            except OSError:
                time.sleep(0.02)
        raise TimeoutError(self.log())

    def request(self, path: str, method: str = "GET") -> Any:
        req = urllib.request.Request(
            self.base + path, method=method, headers={"Authorization": f"token {TOKEN}"}
        )
        if method != "GET":
            req.data = b""
        with urllib.request.urlopen(req, timeout=10) as response:
            return json.loads(response.read())

    def get(self, path: str) -> Any:
        return self.request(path)

    def stop(self) -> None:
        terminate(self.proc)
        self._log.close()

    def kill(self) -> None:
        """SIGKILL: no clean-up of any kind, as in a crash."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait()
        self._log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def __enter__(self) -> JupyterProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
