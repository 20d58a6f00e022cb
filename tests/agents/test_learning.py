"""Learning, on a small budget: PPO from its LaneKeep preset learns to drive a lap.

The full comparison (PPO vs DQN vs the rule-based driver, 5 seeds) is a benchmark run by
``drivelab sweep experiments/lanekeep_ppo_vs_dqn.yaml``; this test only shows real improvement.
"""

from __future__ import annotations

import numpy as np
import torch

from drivelab.agents.factory import make_env, make_model, make_training_env
from drivelab.experiments.config import parse_config, resolve_trial
from drivelab.experiments.evaluation import evaluate, evaluation_track_seeds

EVALUATION_TRACKS = evaluation_track_seeds(1_000_000, 3)


def route_completion(model, env) -> float:
    return float(np.mean([episode["route_completion"] for episode in evaluate(model, env, EVALUATION_TRACKS)]))


def test_ppo_preset_learns_to_complete_laps_within_12k_steps():
    torch.set_num_threads(1)
    config = parse_config({"name": "learn", "env": {"id": "DriveLab/LaneKeep-v0"}, "agents": [{"name": "ppo", "algo": "ppo"}],
                           "seeds": [0], "budget_steps": 12_288})
    trial = resolve_trial(config, "ppo", 0)
    venv = make_training_env(trial["env_id"], trial["train_env_options"], trial["action"], trial["n_envs"], seed=0)
    model = make_model("ppo", venv, trial["hyperparams"], seed=0, device="cpu")
    env = make_env(trial["env_id"], trial["env_options"], trial["action"], scaled=True)
    before = route_completion(model, env)
    model.learn(total_timesteps=trial["budget_steps"])
    after = route_completion(model, env)
    assert before < 0.2  # an untrained policy leaves the road within the first bends
    assert after > 0.8, f"route completion {before:.3f} -> {after:.3f}"
