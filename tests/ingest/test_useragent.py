"""User-agent classes against labelled sets built from packages' data, not picked by hand.

Crawlers: every instance of crawler-user-agents, and every AI crawler token of
ai-crawler-index in the form AI crawlers use. Browsers: fake-useragent's database of
real-world browser user-agents (desktop, mobile, tablet).
"""

from __future__ import annotations

import asyncio
import importlib.resources
import json

import crawleruseragents
import pytest

from ingest.useragent import BOT, DESKTOP_OS, Agent, AgentClassifier


@pytest.fixture(scope="module")
def classifier() -> AgentClassifier:
    return AgentClassifier()


def crawler_user_agents() -> list[str]:
    listed = {i for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA for i in entry["instances"]}
    index = json.loads(
        importlib.resources.files("ai_crawler_index").joinpath("data.json").read_text()
    )
    tokens = [
        c["ua"] for c in index["crawlers"] if not c["ua"].startswith("(")
    ]  # "(control token only)"
    ai = {
        f"Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; {t}/1.0)" for t in tokens
    }
    return sorted(listed | ai)


def browsers() -> list[dict[str, str]]:
    data = importlib.resources.files("fake_useragent").joinpath("data/browsers.jsonl")
    rows = [json.loads(line) for line in data.read_text().splitlines() if line.strip()]
    return list({row["useragent"]: row for row in rows}.values())


def test_at_least_99_percent_of_known_crawlers_are_bots(classifier: AgentClassifier) -> None:
    crawlers = crawler_user_agents()
    assert len(crawlers) > 2_000
    missed = [ua for ua in crawlers if classifier(ua).device != "bot"]
    assert len(missed) / len(crawlers) <= 0.01, missed[:20]


def test_no_real_browser_is_flagged_as_a_bot(classifier: AgentClassifier) -> None:
    rows = browsers()
    assert len(rows) > 500
    flagged = [row["useragent"] for row in rows if classifier(row["useragent"]).device == "bot"]
    assert flagged == []


def test_device_classes_agree_with_the_labelled_browsers(classifier: AgentClassifier) -> None:
    rows = browsers()
    wrong = [
        (row["type"], row["useragent"])
        for row in rows
        if classifier(row["useragent"]).device != row["type"]
    ]
    # Labels come from another parser: Android WebViews without "Mobile" differ (2 of 839).
    assert len(wrong) / len(rows) <= 0.01, wrong[:10]


def test_desktop_shortcut_agrees_with_every_device_pattern(classifier: AgentClassifier) -> None:
    # On Windows and macOS only the "Spider" device patterns run; all of them must
    # give the same classes on every labelled user-agent.
    every_pattern = AgentClassifier(desktop_os=frozenset())
    silk = (  # "Silk" matches a Spider pattern, but an earlier pattern finds a Kindle
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like "
        "Gecko) Silk/108.2.1 like Chrome/108.0.5359.160 Safari/537.36"
    )
    agents = [*crawler_user_agents(), *(row["useragent"] for row in browsers()), silk]
    desktop = [ua for ua in agents if every_pattern(ua).os in DESKTOP_OS]
    assert len(desktop) > 100
    assert [classifier(ua) for ua in desktop] == [every_pattern(ua) for ua in desktop]


@pytest.mark.parametrize(
    "agent",
    [
        "curl/8.4.0",
        "python-requests/2.31.0",
        "Go-http-client/1.1",
        "axios/1.6.2",
        "node-fetch/1.0 (+https://github.com/bitinn/node-fetch)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; GPTBot/1.2; +https://openai.com/gptbot)",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; ClaudeBot/1.0; +claudebot@anthropic.com)",
        "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; PerplexityBot/1.0; +https://perplexity.ai/perplexitybot)",
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)",
        "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
        "WhatsApp/2.23.20.0",
        "",
        "   ",
    ],
)
def test_scripts_headless_browsers_ai_crawlers_and_previews_are_bots(
    classifier: AgentClassifier, agent: str
) -> None:
    assert classifier(agent) == BOT


@pytest.mark.parametrize(
    ("agent", "browser", "os", "device"),
    [
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome", "Windows", "desktop"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1", "Mobile Safari", "iOS", "mobile"),
        ("Mozilla/5.0 (iPad; CPU OS 16_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.0 Mobile/15E148 Safari/604.1", "Mobile Safari", "iOS", "tablet"),
        ("Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "Chrome", "Android", "tablet"),
        ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "Firefox", "Ubuntu", "desktop"),
    ],
)  # fmt: skip
def test_browser_families_and_device_class(
    classifier: AgentClassifier, agent: str, browser: str, os: str, device: str
) -> None:
    found = classifier(agent)
    assert (found.browser, found.os, found.device) == (browser, os, device)


def test_cache_is_bounded(classifier: AgentClassifier) -> None:
    small = AgentClassifier(entries=100)
    for i in range(1_000):
        small(f"Mozilla/5.0 (X11; Linux x86_64; rv:{i}.0) Gecko/20100101 Firefox/{i}.0")
    assert small.cached_count == 100


def test_user_agents_asked_for_in_one_turn_are_classified_together() -> None:
    classifier = AgentClassifier()
    chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
    agents = [chrome, chrome + " A", "curl/8.4.0", chrome]

    async def scenario() -> list[Agent]:
        futures = [classifier.classify_soon(agent) for agent in agents]
        assert not any(future.done() for future in futures)  # nothing classified yet
        assert classifier.cached_count == 0
        return list(await asyncio.gather(*futures))

    found = asyncio.run(scenario())
    assert found == [AgentClassifier()(agent) for agent in agents]
    assert classifier.cached_count == 3
    assert classifier.cached(chrome) == found[0]


def test_a_cancelled_request_does_not_cancel_the_others_waiting() -> None:
    classifier = AgentClassifier()

    async def request() -> Agent:
        return await classifier.classify_soon("curl/8.4.0")

    async def scenario() -> tuple[bool, Agent]:
        gone, kept = asyncio.create_task(request()), asyncio.create_task(request())
        await asyncio.sleep(0)  # both wait for the next turn
        gone.cancel()  # the client went away
        agent = await asyncio.wait_for(kept, timeout=5)
        return gone.cancelled(), agent

    assert asyncio.run(scenario()) == (True, BOT)


def test_very_long_user_agent_is_classified_by_its_start(classifier: AgentClassifier) -> None:
    chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
    assert classifier(chrome + " " + "x" * 100_000).device == "desktop"
