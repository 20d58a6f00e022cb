"""Runs the example test module in docs/testing-controllers.md, so the page stays correct."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing-controllers.md"


def _example_namespace() -> dict:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(blocks) == 1, "the page should hold exactly one python example"
    namespace: dict = {"__name__": "docs_example"}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)
    return namespace


EXAMPLE = _example_namespace()
EXAMPLE_TESTS = sorted(name for name in EXAMPLE if name.startswith("test_"))


def test_the_example_has_tests():
    assert len(EXAMPLE_TESTS) >= 3


@pytest.mark.parametrize("name", EXAMPLE_TESTS)
def test_docs_example(name):
    EXAMPLE[name]()
