"""``drivelab perception collect`` and ``observation="perceived"``, through the real ``drivelab`` command line."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import drivelab  # noqa: F401
from drivelab.cli import main
from drivelab.perception import collect as collect_module
from drivelab.perception.dataset import DatasetWriter, load_dataset
from drivelab.perception.model import MODEL_FILE, save_untrained_model


def one_line_error(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_collect_writes_images_with_their_states_and_reads_back(tmp_path, capsys):
    out = tmp_path / "heldout"
    assert main(["perception", "collect", "--out", str(out), "--episodes", "1", "--seed", "3", "--split", "heldout",
                 "--option", "camera_width=64", "--option", "camera_height=48", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    data = load_dataset(out)
    assert summary["samples"] == len(data) > 100 and summary["episodes"] == 1
    assert data.images.shape[1:] == (48, 64, 3) and data.images.dtype == np.uint8
    assert data.split == "heldout" and data.features[:2] == ("lateral_offset_m", "heading_error_rad")
    assert (data.track_seed >= 1_000_000).all()  # held-out tracks only
    assert np.all(np.diff(data.s_m[:50]) > 0)  # the car drives along the road
    # The steering noise and the off-centre start cover more than centred driving.
    assert np.abs(data.columns(["lateral_offset_m"])).max() > 0.3
    assert data.collection["seed"] == 3 and data.collection["camera"]["width"] == 64


def test_collecting_over_a_dataset_is_refused_and_leaves_it_as_it_was(tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["perception", "collect", "--out", str(out), "--episodes", "1", "--json"]) == 0
    capsys.readouterr()
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["perception", "collect", "--out", str(out), "--episodes", "1"]) == 2
    assert "already holds a dataset" in one_line_error(capsys)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_a_bad_camera_option_is_one_line_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["perception", "collect", "--out", str(out), "--episodes", "1", "--option", "camera_mount=roof"]) == 2
    assert "camera_mount must be one of hood, chase" in one_line_error(capsys)
    assert not out.exists()


def test_an_interrupted_collection_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setattr(collect_module, "DatasetWriter", functools.partial(DatasetWriter, shard_size=64))

    class InterruptedDriver:
        calls = 0

        def reset(self):
            pass

        def predict(self, observation):
            InterruptedDriver.calls += 1
            if InterruptedDriver.calls > 300:  # after a few shards are on disk
                raise KeyboardInterrupt
            return np.zeros(1, dtype=np.float32), None

    out = tmp_path / "data"
    with pytest.raises(KeyboardInterrupt):
        collect_module.collect_dataset(str(out), 3, make_driver=lambda *_: InterruptedDriver(), progress=False)
    assert not out.exists()


@pytest.fixture(scope="module")
def untrained_model(tmp_path_factory) -> Path:
    return save_untrained_model(tmp_path_factory.mktemp("model"), image_shape=(84, 84, 3))


def test_perceived_gives_finite_vectors_of_the_state_space(untrained_model):
    state_env = gym.make("DriveLab/LaneKeep-v0")
    perceived_env = gym.make("DriveLab/LaneKeep-v0", observation="perceived", perception_model=str(untrained_model))
    assert perceived_env.observation_space == state_env.observation_space
    assert perceived_env.unwrapped.observation_features == state_env.unwrapped.observation_features
    truth, _ = state_env.reset(seed=1)
    perceived, _ = perceived_env.reset(seed=1)
    for _ in range(5):
        truth, *_ = state_env.step(np.array([0.1], dtype=np.float32))
        perceived, *_ = perceived_env.step(np.array([0.1], dtype=np.float32))
        assert perceived.shape == truth.shape and perceived.dtype == np.float32
        assert np.isfinite(perceived).all() and perceived_env.observation_space.contains(perceived)
        # The car's own sensors (speed, yaw rate, steering angle) are passed through, not estimated.
        np.testing.assert_array_equal(perceived[2:5], truth[2:5])
    mae = perceived_env.unwrapped.observation_mode.mean_absolute_errors()
    assert set(mae) == {"lateral_offset_m", "heading_error_rad"} | {n for n in mae if n.startswith("curvature_")}


def test_drive_on_perceived_reports_the_perception_error(untrained_model, capsys):
    assert main(["drive", "--episodes", "1", "--observation", "perceived", "--perception-model", str(untrained_model),
                 "--option", "max_episode_s=3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["observation"] == "perceived"
    mae = result["summary"]["perception_mae"]
    assert mae["lateral_offset_m"] > 0 and np.isfinite(list(mae.values())).all()


@pytest.mark.parametrize("problem, words", [
    ("missing", "does not exist"),
    ("corrupt", "model.pt"),
    ("other_size", "expects 64x64 images"),
])
def test_a_bad_perception_model_is_one_line_and_exit_2(problem, words, tmp_path, capsys):
    run = tmp_path / "run"
    if problem == "corrupt":
        save_untrained_model(run)
        (run / MODEL_FILE).write_bytes(b"not a torch file")
    elif problem == "other_size":
        save_untrained_model(run, image_shape=(64, 64, 3))
    assert main(["drive", "--episodes", "1", "--observation", "perceived", "--perception-model", str(run)]) == 2
    assert words in one_line_error(capsys)


def test_perceived_without_a_model_and_a_model_without_perceived_are_refused(untrained_model, capsys):
    assert main(["drive", "--episodes", "1", "--observation", "perceived"]) == 2
    assert "--observation perceived needs --perception-model" in one_line_error(capsys)
    assert main(["drive", "--episodes", "1", "--perception-model", str(untrained_model)]) == 2
    assert "--perception-model is for --observation perceived" in one_line_error(capsys)
