"""Phone or tablet, by device model: UAParser.js's device table, as a native automaton.

A phone's and a tablet's user-agents often differ only by the model's name
("SM-T820" is a Galaxy Tab, "SM-G991B" a Galaxy S21), and Android tablets do not all
drop the "Mobile" token. UAParser.js (its Python port, ua-parser-py) keeps an ordered
table of model patterns with the type of each; the first that matches decides.

The table is read from ``uaparser._uaparser.REGEXES``: the package exposes no public
way to it, so ``pyproject.toml`` pins ua-parser-py to the version this was written
against, and tests/ingest/test_formfactor.py checks its shape. The Rust regex engine
has no look-around: a positive one is matched instead of looked at, a negative one is
left out (the answer is only the type, never the captured model), and the one pattern
with a back-reference is skipped.
"""

from __future__ import annotations

import itertools

import ua_parser_rs
from uaparser import _uaparser as uaparser_js

from tourviews.ingest.agents.patterns import any_of, without_look_around

FORMS = frozenset(("mobile", "tablet"))


def device_rows() -> list[tuple[str, str]]:
    """(pattern, type) of UAParser.js's device table, in its order; type "" when it names none."""
    table = uaparser_js.REGEXES["device"]
    rows = []
    for patterns, properties in zip(table[::2], table[1::2], strict=True):
        kind = ""
        for prop in properties:
            if isinstance(prop, list) and len(prop) == 2 and prop[0] == uaparser_js.TYPE:
                kind = str(prop[1])
        for compiled in patterns:
            pattern = without_look_around(compiled.pattern)
            if pattern is not None:
                rows.append((pattern, kind))
    return rows


class FormFactor:
    """The device type UAParser.js's table gives a user-agent: mobile, tablet, or None."""

    def __init__(self) -> None:
        # Neighbouring rows of one type become one alternation: the first match still
        # decides, and one pattern is matched faster than many.
        runs = [
            (kind, [pattern for pattern, _ in rows])
            for kind, rows in itertools.groupby(device_rows(), key=lambda row: row[1])
        ]
        self._table = ua_parser_rs.DeviceExtractor(
            [(f"(?i){any_of(patterns)}", None, kind or "unknown", None, None)
             for kind, patterns in runs]
        )  # fmt: skip

    def __call__(self, user_agent: str) -> str | None:
        found = self._table.extract(user_agent)
        return found.family if found is not None and found.family in FORMS else None
