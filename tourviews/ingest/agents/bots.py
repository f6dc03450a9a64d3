"""What makes a user-agent a bot's, and which real people's clients the lists wrongly match.

The filter is built from these sources only (docs/traffic-quality.md lists the sources
that only measure it, and the two are never mixed):

- crawler-user-agents: the crawler patterns of monperrus/crawler-user-agents;
- crawlerdetect: the patterns of JayBizzle's CrawlerDetect;
- ai-crawler-index: AI crawlers' tokens;
- device-detector: the bot list of Matomo's Device Detector (its Python port ships
  Matomo's ``bots.yml``);
- ours, below: automation and headless browsers, HTTP libraries, link-preview
  fetchers, and the grammar of a browser's user-agent.

A match of ``DECISIVE`` is a bot whatever else the string says. A match of the
lists (and of ``GRAMMAR``) is a bot unless the string is one of ``PEOPLE``: in-app
browsers, webviews and desktop app shells that the lists match with broad patterns.
"""

from __future__ import annotations

import functools
import importlib.resources
import re
from collections.abc import Sequence
from importlib.metadata import version

import crawleruseragents
import orjson
import regex
import ua_parser_rs
from crawlerdetect.providers.crawlers import data as crawlerdetect_patterns
from crawlerdetect.providers.exclusions import data as crawlerdetect_exclusions

from tourviews.ingest.agents.devices import ANDROID_MODEL, MATOMO_BOUNDARY
from tourviews.ingest.agents.patterns import any_of, without_look_around
from tourviews.ingest.agents.tables import matomo_table

SOURCES = ("crawler-user-agents", "crawlerdetect", "ai-crawler-index", "device-detector")

# Bots whatever else their user-agent says: nobody looks at a tour through these.
DECISIVE = (
    r"(?i)headless|phantomjs|slimerjs|puppeteer|playwright|selenium|webdriver|lighthouse",
    r"(?i)\b(curl|wget|python-requests|python-urllib|python-httpx|aiohttp|httpx|"
    r"go-http-client|axios|node-fetch|undici|okhttp|apache-httpclient|libwww-perl|"
    r"postmanruntime|insomnia|httpie|scrapy)\b",
    # Link-preview fetchers: a shared link is fetched once per chat, by no person.
    r"(?i)facebookexternalhit|facebot|twitterbot|slackbot|whatsapp/|telegrambot|discordbot|"
    r"linkedinbot|skypeuripreview|redditbot|embedly|iframely|pinterestbot|vkshare|"
    r"google-pagerenderer|bingpreview|applebot|yandex\w*bot",
)
# Browsers write their user-agent by a fixed grammar; bots that imitate one add to it.
# A browser never names a URL or an e-mail address, "Mozilla/5.0 (compatible; ...)"
# is Internet Explorer's (9 and 10) and old Konqueror's, and WebKit browsers write
# "(KHTML, like Gecko)" with nothing more inside.
GRAMMAR = (
    r"(?i)\bhttps?://|\bwww\.[a-z0-9-]+\.[a-z]{2,}|[a-z0-9._%+-]+@[a-z0-9-]+\.[a-z]",
    r"^Mozilla/5\.0 \(compatible; (?:[^MK]|M[^S]|MS[^I]|K[^o]|Ko[^n])",
    r"\(KHTML, like Gecko;",
    r"(?i)\b(bot|crawler|spider|scraper)\b",
)
# Real people's clients that the lists' broad patterns match. Link-preview fetchers of
# the same companies stay bots: they are DECISIVE.
PEOPLE = (
    r"\bInstagram \d",  # Instagram's in-app browser
    r"\[FB(AN|_IAB)/|\bFBAV/|\bMetaIAB\b",  # Facebook and Messenger in-app browsers
    r"\bViber/\d",
    r"\bLine/\d",  # LINE
    r"\bKAKAOTALK\b",
    r"\bMicroMessenger/",  # WeChat
    r"\bSnapchat/\d",
    r"\bmusical_ly_|\bBytedanceWebview/|\bTikTok\b",
    r"\[Pinterest/|\bPinterest for (Android|iOS)\b",
    r"\bTelegram-(Android|iOS)/",  # Telegram's in-app browser (TelegramBot stays a bot)
    r"\bGSA/\d",  # the Google app
    r"\bElectron/\d",  # desktop app shells: Slack, VS Code, Teams, ...
    r"\bQtWebEngine/\d",
    r"\bFluid/\d",  # a macOS app shell for one site
    r"\bSogouMobileBrowser/|\bSogouSearch\b",  # Sogou's browser and app (its spider stays a bot)
    r"\bbaiduboxapp/",  # the Baidu app
)
# A list pattern that is only an Android build ID names firmware shared by millions
# of phones, not a bot.
_BUILD_ID = re.compile(r"[A-Z0-9]{4}\\\.\d{6}\\\.\d{3}")
# CrawlerDetect removes these before it matches: names of phones and apps that contain
# a crawler word ("cubot", "; M bot", the Yandex app's tokens). Here they vouch for a
# person instead. In its list they follow the browser tokens, from "cubot" on; the
# version is pinned, and a test checks the slice.
_PHONE_NAMES = crawlerdetect_exclusions[crawlerdetect_exclusions.index("cubot") :]


def without_device_name(user_agent: str) -> str | None:
    """``user_agent`` with an Android phone's model name replaced, or None if it names none.

    Model names are chosen by phone makers, and some contain a crawler word or a listed
    name (ViewSonic, HTC Butterfly, XBot Junior, C Bot Tab, Zeus, Fever). What the lists
    match there is no evidence of a bot.
    """
    masked, found = ANDROID_MODEL.subn(r"\1K", user_agent, count=1)
    return masked if found else None


def listed_patterns() -> list[str]:
    """The maintained lists' patterns, each usable by the native automaton."""
    listed = [entry["pattern"] for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA]
    index = importlib.resources.files("ai_crawler_index").joinpath("data.json").read_bytes()
    # The Rust regex engine has no look-around; CrawlerDetect's patterns match ignoring case.
    detect = [f"(?i){pattern}" for pattern in crawlerdetect_patterns if "(?" not in pattern]
    patterns = [*listed, *detect, orjson.loads(index)["regex"]["all"], matomo_patterns()[0]]
    return [pattern for pattern in patterns if not _BUILD_ID.fullmatch(pattern)]


@functools.cache
def matomo_patterns() -> tuple[str, tuple[str, ...]]:
    """Matomo's bot list: one pattern of all without look-around, and those with it.

    The data file ships inside device-detector (pinned: its layout is read here). The
    native automaton knows no look-around, so the patterns that use it are matched in
    two steps (``MatomoGuarded``).
    """
    patterns = [str(entry["regex"]) for entry in matomo_table("bots.yml")]
    plain = [pattern for pattern in patterns if "(?" not in pattern.replace("(?:", "")]
    guarded = tuple(pattern for pattern in patterns if pattern not in plain)
    return f"(?i){MATOMO_BOUNDARY}(?:{any_of(plain)})", guarded


class MatomoGuarded:
    """Matomo's bot patterns that use look-around, in two steps.

    The automaton matches them with each look-around left out or matched, a superset;
    only a user-agent it matches is tried against the full patterns (``regex`` knows
    look-behinds of any width). Most user-agents stop at the first step.
    """

    def __init__(self, patterns: Sequence[str]) -> None:
        loose = [without_look_around(pattern) for pattern in patterns]
        # The first step as a pattern: the classifier runs it in its bot automaton.
        self.loose = f"(?i){MATOMO_BOUNDARY}(?:{any_of(p for p in loose if p)})"
        self._first = ua_parser_rs.DeviceExtractor([(self.loose, None, "maybe", None, None)])
        self._full = regex.compile(f"{MATOMO_BOUNDARY}(?:{any_of(patterns)})", regex.IGNORECASE)

    def __call__(self, user_agent: str) -> bool:
        return self._first.extract(user_agent) is not None and self.full(user_agent)

    def full(self, user_agent: str) -> bool:
        """The second step alone, for a user-agent the first step matched."""
        return bool(self._full.search(user_agent))


def people_patterns() -> list[str]:
    return [*PEOPLE, *(f"(?i){name}" for name in _PHONE_NAMES)]


def source_versions() -> dict[str, str]:
    """The installed version of each maintained source, for the record."""
    return {name: version(name) for name in SOURCES}
