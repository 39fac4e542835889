"""The package as a user gets it: sdist and wheel built as pip builds them, the wheel installed
into a fresh venv with no Node on PATH, and a real `jupyter server` from that venv.

Slow (a fresh venv resolves every dependency; pip's cache keeps it to about a minute), so it
has its own generous timeout.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from jupyterproc import free_port, terminate
from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect
from wsclient import recv_until_terminal, send, text

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = "deltakit_nb/static/chat.js"
TOKEN = "wheel-test-token"
# Caches, test output and local environments a working tree collects: never in the sdist.
JUNK = {
    ".hypothesis/examples/a1/b2": "x",
    "test-artifacts/shot.png": "x",
    "js/node_modules/esbuild/index.js": "x",
    ".venv/pyvenv.cfg": "x",
    "build/lib/deltakit_nb/x.py": "x",
    "dist/deltakit_nb-0.0.0.tar.gz": "x",
    ".pytest_cache/README.md": "x",
    ".mypy_cache/x.json": "x",
    ".ruff_cache/x": "x",
}
JUNK_DIRS = {".hypothesis", "test-artifacts", "node_modules", ".venv", "build", "dist"} | {
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
}


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="deltakit-wheel-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def no_node_path(*dirs: Path) -> str:
    """A PATH of only `dirs`: no node and no npm (Debian puts node in /usr/bin, so /usr/bin
    cannot be on it; nothing the build, pip or the server run needs a system tool)."""
    path = os.pathsep.join(str(d) for d in dirs)
    assert shutil.which("node", path=path) is None and shutil.which("npm", path=path) is None
    return path


def run(cmd: list[str], timeout: float, env: dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=cwd
    )
    assert proc.returncode == 0, f"{cmd} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def source_copy(workdir: Path) -> Path:
    """The working tree (bundle included, as `make dev` leaves it) plus the junk a used tree
    holds, so that what keeps the junk out of the sdist is the packaging, not this copy."""
    bundle = ROOT / BUNDLE
    assert bundle.is_file(), f"{bundle} is missing: build it first (`make dev`)"
    src = workdir / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(".git", "__pycache__", *JUNK_DIRS),
        symlinks=True,
    )
    for rel, content in JUNK.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_text(content)
    return src


def wait_up(proc: subprocess.Popen[bytes], base: str, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"jupyter server exited:\n{log.read_text(errors='replace')}"
        try:
            get(base, "api/status")
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(log.read_text(errors="replace"))


def get(base: str, path: str) -> tuple[int, bytes]:
    req = urllib.request.Request(base + path, headers={"Authorization": f"token {TOKEN}"})
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as e:
        return int(e.code), bytes(e.read())


def start_server(
    workdir: Path, python: Path, port: int, path: str, log: Path
) -> subprocess.Popen[bytes]:
    (workdir / "root").mkdir()
    env = {
        "PATH": path,
        "HOME": str(workdir / "home"),
        "JUPYTER_CONFIG_DIR": str(workdir / "jupyter-config"),
        "JUPYTER_DATA_DIR": str(workdir / "jupyter-data"),
        "JUPYTER_RUNTIME_DIR": str(workdir / "jupyter-runtime"),
        "IPYTHONDIR": str(workdir / "ipython"),
        "AGNO_TELEMETRY": "false",
        "DELTAKIT_DEMO_DELAY": "0",
    }
    cmd = [
        str(python),
        "-m",
        "jupyter_server",
        f"--port={port}",
        "--ip=127.0.0.1",
        "--no-browser",
        "--allow-root",
        f"--IdentityProvider.token={TOKEN}",
        f"--ServerApp.root_dir={workdir / 'root'}",
        f"--DeltakitApp.data_dir={workdir / 'deltakit'}",
    ]
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, env=env, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.timeout(900)
async def test_wheel_from_sdist_installs_and_runs_without_node(workdir: Path) -> None:
    bundle = (ROOT / BUNDLE).read_bytes()
    src = source_copy(workdir)
    dist = workdir / "dist"
    build_path = no_node_path(Path(sys.executable).parent)
    pip_env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    # `python -m build` with no target builds the sdist, then the wheel from that sdist (as pip
    # does with an sdist): with the bundle in the sdist, no Node is needed.
    run(
        [sys.executable, "-m", "build", "--outdir", str(dist), str(src)],
        timeout=300,
        env={**pip_env, "PATH": build_path},
        cwd=workdir,
    )
    (sdist,) = dist.glob("deltakit_nb-*.tar.gz")
    (wheel,) = dist.glob("deltakit_nb-*.whl")

    with tarfile.open(sdist) as tar:
        names = [n.split("/", 1)[1] for n in tar.getnames() if "/" in n]
        member = tar.extractfile(f"{sdist.name[: -len('.tar.gz')]}/{BUNDLE}")
        assert member is not None and member.read() == bundle
    junk = sorted(n for n in names if JUNK_DIRS & set(n.split("/")))
    assert junk == [], f"caches or test output in the sdist: {junk}"
    assert "js/src/index.js" in names and "js/package-lock.json" in names  # buildable from it
    with zipfile.ZipFile(wheel) as whl:
        assert whl.read(BUNDLE) == bundle
        assert "deltakit_nb/static/loader.js" in whl.namelist()

    # A fresh venv (no system site-packages) and the wheel installed into it with no Node.
    venv = workdir / "venv"
    run([sys.executable, "-m", "venv", str(venv)], timeout=120, env=pip_env, cwd=workdir)
    vbin = venv / "bin"
    vpath = no_node_path(vbin)
    t0 = time.monotonic()
    run(
        # --no-compile: byte-compiling every dependency up front is most of pip's time here, and
        # the server compiles what it imports anyway.
        [
            str(vbin / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--prefer-binary",
            "--no-compile",
            str(wheel),
        ],
        timeout=600,
        env={**pip_env, "PATH": vpath},
        cwd=workdir,
    )
    print(f"pip install of the wheel into a fresh venv: {time.monotonic() - t0:.1f} s")
    where = run(
        [str(vbin / "python"), "-c", "import deltakit_nb; print(deltakit_nb.__file__)"],
        timeout=60,
        env={"PATH": vpath, "HOME": str(workdir)},
        cwd=workdir,
    )
    assert where.startswith(str(venv)), where

    # A real server from that venv, with nothing from this checkout or the user's Jupyter set-up:
    # the extension must be enabled by the wheel's own jupyter-config.
    port = free_port()
    base = f"http://127.0.0.1:{port}/"
    log = workdir / "server.log"
    server = start_server(workdir, vbin / "python", port, vpath, log)
    try:
        wait_up(server, base, log)
        assert "deltakit_nb | extension was successfully loaded." in log.read_text()

        # The first run after the server started (it is the one that imports agno and opens the
        # agno SqliteDb, which needs sqlalchemy.ext.asyncio and so greenlet).
        req = HTTPRequest(
            f"ws://127.0.0.1:{port}/deltakit/ws", headers={"Authorization": f"token {TOKEN}"}
        )
        ws = await websocket_connect(req)
        await send(ws, {"message": "echo installed from a wheel"})
        events = await recv_until_terminal(ws)
        ws.close()
        assert events[-1]["type"] == "done", events[-1]
        assert events[-1]["status"] == "completed"
        assert text(events) == "installed from a wheel"

        status, body = get(base, "deltakit/agents")
        assert status == 200, body
        assert "demo" in [a["name"] for a in json.loads(body)["agents"]]
        status, body = get(base, "static/deltakit_nb/chat.js")
        assert status == 200 and body == bundle
    except BaseException:
        print(log.read_text(errors="replace"))
        raise
    finally:
        terminate(server)


@pytest.mark.timeout(300)
def test_a_clone_without_the_bundle_and_without_npm_does_not_build(workdir: Path) -> None:
    """No silent wheel without its front end: from a clone where npm has not run, building
    needs npm, and without it the build fails, saying so."""
    src = source_copy(workdir)
    (src / BUNDLE).unlink()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PATH"] = no_node_path(Path(sys.executable).parent)
    dist = workdir / "dist"
    attempts = {
        "wheel": [sys.executable, "-m", "build", "--wheel", "--outdir", str(dist), str(src)],
        "sdist": [sys.executable, "-m", "build", "--sdist", "--outdir", str(dist), str(src)],
        # pip prepares an editable install's metadata through the same hook; --dry-run so that
        # nothing is installed into this environment even if it got that far.
        "editable": [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-deps",
            "-e",
            str(src),
        ],
    }
    for name, cmd in attempts.items():
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=240, check=False, env=env, cwd=workdir
        )
        output = proc.stdout + proc.stderr
        assert proc.returncode != 0, f"{name} built without npm:\n{output}"
        assert "Could not find cmd (npm) in path" in output, f"{name}:\n{output}"
    assert not dist.exists() or not list(dist.iterdir())
