"""Bad input to the kernel-agent API gets a clear error, and a kernel with no Jupyter server
(a script, nbval) gets a warning instead of a chat that silently cannot run."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from agno.agent import Agent
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from deltakit_nb.kernel import link
from deltakit_nb.kernel.widget import ChatWidget
from deltakit_nb.kernel_wire import agent_name, split_agent_name
from deltakit_nb.offline import OfflineModel


@pytest.fixture
def no_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("DELTAKIT_SERVER_URL", "DELTAKIT_SERVER_TOKEN", "JUPYTERHUB_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "no-servers"))
    monkeypatch.setattr(link, "_link", None)  # a fresh link for this process
    yield


def test_agent_must_be_an_agent_or_a_callable(no_server: None) -> None:
    with pytest.raises(TypeError, match="an agno Agent or a callable returning one, not int"):
        ChatWidget(agent=42)


def test_no_server_warns_and_names_the_way_out(no_server: None) -> None:
    agent = Agent(name="lonely", model=OfflineModel(), telemetry=False)
    with pytest.warns(UserWarning, match="set DELTAKIT_SERVER_URL"):
        chat = ChatWidget(agent=agent)
    assert split_agent_name(chat.agent) is not None
    assert repr(chat) == "ChatWidget(agent=<kernel agent 'lonely'>)"


def test_chat_magic_agent_var_errors(no_server: None) -> None:
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "deltakit_nb")
    try:
        with pytest.raises(UsageError, match="no variable 'nothing_here'"):
            ip.run_line_magic("chat", "--agent-var nothing_here")
        ip.user_ns["not_an_agent"] = "text"
        with pytest.raises(UsageError, match="holds str, not an agno Agent"):
            ip.run_line_magic("chat", "--agent-var not_an_agent")
        with pytest.raises(UsageError, match="not both"):
            ip.run_line_magic("chat", "--agent demo --agent-var not_an_agent")
    finally:
        ip.run_line_magic("unload_ext", "deltakit_nb")


def test_agent_names() -> None:
    assert split_agent_name(agent_name("abc", "1-x")) == ("abc", "1-x")
    assert split_agent_name("demo") is None
    assert split_agent_name("kernel:") is None
    assert split_agent_name("kernel:abc/") is None


def test_kernel_side_never_imports_server_side() -> None:
    code = (
        "import sys, deltakit_nb.kernel.link, deltakit_nb.kernel.tools, deltakit_nb.kernel.widget\n"
        "server = ('app', 'handlers', 'runs', 'kernel_runs', 'store', 'agents', 'eventlog')\n"
        "print([m for m in sys.modules if m.startswith('jupyter_server') or "
        "m.split('.')[-1] in server and m.startswith('deltakit_nb')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
