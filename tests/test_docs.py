"""The repository stands alone: no file cites notes a user who clones it does not have, and every
relative link in the Markdown docs points to a file that exists.

The design and the sourced values live in ``docs/design.md`` and ``docs/references.md``; code
and docs cite those (or the paper itself), never the team's working notes or issue numbers.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()

# Files allowed to name the old notes: the design page (which may explain where it came from) and
# this test (which has to spell the patterns out).
ALLOWED = {"docs/design.md", THIS}

# Citations of material outside the repository. Case-sensitive for the notes' file names, so that
# "docs/design.md" and "docs/references.md" (the right citations) do not match.
OUTSIDE = re.compile(
    r"DESIGN\.md|REFERENCES\.md|\.\./shared\b|/work/shared\b|\b[Ii]ssues? #?\d+"
)


def tracked_files() -> list[str]:
    """Every file git tracks, relative to the repository root."""
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    return [name for name in out.decode().split("\0") if name]


def text_of(path: Path) -> str | None:
    """The file's text, or None for binary (NUL bytes or not UTF-8) and missing files."""
    try:
        data = path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):  # deleted in the work tree, or a submodule
        return None
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def outside_citations(text: str) -> list[tuple[int, str]]:
    """(line number, line) of every citation of material outside the repository."""
    return [
        (number, line.strip())
        for number, line in enumerate(text.splitlines(), start=1)
        if OUTSIDE.search(line)
    ]


FENCE = re.compile(r"^(```|~~~).*?^\1", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE)
EXTERNAL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:|^//")  # http:, https:, mailto:, //host


def relative_links(markdown: str) -> list[str]:
    """Targets of the relative links and images in ``markdown`` (code is not Markdown)."""
    prose = CODE_SPAN.sub("", FENCE.sub("", markdown))
    targets = INLINE_LINK.findall(prose) + REFERENCE_LINK.findall(prose)
    return [t for t in targets if not EXTERNAL.match(t) and not t.startswith("#")]


def broken_links(doc: Path) -> list[str]:
    """Relative link targets in ``doc`` that do not name an existing file or folder."""
    broken = []
    for target in relative_links(doc.read_text(encoding="utf-8")):
        path = target.split("#", 1)[0].split("?", 1)[0]
        if not (doc.parent / path).exists():
            broken.append(target)
    return broken


# --- the checks work (each must be able to fail) ------------------------------------------


def test_citation_pattern_catches_notes_and_issue_numbers_but_not_the_docs():
    bad = (
        "see DESIGN" ".md section 2\n"  # (split so that this file does not cite them itself)
        "values in REFERENCES" ".md §3\n"
        "from `../" "shared/notes`\n"
        '"""Batch sweeps (issue 5): spec validation"""\n'
        "fixed in Issue #12\n"
    )
    assert [n for n, _ in outside_citations(bad)] == [1, 2, 3, 4, 5]
    good = (
        "see docs/design.md section 2 and docs/references.md §3\n"
        "the tissue issues a warning; shared fixtures in tests/conftest.py\n"
    )
    assert outside_citations(good) == []


def test_link_finder_sees_relative_links_and_skips_external_anchors_and_code(tmp_path):
    doc = tmp_path / "page.md"
    (tmp_path / "there.md").write_text("x")
    doc.write_text(
        "[ok](there.md) [ok too](there.md#a-section) ![img](missing.png)\n"
        "[web](https://example.org/x.md) [mail](mailto:a@b.c) [anchor](#top)\n"
        "`[not a link](nowhere.md)`\n"
        "```\n[also not](nowhere2.md)\n```\n"
        "[ref]: gone/page.md\n"
    )
    assert relative_links(doc.read_text()) == [
        "there.md", "there.md#a-section", "missing.png", "gone/page.md"
    ]
    assert broken_links(doc) == ["missing.png", "gone/page.md"]


# --- the repository ------------------------------------------------------------------------


def test_no_tracked_file_cites_the_team_notes_or_issue_numbers():
    """Users who clone the project do not have the team's notes or its issue tracker: cite
    docs/design.md, docs/references.md or the paper itself."""
    found = []
    for name in tracked_files():
        if name in ALLOWED:
            continue
        text = text_of(ROOT / name)
        if text is None:
            continue
        found += [f"{name}:{number}: {line}" for number, line in outside_citations(text)]
    assert not found, "citations of material outside the repository:\n" + "\n".join(found)


def markdown_docs() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", markdown_docs(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_in_the_docs_point_to_existing_files(doc: Path):
    assert broken_links(doc) == [], f"{doc.relative_to(ROOT)}: links to missing files"


def test_the_design_and_references_pages_exist_and_keep_their_section_numbers():
    """Code cites these pages by section number ("docs/design.md §3")."""
    design = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    for heading in ("1. The product", "2. Scales", "3. Cells and rules", "4. Public contract",
                    "5. Stylized facts", "6. Layout"):
        assert f"\n## {heading}\n" in design, heading
    references = (ROOT / "docs" / "references.md").read_text(encoding="utf-8")
    for number in range(1, 7):
        assert re.search(rf"^## {number}\. ", references, re.MULTILINE), f"section {number}"


def table_problems(text: str) -> list[str]:
    """Markdown tables that do not render: a separator row (|---|---|) not directly under a
    header row, or a separator with a different number of columns than its header."""
    problems = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        cells = line.strip().strip("|").split("|")
        if "|" not in line or not all(re.fullmatch(r"\s*:?-{3,}:?\s*", c) for c in cells):
            continue
        header = lines[i - 1].strip() if i else ""
        if not header.startswith("|"):
            problems.append(f"line {i + 1}: a table separator without a header row above it")
        elif len(header.strip("|").split("|")) != len(cells):
            problems.append(f"line {i + 1}: the separator has {len(cells)} columns, "
                            f"its header {len(header.strip('|').split('|'))}")
    return problems


def test_table_check_catches_a_headless_table():
    good = "| a | b |\n|---|---|\n| 1 | 2 |\n"
    assert table_problems(good) == []
    assert table_problems("text\n\n---|---|\n| 1 | 2 |\n")  # the broken summary it caught
    assert table_problems("| a | b |\n|---|---|---|\n")


@pytest.mark.parametrize("doc", markdown_docs(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_markdown_tables_have_headers(doc: Path):
    assert table_problems(doc.read_text()) == []


def test_the_annotated_spec_in_sweeps_md_is_a_valid_spec(tmp_path):
    """The spec a researcher copies from docs/sweeps.md must be accepted as it is."""
    from abm.sweep import load_spec

    text = (ROOT / "docs" / "sweeps.md").read_text()
    block = re.search(r"## The spec file.*?```toml\n(.*?)```", text, re.S)
    assert block, "docs/sweeps.md has no annotated spec"
    path = tmp_path / "spec.toml"
    path.write_text(block.group(1))
    spec = load_spec(path)
    assert spec.arms and spec.factors and spec.sample is not None
