"""The parts of uvicorn that ``tourviews.server.BoundedProtocol`` relies on.

They are not uvicorn's public API, so ``pyproject.toml`` pins uvicorn to the minor
version they are tested with; this fails first if another version is installed or a
hook is gone (the abuse suite checks what they do).
"""

from __future__ import annotations

import inspect
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tourviews.server import BoundedProtocol

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
HOOKS = ("connection_made", "connection_lost", "data_received", "on_message_begin",
         "on_headers_complete", "on_message_complete", "on_response_complete",
         "_start_asgi_task", "shutdown")  # fmt: skip


def test_the_installed_uvicorn_is_the_pinned_minor_version() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pin = next(d for d in dependencies if d.startswith("uvicorn"))
    low, high = re.fullmatch(r"uvicorn\[standard\]>=([\d.]+),<([\d.]+)", pin).groups()  # type: ignore[union-attr]
    installed = tuple(int(n) for n in version("uvicorn").split(".")[:2])
    assert tuple(int(n) for n in low.split(".")[:2]) <= installed
    assert installed < tuple(int(n) for n in high.split(".")[:2])


def test_every_hook_the_server_overrides_is_uvicorns() -> None:
    for name in HOOKS:
        assert name in vars(BoundedProtocol), name  # the server overrides it
        assert callable(getattr(HttpToolsProtocol, name, None)), f"uvicorn has no {name}"
    assert "timeout_keep_alive_task" in inspect.getsource(HttpToolsProtocol)
    assert "service_unavailable" in inspect.getsource(HttpToolsProtocol.on_headers_complete)
    assert callable(service_unavailable)
