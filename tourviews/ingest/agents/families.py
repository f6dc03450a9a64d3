"""The closed set of browser and OS names that ua-parser's patterns can give.

A pattern either names its family ("Chrome Mobile WebView") or copies it from a group
of the user-agent ("$1"). A copied family is a name only when that group can match a
finite set of words, such as ``(Ubuntu|Kubuntu|(?:Free|Open|Net|\\b)BSD)``; a group
such as ``(.{0,200})`` copies whatever the sender wrote. Only the finite ones are
taken: every other family is stored as "Other", so a breakdown stays bounded and no
text of a sender's choosing reaches the disk.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable

MAX_EXPANSIONS = 1_000  # words one group may stand for; more is no closed set
_LITERAL_ESCAPES = frozenset(" ./-_!&'%:,;()[]")


class _Unbounded(Exception):
    """The group matches text that no finite list of words covers."""


class _Expander:
    """Every string a small regular expression matches, if there are few enough."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.at = 0

    def words(self) -> list[str]:
        found = self._alternatives()
        if self.at != len(self.pattern):
            raise _Unbounded
        return found

    def _alternatives(self) -> list[str]:
        found = self._sequence()
        while self.at < len(self.pattern) and self.pattern[self.at] == "|":
            self.at += 1
            found += self._sequence()
        return found

    def _sequence(self) -> list[str]:
        found = [""]
        while self.at < len(self.pattern) and self.pattern[self.at] not in "|)":
            atom = self._atom()
            if self.at < len(self.pattern) and self.pattern[self.at] == "?":
                self.at += 1
                atom = [*atom, ""]
            found = [a + b for a, b in itertools.product(found, atom)]
            if len(found) > MAX_EXPANSIONS:
                raise _Unbounded
        return found

    def _atom(self) -> list[str]:
        char = self.pattern[self.at]
        self.at += 1
        if char == "\\":
            escaped = self.pattern[self.at : self.at + 1]
            self.at += 1
            if escaped == "b":
                return [""]  # a word boundary adds no text
            if escaped in _LITERAL_ESCAPES:
                return [escaped]
            raise _Unbounded
        if char == "(":
            if self.pattern.startswith("?:", self.at):
                self.at += 2
            elif self.pattern.startswith("?", self.at):
                raise _Unbounded  # look-around and the like
            inner = self._alternatives()
            if self.pattern[self.at : self.at + 1] != ")":
                raise _Unbounded
            self.at += 1
            return inner
        if char.isalnum() or char in " -_!&',:;/%":
            return [char]
        raise _Unbounded  # a class, a wildcard or a repetition


def words(pattern: str) -> list[str] | None:
    """The strings ``pattern`` matches, or None when they are not few and fixed."""
    try:
        return _Expander(pattern).words()
    except (_Unbounded, IndexError):
        return None


def capturing_groups(regex: str) -> list[str]:
    """The bodies of ``regex``'s capturing groups, in the order they are numbered."""
    opened: list[tuple[int, bool]] = []
    found: list[tuple[int, str]] = []
    at = 0
    while at < len(regex):
        char = regex[at]
        if char == "\\":
            at += 1
        elif char == "[":
            at = regex.index("]", at + 2)  # a class holds no group ("[]..." starts with ])
        elif char == "(":
            opened.append((at, not regex.startswith("(?", at)))
        elif char == ")" and opened:
            start, capturing = opened.pop()
            if capturing:
                found.append((start, regex[start + 1 : at]))
        at += 1
    return [body for _, body in sorted(found)]


def family_names(rows: Iterable[tuple[str, str]]) -> frozenset[str]:
    """Every family ua-parser's ``(regex, family)`` rows can give without copying free text."""
    names: set[str] = set()
    for regex, family in rows:
        numbers = [int(n) for n in re.findall(r"\$(\d)", family)]
        if not numbers:
            names.add(family)
            continue
        groups = capturing_groups(regex)
        choices = [words(groups[n - 1]) if n <= len(groups) else None for n in numbers]
        if any(choice is None for choice in choices):
            continue  # copied from free text: such a family is stored as Other
        for picked in itertools.product(*(choice or [] for choice in choices)):
            name = family
            for n, word in zip(numbers, picked, strict=True):
                name = name.replace(f"${n}", word)
            names.add(name.strip())
    return frozenset(names)
