"""Start a real `jupyter server` with the extension in a subprocess, for benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 60.0) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < timeout:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return time.perf_counter() - start
        except Exception:
            time.sleep(0.02)
    raise TimeoutError(url)


@contextmanager
def jupyter_server(extension: bool = True, *extra: str) -> Iterator[tuple[int, str]]:
    port, token = free_port(), "bench-token"
    root = tempfile.mkdtemp(prefix="deltakit-bench-")
    env = {**os.environ, "AGNO_TELEMETRY": "false", "DELTAKIT_DEMO_DELAY": "0"}
    args = [
        sys.executable,
        "-m",
        "jupyter_server",
        f"--port={port}",
        "--no-browser",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f'--ServerApp.jpserver_extensions={{"deltakit_nb": {extension!s}}}',
        "--ServerApp.log_level=WARN",
        "--allow-root",
        *extra,
    ]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_http(f"http://127.0.0.1:{port}/api/status?token={token}")
        yield port, token
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
