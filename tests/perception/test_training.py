"""Training the perception CNN: it learns, it resumes where it was killed, it refuses what does not fit."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from drivelab.perception.dataset import load_dataset
from drivelab.perception.model import METADATA_FILE, MODEL_FILE
from drivelab.perception.training import CHECKPOINT_FILE, TrainingInterrupted, mirror_samples, train_perception
from tests.perception.conftest import HELDOUT_SAMPLES, TRAIN_SAMPLES, TRAINED_EPOCHS
from tests.perception.road_images import render_roads, write_road_dataset

CURVATURES = ("curvature_0m_1pm", "curvature_5m_1pm", "curvature_10m_1pm", "curvature_20m_1pm", "curvature_30m_1pm")
ESTIMATED = ("lateral_offset_m", "heading_error_rad") + CURVATURES


def test_training_lowers_the_heldout_loss_well_below_guessing(trained_run, road_data):
    run_dir, summary = trained_run
    history = summary["history"]
    assert [record["epoch"] for record in history] == list(range(1, TRAINED_EPOCHS + 1))
    # Standardised MSE: always guessing the training mean scores about 1.
    assert history[0]["heldout_loss"] > 0.5
    assert summary["heldout_loss"] < 0.3
    assert summary["heldout_loss"] < history[0]["heldout_loss"] / 3
    heldout = load_dataset(road_data["heldout"])
    offsets = heldout.columns(["lateral_offset_m"])[:, 0]
    guessing_mae = np.abs(offsets - np.median(offsets)).mean()  # ~0.5 m for offsets uniform in ±1 m
    assert summary["heldout_mae"]["lateral_offset_m"] < guessing_mae / 3
    assert summary["heldout_mae"]["heading_error_deg"] == pytest.approx(np.degrees(summary["heldout_mae"]["heading_error_rad"]))


def test_the_run_directory_describes_the_model_and_its_training(trained_run):
    run_dir, summary = trained_run
    assert {path.name for path in run_dir.iterdir()} == {MODEL_FILE, METADATA_FILE, CHECKPOINT_FILE}
    metadata = json.loads((run_dir / METADATA_FILE).read_text())
    # Speed, yaw rate and steering come from the car's sensors, not from the camera.
    assert metadata["outputs"] == list(ESTIMATED)
    assert metadata["image_shape"] == [32, 32, 3]
    assert metadata["architecture"]["name"] == "drivelab-perception-cnn/1"
    assert len(metadata["target_mean"]) == len(metadata["target_std"]) == len(ESTIMATED)
    assert 0.4 < metadata["target_std"][0] < 0.8  # offsets uniform in ±1 m: std 1/√3
    training = metadata["training"]
    assert training["train_samples"] == TRAIN_SAMPLES and training["heldout_samples"] == HELDOUT_SAMPLES
    assert training["epochs"] == TRAINED_EPOCHS and training["device"] == "cpu" and training["mixed_precision"] is False
    assert training["batch_size"] == 64 and training["seed"] == 0 and training["wall_time_s"] > 0
    assert set(training["heldout_mae"]) == set(ESTIMATED) | {"heading_error_deg"}
    assert training["train_loss"] == summary["train_loss"]
    state = torch.load(run_dir / MODEL_FILE, weights_only=True)
    assert all(isinstance(value, torch.Tensor) for value in state.values())  # a state dict, nothing else


def small_roads(tmp_path):
    return (write_road_dataset(tmp_path / "train", "train", 192, seed=5),
            write_road_dataset(tmp_path / "heldout", "heldout", 64, seed=6))


class Killed(Exception):
    pass


def test_a_killed_training_resumes_from_its_last_epoch_and_ends_as_an_uninterrupted_one(tmp_path):
    train, heldout = small_roads(tmp_path)
    options = dict(epochs=3, device="cpu", heldout_dir=heldout, batch_size=64, seed=4, progress=False)
    whole = train_perception(train, tmp_path / "whole", **options)

    def kill_after_first_epoch(metrics, step):
        raise Killed  # as a kill would, after the epoch's checkpoint

    with pytest.raises(Killed):
        train_perception(train, tmp_path / "killed", log=kill_after_first_epoch, **options)
    assert (tmp_path / "killed" / CHECKPOINT_FILE).exists()
    assert not (tmp_path / "killed" / MODEL_FILE).exists() and not (tmp_path / "killed" / METADATA_FILE).exists()

    # A kill while the next checkpoint was being written leaves its temporary file.
    (tmp_path / "killed" / f".{CHECKPOINT_FILE}.12345.0badcafe.tmp").write_bytes(b"half a checkpoint")
    logged = []
    resumed = train_perception(train, tmp_path / "killed", log=lambda metrics, step: logged.append(step), **options)
    assert logged == [2, 3]  # epoch 1 was not trained again
    assert {path.name for path in (tmp_path / "killed").iterdir()} == {CHECKPOINT_FILE, MODEL_FILE, METADATA_FILE}
    assert [record["epoch"] for record in resumed["history"]] == [1, 2, 3]
    # Bit for bit on the CPU: weights, optimiser and shuffling all continue where they were.
    assert resumed["train_loss"] == whole["train_loss"] and resumed["heldout_loss"] == whole["heldout_loss"]
    expected = torch.load(tmp_path / "whole" / MODEL_FILE, weights_only=True)
    found = torch.load(tmp_path / "killed" / MODEL_FILE, weights_only=True)
    assert expected.keys() == found.keys()
    assert all(torch.equal(expected[key], found[key]) for key in expected)


def test_a_stop_request_keeps_the_last_finished_epoch(tmp_path):
    train, _ = small_roads(tmp_path)
    polls = []

    def stop_in_second_epoch() -> bool:
        polls.append(1)
        return len(polls) > 4  # 192 samples in batches of 64: three polls per epoch

    with pytest.raises(TrainingInterrupted, match="1 epoch"):
        train_perception(train, tmp_path / "run", epochs=3, device="cpu", batch_size=64, progress=False,
                         should_stop=stop_in_second_epoch)
    checkpoint = torch.load(tmp_path / "run" / CHECKPOINT_FILE, weights_only=True)
    assert checkpoint["epoch"] == 1


def test_more_epochs_continue_a_finished_run_and_the_same_epochs_do_nothing(tmp_path):
    train, _ = small_roads(tmp_path)
    options = dict(device="cpu", batch_size=64, progress=False)
    train_perception(train, tmp_path / "run", epochs=1, **options)
    logged = []
    again = train_perception(train, tmp_path / "run", epochs=1, log=lambda m, step: logged.append(step), **options)
    assert again["already_done"] is True and logged == []
    longer = train_perception(train, tmp_path / "run", epochs=2, log=lambda m, step: logged.append(step), **options)
    assert logged == [2] and longer["epochs"] == 2
    assert json.loads((tmp_path / "run" / METADATA_FILE).read_text())["training"]["epochs"] == 2


def test_a_checkpoint_of_other_options_is_refused_in_one_line(tmp_path):
    train, _ = small_roads(tmp_path)
    train_perception(train, tmp_path / "run", epochs=1, device="cpu", batch_size=64, progress=False)
    with pytest.raises(ValueError, match=r"holds a training with other batch_size 64 \(now 32\)") as error:
        train_perception(train, tmp_path / "run", epochs=2, device="cpu", batch_size=32, progress=False)
    assert "\n" not in str(error.value)


def test_bad_input_writes_nothing(tmp_path, road_data):
    out = tmp_path / "run"
    with pytest.raises(ValueError, match="does not exist"):
        train_perception(tmp_path / "nowhere", out, epochs=1, device="cpu", progress=False)
    with pytest.raises(ValueError, match="held-out images are 24x24, training images 32x32"):
        train_perception(road_data["train"], out, epochs=1, device="cpu", heldout_dir=road_data["small_images"], progress=False)
    with pytest.raises(ValueError, match="epochs must be an integer >= 1"):
        train_perception(road_data["train"], out, epochs=0, device="cpu", progress=False)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA device"):
            train_perception(road_data["train"], out, epochs=1, device="cuda", progress=False)
    assert not out.exists()


def test_a_mirrored_image_is_the_road_at_negated_offset_heading_and_curvature():
    offsets, headings, curvatures = np.array([0.6, -0.3]), np.array([0.1, 0.05]), np.array([0.02, -0.01])
    images = torch.from_numpy(render_roads(offsets, headings, curvatures))
    targets = torch.tensor(np.column_stack([offsets, headings, curvatures]), dtype=torch.float32)
    mirrored, negated = mirror_samples(images, targets, torch.tensor([True, False]))
    expected = render_roads(np.array([-0.6]), np.array([-0.1]), np.array([-0.02]))[0]
    np.testing.assert_array_equal(mirrored[0].numpy(), expected)
    np.testing.assert_array_equal(mirrored[1].numpy(), images[1].numpy())  # left alone
    np.testing.assert_array_equal(negated.numpy(), np.float32([[-0.6, -0.1, -0.02], [-0.3, 0.05, -0.01]]))
