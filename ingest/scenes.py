"""Scene names per tour, bounded: a sender cannot make a breakdown, or the rollups, grow.

A tour that declares its scenes counts those alone. Any other tour admits the first
``max_scenes`` distinct names it counts (500 by default); a scene event under a new
name past that is dropped as ``scene_limit``, and a view's scene field under such a
name is not kept. Names are admitted only by a counted beacon, so bots, throttled and
rotating senders cannot fill a tour's list. The lists are rebuilt from the stored
events and rollups at start.
"""

from __future__ import annotations

from collections.abc import Iterable

from storage.registry import Tour


class SceneBound:
    def __init__(self, max_scenes: int) -> None:
        if max_scenes < 1:
            raise ValueError("--max-scenes must be at least 1")
        self.max_scenes = max_scenes
        self._names: dict[str, set[str]] = {}  # tour -> names counted

    def admits(self, tour: Tour, scene: str) -> bool:
        if tour.scenes is not None:
            return scene in tour.scenes
        names = self._names.get(tour.tour)
        return names is None or scene in names or len(names) < self.max_scenes

    def record(self, tour: str, scene: str) -> None:
        """A beacon with this scene was counted."""
        names = self._names.setdefault(tour, set())
        if len(names) < self.max_scenes:
            names.add(scene)

    def restore(self, counted: Iterable[tuple[str, str]]) -> None:
        """Remember the (tour, scene) names counted before a restart."""
        for tour, scene in counted:
            self.record(tour, scene)
