"""How right the count is: labelled user-agents through the HTTP contract, beacons in, stats out.

The evaluation sets come from sources that the filter is not built from and is never
tuned on (docs/traffic-quality.md says which is which):

- woothee's test sets (the ``woothee`` npm package): crawlers, and browsers;
- the ``user-agents`` npm package: 10,000 user-agents of real traffic with their
  share of it and their device category, and the in-app browsers among them.

The development sets are reported apart, as such: Matomo's device-detector test
fixtures (the filter is built from Matomo's bot and device lists, so its fixtures
cannot measure it) and fake-useragent's database (the unit tests tune on it).

Every set goes to a tour of its own on a real ``tourviews serve``, one beacon per
user-agent (per share of traffic for the weighted set), each from its own address
and visitor, so that no rate limit, rotation guard or duplicate window interferes.
What is counted, and the device breakdown, are read back from the stats API.
"""

from __future__ import annotations

import asyncio
import glob
import importlib.resources
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

import httpx
import orjson

BROWSER_PREFIX = "Mozilla/5.0 ("
MATOMO_DEVICES = {"smartphone": "mobile", "phablet": "mobile", "tablet": "tablet",
                  "desktop": "desktop"}  # fmt: skip
NPM_USER_AGENTS = "user-agents@2.1.198"
NPM_WOOTHEE = "woothee@1.11.1"
# What makes a real-traffic string an in-app browser's or a webview's: the apps' own
# tokens, and Android's "wv" (a webview inside an app).
IN_APP = re.compile(r"\bGSA/|; wv\)|FBAN/|FB_IAB/|FBAV/|Instagram |Snapchat|Line/|"
                    r"MicroMessenger/|musical_ly|Pinterest|Telegram|Viber/|KAKAOTALK")  # fmt: skip
CACHE = Path(".eval")
WEIGHTED_BEACONS = 20_000  # the weighted set's beacons, shared out by each string's weight
CONNECTIONS = 32
DEVICE_CLASSES = ("desktop", "mobile", "tablet")


@dataclass
class LabelledSet:
    """User-agents with what they are (bot, desktop, mobile, tablet), sent to one tour each."""

    name: str
    source: str
    role: str  # "evaluation" or "development"
    rows: list[tuple[str, str, int]] = field(default_factory=list)  # (user-agent, label, times)
    skipped: int = 0  # strings no HTTP header can carry

    def tour(self, label: str) -> str:
        return f"{self.name}-{label}"

    def add(self, agent: str, label: str, times: int = 1) -> None:
        """Add a user-agent that HTTP can carry (printable ASCII); others are skipped."""
        if agent.isascii() and agent.isprintable():
            self.rows.append((agent, label, times))
        else:
            self.skipped += 1


def matomo_sets() -> list[LabelledSet]:
    """Bots, browsers by device type and in-app browsers from Matomo's fixtures."""
    import device_detector  # evaluation only: the product never imports it
    import yaml

    fixtures = Path(device_detector.__file__).parent / "tests" / "fixtures" / "upstream"
    source = f"device-detector {version('device-detector')} fixtures"

    def load(path: str) -> list[dict[str, object]]:
        with open(path) as file:
            return list(yaml.load(file, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))

    bots = LabelledSet("matomo-bots", source, "development")
    like = LabelledSet("matomo-bots-browserlike", source, "development")
    for entry in load(str(fixtures / "bots.yml")):
        agent = str(entry["user_agent"])
        bots.add(agent, "bot")
        if agent.startswith(BROWSER_PREFIX):
            like.add(agent, "bot")
    browsers = LabelledSet("matomo-browsers", source, "development")
    in_app = LabelledSet("matomo-inapp", source, "development")
    for path in sorted(glob.glob(str(fixtures / "*.yml"))):
        kind = Path(path).stem.split("-")[0]
        if kind not in MATOMO_DEVICES:
            continue
        for entry in load(path):
            text, device, client = entry["user_agent"], entry.get("device"), entry.get("client")
            if not isinstance(text, str) or not text.startswith(BROWSER_PREFIX):
                continue  # not a modern browser's: a tour cannot run there
            label = MATOMO_DEVICES.get(str((device or {}).get("type")))  # type: ignore[attr-defined]
            client_type = (client or {}).get("type")  # type: ignore[attr-defined]
            if label and client_type == "browser":
                browsers.add(text, label)
            elif label and client_type == "mobile app":
                in_app.add(text, label)
    return [bots, like, browsers, in_app]


def npm_package(spec: str) -> Path:
    """An npm package's files, fetched once with ``npm pack`` into ``.eval/``."""
    folder = CACHE / spec.split("@")[0]
    if not (folder / "package" / "package.json").exists():
        if shutil.which("npm") is None:
            raise RuntimeError(f"npm is needed once, to fetch {spec}")
        folder.mkdir(parents=True, exist_ok=True)
        packed = subprocess.run(
            ["npm", "pack", "--silent", spec], cwd=folder,
            capture_output=True, text=True, check=True,
        ).stdout.split()[-1]  # fmt: skip
        with tarfile.open(folder / packed) as archive:
            archive.extractall(folder, filter="data")
    return folder / "package"


def npm_user_agents() -> list[dict[str, object]]:
    data = npm_package(NPM_USER_AGENTS) / "dist" / "user-agents.json"
    return list(json.loads(data.read_text()))


def woothee_sets() -> list[LabelledSet]:
    """woothee's test sets: every crawler, and the browsers a tour can run in."""
    import yaml

    source = f"npm {NPM_WOOTHEE} test sets"
    bots = LabelledSet("woothee-bots", source, "evaluation")
    like = LabelledSet("woothee-bots-browserlike", source, "evaluation")
    browsers = LabelledSet("woothee-browsers", source, "evaluation")
    for path in sorted((npm_package(NPM_WOOTHEE) / "woothee" / "testsets").glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text()) or ():
            agent, category = entry.get("target"), entry.get("category")
            if not isinstance(agent, str):
                continue
            if category == "crawler":
                bots.add(agent, "bot")
                if agent.startswith(BROWSER_PREFIX):
                    like.add(agent, "bot")
            elif category in ("pc", "smartphone") and agent.startswith(BROWSER_PREFIX):
                browsers.add(agent, "browser")  # woothee's "smartphone" holds tablets too
    return [bots, like, browsers]


def traffic_sets() -> list[LabelledSet]:
    """The npm package's real traffic: each string once, and shared out by its weight."""
    rows = npm_user_agents()
    source = f"npm {NPM_USER_AGENTS}"
    each = LabelledSet("traffic", source, "evaluation")
    in_app = LabelledSet("traffic-inapp", source, "evaluation")
    weighted = LabelledSet("traffic-weighted", source, "evaluation")
    weights = [float(str(row["weight"])) for row in rows]
    total = sum(weights)
    shares = [weight / total * WEIGHTED_BEACONS for weight in weights]
    times = [int(share) for share in shares]
    # Largest remainders: the shares add up to WEIGHTED_BEACONS exactly.
    by_remainder = sorted(range(len(rows)), key=lambda n: shares[n] - times[n], reverse=True)
    for n in by_remainder[: WEIGHTED_BEACONS - sum(times)]:
        times[n] += 1
    for row, count in zip(rows, times, strict=True):
        agent, label = str(row["userAgent"]), str(row["deviceCategory"])
        each.add(agent, label)
        if IN_APP.search(agent):
            in_app.add(agent, label)
        if count:
            weighted.add(agent, label, count)
    return [each, in_app, weighted]


def development_sets() -> list[LabelledSet]:
    data = importlib.resources.files("fake_useragent").joinpath("data/browsers.jsonl")
    rows = [json.loads(line) for line in data.read_text().splitlines() if line.strip()]
    unique = {row["useragent"]: row["type"] for row in rows}
    found = LabelledSet("fakeua", f"fake-useragent {version('fake-useragent')}", "development")
    for agent, label in unique.items():
        found.add(agent, label)
    return [found]


async def _send(port: int, beacons: list[tuple[str, str]]) -> int:
    """POST each (tour, user-agent) beacon over keep-alive connections; how many got 204."""
    queue = iter(beacons)
    accepted = 0

    async def connection() -> None:
        nonlocal accepted
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for tour, agent in queue:
                who = uuid.uuid4()
                body = orjson.dumps({"tour": tour, "visitor": str(who)})
                head = (
                    f"POST /v1/beacon HTTP/1.1\r\nHost: eval\r\nContent-Type: text/plain\r\n"
                    f"User-Agent: {agent}\r\nX-Forwarded-For: 10.{who.bytes[0]}.{who.bytes[1]}."
                    f"{who.bytes[2]}\r\nContent-Length: {len(body)}\r\n\r\n"
                )
                writer.write(head.encode() + body)
                status_line = await reader.readuntil(b"\r\n\r\n")
                status = int(status_line.split(b" ", 2)[1])
                for line in status_line.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        await reader.readexactly(int(line.split(b":")[1]))
                accepted += status == 204
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    return accepted


def _tourviews(data_dir: Path, *args: str) -> str:
    command = [sys.executable, "-m", "tourviews", *args, "--data", str(data_dir)]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def measure(sets: list[LabelledSet]) -> list[dict[str, object]]:
    """Send every set through a real server; per set, what was counted and as which device."""
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        tours = sorted({s.tour(label) for s in sets for _, label, _ in s.rows})
        for tour in tours:
            _tourviews(data_dir, "tours", "add", tour, "--org", "eval")
        token = _tourviews(data_dir, "tokens", "create", "--org", "eval").strip()
        server = subprocess.Popen(
            [sys.executable, "-m", "tourviews", "serve", "--port", "0", "--data", str(data_dir),
             "--trusted-proxy", "127.0.0.1/32", "--tour-rate", "1000000",
             "--tour-burst", "1000000"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            url = _wait_for(data_dir / "server.json", server)
            port = int(url.rsplit(":", 1)[1])
            beacons = [(s.tour(label), agent) for s in sets for agent, label, times in s.rows
                       for _ in range(times)]  # fmt: skip
            accepted = asyncio.run(_send(port, beacons))
            if accepted != len(beacons):
                raise RuntimeError(f"{len(beacons) - accepted} beacons were not answered 204")
            today = datetime.now(UTC).date().isoformat()
            stats = {
                tour: httpx.get(
                    f"{url}/v1/tours/{tour}/stats?from={today}&to={today}",
                    headers={"authorization": f"Bearer {token}"}, timeout=60,
                ).json()
                for tour in tours
            }  # fmt: skip
        finally:
            server.terminate()
            server.wait(30)
    return [_score(s, stats) for s in sets]


def _wait_for(server_file: Path, server: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError("tourviews serve exited")
        try:
            return str(orjson.loads(server_file.read_bytes())["url"])
        except (FileNotFoundError, orjson.JSONDecodeError):
            time.sleep(0.05)
    raise RuntimeError("tourviews serve did not start")


def _score(labelled: LabelledSet, stats: dict[str, dict[str, object]]) -> dict[str, object]:
    sent = {label: 0 for _, label, _ in labelled.rows}
    for _, label, times in labelled.rows:
        sent[label] += times
    counted, agreeing = 0, 0
    for label in sent:
        document = stats[labelled.tour(label)]
        counted += int(document["totals"]["views"])  # type: ignore[index]
        devices = document["breakdown"]["device"]  # type: ignore[index]
        agreeing += sum(int(row["views"]) for row in devices if row["key"] == label)
    devices_labelled = all(label in DEVICE_CLASSES for label in sent)
    total = sum(sent.values())
    return {"set": labelled.name, "source": labelled.source, "role": labelled.role,
            "beacons": total, "counted": counted, "agreeing": agreeing,
            "bots": sent.get("bot", 0) == total, "devices": devices_labelled,
            "skipped": labelled.skipped}  # fmt: skip


def evaluate() -> list[dict[str, object]]:
    return measure([*woothee_sets(), *traffic_sets(), *matomo_sets(), *development_sets()])


def report(results: list[dict[str, object]]) -> list[str]:
    """The table for BENCHMARKS.md."""
    lines = ["| set | source | role | beacons | result | goal |", "|---|---|---|---|---|---|"]
    for row in results:
        beacons, counted = int(row["beacons"]), int(row["counted"])  # type: ignore[call-overload]
        if row["bots"]:
            goal = "≥ 0.97" if "browserlike" in str(row["set"]) else "≥ 0.99"
            result = f"bot recall {1 - counted / beacons:.4f} ({counted:,} counted as views)"
        else:
            goal = "0 flagged; device ≥ 0.97" if row["set"] != "traffic-weighted" else "≥ 0.995"
            agreeing = int(row["agreeing"])  # type: ignore[call-overload]
            result = f"{counted / beacons:.4f} counted ({beacons - counted:,} flagged as bots)"
            if row["devices"]:
                result += f"; device class agrees {agreeing / beacons:.4f}"
            else:
                goal = "0 flagged"
        lines.append(f"| {row['set']} | {row['source']} | {row['role']} | {beacons:,} | "
                     f"{result} | {goal} |")  # fmt: skip
    return lines


def main() -> int:
    os.environ.setdefault("PYTHONHASHSEED", "0")
    results = evaluate()
    print("\n".join(report(results)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
