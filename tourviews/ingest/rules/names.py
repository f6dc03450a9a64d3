"""Scene names per tour, bounded: a sender cannot make a breakdown, or the rollups, grow.

A tour that declares its scenes counts those alone. Any other tour admits the first
``max_scenes`` distinct names it counts (500 by default); a scene event under a new
name past that is dropped as ``scene_limit``, and a view's scene field under such a
name is not kept. Names are admitted only by a counted beacon, so bots, throttled and
rotating senders cannot fill a tour's list, and one source network brings in at most
``NEW_PER_SOURCE`` new names to a tour: filling it takes ten networks, not one
browser. The lists are rebuilt from the stored events and rollups at start.

The same bound holds a view's source and UTM values (``source_bounds``), except that a
value past it is counted as ``(other)`` rather than dropped.
"""

from __future__ import annotations

from collections.abc import Iterable

from tourviews.ingest.sources import BOUNDED
from tourviews.storage.registry import Tour

NEW_PER_SOURCE = 50  # new names one source network may bring to one tour
MAX_SOURCES = 100_000
NO_NAMES: frozenset[str] = frozenset()  # (tour, source) pairs remembered; past it they start afresh


class SceneBound:
    def __init__(self, max_scenes: int, declared: bool = True) -> None:
        self.max_scenes = max_scenes
        self._declared = declared  # whether a tour's declared scenes are the names it admits
        self._names: dict[str, set[str]] = {}  # tour -> names counted
        self._brought: dict[tuple[str, bytes], int] = {}  # (tour, source) -> new names

    def admits(self, tour: Tour, scene: str, source: bytes) -> bool:
        if self._declared and tour.scenes is not None:
            return scene in tour.scenes
        names = self._names.get(tour.tour, NO_NAMES)
        if scene in names:
            return True
        brought = self._brought.get((tour.tour, source), 0)
        return len(names) < self.max_scenes and brought < NEW_PER_SOURCE

    def record(self, tour: str, scene: str, source: bytes | None) -> None:
        """A beacon with this scene was counted (``source`` None: before a restart)."""
        names = self._names.setdefault(tour, set())
        if scene in names or len(names) >= self.max_scenes:
            return
        names.add(scene)
        if source is not None:
            if len(self._brought) >= MAX_SOURCES:
                self._brought.clear()
            self._brought[tour, source] = self._brought.get((tour, source), 0) + 1

    def restore(self, counted: Iterable[tuple[str, str]]) -> None:
        """Remember the (tour, scene) names counted before a restart, first counted first."""
        for tour, scene in counted:
            self.record(tour, scene, None)


def source_bounds(max_names: int) -> dict[str, SceneBound]:
    """A bound for each of a view's ``BOUNDED`` fields (its source, its UTM values), as
    wide as a tour's scene names; a value past it is counted as ``(other)``."""
    return {field: SceneBound(max_names, declared=False) for field in BOUNDED}
