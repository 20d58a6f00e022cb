"""Synthetic road datasets and one small trained model, shared by the perception tests (made once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.perception.road_images import write_road_dataset

TRAIN_SAMPLES = 768
HELDOUT_SAMPLES = 256
TRAINED_EPOCHS = 5


@pytest.fixture(scope="session")
def road_data(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("roads")
    return {
        # Different seeds: the held-out roads are other random poses and bends than the training ones.
        "train": write_road_dataset(root / "train", "train", TRAIN_SAMPLES, seed=1),
        "heldout": write_road_dataset(root / "heldout", "heldout", HELDOUT_SAMPLES, seed=2),
        "small_images": write_road_dataset(root / "small", "heldout", 16, seed=3, height=24, width=24),
    }


@pytest.fixture(scope="session")
def trained_run(road_data, tmp_path_factory) -> tuple[Path, dict]:
    """A model trained for a few epochs on the 32×32 roads, and its training summary."""
    from drivelab.perception.training import train_perception

    run_dir = tmp_path_factory.mktemp("perception") / "run"
    summary = train_perception(road_data["train"], run_dir, epochs=TRAINED_EPOCHS, device="cpu",
                               heldout_dir=road_data["heldout"], batch_size=64, seed=0, progress=False)
    return run_dir, summary
