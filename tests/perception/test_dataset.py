"""Perception datasets: written shard by shard, read back equal, refused with one line when broken."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from drivelab.perception.dataset import FORMAT, MANIFEST, DatasetWriter, load_dataset, read_manifest
from tests.perception.road_images import FEATURES, write_road_dataset


def write_samples(out_dir, samples: int, shard_size: int = 4, seed: int = 0, **kwargs):
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (samples, 6, 8, 3), dtype=np.uint8)
    states = rng.normal(size=(samples, len(FEATURES))).astype(np.float32)
    writer = DatasetWriter(out_dir, "train", (6, 8, 3), FEATURES, {"seed": seed, "episodes": 2}, shard_size=shard_size, **kwargs)
    for index in range(samples):
        writer.add(images[index], states[index], track_seed=1000 + index // 5, s_m=0.5 * index)
    return writer.close(), images, states


def test_round_trip_gives_back_every_array_and_the_manifest(tmp_path):
    summary, images, states = write_samples(tmp_path / "data", samples=10, shard_size=4)
    assert summary["samples"] == 10 and summary["shards"] == 3  # 4 + 4 + 2
    on_disk = sum(path.stat().st_size for path in (tmp_path / "data").iterdir())
    assert summary["bytes"] == on_disk

    dataset = load_dataset(tmp_path / "data")
    assert len(dataset) == 10 and dataset.split == "train" and dataset.image_shape == (6, 8, 3)
    assert dataset.features == FEATURES
    np.testing.assert_array_equal(dataset.images, images)
    np.testing.assert_array_equal(dataset.state, states)
    np.testing.assert_array_equal(dataset.track_seed, 1000 + np.arange(10) // 5)
    np.testing.assert_array_equal(dataset.s_m, 0.5 * np.arange(10, dtype=np.float32))
    assert dataset.images.dtype == np.uint8 and dataset.state.dtype == np.float32
    assert dataset.track_seed.dtype == np.int64 and dataset.s_m.dtype == np.float32
    np.testing.assert_array_equal(dataset.columns(["heading_error_rad", "lateral_offset_m"]), states[:, [1, 0]])

    manifest = json.loads((tmp_path / "data" / MANIFEST).read_text())
    assert manifest["format"] == FORMAT == "drivelab-perception-dataset/1"
    assert manifest["image_shape"] == [6, 8, 3] and manifest["features"] == list(FEATURES)
    assert manifest["samples"] == 10
    assert manifest["shards"] == [{"file": "shard-00000.npz", "samples": 4}, {"file": "shard-00001.npz", "samples": 4},
                                  {"file": "shard-00002.npz", "samples": 2}]
    assert manifest["collection"] == {"seed": 0, "episodes": 2}
    assert sorted(os.listdir(tmp_path / "data")) == [MANIFEST, "shard-00000.npz", "shard-00001.npz", "shard-00002.npz"]


def test_an_unfinished_write_is_no_dataset(tmp_path):
    writer = DatasetWriter(tmp_path / "data", "heldout", (6, 8, 3), FEATURES, {})
    writer.shard_size = 2
    for _ in range(3):
        writer.add(np.zeros((6, 8, 3), np.uint8), np.zeros(len(FEATURES)), 0, 0.0)
    # A killed collection: one shard on disk, no manifest.
    assert (tmp_path / "data" / "shard-00000.npz").exists()
    with pytest.raises(ValueError, match="holds no dataset: manifest.json is missing") as error:
        load_dataset(tmp_path / "data")
    assert "\n" not in str(error.value)
    # No temporary files remain beside the shard.
    assert sorted(os.listdir(tmp_path / "data")) == ["shard-00000.npz"]

    # Collecting again into it needs no overwrite (there is no dataset), and clears what the kill left,
    # a temporary file included.
    (tmp_path / "data" / ".shard-00001.npz.4242.deadbeef.tmp").write_bytes(b"half a shard")
    write_samples(tmp_path / "data", samples=3, shard_size=4)
    assert sorted(os.listdir(tmp_path / "data")) == [MANIFEST, "shard-00000.npz"]
    assert len(load_dataset(tmp_path / "data")) == 3


def test_an_error_inside_the_with_block_writes_no_manifest(tmp_path):
    with pytest.raises(RuntimeError):
        with DatasetWriter(tmp_path / "data", "train", (6, 8, 3), FEATURES, {}) as writer:
            writer.add(np.zeros((6, 8, 3), np.uint8), np.zeros(len(FEATURES)), 0, 0.0)
            raise RuntimeError("the simulator crashed")
    assert not (tmp_path / "data" / MANIFEST).exists()


def test_a_dataset_is_not_overwritten_unless_asked(tmp_path):
    write_samples(tmp_path / "data", samples=10)
    with pytest.raises(ValueError, match="already holds a dataset") as error:
        DatasetWriter(tmp_path / "data", "train", (6, 8, 3), FEATURES, {})
    assert "\n" not in str(error.value)
    assert len(load_dataset(tmp_path / "data")) == 10

    summary, images, _ = write_samples(tmp_path / "data", samples=3, seed=1, overwrite=True)
    dataset = load_dataset(tmp_path / "data")
    assert len(dataset) == 3 and summary["shards"] == 1
    np.testing.assert_array_equal(dataset.images, images)
    # The old dataset's extra shards are gone with it.
    assert sorted(os.listdir(tmp_path / "data")) == [MANIFEST, "shard-00000.npz"]


def test_writer_refuses_wrong_samples_with_one_line(tmp_path):
    writer = DatasetWriter(tmp_path / "data", "train", (6, 8, 3), FEATURES, {})
    with pytest.raises(ValueError, match=r"image must be uint8 of shape \(6, 8, 3\)"):
        writer.add(np.zeros((6, 8, 3), np.float32), np.zeros(len(FEATURES)), 0, 0.0)
    with pytest.raises(ValueError, match="state vector must have 10 features"):
        writer.add(np.zeros((6, 8, 3), np.uint8), np.zeros(3), 0, 0.0)
    with pytest.raises(ValueError, match="split must be one of train, heldout"):
        DatasetWriter(tmp_path / "other", "test", (6, 8, 3), FEATURES, {})
    assert not (tmp_path / "data").exists() and not (tmp_path / "other").exists()  # nothing written, nothing made


@pytest.mark.parametrize("damage, message", [
    (lambda root: (root / "shard-00001.npz").unlink(), "is missing its shard shard-00001.npz"),
    (lambda root: (root / "shard-00001.npz").write_bytes(b"PK\x03\x04 torn"), "shard-00001.npz is not readable"),
    (lambda root: (root / "shard-00001.npz").write_bytes((root / "shard-00001.npz").read_bytes()[:100]),
     "shard-00001.npz is not readable"),
    (lambda root: np.savez_compressed(root / "shard-00001.npz", images=np.zeros((4, 6, 8, 3), np.uint8),
                                      state=np.zeros((4, 3), np.float32), track_seed=np.zeros(4, np.int64),
                                      s_m=np.zeros(4, np.float32)),
     r"shard-00001.npz: state is float32 \(4, 3\), the manifest says float32 \(4, 10\)"),
    (lambda root: np.savez_compressed(root / "shard-00001.npz", images=np.zeros((4, 6, 8, 3), np.uint8)),
     "shard-00001.npz lacks the array"),
    (lambda root: (root / MANIFEST).write_text("{not json"), "manifest.json is not readable JSON"),
    (lambda root: (root / MANIFEST).write_text(json.dumps({"format": "something/2"})),
     "is not a drivelab-perception-dataset/1 manifest"),
    (lambda root: (root / MANIFEST).write_text((root / MANIFEST).read_text().replace('"samples": 10', '"samples": 11')),
     "samples \\(11\\) is not the sum of the shards' samples"),
    (lambda root: (root / MANIFEST).unlink(), "holds no dataset"),
])
def test_a_broken_dataset_is_one_line(tmp_path, damage, message):
    write_samples(tmp_path / "data", samples=10, shard_size=4)
    damage(tmp_path / "data")
    with pytest.raises(ValueError, match=message) as error:
        load_dataset(tmp_path / "data")
    assert "\n" not in str(error.value)


def test_a_missing_directory_is_one_line(tmp_path):
    with pytest.raises(ValueError, match="dataset directory .*nowhere does not exist"):
        read_manifest(tmp_path / "nowhere")


def test_pickled_arrays_are_not_loaded(tmp_path):
    write_samples(tmp_path / "data", samples=4, shard_size=4)
    objects = np.empty(4, dtype=object)
    np.savez_compressed(tmp_path / "data" / "shard-00000.npz", images=np.zeros((4, 6, 8, 3), np.uint8),
                        state=np.zeros((4, 10), np.float32), track_seed=objects, s_m=np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="shard-00000.npz is not readable"):
        load_dataset(tmp_path / "data")


def test_synthetic_road_images_mark_the_lane(tmp_path):
    dataset = load_dataset(write_road_dataset(tmp_path / "roads", "train", samples=8, seed=3))
    assert dataset.image_shape == (32, 32, 3) and len(dataset) == 8
    sky, ground = dataset.images[:, 0], dataset.images[:, -1]
    assert (sky[..., 2] > sky[..., 0]).all()  # blue above
    assert (ground.std(axis=-1) < 5).mean() > 0.5  # mostly grey asphalt below
