"""The README's controller-test example runs, as written, and passes."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- readme-example:"


def _example_source() -> str:
    text = README.read_text()
    after_marker = text[text.index(MARKER):]
    match = re.search(r"```python\n(.*?)```", after_marker, re.S)
    assert match, "README lost its example block"
    return match.group(1)


def test_readme_controller_example_passes():
    namespace: dict = {}
    exec(compile(_example_source(), str(README), "exec"), namespace)
    tests = [obj for name, obj in namespace.items() if name.startswith("test_") and callable(obj)]
    assert len(tests) == 1
    tests[0]()
