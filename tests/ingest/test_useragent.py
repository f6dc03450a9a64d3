"""User-agent classes on the development sets: what the filter may be tuned on.

Crawlers: every instance of crawler-user-agents, and every AI crawler token of
ai-crawler-index in the form AI crawlers use. Browsers: fake-useragent's database of
real-world browser user-agents (desktop, mobile, tablet), and the in-app browsers
below. The evaluation sets, which the filter is never tuned on, are measured by
``make eval`` (docs/traffic-quality.md).
"""

from __future__ import annotations

import asyncio
import importlib.resources
import json

import crawleruseragents
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tourviews.ingest.agents.bots import SOURCES, source_versions
from tourviews.ingest.agents.classifier import BOT, OTHER, Agent, AgentClassifier


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
    assert classifier(app).browser == "TopPodcasts"  # copied too, but from a fixed word


def test_an_os_name_copied_from_the_user_agent_is_stored_as_other(
    classifier: AgentClassifier,
) -> None:
    # ua-parser's HbbTV pattern copies the OS from between the semicolons.
    hbbtv = "Mozilla/5.0 (X11; Linux x86_64) HbbTV/1.2.3 (; JohnSmithAtExampleCom ;2015)"
    assert classifier(hbbtv).os == OTHER


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(
        [
            "Mozilla/5.0 (X11; Linux x86_64) HbbTV/1.2.3 (; {} ;2015)",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) {}/1.0 CFNetwork/1410",
            "Mozilla/5.0 (Linux; Android 14; {}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) {}/2.0 Safari/537.36",
            "Mozilla/5.0 ({}) Gecko/20100101 Firefox/133.0",
        ]
    ),
    # A marker no family is named after, then what the sender likes: letters only fit
    # more of ua-parser's copying patterns (HbbTV's takes [a-zA-Z]+).
    st.from_regex(r"Zq[A-Za-z]{1,30}", fullmatch=True),
)
def test_no_text_of_the_senders_reaches_a_stored_family(template: str, text: str) -> None:
    classifier = CLOSED_SET_CLASSIFIER
    agent = classifier(template.format(text))
    assert "Zq" not in agent.browser and "Zq" not in agent.os
    assert agent.browser in classifier.family_names | {OTHER}
    assert agent.os in classifier.family_names | {OTHER}


CLOSED_SET_CLASSIFIER = AgentClassifier()


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
        "TelegramBot (like TwitterBot)",
        "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36 WhatsApp/2.24.1",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html) Electron/33.0.0",
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


IN_APP = {
    "Instagram": "Mozilla/5.0 (Linux; Android 15; Pixel 8 Build/AP3A.240617.008; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/126.0.6478.134 Mobile Safari/537.36 Instagram 406.0.0.58.94 Android (35/15; 420dpi; 1080x2400; Google/google; Pixel 8; shiba; shiba; en_US; 670828920)",
    "Facebook": "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/125.0.6422.165 Mobile Safari/537.36 [FB_IAB/FB4A;FBAV/468.0.0.55.105;]",
    "MetaIAB": "Mozilla/5.0 (Linux; Android 16; Pixel 9 Build/CP1A.260305.018; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/146.0.7680.174 Mobile Safari/537.36 MetaIAB Facebook",
    "Messenger": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [FBAN/MessengerLiteForiOS;FBAV/466.0.0.41.108;FBBV/624564221;FBDV/iPhone14,5;FBMD/iPhone;FBSN/iOS;FBSV/17.5;FBSS/3;FBCR/;FBID/phone;FBLC/en_US;FBOP/0]",
    "Viber": "Mozilla/5.0 (Linux; Android 13; SM-A536B Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0.6099.230 Mobile Safari/537.36 Viber/21.6.0.3",
    "LINE": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Safari Line/14.3.0",
    "KakaoTalk": "Mozilla/5.0 (Linux; Android 14; SM-S911N Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/122.0.6261.105 Mobile Safari/537.36;KAKAOTALK 2410430",
    "WeChat": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 MicroMessenger/8.0.47(0x18002f2c) NetType/WIFI Language/zh_CN",
    "Snapchat": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 Snapchat/13.11.0.34 (like Safari/8618.1.15.10.15, panda)",
    "TikTok": "Mozilla/5.0 (Linux; Android 14; SM-G991B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/123.0.6312.118 Mobile Safari/537.36 musical_ly_2023405020 JsSdk/1.0 NetType/WIFI Channel/googleplay AppName/musical_ly app_version/34.5.2 ByteLocale/en BytedanceWebview/d8a21c6",
    "Pinterest": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148 [Pinterest/iOS]",
    "Telegram": "Mozilla/5.0 (Linux; Android 14; SM-S918B Build/UP1A.231005.007; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/124.0.6367.82 Mobile Safari/537.36 Telegram-Android/10.12.0 (Samsung SM-S918B; Android 14; SDK 34; HIGH)",
    "Google app": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) GSA/311.0.622903455 Mobile/15E148 Safari/604.1",
    "WebView on a listed build": "Mozilla/5.0 (Linux; Android 15; CPH2557 Build/AP3A.240617.008; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/142.0.7444.142 Mobile Safari/537.36",
}
APP_SHELLS = {
    "Slack": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Slack/4.41.97 Chrome/130.0.6723.137 Electron/33.2.1 Safari/537.36",
    "VS Code": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Code/1.115.0 Chrome/142.0.7444.265 Electron/39.8.5 Safari/537.36",
    "QtWebEngine": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) QtWebEngine/6.7.2 Chrome/118.0.5993.220 Safari/537.36",
}


@pytest.mark.parametrize("app", sorted(IN_APP))
def test_in_app_browsers_and_webviews_are_people_on_phones(
    classifier: AgentClassifier, app: str
) -> None:
    assert classifier(IN_APP[app]).device == "mobile"


@pytest.mark.parametrize("app", sorted(APP_SHELLS))
def test_desktop_app_shells_are_people_on_desktops(classifier: AgentClassifier, app: str) -> None:
    assert classifier(APP_SHELLS[app]).device == "desktop"


@pytest.mark.parametrize(
    "agent",
    [
        "Mozilla/5.0 (compatible; Examplebot-Free/3.1)",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko; Example Renderer) Chrome/120.0 Safari/537.36",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 +https://example.com/about-our-fetcher",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 ops@example.com",
    ],
)
def test_user_agents_that_break_the_browser_grammar_are_bots(
    classifier: AgentClassifier, agent: str
) -> None:
    assert classifier(agent) == BOT


def test_internet_explorer_10_is_still_a_browser(classifier: AgentClassifier) -> None:
    ie10 = "Mozilla/5.0 (compatible; MSIE 10.0; Windows NT 6.1; Trident/6.0)"
    assert classifier(ie10).device == "desktop"


@pytest.mark.parametrize(
    ("agent", "device"),
    [
        ("Mozilla/5.0 (Android; Tablet; rv:26.0) Gecko/26.0 Firefox/26.0", "tablet"),
        ("Mozilla/5.0 (Android 14; Mobile; rv:133.0) Gecko/133.0 Firefox/133.0", "mobile"),
        ("Mozilla/5.0 (Linux; Android 13; SM-X710 Build/TP1A.220624.014; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/120.0 Mobile Safari/537.36 Instagram 300.0", "tablet"),
        ("Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "desktop"),
    ],
)  # fmt: skip
def test_tablets_that_read_like_phones_and_chromebooks(
    classifier: AgentClassifier, agent: str, device: str
) -> None:
    assert classifier(agent).device == device


def test_each_maintained_source_records_its_version() -> None:
    versions = source_versions()
    assert sorted(versions) == sorted(SOURCES) and all(versions.values())


def test_the_phone_names_taken_from_crawlerdetect_are_phone_and_app_tokens() -> None:
    from tourviews.ingest.agents.bots import _PHONE_NAMES

    assert "cubot" in _PHONE_NAMES and "; M bot" in _PHONE_NAMES
    assert not any("Safari" in name or "Mozilla" in name for name in _PHONE_NAMES)


@pytest.mark.parametrize(
    "agent",
    [
        # Matomo's list: names the other lists lack (each passed before it was a source)
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_13_6) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/67.0.3396.99 Safari/537.36 CloudflareDiagnostics/1.0",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/140.0.0.0 Safari/537.36 CybaaAgent",
        "Mozilla/5.0 (Linux; Android 9; SM-G973F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/75.0.3770.101 Mobile Safari/537.36 Convertify",
        # one of Matomo's patterns with look-around, matched in two steps
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) KarnoProspectingStudio/0.1 Safari/537.36",
    ],
)  # fmt: skip
def test_matomos_bot_list_is_a_source(classifier: AgentClassifier, agent: str) -> None:
    assert classifier(agent) == BOT


def test_matomos_look_around_patterns_keep_their_exceptions() -> None:
    from tourviews.ingest.agents.bots import MatomoGuarded, matomo_patterns

    guarded = MatomoGuarded(matomo_patterns()[1])
    assert guarded("Mozilla/5.0 (X11; Linux x86_64) Example-fetcher/1.0")
    # "(?<!node-|...)fetch": node-fetch is a library, but not this pattern's business
    assert not guarded("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 node-fetch")
    assert not guarded(
        "Mozilla/5.0 (Windows NT 10.0) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"
    )


@pytest.mark.parametrize(
    ("agent", "device"),
    [
        # phone and tablet model names with a crawler word or a listed name in them
        ("Mozilla/5.0 (Linux; Android 13; Spider 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36", "tablet"),
        ("Mozilla/5.0 (Linux; Android 4.2.2; HTC Butterfly Build/JDQ39) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/31.0.1650.59 Mobile Safari/537.36", "mobile"),
        ("Mozilla/5.0 (Linux; Android 7.0; C Bot Tab 70) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/78.0.3904.108 Safari/537.36", "tablet"),
        ("Mozilla/5.0 (Linux; Android 4.4.2; ViewSonic V500 Build/KVT49L) AppleWebKit/535.19 (KHTML, like Gecko) Chrome/18.0.1025.166 Mobile Safari/535.19", "mobile"),
        # Sogou's browser and the Baidu app: people, though "Sogou" is listed
        ("Mozilla/5.0 (Linux; Android 10; ZTE A2020 SP Build/QKQ1.200913.002; wv) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/68.0.3440.106 Mobile Safari/537.36 AWP/2.0 SogouMSE,SogouMobileBrowser/6.5.11", "mobile"),
    ],
)  # fmt: skip
def test_a_crawler_word_in_a_phones_model_name_is_no_bot(
    classifier: AgentClassifier, agent: str, device: str
) -> None:
    assert classifier(agent).device == device


def test_a_bot_that_writes_an_android_platform_is_still_a_bot(classifier: AgentClassifier) -> None:
    agent = (
        "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, "
        "like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
        "+http://www.google.com/bot.html)"
    )
    assert classifier(agent) == BOT
    from tourviews.ingest.agents.bots import without_device_name

    assert without_device_name(agent) == agent.replace("Nexus 5X", "K")


@pytest.mark.parametrize(
    ("agent", "device"),
    [
        # Android tablets whose browser writes "Mobile": Matomo's table knows the models
        ("Mozilla/5.0 (Linux; Android 12; TGR-W09) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36", "tablet"),
        ("Mozilla/5.0 (Linux; U; Android 10; zh-CN; iPlay_20 Build/QP1A.190711.020) AppleWebKit/537.36 (KHTML, like Gecko) Version/4.0 Chrome/57.0.2987.108 Mobile Safari/537.36", "tablet"),
        # and phones whose browser leaves it out
        ("Mozilla/5.0 (Linux; Android 9; SM-G960F) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36", "mobile"),
    ],
)  # fmt: skip
def test_matomos_device_table_tells_tablets_from_phones(
    classifier: AgentClassifier, agent: str, device: str
) -> None:
    assert classifier(agent).device == device


@pytest.mark.parametrize(
    "model", ["Googlebot", "bingbot Build/QP1A", "GPTBot", "crawler@example.com", "Googlebot; wv"]
)
def test_a_bot_name_in_the_model_slot_is_still_a_bot(
    classifier: AgentClassifier, model: str
) -> None:
    agent = f"Mozilla/5.0 (Linux; Android 10; {model}) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Mobile Safari/537.36"
    assert classifier(agent) == BOT


def test_what_follows_the_platform_cannot_change_a_models_class(
    classifier: AgentClassifier,
) -> None:
    galaxy = "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Mobile Safari/537.36"
    assert AgentClassifier()(galaxy + " Nexus 9").device == "mobile"
    assert classifier(galaxy).device == "mobile"
