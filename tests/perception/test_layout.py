"""The perception package keeps the layout rules: light to import, and importing nothing above it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def imported_after(statement: str) -> list[str]:
    # A fresh interpreter: this one has imported torch for other tests.
    code = f"import json, sys; {statement}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPOSITORY_ROOT,
                            timeout=120)
    return json.loads(result.stdout)


def test_the_package_and_its_dataset_reader_do_not_import_torch():
    modules = imported_after("import drivelab, drivelab.perception, drivelab.perception.dataset, drivelab.perception.evaluation")
    assert "torch" not in modules
    assert not [name for name in modules if name.split(".")[0] in ("pybullet", "wandb", "stable_baselines3")]


def test_the_perception_commands_import_no_torch_until_they_run():
    assert "torch" not in imported_after("import drivelab.cli.perception")


def test_perception_imports_neither_agents_nor_experiments():
    modules = imported_after("import drivelab.perception.model, drivelab.perception.training, drivelab.perception.evaluation")
    assert "torch" in modules
    assert not [name for name in modules if name.startswith(("drivelab.agents", "drivelab.experiments", "drivelab.viewer"))]
