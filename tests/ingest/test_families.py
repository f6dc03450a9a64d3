"""The closed set of family names: words a pattern names or picks from an alternation."""

from __future__ import annotations

import pytest

from tourviews.ingest.agents.families import family_names, words


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("Ubuntu|Kubuntu", ["Ubuntu", "Kubuntu"]),
        (r"(?:Free|Open|Net|\b)BSD", ["FreeBSD", "OpenBSD", "NetBSD", "BSD"]),
        ("Boto3?", ["Boto3", "Boto"]),
        ("Box(?: Sync)?", ["Box Sync", "Box"]),
        (r"Podcast ?Addict", ["Podcast Addict", "PodcastAddict"]),
        (".{0,200}", None),
        ("[a-zA-Z]+", None),
        (r"\w+", None),
        ("a(?=b)", None),
    ],
)
def test_words_of_a_pattern_are_listed_only_when_they_are_few_and_fixed(
    pattern: str, expected: list[str] | None
) -> None:
    assert words(pattern) == expected


def test_families_copied_from_free_text_are_not_names() -> None:
    rows = [
        ("(Firefox)/(\\d+)", "$1"),
        ("(Edge|EdgA)/(\\d+)", "$1 Browser"),
        ("^(.{0,200})/(\\d+) CFNetwork", "$1"),
        ("HbbTV/\\d+ \\(.{0,30}; ?([a-zA-Z]+) ?;", "$1"),
        ("Googlebot", "Googlebot"),
    ]
    assert family_names(rows) == {"Firefox", "Edge Browser", "EdgA Browser", "Googlebot"}
