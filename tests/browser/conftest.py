"""Real-browser acceptance tests: one `jupyter lab` and one headless Debian Chromium for all.

Nothing here skips: without /usr/bin/chromium every test errors, loudly (`make test` installs it).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from .browserkit import Session, launch_chromium, open_session
from .labproc import LabProcess, running_lab


# Playwright's sync API marks its own asyncio loop as this thread's running loop between calls.
# pytest_jupyter (loaded by tests/conftest.py for the server tests) has autouse fixtures that
# take and close "the" loop around every test, which breaks under Playwright: these tests use
# no in-process server, so they are switched off here. For the same reason Playwright, the
# browser and the lab are package-scoped (this folder is a package): they are gone before the
# server tests in tests/ run.
@pytest.fixture(autouse=True)
def jp_asyncio_loop() -> None:
    return None


@pytest.fixture(autouse=True)
def jp_server_cleanup() -> None:
    return None


@pytest.fixture(scope="package")
def lab() -> Iterator[LabProcess]:
    with running_lab() as proc:
        yield proc


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    b = launch_chromium(playwright)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def session(browser: Browser, lab: LabProcess) -> Iterator[Session]:
    """A fresh browser context and page on the shared lab; its kernels are shut down after."""
    yield from open_session(browser, lab)
