"""User-agent strings to (browser, OS, device class), fast and bounded.

ua-parser's native resolver (``ua_parser.regex``, Rust) finds the families in
microseconds; user-agents' rules then decide the device class from them. The raw
string lives only in this process's memory, as a key of a bounded cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import ua_parser
from ua_parser import Domain
from user_agents.parsers import Browser, Device, OperatingSystem, UserAgent, parse_version

CACHE_ENTRIES = 16_384
MAX_LENGTH = 1_024  # longer user-agents are classified by their first 1,024 characters


@dataclass(frozen=True, slots=True)
class Agent:
    browser: str
    os: str
    device: str  # desktop | mobile | tablet | bot | other


BOT = Agent("Other", "Other", "bot")


def _device_class(agent: UserAgent) -> str:
    if agent.is_bot:
        return "bot"
    if agent.is_tablet:
        return "tablet"
    if agent.is_mobile:
        return "mobile"
    if agent.is_pc:
        return "desktop"
    return "other"


class AgentClassifier:
    """Classifies user-agent strings; results are cached (at most ``entries`` strings)."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        if ua_parser.RegexResolver is None:
            raise RuntimeError(
                "ua-parser's native resolver is missing: pip install 'ua-parser[regex]'"
            )
        self._resolve = ua_parser.RegexResolver(ua_parser.load_builtins())
        self.classify = lru_cache(maxsize=entries)(self._classify)

    def __call__(self, user_agent: str) -> Agent:
        return self.classify(user_agent[:MAX_LENGTH])

    def _classify(self, user_agent: str) -> Agent:
        if not user_agent.strip():
            return BOT
        found = self._resolve(user_agent, Domain.ALL)
        ua, os, device = found.user_agent, found.os, found.device
        # user-agents' device rules, fed by the native resolver instead of its legacy parser.
        agent = UserAgent.__new__(UserAgent)
        agent.ua_string = user_agent
        agent.browser = _family(Browser, ua.family if ua else "Other", ua)
        agent.os = _family(OperatingSystem, os.family if os else "Other", os)
        agent.device = Device(
            device.family if device else "Other",
            device.brand if device else None,
            device.model if device else None,
        )
        return Agent(agent.browser.family, agent.os.family, _device_class(agent))


def _family(kind: type, family: str, found: object) -> object:
    version = parse_version(
        getattr(found, "major", None), getattr(found, "minor", None), getattr(found, "patch", None)
    )
    return kind(family, version, ".".join(str(part) for part in version))
