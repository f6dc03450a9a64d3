"""What became of a beacon: the one list of outcome names, shared by ingest and analytics.

Every beacon that is not counted is counted instead under one of the other names,
in ``drops`` and the abuse document (which lists them in the members' order). The
order in which a beacon is judged is not this one (a malformed beacon and an unknown
tour are refused first) but the ingest path's table of steps, which the contract
follows (``tourviews.ingest.rules.steps``).
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    COUNTED = "counted"
    THROTTLED = "throttled"
    # A visitor's own erasure (POST /v1/visitor/forget), and a beacon of theirs that
    # arrives after it (sent before it, from the page).
    WITHDRAWN = "withdrawn"
    ORIGIN = "origin"  # sent from a page the tour's origin list does not name
    BOT = "bot"
    SCENE_LIMIT = "scene_limit"  # a scene name beyond the tour's bound
    ROTATION = "rotation"
    DUPLICATE = "duplicate"
    OUTSIDE_VISIT = "outside_visit"  # engagement or an action with no visit going on
    INVALID = "invalid"
    UNKNOWN_TOUR = "unknown_tour"


# The reasons a beacon was not counted, as the abuse document lists them.
REASONS = tuple(outcome.value for outcome in Outcome if outcome is not Outcome.COUNTED)
