"""The layers of the ``tourviews`` package, from the ground up: ``storage``; then
``ingest`` and ``analytics`` beside each other, neither importing the other (an
ingest node runs without analytics, and the primary reads what ingest stored through
``storage``); then the app (every other module of ``tourviews``: the HTTP app, the
service, the server, the CLI), which may import them all."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tourviews"
LAYERS = ("storage", "ingest", "analytics")
# what each layer must not import: the layers beside and above it
BELOW = {
    "storage": ("ingest", "analytics", "app"),
    "ingest": ("analytics", "app"),
    "analytics": ("ingest", "app"),
}


def layer_of(module: str) -> str | None:
    """The layer of a ``tourviews`` module; None for a module outside the package."""
    parts = module.split(".")
    if parts[0] != "tourviews":
        return None
    if len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]
    return "app"


def imported(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level:
            found.append((node.lineno, "relative import"))
    return found


def test_the_top_level_holds_the_one_package() -> None:
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    assert packages <= {"tourviews", "tests", "benchmarks"}, packages


@pytest.mark.parametrize("layer", sorted(BELOW))
def test_a_layer_imports_nothing_from_the_layers_beside_or_above_it(layer: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((PACKAGE / layer).rglob("*.py"))
        for line, module in imported(path)
        if module == "relative import" or layer_of(module) in BELOW[layer]
    ]
    assert wrong == []
