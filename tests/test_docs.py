"""The README stays a front page, and no link of the documentation leads nowhere.

A newcomer reads the README for what tourviews is, the two commands and where to go
next; the manual lives in ``docs/``. Every relative link and image of the README,
BENCHMARKS.md and ``docs/*.md`` names a file of the repository (and one of its
headings, for a link with an anchor), and every page of ``docs/`` is linked from
another page, or nobody finds it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
README_LIMIT = 10_240  # bytes

FENCE = re.compile(r"^\s{0,3}(```|~~~)")
CODE_SPAN = re.compile(r"(`+).+?\1")
LINK = re.compile(r"\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
IMAGE_TAG = re.compile(r"<img\s[^>]*\bsrc=\"([^\"]+)\"", re.IGNORECASE)
DEFINITION = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?")
HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # https:, mailto: ...


def pages(root: Path = ROOT) -> list[Path]:
    """The documentation: the README, BENCHMARKS.md and every page of docs/."""
    return [root / "README.md", root / "BENCHMARKS.md", *sorted((root / "docs").glob("*.md"))]


def prose(text: str) -> Iterator[str]:
    """The lines outside fenced code blocks."""
    fence: str | None = None
    for line in text.splitlines():
        opening = FENCE.match(line)
        if opening and fence is None:
            fence = opening.group(1)
        elif opening and opening.group(1) == fence:
            fence = None
        elif fence is None:
            yield line


def targets(text: str) -> Iterator[str]:
    """Where each link, image and link definition of a page points (none in code)."""
    for line in (CODE_SPAN.sub("", line) for line in prose(text)):
        yield from LINK.findall(line)
        yield from IMAGE_TAG.findall(line)
        yield from DEFINITION.findall(line)


def anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation gone, spaces hyphens."""
    text = heading.replace("`", "").replace("*", "").lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a page's headings; a repeated one gets -1, -2, ... as on GitHub."""
    found: set[str] = set()
    for line in prose(text):
        heading = HEADING.match(line)
        if heading is None:
            continue
        base = name = anchor(heading.group(1))
        repeat = 0
        while name in found:
            repeat += 1
            name = f"{base}-{repeat}"
        found.add(name)
    return found


def resolve(page: Path, target: str) -> tuple[Path, str] | None:
    """The file and anchor a relative target names; None for another site's address."""
    if SCHEME.match(target) or target.startswith("//"):
        return None
    path, _, fragment = target.partition("#")
    return (page.parent / unquote(path) if path else page).resolve(), unquote(fragment)


def broken_links(page: Path, root: Path = ROOT) -> list[str]:
    """Each relative link or image of ``page`` whose file, or heading, does not exist."""
    broken = []
    for target in targets(page.read_text()):
        resolved = resolve(page, target)
        if resolved is None:
            continue
        path, fragment = resolved
        if not path.is_relative_to(root.resolve()) or not path.is_file():
            broken.append(f"{page.name}: {target} (no such file in the repository)")
        elif fragment and path.suffix == ".md" and fragment not in anchors(path.read_text()):
            broken.append(f"{page.name}: {target} (no such heading in {path.name})")
    return broken


def orphans(root: Path = ROOT) -> list[str]:
    """The pages of docs/ that no other page of the documentation links to."""
    linked: set[Path] = set()
    for page in pages(root):
        found = (resolve(page, target) for target in targets(page.read_text()))
        linked |= {hit[0] for hit in found if hit is not None and hit[0] != page.resolve()}
    return [
        page.name for page in sorted((root / "docs").glob("*.md")) if page.resolve() not in linked
    ]


def test_the_readme_is_at_most_ten_kilobytes() -> None:
    size = len((ROOT / "README.md").read_bytes())
    assert size <= README_LIMIT, f"README.md is {size:,} bytes: move the detail to docs/"


@pytest.mark.parametrize("page", pages(), ids=lambda page: page.name)
def test_every_relative_link_leads_to_a_file_and_heading(page: Path) -> None:
    assert broken_links(page) == []


def test_every_page_of_docs_is_linked_from_another_page() -> None:
    assert orphans() == []


def test_a_broken_link_anchor_or_image_is_found(tmp_path: Path) -> None:
    root = tmp_path / "repository"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "there.md").write_text("# There\n\n## A `code` heading: yes\n")
    (tmp_path / "outside.md").write_text("# Outside\n")
    page = root / "README.md"
    page.write_text(
        "[fine](docs/there.md#a-code-heading-yes) [gone](docs/gone.md)\n"
        '[no heading](docs/there.md#nowhere) <img src="docs/missing.png" alt="">\n'
        "`[in code](nowhere.md)` [site](https://example.com/x.md)\n"
        "```\n[in a fence](nowhere.md)\n```\n"
        "[outside](../outside.md)\n"
    )
    assert broken_links(page, root) == [
        "README.md: docs/gone.md (no such file in the repository)",
        "README.md: docs/there.md#nowhere (no such heading in there.md)",
        "README.md: docs/missing.png (no such file in the repository)",
        "README.md: ../outside.md (no such file in the repository)",
    ]


def test_a_page_of_docs_that_no_page_links_to_is_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("[a](docs/a.md)\n")
    (tmp_path / "BENCHMARKS.md").write_text("")
    (tmp_path / "docs" / "a.md").write_text("[itself](a.md) [b](b.md)\n")
    (tmp_path / "docs" / "b.md").write_text("")
    (tmp_path / "docs" / "c.md").write_text("[itself](c.md)\n")
    assert orphans(tmp_path) == ["c.md"]
