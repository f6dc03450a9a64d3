"""A real Chromium (Debian's), driven by Playwright, and a host page on another origin."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # Per module: Playwright's sync API keeps an event loop on this thread while it
    # runs, and the tests of other modules start loops of their own.
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (see .ci/run)")
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """Chromium as a person runs it: not marked as automated (navigator.webdriver false)."""
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=[*FLAGS, "--disable-blink-features=AutomationControlled"],
        ignore_default_args=["--enable-automation"],
    )
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def marked_browser(playwright: Playwright) -> Iterator[Browser]:
    """Chromium as Playwright launches it by default: navigator.webdriver is true."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
    yield browser
    browser.close()


def desktop_agent(browser: Browser) -> str:
    """What this Chromium sends when it is not headless (the version is the real one)."""
    return (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{browser.version} Safari/537.36"
    )


@pytest.fixture
def host_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static site on its own port (another origin than the service): (URL, folder)."""
    folder = tmp_path / "site"
    folder.mkdir()
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder
    server.shutdown()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass
