"""
The README and the pages of `docs/` hold together: every relative link points to a file that
exists and, with `#anchor`, to a heading of it; a page's table of contents lists every `##`
section, in order; every page of `docs/` is linked from the README.
"""

import re
from pathlib import Path
from typing import List, Tuple

from tests.conftest import PROJECT_ROOT

README = PROJECT_ROOT / "README.md"
PAGES = [README, *sorted((PROJECT_ROOT / "docs").glob("*.md"))]

_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def prose(text: str) -> str:
    """`text` without fenced code blocks and code spans (links there are not links)."""
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return re.sub(r"`[^`]*`", "", text)


def headings(text: str) -> List[Tuple[int, str]]:
    """(level, anchor) of every heading outside code blocks, the anchor as GitHub makes it: lower
    case, punctuation dropped, spaces as hyphens, `-1`, `-2`, ... after a repeated one."""
    found, fenced, seen = [], False, {}
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and re.match(r"#+ ", line):
            marks, heading = line.split(" ", 1)
            slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
            found.append((len(marks), slug if slug not in seen else f"{slug}-{seen[slug]}"))
            seen[slug] = seen.get(slug, 0) + 1
    return found


def anchors(text: str) -> List[str]:
    return [anchor for _, anchor in headings(text)]


def broken_links(page: Path, text: str) -> List[str]:
    """The relative links of `text` (the page at `page`) whose file or heading does not exist."""
    broken = []
    for target in _LINK.findall(prose(text)):
        if re.match(r"[a-z]+:", target):  # https:, mailto:
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and anchor not in anchors(file.read_text(encoding="utf-8")):
            broken.append(f"{target}: no such heading")
    return broken


def contents_and_sections(text: str) -> Tuple[List[str], List[str]]:
    """The anchors the `## Contents` list links to, and those of the page's `##` sections."""
    listed = text.split("\n## Contents\n", 1)[1].split("\n## ", 1)[0]
    sections = [anchor for level, anchor in headings(text) if level == 2 and anchor != "contents"]
    return re.findall(r"\]\(#([^)]+)\)", listed), sections


def test_every_relative_link_of_the_readme_and_the_docs_resolves():
    assert len(PAGES) > 1
    assert {
        str(page.relative_to(PROJECT_ROOT)): broken_links(page, page.read_text()) for page in PAGES
    } == {str(page.relative_to(PROJECT_ROOT)): [] for page in PAGES}


def test_a_table_of_contents_lists_every_section_in_order():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        if page == README or "\n## Contents\n" in text:
            listed, sections = contents_and_sections(text)
            assert listed == sections, page


def test_every_page_of_docs_is_linked_from_the_readme():
    linked = {
        (README.parent / target.partition("#")[0]).resolve()
        for target in _LINK.findall(prose(README.read_text(encoding="utf-8")))
    }
    assert [page for page in PAGES[1:] if page.resolve() not in linked] == []


def test_a_broken_link_or_a_section_missing_from_the_contents_is_found(tmp_path):
    page = tmp_path / "README.md"
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "recovery.md").write_text("# Recovery\n\n## Troubleshooting\n")
    text = (
        "# Title\n\n## Contents\n\n- [Install](#install)\n\n## Install\n\n"
        "[ok](docs/recovery.md#troubleshooting) [gone](docs/gone.md) "
        "[no heading](docs/recovery.md#failure) [here](#install) [nowhere](#nowhere) "
        "`[in code](docs/missing.md)` [web](https://example.org/x.md)\n\n"
        "```\n## not a section\n```\n\n## Development: `make test`\n"
    )
    page.write_text(text)
    assert broken_links(page, text) == [
        "docs/gone.md: no such file",
        "docs/recovery.md#failure: no such heading",
        "#nowhere: no such heading",
    ]
    assert contents_and_sections(text) == (["install"], ["install", "development-make-test"])
