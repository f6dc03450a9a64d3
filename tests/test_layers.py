"""The packages' layers: ``storage`` imports neither ``ingest`` nor ``analytics``, and
``analytics`` does not import ``ingest`` (the ingest node of a split deployment runs
without analytics, and the primary reads what ingest stored through ``storage``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BELOW = {"storage": ("ingest", "analytics", "tourviews"), "analytics": ("ingest", "tourviews")}


def imported(path: Path) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


@pytest.mark.parametrize("package", sorted(BELOW))
def test_a_package_imports_nothing_from_the_layers_above_it(package: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, module in imported(path)
        if module.split(".")[0] in BELOW[package]
    ]
    assert wrong == []
