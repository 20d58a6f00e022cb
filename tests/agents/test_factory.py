"""Presets, hyperparameter checks, the random agent and the observation scaling."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import drivelab  # noqa: F401
from drivelab.agents.factory import RandomAgent, check_hyperparams, make_env, scripted_agent
from drivelab.agents.presets import find_preset, preset_names
from drivelab.agents.rule_based import RuleBasedDriver
from drivelab.agents.wrappers import ScaledObservation


def test_lanekeep_has_a_preset_for_each_action_mode_that_suits_each_algorithm():
    assert preset_names("DriveLab/LaneKeep-v0") == ["dqn-camera", "dqn-steer_discrete", "ppo-camera", "ppo-direct",
                                                    "ppo-steer", "ppo-steer_discrete"]
    assert find_preset("DriveLab/LaneKeep-v0", "ppo").name == "ppo-steer"
    assert find_preset("DriveLab/LaneKeep-v0", "dqn").action == "steer_discrete"
    assert find_preset("DriveLab/LaneKeep-v0", "ppo", action="direct").hyperparams["n_steps"] == 256


@pytest.mark.parametrize("name", ["dqn-camera", "dqn-steer_discrete", "ppo-camera", "ppo-direct", "ppo-steer", "ppo-steer_discrete"])
def test_every_preset_names_only_real_hyperparameters(name):
    algo = name.split("-")[0]
    check_hyperparams(algo, find_preset("DriveLab/LaneKeep-v0", algo, preset=name).hyperparams)


def test_preset_errors_name_what_exists():
    with pytest.raises(ValueError, match=r"no preset 'dqn-direct' for dqn on DriveLab/LaneKeep-v0; available: dqn-steer_discrete, dqn-camera"):
        find_preset("DriveLab/LaneKeep-v0", "dqn", action="direct")
    with pytest.raises(ValueError, match=r"no hyperparameter presets for env 'CartPole-v1'"):
        find_preset("CartPole-v1", "ppo")
    with pytest.raises(ValueError, match=r"unknown hyperparameter 'gama' for dqn; allowed: .*gamma"):
        check_hyperparams("dqn", {"gama": 0.9})


def test_random_agent_is_seeded_and_answers_like_an_sb3_model():
    env = gym.make("DriveLab/LaneKeep-v0", action="steer_discrete")
    first = [RandomAgent(env.action_space, seed=3).predict(np.zeros(10))[0] for _ in range(1)]
    agent_a, agent_b = RandomAgent(env.action_space, seed=3), RandomAgent(env.action_space, seed=3)
    actions_a = [int(agent_a.predict(np.zeros(10))[0]) for _ in range(20)]
    actions_b = [int(agent_b.predict(np.zeros(10))[0]) for _ in range(20)]
    assert actions_a == actions_b and len(set(actions_a)) > 3 and int(first[0]) == actions_a[0]
    batch, state = agent_a.predict(np.zeros((4, 10)))
    assert batch.shape == (4,) and state is None


def test_scripted_agents_behind_one_factory():
    env = gym.make("DriveLab/LaneKeep-v0")
    assert isinstance(scripted_agent("rule_based", env), RuleBasedDriver)
    assert isinstance(scripted_agent("random", env), RandomAgent)
    with pytest.raises(ValueError, match="unknown agent 'sac'"):
        scripted_agent("sac", env)


def test_scaled_observation_divides_by_each_features_typical_magnitude():
    env = make_env("DriveLab/LaneKeep-v0", {}, "steer", scaled=True)
    assert isinstance(env, ScaledObservation)
    raw_env = gym.make("DriveLab/LaneKeep-v0")
    scaled, _ = env.reset(seed=5)
    raw, _ = raw_env.reset(seed=5)
    scales = env.unwrapped.observation_mode.scales
    assert scales.tolist() == pytest.approx([1.0, 0.3, 10.0, 0.5, 0.5, 0.03, 0.03, 0.03, 0.03, 0.03])
    np.testing.assert_allclose(scaled, raw / scales, rtol=1e-6)
    assert env.observation_space.contains(scaled)
    assert env.observation_space.high[5] == pytest.approx(1.0 / 0.03)
