"""User-agent strings to (browser, OS, device class), fast and bounded.

Native automata do the matching: ua-parser's patterns, compiled by ``ua_parser_rs``
(the Rust resolver ua-parser uses), find the browser, OS and device families; two
more extractors built from ``tourviews.ingest.agents.bots`` tell bots apart (the
maintained lists and our rules) and vouch for real people's clients that the lists wrongly match.
user-agents' rules then decide the device class from the families, and for phones
and tablets UAParser.js's table of device models has the last word
(``tourviews.ingest.agents.formfactor``): the tokens alone often do not tell the two
apart. Results are cached; the raw string lives only in this process's memory, as a key of that
bounded cache.

A user-agent not in the cache is classified in the next turn of the event loop,
together with the others that arrived meanwhile (a cache-busting flood sends nothing
else). Classified one after another, the automata stay in the CPU's caches; one per
request, between the rest of each request's work, each took about twice as long.

Browser and OS families are stored, so only names from a closed set are: ua-parser's
own family names, and the names its patterns can capture from a fixed alternation.
A family its patterns copy from free text is "Other": a crafted user-agent can
neither put its own text on disk nor make a breakdown unbounded.
"""

from __future__ import annotations

import asyncio
import functools
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from operator import attrgetter

import ua_parser
import ua_parser_rs
from user_agents.parsers import Browser, Device, OperatingSystem, UserAgent

from tourviews.ingest.agents.bots import (
    DECISIVE,
    GRAMMAR,
    MatomoGuarded,
    listed_patterns,
    matomo_patterns,
    people_patterns,
    without_device_name,
)
from tourviews.ingest.agents.devices import device_models, platform
from tourviews.ingest.agents.families import family_names
from tourviews.ingest.agents.formfactor import FORMS, FormFactor
from tourviews.ingest.agents.patterns import any_of

CACHE_ENTRIES = 16_384
MAX_LENGTH = 512  # longer user-agents are classified by their first 512 characters

# A 3D tour needs WebGL, so only modern browsers can show one, and every modern
# browser's user-agent starts like this. Anything else is a script or a library.
BROWSER_PREFIX = "Mozilla/5.0 ("
# what a match of the bot automaton says; GUARDED: only if Matomo's full pattern matches
DECIDED, LISTED, GUARDED = "decided", "listed", "guarded"
OTHER = "Other"
DEVICES = frozenset(("desktop", "mobile", "tablet"))
AGENT_KINDS = 4_096  # distinct (browser, OS, device class) kept as shared Agent objects


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


@dataclass
class _Turn:
    loop: asyncio.AbstractEventLoop
    waiting: list[tuple[str, asyncio.Future[Agent]]] = field(default_factory=list)


class _Automata:
    """The compiled patterns: they hold no state, so a process builds them once."""

    def __init__(self) -> None:
        browsers, systems, devices = ua_parser.load_builtins()
        fields = attrgetter("regex", "family", "major", "minor", "patch", "patch_minor")
        device_fields = attrgetter("regex", "regex_flag", "family", "brand", "model")
        browser_rows, system_rows = list(map(fields, browsers)), list(map(fields, systems))
        self.browsers = ua_parser_rs.UserAgentExtractor(browser_rows)
        self.systems = ua_parser_rs.OSExtractor(system_rows)
        self.devices = ua_parser_rs.DeviceExtractor(map(device_fields, devices))
        # One automaton tells a decisive match from a listed one and from one that only
        # Matomo's look-around patterns may confirm: the first match wins. Each is one
        # alternation: the automaton then runs once per user-agent instead of once per
        # pattern or list (BENCHMARKS.md has the classifier's cost).
        self.guarded = MatomoGuarded(matomo_patterns()[1])
        self.bots = ua_parser_rs.DeviceExtractor(
            [(any_of(DECISIVE), None, DECIDED, None, None),
             (any_of((*GRAMMAR, *listed_patterns())), None, LISTED, None, None),
             (self.guarded.loose, None, GUARDED, None, None)]
        )  # fmt: skip
        self.form = FormFactor()
        self.people = ua_parser_rs.DeviceExtractor(
            [(any_of(people_patterns()), None, "person", None, None)]
        )
        self.family_names = family_names((row[0], row[1]) for row in (*browser_rows, *system_rows))


@functools.cache
def _automata() -> _Automata:
    """One set per process: compiling them takes about a second."""
    return _Automata()


class AgentClassifier:
    """Classifies user-agent strings; the last ``entries`` results are cached."""

    def __init__(self, entries: int = CACHE_ENTRIES) -> None:
        automata = _automata()
        self._browsers, self._systems = automata.browsers, automata.systems
        self._devices, self._guarded, self._bots = automata.devices, automata.guarded, automata.bots
        self._form, self._people = automata.form, automata.people
        self.family_names = automata.family_names
        self._entries = entries
        self._cache: OrderedDict[str, Agent] = OrderedDict()  # least recently used first
        self._turn: _Turn | None = None  # user-agents waiting for the next turn

    def __call__(self, user_agent: str) -> Agent:
        """The class, from the cache or classified now."""
        user_agent = user_agent[:MAX_LENGTH]
        agent = self.cached(user_agent)
        if agent is None:
            agent = self._cache[user_agent] = self._classify(user_agent)
            if len(self._cache) > self._entries:
                self._cache.popitem(last=False)
        return agent

    def cached(self, user_agent: str) -> Agent | None:
        user_agent = user_agent[:MAX_LENGTH]
        agent = self._cache.get(user_agent)
        if agent is not None:
            self._cache.move_to_end(user_agent)
        return agent

    def classify_soon(self, user_agent: str) -> asyncio.Future[Agent]:
        """The class, once the next turn of the event loop has classified all waiting."""
        loop = asyncio.get_running_loop()
        if self._turn is None or self._turn.loop is not loop:  # first of the turn
            self._turn = _Turn(loop)
            loop.call_soon(self._classify_turn, self._turn)
        future: asyncio.Future[Agent] = loop.create_future()  # one each: cancelled alone
        self._turn.waiting.append((user_agent, future))
        return future

    def _classify_turn(self, turn: _Turn) -> None:
        if self._turn is turn:
            self._turn = None
        try:
            for user_agent, future in turn.waiting:
                if not future.done():  # else the request went away
                    future.set_result(self(user_agent))
        finally:  # should the automata fail (a Rust panic is no Exception), none waits on
            for _, future in turn.waiting:
                if not future.done():
                    future.set_exception(RuntimeError("user-agent classification failed"))

    @property
    def cached_count(self) -> int:
        return len(self._cache)

    def _classify(self, user_agent: str) -> Agent:
        user_agent = user_agent.strip(' \t"')
        if not user_agent.startswith(BROWSER_PREFIX):
            return BOT
        verdict = self._bot_verdict(user_agent)
        if verdict == DECIDED:
            return BOT
        if self._listed(user_agent, verdict) and not self._people.extract(user_agent):
            return BOT
        browser = self._browsers.extract(user_agent)
        os = self._systems.extract(user_agent)
        device = self._devices.extract(user_agent)
        # user-agents' device rules, fed by the native extractors instead of its legacy
        # parser. The rules read the OS version string but no browser version.
        agent = UserAgent.__new__(UserAgent)
        agent.ua_string = user_agent
        agent.browser = Browser(self._family(browser), (), "")
        os_family = self._family(os)
        # The rules read the OS version of Windows alone ("RT", "ME").
        os_version = ".".join(v for v in (os.major, os.minor, os.patch) if v) if (
            os is not None and os_family == "Windows") else ""  # fmt: skip
        agent.os = OperatingSystem(os_family, (), os_version)
        agent.device = Device(device.family, device.brand, device.model) if device else _NO_DEVICE
        device_class = _device_class(agent)
        if device_class in DEVICES:  # the model's name tells, if a table knows it
            part = platform(user_agent)
            known = None if part is None else device_models().android(part)
            if known is not None:
                device_class = known
            elif device_class in FORMS:
                device_class = self._form(user_agent) or device_class
        if device_class == "bot":  # ua-parser's own Spider patterns: no families kept
            return BOT
        return _interned(agent.browser.family, agent.os.family, device_class)

    def _bot_verdict(self, text: str) -> str | None:
        """DECIDED, LISTED (a list, the grammar, or Matomo's look-around patterns), or None."""
        found = self._bots.extract(text)
        if found is None:
            return None
        if found.family == GUARDED:
            return LISTED if self._guarded.full(text) else None
        return str(found.family)

    def _listed(self, user_agent: str, verdict: str | None) -> bool:
        """Whether the lists or the grammar take ``user_agent`` for a bot's.

        ``verdict``: the bot automaton's on it. A match inside the model name of an
        Android device that a device table knows ("HTC Butterfly", "Spider 8") is not
        evidence (``without_device_name``); in a name no table knows ("Googlebot") it is.
        """
        if verdict is None:
            return False
        masked = without_device_name(user_agent)
        if masked is None or not self._known_device(user_agent):
            return True  # a name no device table knows is a sender's word, not a phone's
        return self._bot_verdict(masked) is not None

    def _known_device(self, user_agent: str) -> bool:
        """Whether a device table knows the Android device this user-agent names."""
        part = platform(user_agent)
        return part is not None and (
            device_models().android(part) is not None or self._form(part) is not None
        )

    def _family(self, found: ua_parser_rs.UserAgent | ua_parser_rs.OS | None) -> str:
        if found is None:
            return OTHER
        return found.family if found.family in self.family_names else OTHER


@lru_cache(maxsize=AGENT_KINDS)
def _interned(browser: str, os: str, device: str) -> Agent:
    """Agents shared between user-agents: the cache holds little more than its keys."""
    return Agent(browser, os, device)


_NO_DEVICE = Device("Other", None, None)
