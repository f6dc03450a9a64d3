"""User-agent strings to (browser, OS, device class), fast and bounded.

Two native automata do the matching: ua-parser's Rust resolver (``ua_parser.regex``)
finds the browser, OS and device families, and one ``ua_parser_rs`` extractor built
from every pattern of two maintained crawler lists (crawler-user-agents, and
ai-crawler-index for AI crawlers) plus our own (headless browsers, HTTP libraries,
link-preview fetchers) tells bots apart. user-agents' rules then decide the device
class from the families. Results are cached; the raw string lives only in this
process's memory, as a key of that bounded cache.
"""

from __future__ import annotations

import importlib.resources
from dataclasses import dataclass
from functools import lru_cache

import crawleruseragents
import orjson
import ua_parser
import ua_parser_rs
from ua_parser import Domain
from user_agents.parsers import Browser, Device, OperatingSystem, UserAgent

CACHE_ENTRIES = 16_384
MAX_LENGTH = 512  # longer user-agents are classified by their first 512 characters

# A 3D tour needs WebGL, so only modern browsers can show one, and every modern
# browser's user-agent starts like this. Anything else is a script or a library.
BROWSER_PREFIX = "Mozilla/5.0 ("

OUR_PATTERNS = (
    r"(?i)headless|phantomjs|slimerjs|puppeteer|playwright|selenium|webdriver|lighthouse",
    r"(?i)\b(curl|wget|python-requests|python-urllib|python-httpx|aiohttp|httpx|"
    r"go-http-client|axios|node-fetch|undici|okhttp|apache-httpclient|libwww-perl|"
    r"postmanruntime|insomnia|httpie|scrapy)\b",
    r"(?i)facebookexternalhit|facebot|twitterbot|slackbot|whatsapp|telegrambot|discordbot|"
    r"linkedinbot|skypeuripreview|redditbot|embedly|iframely|pinterestbot|vkshare|"
    r"google-pagerenderer|bingpreview|applebot|yandex\w*bot",
    r"(?i)\b(bot|crawler|spider|scraper)\b",
)


@dataclass(frozen=True, slots=True)
class Agent:
    browser: str
    os: str
    device: str  # desktop | mobile | tablet | bot | other


BOT = Agent("Other", "Other", "bot")


def crawler_patterns() -> list[str]:
    """Every crawler pattern we match: both maintained lists, then ours."""
    listed = [entry["pattern"] for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA]
    index = importlib.resources.files("ai_crawler_index").joinpath("data.json").read_bytes()
    return [*listed, orjson.loads(index)["regex"]["all"], *OUR_PATTERNS]


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
            raise RuntimeError("ua-parser's native resolver is missing: 'ua-parser[regex]'")
        self._resolve = ua_parser.RegexResolver(ua_parser.load_builtins())
        self._crawlers = ua_parser_rs.DeviceExtractor(
            [(pattern, None, "Spider", None, None) for pattern in crawler_patterns()]
        )
        self.classify = lru_cache(maxsize=entries)(self._classify)

    def __call__(self, user_agent: str) -> Agent:
        return self.classify(user_agent[:MAX_LENGTH])

    def _classify(self, user_agent: str) -> Agent:
        user_agent = user_agent.strip(' \t"')
        if not user_agent.startswith(BROWSER_PREFIX) or self._crawlers.extract(user_agent):
            return BOT
        found = self._resolve(user_agent, Domain.ALL)
        ua, os, device = found.user_agent, found.os, found.device
        # user-agents' device rules, fed by the native resolver instead of its legacy
        # parser. The rules read the OS version string but no browser version.
        agent = UserAgent.__new__(UserAgent)
        agent.ua_string = user_agent
        agent.browser = Browser(ua.family if ua else "Other", (), "")
        os_version = ".".join(v for v in (os.major, os.minor, os.patch) if v) if os else ""
        agent.os = OperatingSystem(os.family if os else "Other", (), os_version)
        agent.device = Device(device.family, device.brand, device.model) if device else _NO_DEVICE
        return Agent(agent.browser.family, agent.os.family, _device_class(agent))


_NO_DEVICE = Device("Other", None, None)
