"""Helpers that drive JupyterLab / Notebook 7 and the chat widget in a Playwright page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from playwright.sync_api import Browser, Locator, Page, Playwright

from .labproc import CHROMIUM, CHROMIUM_ARGS, LabProcess

TIMEOUT_MS = 30_000
LOCAL_HOSTS = ("127.0.0.1", "localhost")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"

# True once the current document's kernel is connected: the first Shift+Enter is lost if it is
# sent before that ("Idle" in the status bar is not a reliable signal).
KERNEL_CONNECTED = """() => {
  const k = window.jupyterapp?.shell?.currentWidget?.sessionContext?.session?.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}"""


def launch_chromium(pw: Playwright) -> Browser:
    if not Path(CHROMIUM).exists():
        raise RuntimeError(
            f"{CHROMIUM} is missing: the browser tests need Debian's Chromium "
            "(`make chromium`, or `apt-get install chromium`)"
        )
    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def open_session(browser: Browser, lab: LabProcess) -> Iterator[Session]:
    """A fresh browser context and page on `lab`; the server's kernels are shut down after."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    try:
        session = Session(context.new_page(), lab)
        yield session
    finally:
        context.close()
        lab.shutdown_kernels()
    # Nothing in the page (JupyterLab, the widget, a payload) may call an outside host.
    assert not session.outside, f"requests to outside hosts: {session.outside}"


class Session:
    """One Playwright page on one Jupyter server, with what a test wants to look at later."""

    def __init__(self, page: Page, lab: LabProcess):
        self.page = page
        self.lab = lab
        self.console: list[str] = []
        self.dialogs: list[str] = []
        page.set_default_timeout(TIMEOUT_MS)
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))
        page.on("dialog", self._dialog)
        self.outside: list[str] = []
        self._watch(page)
        page.context.on("page", self._watch)  # Notebook 7 opens notebooks in new tabs

    def _watch(self, page: Page) -> None:
        page.on("request", self._request)
        page.on("websocket", self._request)

    def _request(self, request: Any) -> None:
        url = urlsplit(request.url)
        if url.scheme in ("http", "https", "ws", "wss") and url.hostname not in LOCAL_HOSTS:
            self.outside.append(request.url)

    def _dialog(self, dialog: Any) -> None:
        # beforeunload ("leave the page?") is expected when reloading a dirty notebook; any other
        # dialog (alert, confirm, prompt) would come from a payload, so it is recorded.
        if dialog.type != "beforeunload":
            self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.accept()

    # ---- JupyterLab --------------------------------------------------------------------------

    def open_lab(self, notebook: str, *, reset: bool = True) -> None:
        self.page.goto(self.lab.lab_url(notebook, reset=reset))
        self.wait_notebook()

    def open_chat(self, notebook: str, *cells: str) -> Locator:
        """Write a notebook of `cells`, open it in JupyterLab, run its first cell (the one that
        shows the widget) and wait until the widget is connected."""
        self.lab.write_notebook(notebook, *cells)
        self.open_lab(notebook)
        self.run_cell(0)
        return self.wait_chat()

    def wait_notebook(self) -> None:
        self.page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        self.wait_kernel()

    def wait_kernel(self) -> None:
        self.page.wait_for_function(KERNEL_CONNECTED, timeout=60_000, polling=100)

    def command(self, name: str, args: dict[str, Any] | None = None) -> Any:
        return self.page.evaluate(
            "([name, args]) => window.jupyterapp.commands.execute(name, args)", [name, args or {}]
        )

    def save(self) -> None:
        """Save the notebook (with the widget state) and wait until it is clean on disk."""
        self.command("docmanager:save")
        self.page.wait_for_function(
            "() => window.jupyterapp.shell.currentWidget?.context?.model?.dirty === false"
        )

    def run_cell(self, index: int) -> None:
        cell = self.page.locator(".jp-Notebook .jp-Cell").nth(index)
        cell.locator(".jp-InputArea-editor").click()
        self.page.keyboard.press("Shift+Enter")

    def cell_output(self, index: int, contains: str) -> str:
        """The text output of a cell once it contains `contains`."""
        out = self.page.locator(".jp-Notebook .jp-Cell").nth(index).locator(".jp-OutputArea-output")
        out.filter(has_text=contains).first.wait_for()
        return "\n".join(out.all_inner_texts())

    # ---- the widget ---------------------------------------------------------------------------

    def chat(self, index: int = 0) -> Locator:
        return self.page.locator(".dk-chat").nth(index)

    def wait_chat(self, index: int = 0) -> Locator:
        chat = self.chat(index)
        chat.and_(self.page.locator("[data-conn=open]")).wait_for(timeout=60_000)
        return chat

    def send(self, text: str, index: int = 0) -> int:
        """Type `text` in the widget and press Enter; return the number the new run will have."""
        chat = self.chat(index)
        self.wait_idle(index)
        count = int(chat.get_attribute("data-run-count") or 0)
        chat.locator(".dk-input").fill(text)
        chat.locator(".dk-input").press("Enter")
        self.page.wait_for_function(
            "([i, n]) => document.querySelectorAll('.dk-chat')[i]?.dataset.runCount === String(n)",
            arg=[index, count + 1],
        )
        return count + 1

    def wait_idle(self, index: int = 0, timeout: int = TIMEOUT_MS) -> None:
        """Wait until the widget has no run in progress."""
        self.page.wait_for_function(
            """(i) => { const c = document.querySelectorAll('.dk-chat')[i];
                 return !!c && !['pending', 'running'].includes(c.dataset.runStatus); }""",
            arg=index,
            timeout=timeout,
        )

    def wait_status(self, status: str, index: int = 0, timeout: int = TIMEOUT_MS) -> str:
        """Wait until the widget's current run has `status` and its markdown is all rendered
        (the widget renders a long answer over several frames); return its run id."""
        chat = self.chat(index)
        shown = f"[data-run-status={status}]:not([data-rendering])"
        chat.and_(self.page.locator(shown)).wait_for(timeout=timeout)
        return chat.get_attribute("data-run-id") or ""

    def run_el(self, n: int, index: int = 0) -> Locator:
        """The n-th run (1-based) of widget `index`."""
        return self.chat(index).locator(".dk-run").nth(n - 1)

    def assistant_text(self, n: int, index: int = 0) -> str:
        return self.run_el(n, index).locator(".dk-assistant .dk-text").inner_text().strip()

    def record_text(self, index: int = 0) -> None:
        """Record, at every DOM change of widget `index`, the run status and the length of its
        last assistant text, so a test can tell a streamed answer from one that appeared whole."""
        self.page.evaluate(
            """(i) => {
              const root = document.querySelectorAll('.dk-chat')[i];
              window.__dkSamples = [];
              const sample = () => {
                const texts = root.querySelectorAll('.dk-assistant .dk-text');
                const last = texts[texts.length - 1];
                const length = last ? last.textContent.length : 0;
                window.__dkSamples.push([root.dataset.runStatus, length]);
              };
              new MutationObserver(sample).observe(root, { subtree: true, childList: true,
                characterData: true, attributes: true });
            }""",
            index,
        )

    def recorded_text(self) -> list[tuple[str, int]]:
        return [tuple(s) for s in self.page.evaluate("() => window.__dkSamples")]
