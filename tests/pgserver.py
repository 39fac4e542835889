"""A real PostgreSQL server for the tests and benchmarks: initdb + pg_ctl in a temp dir.

Debian's `postgresql` package (`make postgres` installs it) gives the binaries; they refuse to
run as root, so as root the server runs as the `postgres` user the package creates (its data
dir, socket dir and log in a temp dir that user owns). Trust authentication, TCP on 127.0.0.1
with a free port: nothing outside the machine can reach it and nothing here needs a password.

    server = PostgresServer().start()
    url = server.create_database()   # postgresql://postgres@127.0.0.1:PORT/deltakit_1
    server.restart()                 # stop() / start() for fault tests
    server.destroy()
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

# Faster for tests and benchmarks of our code, not of the disk: the data dir is thrown away.
# A crash of the server process (not of the machine) still loses nothing with these.
FAST_SETTINGS = ("fsync=off", "full_page_writes=off")
SUPERUSER = "postgres"


def bin_dir() -> Path:
    """The folder of initdb and pg_ctl: $PG_BINDIR, Debian's newest, or the PATH's."""
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3])
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise RuntimeError(
        "PostgreSQL's initdb is not installed: `make postgres` installs Debian's postgresql"
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self, settings: tuple[str, ...] = FAST_SETTINGS):
        self.bin = bin_dir()
        self.settings = settings
        self.root = Path(tempfile.mkdtemp(prefix="deltakit-pg-"))
        self.data = self.root / "data"
        self.log_path = self.root / "server.log"
        self.port = free_port()
        self._names = itertools.count(1)
        # As root, everything runs as the `postgres` user (initdb and pg_ctl refuse root).
        self.user: str | None = None
        if os.getuid() == 0:
            self.user = os.environ.get("PG_TEST_USER", "postgres")
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self.root.chmod(0o700)

    def _run(self, *args: str, timeout: float = 60.0) -> str:
        proc = subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            user=self.user,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
            env={**os.environ, "LC_ALL": "C", "TZ": "UTC"},
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed ({proc.returncode}): {proc.stderr.strip()}\n{self.log()}"
            )
        return proc.stdout

    def start(self) -> PostgresServer:
        if not (self.data / "PG_VERSION").exists():
            self._run(
                "initdb",
                "-D",
                str(self.data),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-sync",
            )
        options = " ".join(
            [
                f"-p {self.port}",
                "-h 127.0.0.1",
                f"-k {self.root}",
                *(f"-c {s}" for s in self.settings),
            ]
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-l",
            str(self.log_path),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        return self

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (`immediate`: as in a crash, no shutdown checkpoint)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    @property
    def running(self) -> bool:
        proc = subprocess.run(
            [str(self.bin / "pg_ctl"), "-D", str(self.data), "status"],
            user=self.user,
            capture_output=True,
            cwd=self.root,
        )
        return proc.returncode == 0

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{dbname}"

    def execute(self, sql: str, dbname: str = "postgres") -> list[tuple[Any, ...]]:
        """Run one statement outside a transaction (CREATE DATABASE needs that)."""
        import psycopg

        with psycopg.connect(self.url(dbname), autocommit=True, connect_timeout=10) as conn:
            cur = conn.execute(sql)  # type: ignore[arg-type]
            return cur.fetchall() if cur.description else []

    def create_database(self, name: str | None = None) -> str:
        """A new, empty database; its URL."""
        name = name or f"deltakit_{os.getpid()}_{next(self._names)}"
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def destroy(self) -> None:
        """Stop the server (if it runs) and remove its files."""
        if self.data.exists() and self.running:
            try:
                self.stop("immediate")
            except (RuntimeError, subprocess.TimeoutExpired):
                pass
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.destroy()
