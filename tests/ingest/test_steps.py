"""The table of steps, held against what cannot import it: the Redis script's steps,
and the order of outcomes the docs give."""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from tourviews.ingest.beacon import KINDS
from tourviews.ingest.http.beacon import ANSWERS
from tourviews.ingest.rules.dedup import DEDUPLICATED
from tourviews.ingest.rules.ledger import WITHIN_VISIT
from tourviews.ingest.rules.steps import LEDGER, REFUSED, SILENT_DROPS, STEPS, Step
from tourviews.storage.outcomes import Outcome

ROOT = Path(__file__).resolve().parents[2]

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


# a malformed beacon is refused as it is read, before any step
JUDGED = [Outcome.INVALID.value, *(step.drops.value for step in STEPS)]


def named(text: str) -> list[str]:
    """The outcomes ``text`` names in backquotes, each once, in the order first named."""
    found = re.findall(r"`(\w+)`", text)
    return [name for i, name in enumerate(found) if name in JUDGED and name not in found[:i]]


def between(text: str, start: str, end: str) -> str:
    return text[text.index(start) : text.index(end, text.index(start))]


def contract() -> str:
    counting = (ROOT / "docs" / "CONTRACT.md").read_text()
    return between(counting, "- Every beacon that is not counted", "A `bot` is")


def architecture() -> str:
    return (ROOT / "docs" / "architecture.md").read_text()


def test_the_contract_lists_the_outcomes_in_the_tables_order() -> None:
    assert named(between(contract(), "statistics:", ".")) == JUDGED


def test_the_contract_judges_a_beacon_in_the_tables_order() -> None:
    assert named(between(contract(), "in that order:", "(engage and action).")) == JUDGED


def test_the_architectures_picture_shows_the_steps_in_the_tables_order() -> None:
    picture = between(architecture(), "──parse_beacon──>", "──> Sink")
    shown = re.findall(r"^   (\w+)  ", picture, re.MULTILINE)
    assert shown == [step.name for step in STEPS]


def test_the_docs_out_of_order_are_caught() -> None:
    swapped = contract().replace("`origin`", "`MARK`").replace("`bot`", "`origin`")
    assert named(swapped.replace("`MARK`", "`bot`")) != JUDGED


def test_each_outcome_is_dropped_by_one_step() -> None:
    # what lets a block of the script be known by the outcome it names
    assert len(DROPS) == len(STEPS)


def test_the_beacon_endpoint_refuses_what_the_table_refuses_and_hides_the_rest() -> None:
    # 429 is answered apart (it carries its wait); every other drop is a plain 204
    refused = {step.drops for step in STEPS if step.answer is REFUSED}
    assert {Outcome.THROTTLED, *ANSWERS} == refused
    assert SILENT_DROPS.isdisjoint(refused) and len(SILENT_DROPS | refused) == len(STEPS)


def script_kinds(script: str, step: str) -> set[str]:
    """The beacon kinds the block of the script's ``step`` names."""
    start = script.index(f"-- step: {step}.")
    end = script.find("\n-- ", start + 1)
    return set(re.findall(r"kind == '(\w+)'", script[start:end]))


def test_the_script_dedups_and_bounds_to_a_visit_the_kinds_the_in_process_ledger_does() -> None:
    assert script_kinds(SCRIPT, "dedup") == DEDUPLICATED
    assert script_kinds(SCRIPT, "within_visit") == WITHIN_VISIT
    named = set(re.findall(r"kind == '(\w+)'", SCRIPT))
    assert named <= {*KINDS, "withdraw"}, named - set(KINDS)  # withdraw: forget's call


def test_a_kind_missing_from_the_scripts_dedup_is_caught() -> None:
    edited = SCRIPT.replace("if kind == 'view' or kind == 'scene' then", "if kind == 'view' then")
    assert edited != SCRIPT and script_kinds(edited, "dedup") != DEDUPLICATED
