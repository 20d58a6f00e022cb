"""A pixel agent's trial end to end on a tiny budget: trained on stacked camera frames, evaluated on
the single evaluation env, saved, and driven again by `drivelab drive`."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from tests.experiments.test_trial import drivelab, evaluation_steps


def test_ppo_camera_trial_trains_evaluates_and_drives_again(tmp_path):
    config = {
        "name": "pixels",
        "env": {"id": "DriveLab/LaneKeep-v0", "options": {"max_episode_s": 5}},
        "agents": [{"name": "ppo_camera", "algo": "ppo", "preset": "ppo-camera", "n_envs": 2,
                    "hyperparams": {"n_steps": 64, "batch_size": 64},
                    # A small camera keeps the test fast; the preset's observation (camera) stays.
                    "env_options": {"camera_width": 48, "camera_height": 48}}],
        "seeds": [0],
        "budget_steps": 256,
        "evaluation": {"every_steps": 128, "episodes": 1},
        "checkpoint_every_steps": 128,
        "tracking": {"wandb": {"mode": "disabled"}, "tensorboard": False},
        "device": "cpu",
    }
    path = tmp_path / "pixels.yaml"
    path.write_text(yaml.safe_dump(config))
    result = drivelab("train", str(path), "--out", str(tmp_path / "runs"), "--json")
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "runs" / "pixels" / "ppo_camera" / "seed-0"
    assert json.loads(result.stdout)["state"] == "done"

    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resolved["preset"] == "ppo-camera" and resolved["hyperparams"]["frame_stack"] == 4
    assert resolved["env_options"]["observation"] == "camera" and resolved["env_options"]["camera_width"] == 48
    assert sorted(set(evaluation_steps(run_dir))) == [0, 128, 256]
    final = json.loads((run_dir / "evaluation.json").read_text())
    assert final["env_steps"] == 256 and 0.0 <= final["route_completion"] <= 1.0

    from stable_baselines3 import PPO

    model = PPO.load(run_dir / "model.zip", device="cpu")  # our own file
    assert model.observation_space.shape == (12, 48, 48) and type(model.policy).__name__ == "ActorCriticCnnPolicy"

    driven = drivelab("drive", "--agent", str(run_dir), "--episodes", "1", "--seed", "1000000", "--json")
    assert driven.returncode == 0, driven.stderr
    report = json.loads(driven.stdout)
    assert report["observation"] == "camera" and report["action"] == "steer"
    assert 0.0 <= report["episodes"][0]["route_completion"] <= 1.0
    assert Path(report["agent"]) == run_dir

    wrong = drivelab("drive", "--agent", str(run_dir), "--episodes", "1", "--observation", "state")
    assert wrong.returncode == 2
    assert wrong.stderr.strip().endswith("was trained on observation 'camera'; it can drive on camera, not 'state'")
