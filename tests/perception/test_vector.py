"""BatchedPerception: one forward pass for all envs gives what each env's own pass gives."""

from __future__ import annotations

import numpy as np
import pytest
from stable_baselines3.common.vec_env import DummyVecEnv

from drivelab.agents.factory import make_env, make_training_env
from drivelab.perception.model import save_untrained_model
from drivelab.perception.vector import BatchedPerception

ENV_ID = "DriveLab/LaneKeep-v0"


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> str:
    return str(save_untrained_model(tmp_path_factory.mktemp("model"), image_shape=(48, 48, 3)))


def options(model: str) -> dict:
    # Episodes of 1 s, so that some end (and reset) inside the test.
    return {"observation": "perceived", "perception_model": model, "camera_width": 48, "camera_height": 48,
            "max_episode_s": 1.0}


def test_batched_perception_equals_each_envs_own_and_estimates_terminal_observations(model):
    def venv():
        return DummyVecEnv([lambda: make_env(ENV_ID, options(model), "steer", scaled=True) for _ in range(3)])

    batched, separate = BatchedPerception(venv()), venv()
    batched.seed(5)
    separate.seed(5)
    np.testing.assert_allclose(batched.reset(), separate.reset(), rtol=1e-5, atol=1e-6)
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(25):
        actions = rng.uniform(-0.2, 0.2, size=(3, 1)).astype(np.float32)
        ours, _, dones, infos = batched.step(actions)
        theirs, _, their_dones, their_infos = separate.step(actions)
        np.testing.assert_array_equal(dones, their_dones)
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)  # batched vs one-by-one: float rounding only
        for index in np.nonzero(dones)[0]:
            finished += 1
            np.testing.assert_allclose(infos[index]["terminal_observation"], their_infos[index]["terminal_observation"],
                                       rtol=1e-5, atol=1e-6)
    assert finished >= 3
    errors = batched.modes[0].mean_absolute_errors()
    assert errors["lateral_offset_m"] > 0  # the errors are counted in deferred mode too


def test_training_envs_on_perceived_are_batched(model):
    venv = make_training_env(ENV_ID, options(model), "steer", n_envs=2, seed=0)
    assert isinstance(venv, BatchedPerception)
    observations = venv.reset()
    assert observations.shape == (2, 10) and np.isfinite(observations).all()
