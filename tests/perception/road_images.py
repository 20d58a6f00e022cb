"""Small synthetic road images for the perception tests: a pinhole camera over a flat road.

Grey asphalt with white edge markings on green verge, blue sky above the horizon, as the car's
camera sees them: where the markings fall on the image encodes the lateral offset, how they lean
the heading error, how they bend the curvature. Numpy only and fast (a thousand 32×32 images in a
fraction of a second), so that a tiny CNN can learn from them within a test.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from drivelab.perception.dataset import DatasetWriter

FEATURES = ("lateral_offset_m", "heading_error_rad", "speed_mps", "yaw_rate_radps", "steer_rad", "curvature_0m_1pm",
            "curvature_5m_1pm", "curvature_10m_1pm", "curvature_20m_1pm", "curvature_30m_1pm")
PREVIEW_M = (0.0, 5.0, 10.0, 20.0, 30.0)
CAMERA_HEIGHT_M = 1.2
CAMERA_PITCH_RAD = math.radians(10.0)
VERTICAL_FOV_RAD = math.radians(90.0)
LANE_HALF_WIDTH_M = 1.75
MARKING_WIDTH_M = 0.15
SHOULDER_M = 0.5
SUPERSAMPLING = 2  # rendered at twice the size and averaged: edges fall between pixels as a camera's do
ASPHALT, MARKING, VERGE, SKY = (64, 64, 69), (242, 242, 242), (77, 140, 64), (158, 191, 230)


def _ground_coordinates(height: int, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Forward and left distance (m) of the ground each (sub)pixel sees, and which of them see the sky."""
    focal = (height / 2) / math.tan(VERTICAL_FOV_RAD / 2)
    u = (np.arange(width) + 0.5 - width / 2) / focal
    v = (np.arange(height) + 0.5 - height / 2) / focal
    right, down = np.meshgrid(u, v)
    c, s = math.cos(CAMERA_PITCH_RAD), math.sin(CAMERA_PITCH_RAD)
    # Ray = forward + right·(0, -1, 0) + down·(-sin, 0, -cos), forward = (cos, 0, -sin); world x forward, y left, z up.
    ray_x, ray_y, ray_z = c - down * s, -right, -s - down * c
    sky = ray_z > -1e-3
    depth = CAMERA_HEIGHT_M / np.where(sky, 1.0, -ray_z)
    return ray_x * depth, ray_y * depth, sky


def render_roads(offsets_m: np.ndarray, headings_rad: np.ndarray, curvatures_1pm: np.ndarray,
                 height: int = 32, width: int = 32) -> np.ndarray:
    """uint8 RGB images (N×H×W×3) of a car at these lateral offsets, heading errors and (constant) curvatures."""
    forward, left, sky = _ground_coordinates(height * SUPERSAMPLING, width * SUPERSAMPLING)
    d = np.asarray(offsets_m, dtype=float)[:, None, None]
    psi = np.asarray(headings_rad, dtype=float)[:, None, None]
    kappa = np.asarray(curvatures_1pm, dtype=float)[:, None, None]
    # The lane centre in the car's frame (left positive), to second order in the distance ahead.
    centre = -d - np.tan(psi) * forward + 0.5 * kappa * forward ** 2
    across = np.abs(left - centre) * np.cos(psi)
    images = np.empty(across.shape + (3,), dtype=np.float32)
    images[:] = VERGE
    images[across < LANE_HALF_WIDTH_M + SHOULDER_M] = ASPHALT
    marking = (across > LANE_HALF_WIDTH_M - MARKING_WIDTH_M / 2) & (across < LANE_HALF_WIDTH_M + MARKING_WIDTH_M / 2)
    images[marking] = MARKING
    images[:, sky] = SKY
    n = images.shape[0]
    images = images.reshape(n, height, SUPERSAMPLING, width, SUPERSAMPLING, 3).mean(axis=(2, 4))
    return np.round(images).astype(np.uint8)


def random_states(rng: np.random.Generator, samples: int) -> np.ndarray:
    """State vectors (float32, N×10, FEATURES order) of cars placed at random in their lane."""
    states = np.zeros((samples, len(FEATURES)), dtype=np.float32)
    states[:, 0] = rng.uniform(-1.0, 1.0, samples)
    states[:, 1] = rng.uniform(-0.15, 0.15, samples)
    states[:, 2] = rng.uniform(0.0, 15.0, samples)
    states[:, 3] = rng.normal(0.0, 0.1, samples)
    states[:, 4] = rng.normal(0.0, 0.05, samples)
    states[:, 5:] = rng.uniform(-1 / 30, 1 / 30, samples)[:, None]  # a circular arc: the same curvature ahead
    return states


def write_road_dataset(out_dir: Path, split: str, samples: int, seed: int, height: int = 32, width: int = 32,
                       shard_size: int = 256) -> Path:
    """A dataset of ``samples`` random road images, in shards of ``shard_size``."""
    rng = np.random.default_rng(seed)
    states = random_states(rng, samples)
    images = render_roads(states[:, 0], states[:, 1], states[:, 5], height, width)
    with DatasetWriter(out_dir, split, (height, width, 3), FEATURES, {"seed": seed, "synthetic": "tests/perception/road_images.py"},
                       shard_size=shard_size) as writer:
        for index in range(samples):
            writer.add(images[index], states[index], track_seed=seed, s_m=float(index))
    return Path(out_dir)
