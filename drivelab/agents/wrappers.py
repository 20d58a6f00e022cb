"""Wrappers that adapt an environment to a learning agent without changing what it means."""

from __future__ import annotations

import gymnasium as gym
import numpy as np


class ScaledObservation(gym.ObservationWrapper):
    """Divide each observation feature by its typical magnitude (``observation_mode.scales``).

    A fixed, stateless alternative to running-mean normalisation (VecNormalize): the same
    observation always maps to the same input, so a saved policy needs no statistics file
    beside it, and a policy trained on ground truth reads perception's estimate identically.
    """

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        mode = env.unwrapped.observation_mode
        self.scales = np.asarray(mode.scales, dtype=np.float32)
        low = (env.observation_space.low / self.scales).astype(np.float32)
        high = (env.observation_space.high / self.scales).astype(np.float32)
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)

    def observation(self, observation: np.ndarray) -> np.ndarray:
        scaled = (np.asarray(observation, dtype=np.float32) / self.scales).astype(np.float32)
        return np.clip(scaled, self.observation_space.low, self.observation_space.high)
