"""A real Chromium (Debian's), driven by Playwright, and a host page on another origin."""

from __future__ import annotations

import functools
import http.server
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.conftest import ServerProcess, StartServer

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


def command(data_dir: Path, *args: str) -> str:
    """What ``tourviews ARGS --data DATA_DIR`` prints, stripped."""
    result = subprocess.run(
        [sys.executable, "-m", "tourviews", *args, "--data", str(data_dir)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return result.stdout.strip()


@pytest.fixture
def service(data_dir: Path, start: StartServer) -> tuple[ServerProcess, str]:
    """A real server with tour t1 of org acme, and a token of acme."""
    command(data_dir, "tours", "add", "t1", "--org", "acme")
    token = command(data_dir, "tokens", "create", "--org", "acme")
    return start(data_dir), token


def desktop_agent(browser: Browser) -> str:
    """What this Chromium sends when it is not headless (the version is the real one)."""
    return (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{browser.version} Safari/537.36"
    )


def static_site(folder: Path, host: str) -> Iterator[tuple[str, Path]]:
    """``folder`` served on its own loopback port, named ``host`` in the URL: (URL, folder)."""
    folder.mkdir()
    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://{host}:{server.server_address[1]}", folder
    server.shutdown()


@pytest.fixture
def host_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A static site on its own port (another origin than the service): (URL, folder)."""
    yield from static_site(tmp_path / "site", "127.0.0.1")


@pytest.fixture
def embedding_site(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """Another site, named ``localhost``: another host than the host site's and the
    service's, as a property portal that puts a tour in an iframe is: (URL, folder)."""
    yield from static_site(tmp_path / "portal", "localhost")


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass
