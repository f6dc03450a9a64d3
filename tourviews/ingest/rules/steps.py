"""The steps that judge a beacon, in order: the one table of the ingest path's rules.

A parsed beacon (a malformed one is ``INVALID`` before any step) passes the steps in
this order; the first that drops it names its outcome, and what passes them all is
counted. Each step is a method of its name, which says whether the beacon passes.

- ``BEACON``: the beacon alone tells; the step is the pipeline's
  (``tourviews.ingest.rules.pipeline``). Those ahead of every shared step (``AHEAD``)
  refuse a beacon before the ledger is asked. The others (``VERDICT``) are worked out
  before it is asked too, since the Redis ledger takes them as an argument: the first
  that drops is the verdict, which the ledger applies at that step's place.
- ``SHARED``: the step needs the state every beacon shares, and is the ledger's: a
  method of the in-process ledger (``tourviews.ingest.rules.memory_ledger``), and a
  block of the Redis script (``redis_ledger.lua``), which cannot import the table: its
  blocks are marked ``-- step: NAME``, the verdict's places too, and
  tests/ingest/test_steps.py holds the markers to the table.

A drop is counted by its outcome (the abuse document); the HTTP layer maps the
outcome to an answer (``tourviews.ingest.http.beacon``). The order of outcomes that
docs/CONTRACT.md (counting rules) and README.md give is this table's, and the test
holds them to it too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from tourviews.ingest.rules.ledger import Hit
from tourviews.storage.outcomes import Outcome


class Needs(Enum):
    """What a step reads to judge a beacon."""

    BEACON = "the beacon alone"  # the pipeline's
    SHARED = "shared state"  # the ledger's


BEACON, SHARED = Needs.BEACON, Needs.SHARED


class Answer(Enum):
    """What the sender of a beacon a step drops is answered."""

    REFUSED = "an error that says why (404, 429); nothing is stored"
    SILENT = "204, as if counted: a sender cannot tell how it was classified"


REFUSED, SILENT = Answer.REFUSED, Answer.SILENT


@dataclass(frozen=True, slots=True)
class Step:
    """One rule: the method that applies it, the outcome it drops a beacon with."""

    name: str
    drops: Outcome
    needs: Needs
    answer: Answer
    meaning: str  # what it drops


# fmt: off
STEPS: tuple[Step, ...] = (
    Step("known_tour",       Outcome.UNKNOWN_TOUR,  BEACON, REFUSED, "a tour not registered"),
    Step("throttle",         Outcome.THROTTLED,     SHARED, REFUSED, "rates of net, visitor, tour"),
    Step("after_withdrawal", Outcome.WITHDRAWN,     SHARED, SILENT,  "a visitor who withdrew"),
    Step("check_origin",     Outcome.ORIGIN,        BEACON, SILENT,  "a page not of its origins"),
    Step("filter_bots",      Outcome.BOT,           BEACON, SILENT,  "crawlers, scripts, headless"),
    Step("bound_names",      Outcome.SCENE_LIMIT,   SHARED, SILENT,  "a name past the bound"),
    Step("guard_rotation",   Outcome.ROTATION,      SHARED, SILENT,  "a network cycling visitors"),
    Step("dedup",            Outcome.DUPLICATE,     SHARED, SILENT,  "a repeated view or scene"),
    Step("within_visit",     Outcome.OUTSIDE_VISIT, SHARED, SILENT,  "engaging outside a visit"),
)
# fmt: on

_FIRST_SHARED = next(i for i, step in enumerate(STEPS) if step.needs is SHARED)

# The pipeline's steps ahead of the ledger: what they drop is refused outright.
AHEAD = STEPS[:_FIRST_SHARED]
# What a ledger applies, in order: its own steps, and the places of the pipeline's verdict.
LEDGER = STEPS[_FIRST_SHARED:]
# The pipeline's steps whose first drop is the verdict it hands the ledger.
VERDICT = tuple(step for step in LEDGER if step.needs is BEACON)

# Refused before anything is stored (a malformed beacon too): counted, not waited for.
REFUSED_OUTCOMES = frozenset(
    (Outcome.INVALID, *(step.drops for step in STEPS if step.answer is REFUSED))
)
# Dropped beacons that are still answered 204.
SILENT_DROPS = frozenset(step.drops for step in STEPS if step.answer is SILENT)

Passes = Callable[[Hit], bool]  # a step's method: whether the beacon goes on


def bind(owner: object, steps: tuple[Step, ...]) -> tuple[tuple[Passes, Outcome], ...]:
    """Each of ``steps`` as (``owner``'s method of its name, the outcome it drops with).

    Built once, with the pipeline: per beacon, its runner only calls them.
    """
    return tuple((getattr(owner, step.name), step.drops) for step in steps)
