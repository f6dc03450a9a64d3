"""Errors that repeat are logged once per interval, with how many were held back.

A full disk fails every commit: one line per failure wrote 1,907 lines in 50 seconds,
which fills what is left of the disk and buries the first line that says why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

INTERVAL = 60.0  # seconds between two lines of one kind


class RepeatedErrors:
    def __init__(
        self,
        log: logging.Logger,
        interval: float = INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._log = log
        self._interval = interval
        self._clock = clock
        self._kinds: dict[str, list[float]] = {}  # kind -> [when last logged, held back]

    def error(self, kind: str, message: str, *args: object) -> None:
        """Log ``message`` unless a line of ``kind`` went out less than an interval ago."""
        now = self._clock()
        seen = self._kinds.get(kind)
        if seen is not None and now - seen[0] < self._interval:
            seen[1] += 1
            return
        held = int(seen[1]) if seen is not None else 0
        if held:
            message += f" (and {held} more like it in the {self._interval:.0f} s before)"
        self._log.error(message, *args)
        self._kinds[kind] = [now, 0]
