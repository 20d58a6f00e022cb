"""Perception in the loop of a vectorised env: one batched forward pass over all envs per vector step.

Each ``"perceived"`` env running its own CNN on one image per step spends most of its time in the
network's per-call overhead; batched, the CNN sees all the envs' images at once (on the GPU when there
is one). :class:`BatchedPerception` wraps a ``DummyVecEnv`` of ``"perceived"`` envs: it switches their
observation modes to deferred (they hand back the ground truth and keep the camera image), then after
each step and reset runs the CNN once over every env's image, puts the estimates in place, and passes
the vectors through each env's own observation wrappers (``ScaledObservation``, say), as the envs
would have. Terminal observations of finished episodes (``infos[i]["terminal_observation"]``) are
estimated in the same pass.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnvWrapper

from drivelab.perception.observation import PerceivedObservation


def _observation_wrappers(env: gym.Env) -> list[gym.ObservationWrapper]:
    """The observation wrappers around ``env``'s base env, innermost first."""
    chain = []
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.ObservationWrapper):
            chain.append(env)
        env = env.env
    return chain[::-1]


class BatchedPerception(VecEnvWrapper):
    """One forward pass of the perception CNN per vector step, over every env's camera image.

    :param venv: a ``DummyVecEnv`` of envs made with ``observation="perceived"`` (the same model in all).
    """

    def __init__(self, venv: DummyVecEnv) -> None:
        if not isinstance(venv, DummyVecEnv):
            raise ValueError(f"BatchedPerception needs a DummyVecEnv (its envs in this process), got {type(venv).__name__}")
        self.modes: list[PerceivedObservation] = []
        for env in venv.envs:
            mode = env.unwrapped.observation_mode
            if not isinstance(mode, PerceivedObservation):
                raise ValueError(f"BatchedPerception needs envs with observation='perceived', got {mode.name!r}")
            mode.deferred = True
            self.modes.append(mode)
        self.chains = [_observation_wrappers(env) for env in venv.envs]
        super().__init__(venv)

    def _perceive(self) -> list[list[np.ndarray]]:
        """Every pending (truth, image) of every env through one forward pass; per env, its vectors in order."""
        pending = [mode.pending for mode in self.modes]
        images = np.stack([image for queue in pending for _, image in queue])
        estimates = self.modes[0].perceiver.estimate(images)
        vectors, start = [], 0
        for env_index, (mode, queue) in enumerate(zip(self.modes, pending)):
            truths = np.stack([truth for truth, _ in queue])
            completed = mode.complete(truths, estimates[start:start + len(queue)])
            start += len(queue)
            vectors.append([self._through_wrappers(env_index, vector) for vector in completed])
            queue.clear()
        return vectors

    def _through_wrappers(self, env_index: int, vector: np.ndarray) -> np.ndarray:
        for wrapper in self.chains[env_index]:
            vector = wrapper.observation(vector)
        return vector

    def reset(self) -> np.ndarray:
        for mode in self.modes:
            mode.pending.clear()
        self.venv.reset()
        return np.stack([vectors[-1] for vectors in self._perceive()])

    def step_wait(self):
        _, rewards, dones, infos = self.venv.step_wait()
        vectors = self._perceive()
        for index, done in enumerate(dones):
            if done and len(vectors[index]) == 2:  # the finished episode's last observation, then the reset's
                infos[index]["terminal_observation"] = vectors[index][0]
        return np.stack([env_vectors[-1] for env_vectors in vectors]), rewards, dones, infos
