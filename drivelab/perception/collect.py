"""Collect a perception dataset: camera images of LaneKeep with the driving state they show.

A driver (the CLI passes the rule-based one) drives, and the collector makes it drive badly on
purpose: each episode starts off-centre and askew, and slowly wandering noise is added to its steering,
so the images cover the off-centre and badly headed states a learning agent will visit, not only the
centred driving of a good driver. The driver reads the ground-truth state; the camera image and that
state become one sample.

The training split draws its tracks from LaneKeep's training range ([0, 1,000,000)); the held-out split
from the evaluation range ([1,000,000, 2,000,000)), which no agent and no perception model trains on.
"""

from __future__ import annotations

import math
import sys
from typing import Any, Callable

import numpy as np

from drivelab.envs.observations import StateObservation
from drivelab.perception.dataset import DatasetWriter

ENV_ID = "DriveLab/LaneKeep-v0"
SPLIT_TRACK_SEEDS = {"train": (0, 1_000_000), "heldout": (1_000_000, 2_000_000)}
# Start offsets and headings: up to 1.2 m off the lane centre (the shoulder begins 1.75 m out) and ±0.2 rad.
START_OFFSET_MAX_M = 1.2
START_HEADING_MAX_RAD = 0.2
# Steering noise: an Ornstein–Uhlenbeck process in steering units (±1 = ±0.5 rad), correlated over about
# a second, so the car drifts and the driver pulls it back (lateral offsets of ±1 m, headings of ±0.15 rad).
NOISE_CORRELATION_S = 1.0
NOISE_STD = 0.12
SAMPLE_EVERY_STEPS = 2  # consecutive frames are nearly the same picture; every 0.1 s is plenty


def collect_dataset(
    out_dir: str,
    episodes: int,
    *,
    make_driver: Callable[[StateObservation, Any, float], Any],
    seed: int = 0,
    split: str = "train",
    randomize: bool = False,
    camera_options: dict[str, Any] | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Drive ``episodes`` episodes and write their camera images and states to ``out_dir``.

    :param make_driver: ``make_driver(state_observation, action_mode, decision_dt_s)`` returns an object with
        ``reset()`` and stable-baselines3's ``predict(observation)`` on ``"state"`` observations.
    :param seed: episode ``k`` resets with seed ``seed + k`` (tracks, starts, noise and randomisation follow).
    :param split: ``"train"`` or ``"heldout"`` (which range the tracks come from).
    :param randomize: domain randomisation (colours, brightness, texture grain, camera height and pitch).
    :param camera_options: ``camera_*`` options of LaneKeep (size, field of view, mount, pixel noise).
    :return: ``{"dir", "samples", "shards", "bytes", "episodes"}``.
    """
    import gymnasium as gym
    from tqdm import tqdm

    import drivelab  # noqa: F401  (registers the env)

    if split not in SPLIT_TRACK_SEEDS:
        raise ValueError(f"split must be one of {', '.join(SPLIT_TRACK_SEEDS)}, got {split!r}")
    if not (isinstance(episodes, int) and episodes >= 1):
        raise ValueError(f"episodes must be an integer >= 1, got {episodes!r}")
    camera_options = dict(camera_options or {})
    unknown = sorted(key for key in camera_options if not key.startswith("camera_") or key == "camera_randomize")
    if unknown:
        raise ValueError(f"camera option {unknown[0]!r} is not one of LaneKeep's camera_* options")
    env = gym.make(ENV_ID, observation="camera", action="steer", camera_randomize=randomize,
                   track_seed_range=SPLIT_TRACK_SEEDS[split], initial_offset_max_m=START_OFFSET_MAX_M,
                   initial_heading_max_rad=START_HEADING_MAX_RAD, **camera_options)
    base = env.unwrapped
    o = base.options
    state_mode = StateObservation(max_steer_rad=base.vehicle_spec.max_steer_rad, curvature_preview_m=o.curvature_preview_m)
    driver = make_driver(state_mode, base.action_mode, base.decision_dt_s)
    image_shape = (o.camera_height, o.camera_width, 3)
    collection = {"env": ENV_ID, "seed": seed, "episodes": episodes, "randomize": randomize,
                  "camera": {"width": o.camera_width, "height": o.camera_height, "fov_deg": o.camera_fov_deg,
                             "mount": o.camera_mount, "renderer": o.camera_renderer, "pixel_noise": o.camera_pixel_noise},
                  "track_seed_range": list(SPLIT_TRACK_SEEDS[split]), "start_offset_max_m": START_OFFSET_MAX_M,
                  "start_heading_max_rad": START_HEADING_MAX_RAD, "steering_noise_std": NOISE_STD,
                  "sample_every_steps": SAMPLE_EVERY_STEPS}
    writer = DatasetWriter(out_dir, split, image_shape, state_mode.feature_names, collection, overwrite=overwrite)
    decay = math.exp(-base.decision_dt_s / NOISE_CORRELATION_S)
    kick = NOISE_STD * math.sqrt(1.0 - decay * decay)  # keeps the process' stationary std at NOISE_STD
    samples = 0
    bar = tqdm(total=episodes, unit="episode", desc=f"collecting {split}", disable=not progress, file=sys.stderr,
               dynamic_ncols=True)
    try:
        for episode in range(episodes):
            image, _ = env.reset(seed=seed + episode)
            noise_rng = np.random.default_rng([seed, episode])
            driver.reset()
            noise, done, step = noise_rng.normal(0.0, NOISE_STD), False, 0
            while not done:
                state = state_mode.observe(base.driving_state)
                if step % SAMPLE_EVERY_STEPS == 0:
                    writer.add(image, state, base.track_seed, base.s_m)
                    samples += 1
                action, _ = driver.predict(state)
                noise = decay * noise + kick * noise_rng.normal()
                steer = np.clip(np.asarray(action, dtype=np.float32) + noise, -1.0, 1.0).astype(np.float32)
                image, _, terminated, truncated, _ = env.step(steer)
                done, step = terminated or truncated, step + 1
            bar.update(1)
            bar.set_postfix(samples=samples)
        summary = writer.close()
    except BaseException:
        writer.abort()  # an interrupted collection leaves no shards behind (and no directory it made)
        raise
    finally:
        bar.close()
        env.close()
    return {**summary, "episodes": episodes}
