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


@dataclass(frozen=True, slots=True)
class Step:
    """One rule: the method that applies it, the outcome it drops a beacon with."""

    name: str
    drops: Outcome
    needs: Needs
    meaning: str  # what it drops


# fmt: off
STEPS: tuple[Step, ...] = (
    Step("known_tour",       Outcome.UNKNOWN_TOUR,  BEACON, "a tour not registered"),
    Step("throttle",         Outcome.THROTTLED,     SHARED, "rate limits: network, visitor, tour"),
    Step("after_withdrawal", Outcome.WITHDRAWN,     SHARED, "its visitor withdrew consent lately"),
    Step("check_origin",     Outcome.ORIGIN,        BEACON, "a page not among the tour's origins"),
    Step("filter_bots",      Outcome.BOT,           BEACON, "crawlers, scripts, headless browsers"),
    Step("bound_names",      Outcome.SCENE_LIMIT,   SHARED, "a scene or action name past a bound"),
    Step("guard_rotation",   Outcome.ROTATION,      SHARED, "one network cycling visitor IDs"),
    Step("dedup",            Outcome.DUPLICATE,     SHARED, "a view or scene again in the window"),
    Step("within_visit",     Outcome.OUTSIDE_VISIT, SHARED, "an engage or action outside a visit"),
)
# fmt: on

_FIRST_SHARED = next(i for i, step in enumerate(STEPS) if step.needs is SHARED)

# The pipeline's steps ahead of the ledger: what they drop is refused outright.
AHEAD = STEPS[:_FIRST_SHARED]
# What a ledger applies, in order: its own steps, and the places of the pipeline's verdict.
LEDGER = STEPS[_FIRST_SHARED:]
# The pipeline's steps whose first drop is the verdict it hands the ledger.
VERDICT = tuple(step for step in LEDGER if step.needs is BEACON)

Passes = Callable[[Hit], bool]  # a step's method: whether the beacon goes on


def bind(owner: object, steps: tuple[Step, ...]) -> tuple[tuple[Passes, Outcome], ...]:
    """Each of ``steps`` as (``owner``'s method of its name, the outcome it drops with).

    Built once, with the pipeline: per beacon, its runner only calls them.
    """
    return tuple((getattr(owner, step.name), step.drops) for step in steps)
