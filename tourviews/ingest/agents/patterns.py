"""Regular expressions for the native automata, which know no look-around."""

from __future__ import annotations

import re
from collections.abc import Iterable

_LOOK = re.compile(r"\(\?(<?[=!])")


def without_look_around(pattern: str) -> str | None:
    """``pattern`` with positive look-arounds matched and negative ones dropped."""
    while found := _LOOK.search(pattern):
        depth, end = 0, found.start()
        while True:  # find the group's closing parenthesis
            char = pattern[end]
            if char == "\\":
                end += 2
                continue
            depth += {"(": 1, ")": -1}.get(char, 0)
            end += 1
            if depth == 0:
                break
        body = pattern[found.end() : end - 1]
        keep = f"(?:{body})" if found.group(1).endswith("=") else ""
        quantified = pattern[end : end + 1] == "?"
        pattern = (
            pattern[: found.start()]
            + (keep if not quantified else "")
            + pattern[end + quantified :]
        )
    return None if re.search(r"\\\d", pattern) else pattern


def any_of(patterns: Iterable[str]) -> str:
    """One pattern that matches where any of ``patterns`` does."""
    return "|".join(f"(?:{pattern})" for pattern in patterns)
