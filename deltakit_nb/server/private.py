"""The data dir and store files are private to the server's user: they hold every prompt, answer
and tool output. The folder is 0700 and the files 0600, as Jupyter does for its runtime files.

The data dir is ours: created 0700, or tightened when it exists. A store file configured outside
it is created 0600 (tightened if it exists), and so is a folder made for it; a folder the user
already had is left as it is (it may be shared on purpose). SQLite gives its -wal, -shm and
-journal files the database file's mode, so a private database keeps them private; ones left by
an older release are tightened too.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("deltakit_nb")

DIR_MODE = 0o700
FILE_MODE = 0o600
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def tighten(path: Path) -> None:
    """Take group and other permissions away from `path` (if it exists and is ours)."""
    try:
        st = path.stat()
        mode = stat.S_IMODE(st.st_mode)
        if mode & 0o077 and st.st_uid == os.getuid():
            path.chmod(mode & 0o700)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("deltakit_nb: cannot make %s private: %s", path, exc)


def private_folder_for(path: Path) -> None:
    """Create the folder that holds `path` 0700 if it is missing (its missing parents as mkdir
    makes them). An existing folder stays as it is: only the data dir is tightened."""
    folder = path.parent
    if not folder.exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        folder.mkdir(mode=DIR_MODE, exist_ok=True)


def private_sqlite_file(path: Path) -> None:
    """Create an empty database file 0600 (SQLite and agno take an empty file as a new
    database), or tighten an existing one and its side files."""
    private_folder_for(path)
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT, FILE_MODE))
    for suffix in ("", *SQLITE_SIDE_FILES):
        tighten(path.with_name(path.name + suffix))


def private_store(data_dir: str, *db_files: str) -> None:
    """Make the SQLite files and the data dir private before anything opens them. A file that
    cannot be made is logged; opening it then fails as it would have (see store.open_store)."""
    for name in db_files:
        if not name or name == ":memory:":
            continue
        try:
            private_sqlite_file(Path(name))
        except OSError as exc:
            log.warning("deltakit_nb: cannot create %s: %s", name, exc)
    tighten(Path(data_dir))
