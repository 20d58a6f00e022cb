"""Tests of the drivelab.control package itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import drivelab.control

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]


def test_import_pulls_in_no_simulator_and_no_torch():
    # A fresh interpreter, since this one may have imported them for other tests. (Gymnasium is
    # allowed: ``import drivelab`` itself registers the environments.)
    code = (
        "import json, sys; import drivelab.control; "
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'pybullet', 'torch', 'stable_baselines3', 'wandb', 'ray'})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPOSITORY_ROOT
    )
    assert json.loads(result.stdout) == []


def test_all_names_are_exported():
    for name in drivelab.control.__all__:
        assert hasattr(drivelab.control, name), name
