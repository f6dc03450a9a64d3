"""Where a view came from: the referrer's host, its campaign, and the channel it came by.

What a view keeps of its beacon's ``referrer`` is the host alone (``host_of``): lower
case, without ``www.``, a port, a path or a query. Its ``channel`` is worked out at
ingest, since ``internal`` needs the tour's origins, and stored with it; the first of
these that applies (docs/CONTRACT.md, *Sources and campaigns*):

1. ``campaign``: a ``utm_source``, ``utm_medium`` or ``utm_campaign`` is present;
2. ``internal``: the referrer is one of the tour's own origins, or the page's own;
3. ``embed``: the tour runs in an iframe (``embedded``);
4. ``search`` or ``social``: the referrer is a search engine or social network we know;
5. ``referral``: any other referrer;
6. ``direct``: no referrer.

The search engines and social networks are a small list kept here, not a package:
PyPI's ``referer-parser`` (Apache-2.0, Snowplow's list) had its last release in 2016.
The list names the major ones worldwide and those used in Kazakhstan and Russia. A
property portal such as krisha.kz is neither: its views are ``referral`` (or ``embed``)
and its host is their source.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit

DIRECT, NONE, OTHER = "(direct)", "(none)", "(other)"
CHANNELS = ("direct", "internal", "embed", "search", "social", "campaign", "referral")
# Keys that stand for no value, or for the values past a tour's bound: never a name
# the bound admits (a host cannot be spelt so; a UTM value so spelt means the same).
PLACEHOLDERS = (DIRECT, NONE, OTHER)
# The stored fields whose values are bounded per tour, as scene names are: past the
# bound a value is counted as ``OTHER``. Each is a column of events and a breakdown.
BOUNDED = ("source", "utm_source", "utm_medium", "utm_campaign")

_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
HOST = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
MAX_HOST = 253
# An http(s) URL or a host, its host a valid name followed by a port or the path, if
# anything: the host is the first group. Anything else goes through urlsplit.
PLAIN_URL = re.compile(
    rf"(?:https?://)?(?:www\.)?({_LABEL}(?:\.{_LABEL})*)\.?(?::[0-9]{{1,5}})?(?:[/?#]|$)", re.I
)


class Acquisition(NamedTuple):
    """What a counted view keeps of where it came from (None: not given)."""

    source: str | None  # the referrer's host
    channel: str | None  # None: not a view
    utm_source: str | None
    utm_medium: str | None
    utm_campaign: str | None


DIRECT_VIEW = Acquisition(None, "direct", None, None, None)
NO_UTM: tuple[str | None, str | None, str | None] = (None, None, None)


def host_of(referrer: str) -> str:
    """The host of a URL or of a host (with or without a port or a path): lower case,
    without ``www.``. Raises ``ValueError`` for anything else; the message never
    repeats the value (it may carry a path and a query)."""
    plain = PLAIN_URL.match(referrer)
    if plain is not None and len(plain[1]) <= MAX_HOST:  # the usual one, at a regex's cost
        return plain[1].lower()
    try:
        parts = urlsplit(referrer if "://" in referrer else "//" + referrer)
        parts.port  # noqa: B018 -- a port that is no number makes no host
        host = parts.hostname
    except ValueError:
        raise ValueError("not a URL or a host") from None
    if not host:
        raise ValueError("not a URL or a host")
    if ":" in host:  # an IPv6 literal, which urlsplit gives without its brackets
        return f"[{host}]"
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError("not a valid host name") from None
    host = host.removesuffix(".").removeprefix("www.")
    if len(host) > MAX_HOST or not HOST.fullmatch(host):
        raise ValueError("not a valid host name")
    return host


# A brand's hosts in any country: google.kz, google.co.uk, google.com.tr (the host
# itself, not its subdomains: mail.google.com is no search).
_SEARCH_BRANDS = ("google", "yandex", "bing", "search.yahoo", "2gis", "ecosia", "qwant", "naver",
                  "seznam", "baidu")  # fmt: skip
# A domain and its subdomains (m.vk.com, l.facebook.com); apps by their Android package
# (an app's referrer is android-app://PACKAGE/).
_SEARCH = ("ya.ru", "duckduckgo.com", "go.mail.ru", "nova.rambler.ru", "search.brave.com",
           "startpage.com", "sogou.com", "so.com", "search.aol.com", "ask.com",
           "com.google.android.googlequicksearchbox", "ru.yandex.searchplugin")  # fmt: skip
_SOCIAL = ("facebook.com", "fb.com", "instagram.com", "twitter.com", "x.com", "t.co",
           "linkedin.com", "lnkd.in", "youtube.com", "youtu.be", "tiktok.com", "pinterest.com",
           "reddit.com", "threads.net", "whatsapp.com", "wa.me", "vk.com", "vk.ru",
           "vkontakte.ru", "ok.ru", "t.me", "telegram.org", "telegram.me", "dzen.ru",
           "zen.yandex.ru", "my.mail.ru", "org.telegram.messenger", "com.vkontakte.android",
           "com.instagram.android", "com.facebook.katana", "com.whatsapp")  # fmt: skip
KNOWN = {**dict.fromkeys(_SEARCH, "search"), **dict.fromkeys(_SOCIAL, "social")}
BRANDS = dict.fromkeys(_SEARCH_BRANDS, "search")
# The second-level labels under which a country gives out names (google.co.uk).
_UNDER_COUNTRY = frozenset(("co", "com", "org", "net", "ac", "or", "ne", "gob", "edu"))


@lru_cache(maxsize=4_096)
def known(host: str) -> str | None:
    """``search`` or ``social`` for a host of the list, else None."""
    labels = host.split(".")
    for start in range(len(labels) - 1):  # the most specific name first: zen.yandex.ru
        if (kind := KNOWN.get(".".join(labels[start:]))) is not None:
            return kind
    for tail in (1, 2):
        if len(labels) <= tail or (tail == 2 and labels[-2] not in _UNDER_COUNTRY):
            continue
        if (kind := BRANDS.get(".".join(labels[:-tail]))) is not None:
            return kind
    return None


@lru_cache(maxsize=1_024)
def hosts_of(origins: tuple[str, ...]) -> frozenset[str]:
    """The hosts of a tour's origins, or of a page's (``https://tours.example.com``),
    as ``host_of`` writes them."""
    found = set()
    for origin in origins:
        try:
            found.add(host_of(origin))
        except ValueError:  # "null", or no origin a browser writes: nothing to match
            continue
    return frozenset(found)


def acquisition_of(
    source: str | None,
    embedded: bool,
    utm: tuple[str | None, str | None, str | None],
    origins: tuple[str, ...],
    page: str | None,
) -> Acquisition:
    """What a view keeps of where it came from, its channel by the precedence above.

    ``origins``: the tour's; ``page``: the ``Origin`` of the page that sent the beacon.
    """
    if utm != NO_UTM:
        channel = "campaign"
    elif source is not None and (
        source in hosts_of(origins) or (page is not None and source in hosts_of((page,)))
    ):
        channel = "internal"
    elif embedded:
        channel = "embed"
    elif source is None:
        return DIRECT_VIEW
    else:
        channel = known(source) or "referral"
    return Acquisition(source, channel, *utm)
