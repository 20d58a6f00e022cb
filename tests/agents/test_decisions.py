"""The decision stage exposed: ``decide`` acts exactly as ``predict(deterministic=True)`` and hands back
what the agent computed to choose (Q-values, probabilities, a Gaussian, the tracker's terms)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from drivelab.agents.decisions import CATEGORICAL, GAUSSIAN, Q_VALUES, RANDOM, RULE_BASED, decide
from drivelab.agents.factory import RandomAgent, make_env, make_model, single_env_agent
from drivelab.agents.rule_based import RuleBasedDriver

SHORT = {"max_episode_s": 3}


def observations(env, count: int = 12, seed: int = 0) -> list[np.ndarray]:
    """Observations along a lap driven with random steering."""
    observation, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    seen = [observation]
    for _ in range(count - 1):
        observation, *_ = env.step(env.action_space.sample())
        seen.append(observation)
    return seen


@pytest.mark.parametrize("algo, action, kind", [("ppo", "steer", GAUSSIAN), ("ppo", "steer_discrete", CATEGORICAL),
                                                ("dqn", "steer_discrete", Q_VALUES)])
def test_a_learning_agents_decision_is_its_deterministic_prediction(algo, action, kind):
    env = make_env("DriveLab/LaneKeep-v0", SHORT, action, scaled=True)
    hyperparams = {"n_steps": 32, "batch_size": 32} if algo == "ppo" else {"buffer_size": 100, "learning_starts": 10}
    model = make_model(algo, env, hyperparams, seed=3, device="cpu")
    if algo == "ppo" and action == "steer":
        with torch.no_grad():  # a policy that steers: the untrained one's mean is near zero everywhere
            model.policy.action_net.bias.fill_(0.4)
    for observation in observations(env):
        decision = decide(model, observation)
        expected, _ = model.predict(observation, deterministic=True)
        assert decision.kind == kind
        np.testing.assert_array_equal(np.asarray(decision.action), np.asarray(expected))
        if kind == GAUSSIAN:
            assert decision.mean.shape == (1,) and decision.std.shape == (1,) and decision.std[0] > 0
            assert decision.action[0] == pytest.approx(np.clip(decision.mean[0], -1, 1))
        elif kind == CATEGORICAL:
            assert decision.values.shape == (env.action_space.n,)
            assert decision.values.sum() == pytest.approx(1.0, abs=1e-5)
            assert int(decision.action) == int(np.argmax(decision.values))
        else:
            assert decision.values.shape == (env.action_space.n,)
            assert int(decision.action) == int(np.argmax(decision.values))
    env.close()


def test_given_a_generator_the_action_is_drawn_as_predict_draws_it():
    env = make_env("DriveLab/LaneKeep-v0", SHORT, "steer_discrete", scaled=True)
    observation = observations(env, count=5)[-1]
    ppo = make_model("ppo", env, {"n_steps": 32, "batch_size": 32}, seed=3, device="cpu")
    with torch.no_grad():  # a distribution far from uniform: 0.6 on action 2, the rest spread
        ppo.policy.action_net.weight.zero_()
        ppo.policy.action_net.bias.copy_(torch.log(torch.tensor([0.05] * 2 + [0.6] + [0.05] * 6)))
    sample = np.random.default_rng(0)
    drawn = [int(decide(ppo, observation, sample).action) for _ in range(4000)]
    probabilities = decide(ppo, observation).values
    np.testing.assert_allclose(np.bincount(drawn, minlength=9) / 4000, probabilities, atol=0.025)
    dqn = make_model("dqn", env, {"buffer_size": 100, "learning_starts": 10}, seed=3, device="cpu")
    greedy = int(decide(dqn, observation).action)
    dqn.exploration_rate = 0.0  # greedy: the draw is the argmax
    assert all(int(decide(dqn, observation, sample).action) == greedy for _ in range(50))
    dqn.exploration_rate = 0.5  # half the time a uniform action (which is the greedy one 1 time in 9)
    share = np.mean([int(decide(dqn, observation, sample).action) == greedy for _ in range(4000)])
    assert share == pytest.approx(0.5 + 0.5 / 9, abs=0.03)
    env.close()


def test_a_stacked_frame_agent_is_asked_with_its_stack():
    env = make_env("DriveLab/LaneKeep-v0", {**SHORT, "observation": "camera", "camera_width": 48, "camera_height": 48},
                   "steer_discrete", scaled=True)
    from drivelab.agents.factory import make_training_env

    venv = make_training_env("DriveLab/LaneKeep-v0", {**SHORT, "observation": "camera", "camera_width": 48,
                                                       "camera_height": 48}, "steer_discrete", n_envs=1, seed=0, frame_stack=3)
    model = make_model("dqn", venv, {"buffer_size": 100, "learning_starts": 10, "frame_stack": 3}, seed=0, device="cpu")
    deciding, predicting = single_env_agent(model, {"frame_stack": 3}), single_env_agent(model, {"frame_stack": 3})
    deciding.reset(), predicting.reset()
    for observation in observations(env, count=6):
        decision = decide(deciding, observation)
        expected, _ = predicting.predict(observation, deterministic=True)
        assert decision.kind == Q_VALUES and int(decision.action) == int(expected)
        assert decision.agent_input.shape == (48, 48, 9)  # the stack, newest frame last
        np.testing.assert_array_equal(decision.agent_input[..., 6:], observation)
    env.close()
    venv.close()


def test_the_rule_based_driver_shows_its_trackers_terms_and_the_random_agent_its_action():
    env = make_env("DriveLab/LaneKeep-v0", SHORT, "steer", scaled=False)
    driver = RuleBasedDriver.for_env(env)
    reference = RuleBasedDriver.for_env(env)
    for observation in observations(env):
        decision = decide(driver, observation)
        expected, _ = reference.predict(observation)
        assert decision.kind == RULE_BASED
        np.testing.assert_array_equal(decision.action, expected)
        terms = decision.terms
        assert set(terms) >= {"cross_track", "heading", "integral", "feedforward", "steer_rad"}
        # The terms are what made the command: they sum to the steering angle (it is not clipped here).
        parts = terms["cross_track"] + terms["heading"] + terms["integral"] + terms["derivative"] + terms["feedforward"]
        assert parts == pytest.approx(terms["steer_rad"], abs=1e-9)
        assert decision.action[0] == pytest.approx(terms["steer_rad"] / 0.5, abs=1e-6)
    random_decision = decide(RandomAgent(env.action_space, seed=1), observations(env, 1)[0])
    assert random_decision.kind == RANDOM and env.action_space.contains(random_decision.action)
    env.close()
