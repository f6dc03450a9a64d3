"""What makes a user-agent a bot's, and which real people's clients the lists wrongly match.

The filter is built from these sources only (docs/traffic-quality.md lists the sources
that only measure it, and the two are never mixed):

- crawler-user-agents: the crawler patterns of monperrus/crawler-user-agents;
- crawlerdetect: the patterns of JayBizzle's CrawlerDetect;
- ai-crawler-index: AI crawlers' tokens;
- ours, below: automation and headless browsers, HTTP libraries, link-preview
  fetchers, and the grammar of a browser's user-agent.

A match of ``DECISIVE`` is a bot whatever else the string says. A match of the
lists (and of ``GRAMMAR``) is a bot unless the string is one of ``PEOPLE``: in-app
browsers, webviews and desktop app shells that the lists match with broad patterns.
"""

from __future__ import annotations

import importlib.resources
import re
from importlib.metadata import version

import crawleruseragents
import orjson
from crawlerdetect.providers.crawlers import data as crawlerdetect_patterns
from crawlerdetect.providers.exclusions import data as crawlerdetect_exclusions

SOURCES = ("crawler-user-agents", "crawlerdetect", "ai-crawler-index")

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
)
# A list pattern that is only an Android build ID names firmware shared by millions
# of phones, not a bot.
_BUILD_ID = re.compile(r"[A-Z0-9]{4}\\\.\d{6}\\\.\d{3}")
# CrawlerDetect removes these before it matches: names of phones and apps that contain
# a crawler word ("cubot", "; M bot", the Yandex app's tokens). Here they vouch for a
# person instead. In its list they follow the browser tokens, from "cubot" on; the
# version is pinned, and a test checks the slice.
_PHONE_NAMES = crawlerdetect_exclusions[crawlerdetect_exclusions.index("cubot") :]


def listed_patterns() -> list[str]:
    """The maintained lists' patterns, each usable by the native automaton."""
    listed = [entry["pattern"] for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA]
    index = importlib.resources.files("ai_crawler_index").joinpath("data.json").read_bytes()
    # The Rust regex engine has no look-around; CrawlerDetect's patterns match ignoring case.
    detect = [f"(?i){pattern}" for pattern in crawlerdetect_patterns if "(?" not in pattern]
    patterns = [*listed, *detect, orjson.loads(index)["regex"]["all"]]
    return [pattern for pattern in patterns if not _BUILD_ID.fullmatch(pattern)]


def people_patterns() -> list[str]:
    return [*PEOPLE, *(f"(?i){name}" for name in _PHONE_NAMES)]


def source_versions() -> dict[str, str]:
    """The installed version of each maintained source, for the record."""
    return {name: version(name) for name in SOURCES}
