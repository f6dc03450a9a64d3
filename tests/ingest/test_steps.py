"""The table of steps, held against what cannot import it: the Redis script's steps."""

from __future__ import annotations

import re
from importlib import resources

from tourviews.ingest.rules.steps import LEDGER, STEPS, Step

SCRIPT = resources.files("tourviews.ingest.rules").joinpath("redis_ledger.lua").read_text()
MARKER = re.compile(r"^-- step: (\w+)", re.MULTILINE)
DROPS = {step.drops.value for step in STEPS}


def script_steps(script: str) -> list[tuple[str, set[str]]]:
    """Each step the script marks, in its order, with the outcomes its block names."""
    marks = list(MARKER.finditer(script))
    ends = [mark.start() for mark in marks[1:]] + [len(script)]
    return [
        (mark[1], set(re.findall(r"'(\w+)'", script[mark.end() : end])) & DROPS)
        for mark, end in zip(marks, ends, strict=True)
    ]


def table(steps: tuple[Step, ...]) -> list[tuple[str, set[str]]]:
    return [(step.name, {step.drops.value}) for step in steps]


def test_the_script_marks_the_ledgers_steps_in_the_tables_order() -> None:
    assert [name for name, _ in script_steps(SCRIPT)] == [step.name for step in LEDGER]


def test_each_step_of_the_script_drops_with_the_tables_outcome() -> None:
    assert script_steps(SCRIPT) == table(LEDGER)


def test_a_script_with_two_steps_swapped_is_caught() -> None:
    swapped = SCRIPT.replace("-- step: dedup", "-- step: MARK").replace(
        "-- step: guard_rotation", "-- step: dedup"
    )
    swapped = swapped.replace("-- step: MARK", "-- step: guard_rotation")
    assert swapped != SCRIPT
    assert script_steps(swapped) != table(LEDGER)


def test_each_outcome_is_dropped_by_one_step() -> None:
    # what lets a block of the script be known by the outcome it names
    assert len(DROPS) == len(STEPS)
