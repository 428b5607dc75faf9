"""The README and docs/: every relative link names a file that exists, and the README stays a map."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.quick  # the inner loop: make check

ROOT = Path(__file__).parents[1]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_relative_link_resolves(document):
    targets = [link.split("#")[0] for link in LINK.findall(document.read_text())]
    local = [target for target in targets if target and not re.match(r"[a-z]+:", target)]
    missing = [target for target in local if not (document.parent / target).exists()]
    assert missing == [], f"{document.name} links to missing files: {missing}"


def test_the_readme_is_a_map_of_about_ten_kilobytes():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.encode()) < 12_000
    for heading in ("## Quickstart", "## Project layout", "## Tests", "## Known limits"):
        assert heading in readme
