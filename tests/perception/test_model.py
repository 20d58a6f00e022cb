"""The perception CNN's shape contract, loading a trained one (and refusing broken ones in one line), estimating."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch

from drivelab.perception.dataset import load_dataset
from drivelab.perception.evaluation import evaluate_perception
from drivelab.perception.model import (METADATA_FILE, MODEL_FILE, PerceptionCNN, PerceptionModelError, Perceiver,
                                       estimated_features, load_perception_model, save_untrained_model)
from tests.perception.road_images import FEATURES


def test_the_camera_estimates_offset_heading_and_curvature_and_the_car_the_rest():
    assert estimated_features(FEATURES) == ("lateral_offset_m", "heading_error_rad", "curvature_0m_1pm", "curvature_5m_1pm",
                                            "curvature_10m_1pm", "curvature_20m_1pm", "curvature_30m_1pm")


def test_backbone_and_head_shapes():
    model = PerceptionCNN((84, 84, 3), outputs=7).eval()
    images = torch.randint(0, 256, (5, 84, 84, 3), dtype=torch.uint8)
    assert model(images).shape == (5, 7)
    # The backbone takes what stable-baselines3 gives a features extractor: float N×C×H×W in [0, 1].
    features = model.backbone(images.permute(0, 3, 1, 2).float() / 255)
    assert features.shape == (5, model.features_dim) and model.features_dim == model.backbone.features_dim == 256
    assert model.head(features).shape == (5, 7)
    assert torch.equal(model.head(features), model(images))


def test_small_images_fit_and_too_small_ones_are_refused():
    assert PerceptionCNN((24, 32, 3), outputs=2)(torch.zeros((1, 24, 32, 3), dtype=torch.uint8)).shape == (1, 2)
    with pytest.raises(ValueError, match="image_shape must be"):
        PerceptionCNN((32, 32), outputs=2)


def test_perceiver_estimates_in_physical_units(trained_run, road_data):
    run_dir, summary = trained_run
    perceiver = Perceiver(run_dir, device="cpu", image_shape=(32, 32, 3))
    heldout = load_dataset(road_data["heldout"])
    estimates = perceiver.estimate(heldout.images)
    assert estimates.shape == (len(heldout), 7) and estimates.dtype == np.float32
    truth = heldout.columns(perceiver.outputs)
    mae = np.abs(estimates - truth).mean(axis=0)
    np.testing.assert_allclose(mae[0], summary["heldout_mae"]["lateral_offset_m"], rtol=1e-4)
    np.testing.assert_allclose(perceiver.estimate(heldout.images[3]), estimates[3], rtol=1e-5, atol=1e-6)
    perceiver.batch_size = 7  # batches of any size give the same estimates
    np.testing.assert_allclose(perceiver.estimate(heldout.images), estimates, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"images must be uint8 of shape \(N, 32, 32, 3\)"):
        perceiver.estimate(heldout.images.astype(np.float32))


def test_evaluation_reports_mae_per_feature_and_speed(trained_run, road_data):
    run_dir, summary = trained_run
    result = evaluate_perception(run_dir, road_data["heldout"], device="cpu")
    assert result["samples"] == 256 and result["split"] == "heldout" and result["device"] == "cpu"
    assert result["mae"]["lateral_offset_m"] == pytest.approx(summary["heldout_mae"]["lateral_offset_m"], rel=1e-4)
    assert result["mae"]["heading_error_deg"] == pytest.approx(np.degrees(result["mae"]["heading_error_rad"]))
    assert result["images_per_s"] > 0


@pytest.fixture()
def broken_copy(trained_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(trained_run[0], copy)
    return copy


def corrupt(path):
    path.write_bytes(b"\x00garbage, not a torch file")


def pickled_object(path):
    torch.save({"weights": object()}, path)  # not plain tensors: weights_only=True refuses to unpickle it


def other_image_size(path):
    torch.save(PerceptionCNN((48, 48, 3), outputs=7).state_dict(), path)


def missing_key(path):
    state = torch.load(path, weights_only=True)
    state.pop("head.layers.2.bias")
    torch.save(state, path)


@pytest.mark.parametrize("damage, message", [
    (lambda root: (root / MODEL_FILE).unlink(), "holds no trained perception model: model.pt is missing"),
    (lambda root: (root / METADATA_FILE).unlink(), "holds no trained perception model: perception.json is missing"),
    (lambda root: corrupt(root / MODEL_FILE), "model.pt is not a readable torch state dict"),
    (lambda root: pickled_object(root / MODEL_FILE), "model.pt is not a readable torch state dict"),
    (lambda root: other_image_size(root / MODEL_FILE), r"does not match the architecture in perception.json \(backbone.project"),
    (lambda root: missing_key(root / MODEL_FILE), r"does not match the architecture in perception.json \(missing head.layers"),
    (lambda root: (root / METADATA_FILE).write_text("{"), "perception.json is not readable JSON"),
    (lambda root: (root / METADATA_FILE).write_text(json.dumps({"architecture": {"name": "resnet"}})), "architecture 'resnet'"),
])
def test_a_broken_model_is_one_line(broken_copy, damage, message):
    damage(broken_copy)
    with pytest.raises(PerceptionModelError, match=message) as error:
        load_perception_model(broken_copy)
    assert "\n" not in str(error.value)
    assert isinstance(error.value, ValueError)


def test_a_missing_directory_and_an_image_size_mismatch_are_one_line(trained_run, tmp_path):
    with pytest.raises(PerceptionModelError, match="perception model directory .*nowhere does not exist"):
        load_perception_model(tmp_path / "nowhere")
    with pytest.raises(PerceptionModelError, match="expects 32x32 images, the camera gives 64x64$"):
        Perceiver(trained_run[0], device="cpu", image_shape=(64, 64, 3))


def test_an_untrained_model_loads_like_a_trained_one(tmp_path):
    run_dir = save_untrained_model(tmp_path / "untrained", image_shape=(40, 48, 3))
    perceiver = Perceiver(run_dir, device="cpu", image_shape=(40, 48, 3))
    assert perceiver.outputs == estimated_features(FEATURES)  # LaneKeep's default state
    assert perceiver.estimate(np.zeros((2, 40, 48, 3), np.uint8)).shape == (2, 7)
    assert json.loads((run_dir / METADATA_FILE).read_text())["training"] == {"untrained": True}
