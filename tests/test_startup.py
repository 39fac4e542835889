"""Starting a Jupyter server with the extension must not import agno (it costs ~0.4 s)."""

from __future__ import annotations

import subprocess
import sys


def test_server_start_does_not_import_agno(tmp_path: object) -> None:
    code = (
        "import sys\n"
        "from jupyter_server.serverapp import ServerApp\n"
        "app = ServerApp.instance()\n"
        "app.initialize(['--ServerApp.jpserver_extensions={\"deltakit_nb\": True}',"
        " '--port=0', '--no-browser', f'--ServerApp.root_dir={sys.argv[1]}'])\n"
        "assert 'deltakit_nb' in app.extension_manager.extensions\n"
        "assert app.extension_manager.extensions['deltakit_nb'].enabled\n"
        "loaded = [m for m in sys.modules if m == 'agno' or m.startswith('agno.')]\n"
        "print('AGNO', loaded[:3])\n"
        "print('WIDGETS', 'ipywidgets' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert "AGNO []" in out.stdout
    assert "WIDGETS False" in out.stdout


def test_extension_is_enabled_by_the_installed_config() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "jupyter", "server", "extension", "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    listing = out.stdout + out.stderr
    assert "deltakit_nb" in listing and "enabled" in listing.split("deltakit_nb", 1)[1][:40]
