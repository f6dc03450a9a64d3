"""Phone or tablet by model, from UAParser.js's table (read from a pinned private module)."""

from __future__ import annotations

from importlib.metadata import version

import pytest

from tourviews.ingest.agents.formfactor import FormFactor, device_rows
from tourviews.ingest.agents.patterns import without_look_around


def test_the_pinned_version_of_the_table_is_installed() -> None:
    # The table is not public API: a new version must be checked before the pin moves.
    assert version("ua-parser-py") == "1.0.37"


def test_the_table_has_the_shape_this_reads() -> None:
    rows = device_rows()
    kinds = {kind for _, kind in rows}
    assert len(rows) > 100
    assert {"mobile", "tablet"} <= kinds
    assert sum(kind == "tablet" for _, kind in rows) > 30


@pytest.mark.parametrize(
    ("pattern", "without"),
    [
        (r"((?:moto[\w ]+|xt\d{3,4})(?= bui|\)))", r"((?:moto[\w ]+|xt\d{3,4})(?: bui|\)))"),
        (r"\b(xbox(?: one)?(?!; xbox))[\); ]", r"\b(xbox(?: one)?)[\); ]"),
        (r"((?=lg)?[vl]k\-?\d{3}) bui", r"([vl]k\-?\d{3}) bui"),
        (r"\b; (\w+) build\/hm\1", None),
    ],
)
def test_look_arounds_are_matched_or_left_out_and_back_references_skipped(
    pattern: str, without: str | None
) -> None:
    assert without_look_around(pattern) == without


@pytest.mark.parametrize(
    ("agent", "form"),
    [
        ("Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "tablet"),
        ("Mozilla/5.0 (Linux; Android 14; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36", "mobile"),
        ("Mozilla/5.0 (Android; Tablet; rv:26.0) Gecko/26.0 Firefox/26.0", "tablet"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", None),
    ],
)  # fmt: skip
def test_models_tell_phones_from_tablets(agent: str, form: str | None) -> None:
    assert FormFactor()(agent) == form
