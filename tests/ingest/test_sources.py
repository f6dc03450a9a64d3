"""Where a view came from: the referrer's host, the UTM values, the channel and its
precedence, as the beacon's fields are parsed and a view is identified."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tourviews.ingest.agents.classifier import Agent
from tourviews.ingest.beacon import BeaconError, parse_beacon
from tourviews.ingest.privacy import IpHasher
from tourviews.ingest.rules.pipeline import Pipeline
from tourviews.ingest.sources import (
    CHANNELS,
    DIRECT_VIEW,
    Acquisition,
    acquisition_of,
    host_of,
    known,
)
from tourviews.storage.registry import Tour

WHO = str(uuid.uuid4())


def parsed(**fields: Any) -> Any:
    return parse_beacon(orjson.dumps({"tour": "t1", "visitor": WHO, **fields}))


@pytest.mark.parametrize(
    ("referrer", "host"),
    [
        ("https://www.Krisha.KZ/a/show/123?utm=x#top", "krisha.kz"),
        ("http://user:secret@portal.example.com:8080/listing?id=7", "portal.example.com"),
        ("portal.example.com", "portal.example.com"),
        ("WWW.Example.com/path/only", "example.com"),
        ("example.com:8443", "example.com"),
        ("android-app://org.telegram.messenger/", "org.telegram.messenger"),
        ("https://пример.рф/страница", "xn--e1afmkfd.xn--p1ai"),
        ("https://[2001:db8::1]:8080/x", "[2001:db8::1]"),
        ("https://203.0.113.5/x", "203.0.113.5"),
        ("https://example.com./", "example.com"),
        ("https://www2.example.com/", "www2.example.com"),
    ],
)
def test_a_referrer_keeps_its_host_alone_lower_case_without_www(referrer: str, host: str) -> None:
    assert host_of(referrer) == host
    assert parsed(referrer=referrer).referrer == host


@pytest.mark.parametrize(
    "referrer",
    ["/just/a/path", "https://", "about:blank", "exa mple.com", "https://exa_mple..com/",
     "https://-bad-.com/", "http://[::1/", "example.com:port", "a" * 300 + ".com", 12, True,
     ["https://example.com"], {"host": "example.com"}],
)  # fmt: skip
def test_a_referrer_that_names_no_host_is_refused_naming_the_field(referrer: object) -> None:
    with pytest.raises(BeaconError) as refused:
        parsed(referrer=referrer)
    assert refused.value.field == "referrer"
    if isinstance(referrer, str):  # a path or query must not come back in an answer
        assert referrer not in refused.value.message or len(referrer) < 3


@pytest.mark.parametrize("value", ["yes", 1, 0, "true", [True]])
def test_embedded_must_be_true_or_false(value: object) -> None:
    with pytest.raises(BeaconError) as refused:
        parsed(embedded=value)
    assert refused.value.field == "embedded"


@pytest.mark.parametrize("field", ["utm_source", "utm_medium", "utm_campaign"])
@pytest.mark.parametrize("value", ["x" * 101, 5, True, ["a"], "line\nbreak", "tab\there"])
def test_a_utm_value_over_100_characters_or_not_text_is_refused(field: str, value: object) -> None:
    with pytest.raises(BeaconError) as refused:
        parsed(**{field: value})
    assert refused.value.field == field


def test_utm_values_are_kept_as_given_up_to_100_characters() -> None:
    beacon = parsed(utm_source="Весна" * 20, utm_medium=" email ", utm_campaign="")
    assert beacon.utm == ("Весна" * 20, "email", None)


def test_a_beacon_without_the_fields_or_with_them_empty_came_directly() -> None:
    for fields in ({}, {"referrer": "", "embedded": None, "utm_source": None}):
        beacon = parsed(**fields)
        assert (beacon.referrer, beacon.embedded, beacon.utm) == (None, False, (None,) * 3)


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("google.com", "search"), ("google.kz", "search"), ("google.co.uk", "search"),
        ("google.com.tr", "search"), ("yandex.ru", "search"), ("yandex.kz", "search"),
        ("ya.ru", "search"), ("bing.com", "search"), ("duckduckgo.com", "search"),
        ("2gis.kz", "search"), ("2gis.ru", "search"), ("go.mail.ru", "search"),
        ("search.yahoo.co.jp", "search"), ("vk.com", "social"), ("m.vk.com", "social"),
        ("t.me", "social"), ("web.telegram.org", "social"), ("l.facebook.com", "social"),
        ("instagram.com", "social"), ("ok.ru", "social"), ("zen.yandex.ru", "social"),
        ("org.telegram.messenger", "social"),
        ("krisha.kz", None), ("mail.google.com", None), ("notgoogle.com", None),
        ("google.example.com", None), ("yahoo.com", None), ("example.com", None),
        ("com", None),
    ],
)  # fmt: skip
def test_search_engines_and_social_networks_are_known_by_host(host: str, kind: str | None) -> None:
    assert known(host) == kind


OWN = ("https://tours.example.com",)


def channel(
    source: str | None = None,
    embedded: bool = False,
    utm: tuple[str | None, str | None, str | None] = (None, None, None),
    page: str | None = None,
) -> str | None:
    return acquisition_of(source, embedded, utm, OWN, page).channel


def test_channels_by_their_precedence() -> None:
    # campaign over internal over embed over search/social over referral; direct: none
    assert channel("tours.example.com", True, (None, None, "spring")) == "campaign"
    assert channel(None, False, ("newsletter", None, None)) == "campaign"
    assert channel("tours.example.com", True) == "internal"
    assert channel("agency.example", False, page="https://agency.example") == "internal"
    assert channel("google.com", True) == "embed"
    assert channel(None, True) == "embed"
    assert channel("yandex.kz") == "search"
    assert channel("vk.com") == "social"
    assert channel("krisha.kz") == "referral"
    assert channel() == "direct"
    assert channel(page="null") == "direct"


@given(
    st.none() | st.sampled_from(["tours.example.com", "google.kz", "vk.com", "krisha.kz"]),
    st.booleans(),
    st.tuples(*[st.none() | st.just("x")] * 3),
    st.none() | st.sampled_from(["null", "https://agency.example", "https://tours.example.com"]),
)
def test_every_view_has_one_channel_and_keeps_its_values(
    source: str | None,
    embedded: bool,
    utm: tuple[str | None, str | None, str | None],
    page: str | None,
) -> None:
    found = acquisition_of(source, embedded, utm, OWN, page)
    assert found.channel in CHANNELS
    assert (found.source, found.utm_source, found.utm_medium, found.utm_campaign) == (source, *utm)


class _Salts:
    def salt(self, day: object) -> bytes:
        return b"s" * 32


def identify(kind: str = "view", **fields: Any) -> Acquisition | None:
    tours = {"t1": Tour("t1", "acme", OWN)}
    pipeline = Pipeline(lambda: tours, IpHasher(_Salts(), 32, 64, 32, 64), ledger=None)  # type: ignore[arg-type]
    extra = {"event": kind, "scene": "hall"} if kind == "scene" else {}
    beacon = parsed(**extra, **fields)
    at = datetime(2026, 11, 24, 12, tzinfo=UTC)
    agent = Agent("Chrome", "Windows", "desktop")
    return pipeline.identify(beacon, "203.0.113.1", agent, at, time.monotonic()).acquisition


def test_only_a_view_keeps_where_it_came_from() -> None:
    assert identify(referrer="https://vk.com/wall") == Acquisition(
        "vk.com", "social", None, None, None
    )
    assert identify() is DIRECT_VIEW
    assert identify("scene", referrer="https://vk.com/wall", utm_source="vk") is None


@given(st.text(max_size=200))
def test_any_referrer_is_a_bare_host_or_refused_naming_the_field(referrer: str) -> None:
    try:
        host = parsed(referrer=referrer).referrer
    except BeaconError as refused:
        assert refused.field == "referrer"
        return
    assert host is None or (HOST_ONLY.fullmatch(host) and not host.startswith("www."))


HOST_ONLY = re.compile(r"[a-z0-9_.-]+|\[[0-9a-f:.%a-z]+\]")
