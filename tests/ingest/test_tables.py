"""Matomo's tables kept as JSON in the cache directory, and loaded only when needed."""

from __future__ import annotations

import importlib.resources
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
import yaml

from tourviews.ingest.agents import tables
from tourviews.ingest.agents.tables import cache_dir, matomo_table

NAME = "bots.yml"  # the smaller of the two tables the classifier reads


def parsed(name: str) -> object:
    text = importlib.resources.files("device_detector").joinpath(f"regexes/upstream/{name}")
    return orjson.loads(orjson.dumps(yaml.safe_load(text.read_text()),
                                     option=orjson.OPT_NON_STR_KEYS))  # fmt: skip


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache" / "tourviews"


def test_a_table_is_kept_once_and_read_back_without_yaml(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cache_dir() == cache
    first = matomo_table(NAME)
    assert first == parsed(NAME)
    assert [p.suffix for p in cache.iterdir()] == [".json"]  # no temporary file left

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the YAML was parsed again")

    monkeypatch.setattr(tables.yaml, "load", refuse)
    assert matomo_table(NAME) == first


def test_a_damaged_kept_table_is_parsed_again(cache: Path) -> None:
    matomo_table(NAME)
    (kept,) = cache.iterdir()
    kept.write_bytes(b'[{"regex": "cut sh')
    assert matomo_table(NAME) == parsed(NAME)


def test_a_cache_that_cannot_be_written_costs_only_the_parse(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))  # its tourviews/ cannot be made
    assert matomo_table(NAME) == parsed(NAME)


def test_another_version_of_the_tables_is_kept_apart(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    matomo_table(NAME)
    monkeypatch.setattr(tables, "version", lambda _: "99.0")
    matomo_table(NAME)
    assert len(list(cache.iterdir())) == 2


def test_the_table_of_device_models_is_loaded_at_the_first_android_user_agent() -> None:
    script = """
from tourviews.ingest.agents.classifier import AgentClassifier
from tourviews.ingest.agents.devices import device_models
classify = AgentClassifier()
classify("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
         "Chrome/131.0.0.0 Safari/537.36")
classify("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
         "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1")
print(device_models.cache_info().currsize)
found = classify("Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like "
                 "Gecko) Chrome/131.0.0.0 Safari/537.36")
print(device_models.cache_info().currsize, found.device)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         check=True, timeout=120).stdout.split("\n")  # fmt: skip
    # the Galaxy Tab S9 says no "Mobile": only the table of models tells it is a tablet
    assert out[:2] == ["0", "1 tablet"]
