"""Phone, tablet or desktop by device model: Matomo's table of device makers and models.

Matomo's Device Detector (its Python port, device-detector, ships the data) keeps a
table of makers, each with a pattern, a device type, and its models' patterns, some
with a type of their own. The first maker whose pattern matches is the maker; the
first of its models that matches gives the type, else the maker's type does. Matomo
matches every pattern ignoring case, after a boundary (``MATOMO_BOUNDARY``).

The native automata know no look-around; a pattern that uses one is matched without
it (``without_look_around``), which is enough to tell a type. A maker's models are
compiled the first time the maker is met: most makers are never met.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import ua_parser_rs

from tourviews.ingest.agents.patterns import without_look_around
from tourviews.ingest.agents.tables import matomo_table

# Matomo matches each pattern ignoring case after this boundary (its BOUNDED_REGEX):
# a name must not continue a longer word.
MATOMO_BOUNDARY = r"(?:^|[^A-Z0-9_-]|[^A-Z0-9-]_|sprd-|MZ-)"
# An Android browser writes the device's model name in the platform part:
# "(Linux; Android 13; SM-X710 Build/...)". Group 2 is the name.
ANDROID_MODEL = re.compile(
    r"^(Mozilla/5\.0 \(Linux; (?:U; )?Android [^;)]*; ?(?:[a-z]{2}[-_][a-zA-Z]{2}; ?)?)"
    r"([^;)]*?)(?=;? ?[Bb]uild/|; wv\)|\))"
)
# Matomo's device types, as this service's device classes; the rest (televisions,
# watches, cars, ...) are left to the other rules.
CLASSES = {"smartphone": "mobile", "phablet": "mobile", "feature phone": "mobile",
           "tablet": "tablet", "desktop": "desktop"}  # fmt: skip


MODELS = 16_384  # platform parts whose class is kept


def platform(user_agent: str) -> str | None:
    """An Android user-agent up to the end of its platform part, or None."""
    found = ANDROID_MODEL.match(user_agent)
    if found is None:
        return None
    end = user_agent.find(")", found.end())
    return user_agent[: end + 1] if end >= 0 else None


class DeviceModels:
    """The device class Matomo's table gives a user-agent, or None."""

    def __init__(self) -> None:
        self._table: list[dict[str, Any]] = []
        rows = []
        for maker in matomo_table("device/mobiles.yml").values():
            pattern = without_look_around(str(maker["regex"]))
            if pattern is not None:
                rows.append(_row(pattern, str(len(self._table))))
                self._table.append(maker)
        self._makers = ua_parser_rs.DeviceExtractor(rows)
        self._models: dict[int, ua_parser_rs.DeviceExtractor | None] = {}
        self._by_platform: dict[str, str | None] = {}  # oldest first

    def android(self, part: str) -> str | None:
        """The class of an Android device by its platform part (``platform``); None if
        unknown.

        Only the platform part ("Mozilla/5.0 (Linux; Android 13; SM-S918B Build/...)")
        is matched, so what follows it (an app's tokens, or a sender's) cannot change
        the class a model gets. It is matched once per distinct platform part: user-agents
        differ by browser and version far more often, and one match costs about 20 µs.
        """
        if part in self._by_platform:
            return self._by_platform[part]
        kind = self._by_platform[part] = self(part)
        if len(self._by_platform) > MODELS:
            del self._by_platform[next(iter(self._by_platform))]
        return kind

    def __call__(self, user_agent: str) -> str | None:
        found = self._makers.extract(user_agent)
        if found is None:
            return None
        index = int(found.family)
        maker = self._table[index]
        kind = str(maker.get("device") or "")
        if index not in self._models:
            self._models[index] = self._compile(maker, kind)
        models = self._models[index]
        model = models.extract(user_agent) if models is not None else None
        return CLASSES.get(model.family if model is not None else kind)

    @staticmethod
    def _compile(maker: dict[str, Any], kind: str) -> ua_parser_rs.DeviceExtractor | None:
        rows = []
        for model in maker.get("models") or ():
            pattern = without_look_around(str(model["regex"]))
            if pattern is not None:
                rows.append(_row(pattern, str(model.get("device") or kind)))
        return ua_parser_rs.DeviceExtractor(rows) if rows else None


def _row(pattern: str, family: str) -> tuple[str, None, str, None, None]:
    return (f"(?i){MATOMO_BOUNDARY}(?:{pattern})", None, family, None, None)


@functools.cache
def device_models() -> DeviceModels:
    """One table per process, loaded at its first Android user-agent (the classifier asks
    for it only then): it takes about a second, which a server that meets none, as most
    test servers, never pays."""
    return DeviceModels()
