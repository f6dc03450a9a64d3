"""The parts of uvicorn that ``tourviews.protocol.BoundedProtocol`` relies on.

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

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tourviews.protocol import BoundedProtocol

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"
HOOKS = ("connection_made", "connection_lost", "data_received", "on_message_begin",
         "on_headers_complete", "on_message_complete", "on_response_complete",
         "shutdown")  # fmt: skip
# what the overrides read and set on the protocol: none of them private (no underscore)
ATTRIBUTES = ("app", "limit_concurrency", "connections", "tasks", "cycle", "transport", "loop",
              "timeout_keep_alive_task")  # fmt: skip


def test_the_installed_uvicorn_is_the_pinned_minor_version() -> None:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    pin = next(d for d in dependencies if d.startswith("uvicorn"))
    low, high = re.fullmatch(r"uvicorn\[standard\]>=([\d.]+),<([\d.]+)", pin).groups()  # type: ignore[union-attr]
    installed = tuple(int(n) for n in version("uvicorn").split(".")[:2])
    assert tuple(int(n) for n in low.split(".")[:2]) <= installed
    assert installed < tuple(int(n) for n in high.split(".")[:2])


def test_every_hook_the_server_overrides_is_uvicorns() -> None:
    for name in HOOKS:
        assert name in vars(BoundedProtocol), name  # the protocol overrides it
        assert callable(getattr(HttpToolsProtocol, name, None)), f"uvicorn has no {name}"
    source = inspect.getsource(HttpToolsProtocol.__init__)
    for name in ATTRIBUTES:
        assert f"self.{name} " in source or f"self.{name}:" in source, name


def test_no_override_reaches_into_uvicorns_private_names() -> None:
    overridden = [name for name in vars(BoundedProtocol)
                  if name in vars(HttpToolsProtocol) and not name.startswith("__")]  # fmt: skip
    assert overridden, "the protocol overrides uvicorn's hooks"
    assert [name for name in overridden if name.startswith("_")] == []
    # the limit's own answer replaces uvicorn's plain-text one (tests/abuse)
    assert "self.limit_concurrency" in inspect.getsource(HttpToolsProtocol.on_headers_complete)
