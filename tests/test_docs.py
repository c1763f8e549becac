"""The user-facing pages stay short, link to files that exist, and carry no provenance."""

from __future__ import annotations

import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
USER_FACING = [
    REPO / "README.md",
    REPO / "saved_models" / "README.md",
    *sorted(path for path in (REPO / "docs").glob("*.md") if path.name != "HISTORY.md"),
    *sorted((REPO / "examples").glob("*.py")),
]
# A git commit: 7 to 40 hex digits with at least one letter and one digit, as a word.
COMMIT = re.compile(r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b")


def test_the_readme_is_short():
    assert len((REPO / "README.md").read_text().splitlines()) <= 250


@pytest.mark.parametrize("page", USER_FACING, ids=lambda path: str(path.relative_to(REPO)))
def test_user_facing_pages_name_no_commit_or_session(page):
    text = page.read_text()
    assert not COMMIT.findall(text), f"commit hashes belong in docs/HISTORY.md: {COMMIT.findall(text)}"
    assert not re.search(r"\bsession \d+|\bsessions\b|\.\./shared", text), "run history belongs in docs/HISTORY.md"


@pytest.mark.parametrize("page", [REPO / "README.md", REPO / "docs" / "README.md"], ids=["README", "docs/README"])
def test_relative_links_point_to_files_that_exist(page):
    targets = re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text())
    missing = [target for target in targets if not (page.parent / target).exists() and target != "CONTRIBUTING.md"]
    assert not missing, missing
