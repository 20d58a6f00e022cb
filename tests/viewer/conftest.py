"""Shared by the viewer tests: running ``drivelab``, decoding videos, judging panels, and one small trained PPO run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from drivelab.viewer.dashboard import LAYOUT, REFERENCE_SIZE

TITLE_ROWS = 28  # a panel's title and the header over the chase view: not content
CONTENT_FRACTION = 0.01  # of a panel's pixels off its dominant colour; a titled but empty panel has 0


def drivelab(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "drivelab.cli", *args], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout)


def sigint_as_at_a_terminal() -> None:
    """``preexec_fn`` for a command the test will Ctrl-C: SIGINT at its default, as a terminal's foreground job has
    it. A test suite started in the background by a shell without job control runs with SIGINT ignored, which
    its children would inherit: the interrupt would never reach them."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def decode(path: Path) -> list[np.ndarray]:
    import imageio.v2 as imageio

    reader = imageio.get_reader(path)
    try:
        return [np.asarray(frame)[..., :3] for frame in reader]
    finally:
        reader.close()


def content_fraction(image: np.ndarray) -> float:
    """The share of pixels that differ clearly (> 40 in a channel) from the image's median colour."""
    median = np.median(image.reshape(-1, 3), axis=0)
    return float((np.abs(image.astype(int) - median).max(axis=2) > 40).mean())


def panel_contents(frame: np.ndarray, top: int = 0, layout=LAYOUT) -> dict[str, float]:
    """Each panel's content fraction, inside its border and below its title, for a dashboard at ``top`` rows down
    (``layout``: the driving dashboard's, or the Atari one's)."""
    height, width = frame.shape[:2]
    if (width, height) != REFERENCE_SIZE and top == 0 and height != REFERENCE_SIZE[1] * 2:
        raise ValueError("panel_contents reads dashboards of the reference size")
    return {name: content_fraction(frame[top + r.y + TITLE_ROWS:top + r.y + r.h - 2, r.x + 2:r.x + r.w - 2])
            for name, r in layout.items()}


def assert_no_blank_panel(frame: np.ndarray, top: int = 0, layout=LAYOUT) -> None:
    contents = panel_contents(frame, top, layout)
    blank = {name: round(value, 4) for name, value in contents.items() if value < CONTENT_FRACTION}
    assert not blank, f"blank panels: {blank} (all: {contents})"


@pytest.fixture(scope="session")
def ppo_run(tmp_path_factory) -> Path:
    """A LaneKeep PPO trial trained for 1,024 steps by ``drivelab train``: a real run directory to watch."""
    root = tmp_path_factory.mktemp("ppo_run")
    config = {
        "name": "watchtest",
        "env": {"id": "DriveLab/LaneKeep-v0", "options": {"max_episode_s": 5}},
        "agents": [{"name": "ppo", "algo": "ppo", "n_envs": 2, "hyperparams": {"n_steps": 256, "batch_size": 128}}],
        "seeds": [0],
        "budget_steps": 1024,
        "evaluation": {"every_steps": 1024, "episodes": 1},
        "checkpoint_every_steps": 1024,
        "tracking": {"wandb": {"mode": "disabled"}, "tensorboard": False},
        "device": "cpu",
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = drivelab("train", str(path), "--out", str(root / "runs"), "--json")
    assert result.returncode == 0, result.stderr
    return root / "runs" / "watchtest" / "ppo" / "seed-0"
