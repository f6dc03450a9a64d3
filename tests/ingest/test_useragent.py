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

from ingest.useragent import BOT, Agent, AgentClassifier


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


def test_a_family_copied_from_the_user_agent_is_stored_only_if_it_is_a_name(
    classifier: AgentClassifier,
) -> None:
    # ua-parser's CFNetwork pattern takes all text before "/<version> CFNetwork".
    crafted = "Mozilla/5.0 (X) tracking-id-1234/1.0 CFNetwork/1410.0.3 Darwin/22.6.0"
    assert classifier(crafted).browser == "Other"
    app = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) TopPodcastsPro/412 CFNetwork/1410"
    assert classifier(app).browser == "TopPodcasts"  # copied too, and a name


def test_in_app_browser_on_an_ipad_asking_for_desktop_sites_is_a_tablet(
    classifier: AgentClassifier,
) -> None:
    facebook = (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Mobile/15E148 [FBAN/FBIOS;FBDV/iPad13,4;FBMD/iPad;FBSN/iPadOS;FBSV/17.1]"
    )
    assert classifier(facebook) == Agent("Facebook", "Mac OS X", "tablet")


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


class Panic(BaseException):
    """What a panic in a Rust extension raises: no Exception."""


def test_a_failing_classification_fails_the_waiting_requests_instead_of_hanging() -> None:
    classifier = AgentClassifier()

    def panic(user_agent: str) -> Agent:
        raise Panic

    classifier._classify = panic  # type: ignore[method-assign]

    async def scenario() -> list[BaseException | Agent]:
        futures = [classifier.classify_soon(f"Mozilla/5.0 ({n})") for n in range(3)]
        done = asyncio.gather(*futures, return_exceptions=True)
        return list(await asyncio.wait_for(done, timeout=5))

    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda loop, context: None)  # the panic reaches the loop
    try:
        results = loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert all(isinstance(result, RuntimeError) for result in results)


def test_a_turn_left_behind_by_a_closed_event_loop_does_not_stall_the_next() -> None:
    classifier = AgentClassifier()
    old = asyncio.new_event_loop()

    def ask_then_stop() -> None:
        classifier.classify_soon("curl/8.4.0")
        old.stop()  # before the turn that would classify it

    old.call_soon(ask_then_stop)
    old.run_forever()
    old.close()

    async def later() -> Agent:
        return await asyncio.wait_for(classifier.classify_soon("curl/8.4.0"), timeout=5)

    assert asyncio.run(later()) == BOT
