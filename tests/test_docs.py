"""The README and docs/ explain the lab from inside the repository: every link they hold resolves to a
file of the repository, and none leaves it (a user's clone has nothing beside it)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCUMENTS = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def links(document: Path) -> list[str]:
    return LINK.findall(document.read_text())


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: str(path.relative_to(ROOT)))
def test_every_link_points_to_a_file_inside_the_repository(document):
    for target in links(document):
        assert "://" not in target and not target.startswith(("/", "mailto:")), f"{document.name} links out: {target}"
        path = (document.parent / target.split("#")[0]).resolve()
        assert path.is_relative_to(ROOT), f"{document.name} links outside the repository: {target}"
        assert path.exists(), f"{document.name} links to a missing file: {target}"


def test_the_readme_links_to_the_architecture():
    assert "docs/architecture.md" in links(ROOT / "README.md")
    architecture = (ROOT / "docs" / "architecture.md").read_text()
    for package in ("drivelab.control", "drivelab.planning", "drivelab.envs", "drivelab.perception", "drivelab.agents",
                    "drivelab.experiments", "--json", "exit status 2", "runs/<experiment>/<agent>/seed-<seed>/"):
        assert package in architecture
