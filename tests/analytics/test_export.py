"""Every breakdown as CSV: the rows and numbers of the stats document, from the API and the CLI."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import send, visitor
from tourviews.analytics.breakdowns import shown
from tourviews.app import create_app
from tourviews.settings import Settings
from tourviews.storage.clock import ManualClock

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1"
)
DAY = {"from": "2026-11-24", "to": "2026-11-24"}


def scripted(client: TestClient) -> None:
    """Two visits on a desktop and one on an iPhone, through scenes, with an action."""
    for agent, path in [
        (None, ["lobby", "kitchen"]),
        (None, ["lobby"]),
        (IPHONE, ["lobby", "bath"]),
    ]:
        who = visitor()
        assert send(client, who, agent=agent, scene=path[0]) == 204
        for scene in path[1:]:
            assert send(client, who, agent=agent, event="scene", scene=scene) == 204
        assert send(client, who, agent=agent, event="engage", seconds=12, scene=path[-1]) == 204  # type: ignore[arg-type]
    assert send(client, who, agent=IPHONE, event="action", name="lead-form") == 204


def csv_rows(client: TestClient, token: str, name: str) -> list[dict[str, str]]:
    response = client.get(
        "/v1/tours/t1/stats", params={**DAY, "format": "csv", "breakdown": name},
        headers={"Authorization": f"Bearer {token}"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert f'filename="t1-{name}-2026-11-24-2026-11-24.csv"' in response.headers[
        "content-disposition"]  # fmt: skip
    return list(csv.DictReader(io.StringIO(response.text)))


def test_each_registered_breakdown_exports_the_rows_of_the_stats_document(
    client: TestClient, admin_token: str
) -> None:
    scripted(client)
    document: dict[str, Any] = client.get(
        "/v1/tours/t1/stats", params=DAY, headers={"Authorization": f"Bearer {admin_token}"}
    ).json()
    for breakdown in shown(False):
        rows = document.get(breakdown.name) or document["breakdown"][breakdown.name]
        as_text = [{field: str(value) for field, value in row.items()} for row in rows]
        assert csv_rows(client, admin_token, breakdown.name) == as_text, breakdown.name


def test_breakdown_csv_holds_the_counted_numbers(client: TestClient, admin_token: str) -> None:
    scripted(client)
    assert csv_rows(client, admin_token, "device") == [
        {"key": "desktop", "views": "2", "visitors": "2"},
        {"key": "mobile", "views": "1", "visitors": "1"},
    ]
    # scene events per scene (a view's own scene is no scene event), engage seconds by scene
    assert csv_rows(client, admin_token, "scene") == [
        {"key": "bath", "views": "1", "visitors": "1", "engaged_seconds": "12"},
        {"key": "kitchen", "views": "1", "visitors": "1", "engaged_seconds": "12"},
    ]
    assert csv_rows(client, admin_token, "entry_scene") == [{"key": "lobby", "visits": "3"}]
    assert csv_rows(client, admin_token, "transitions") == [
        {"from": "lobby", "to": "bath", "visits": "1"},
        {"from": "lobby", "to": "kitchen", "visits": "1"},
    ]
    assert csv_rows(client, admin_token, "action") == [
        {"key": "lead-form", "count": "1", "visitors": "1"}]  # fmt: skip


@pytest.mark.parametrize(
    ("params", "error"),
    [({"format": "csv", "breakdown": "planet"}, "breakdown must be one of scene, "),
     ({"breakdown": "device"}, "breakdown is for format=csv")],
)  # fmt: skip
def test_a_bad_breakdown_answers_400_naming_it(
    client: TestClient, admin_token: str, params: dict[str, str], error: str
) -> None:
    response = client.get(
        "/v1/tours/t1/stats", params=params, headers={"Authorization": f"Bearer {admin_token}"}
    )
    assert (response.status_code, response.json()["field"]) == (400, "breakdown")
    assert response.json()["error"].startswith(error)


def cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "tourviews", *args, "--data", str(data_dir)]
    return subprocess.run(command, capture_output=True, text=True)


def test_the_cli_exports_a_breakdown_as_csv(data_dir: Path, clock: ManualClock) -> None:
    app = create_app(Settings(data_dir=data_dir), clock)
    app.service.registry.put_tour("t1", "acme")
    with TestClient(
        app,
        headers={
            "user-agent": "Mozilla/5.0 (X11; Linux x86_64) "
            "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
        },
    ) as client:
        scripted(client)
    done = cli(data_dir, "stats", "t1", *("--from", "2026-11-24", "--to", "2026-11-24"),
               "--format", "csv", "--breakdown", "device")  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "key,views,visitors\ndesktop,2,2\nmobile,1,1\n")
    refused = cli(data_dir, "stats", "t1", "--format", "csv", "--breakdown", "planet")
    assert refused.returncode == 1
    assert refused.stderr.startswith("tourviews: error: --breakdown: breakdown must be one of")
    assert len(refused.stderr.splitlines()) == 1
