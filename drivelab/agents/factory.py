"""Building agents: stable-baselines3 models from an algorithm name and hyperparameters, and the
scripted agents (rule-based driver, random) behind the same ``predict`` interface.

Every agent answers ``predict(observation, state=None, episode_start=None, deterministic=True)``
like an SB3 model, so every command that takes an agent takes any of them.
"""

from __future__ import annotations

import copy
import inspect
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from drivelab.agents.presets import ALGOS
from drivelab.agents.wrappers import ScaledObservation

# Arguments the factory sets itself; a config may not pass them as hyperparameters.
RESERVED_HYPERPARAMS = ("policy", "env", "seed", "device", "tensorboard_log", "verbose", "_init_setup_model")
# Hyperparameters that may be a schedule, written as rl-baselines3-zoo writes them: "lin_0.0005" decays
# linearly from 0.0005 at the start of training to 0 at its end.
SCHEDULED_HYPERPARAMS = ("learning_rate", "clip_range", "clip_range_vf")
LINEAR_PREFIX = "lin_"


def algorithm_class(algo: str):
    from stable_baselines3 import DQN, PPO

    classes = {"ppo": PPO, "dqn": DQN}
    if algo not in classes:
        raise ValueError(f"unknown learning algorithm {algo!r}; allowed: {', '.join(classes)}")
    return classes[algo]


def allowed_hyperparams(algo: str) -> list[str]:
    parameters = inspect.signature(algorithm_class(algo).__init__).parameters
    return sorted(name for name in parameters if name not in RESERVED_HYPERPARAMS and name != "self")


def check_hyperparams(algo: str, hyperparams: dict[str, Any]) -> None:
    """One-line ``ValueError`` for a hyperparameter the algorithm does not take (a typo, usually), or a
    schedule that is not ``lin_<number>``."""
    allowed = allowed_hyperparams(algo)
    for name in hyperparams:
        if name not in allowed:
            raise ValueError(f"unknown hyperparameter {name!r} for {algo}; allowed: {', '.join(allowed)}")
    resolve_schedules(hyperparams)


def resolve_schedules(hyperparams: dict[str, Any]) -> dict[str, Any]:
    """``hyperparams`` with each ``"lin_<start>"`` turned into SB3's linear schedule from ``start`` to 0.

    :raises ValueError: (one line) for another string where a schedule may stand.
    """
    from stable_baselines3.common.utils import LinearSchedule

    resolved = dict(hyperparams)
    for name in SCHEDULED_HYPERPARAMS:
        value = hyperparams.get(name)
        if not isinstance(value, str):
            continue
        try:
            start = float(value.removeprefix(LINEAR_PREFIX)) if value.startswith(LINEAR_PREFIX) else None
        except ValueError:
            start = None
        if start is None or not math.isfinite(start) or start <= 0:
            raise ValueError(f"hyperparameter {name} must be a number or {LINEAR_PREFIX}<number> "
                             f"(a linear decay to 0), got {value!r}")
        # From start at the beginning of training (progress remaining 1) to 0 at its end.
        resolved[name] = LinearSchedule(start, 0.0, 1.0)
    return resolved


def make_env(env_id: str, options: dict[str, Any], action: str, *, scaled: bool, render_mode: str | None = None) -> gym.Env:
    """One env as an agent sees it: learning agents get features scaled to order one."""
    import drivelab  # noqa: F401  (registers the environments)

    env = gym.make(env_id, action=action, render_mode=render_mode, **options)
    return ScaledObservation(env) if scaled else env


def make_training_env(env_id: str, options: dict[str, Any], action: str, n_envs: int, seed: int):
    """``n_envs`` copies in one process (DummyVecEnv: the physics is cheap next to inter-process traffic)."""
    from stable_baselines3.common.env_util import make_vec_env

    return make_vec_env(
        lambda: make_env(env_id, options, action, scaled=True), n_envs=n_envs, seed=seed,
    )


def make_model(algo: str, env, hyperparams: dict[str, Any], seed: int, *, tensorboard_log: str | None = None,
               device: str = "auto"):
    """A fresh SB3 model; ``hyperparams`` are the algorithm's own keyword arguments."""
    check_hyperparams(algo, hyperparams)
    return algorithm_class(algo)("MlpPolicy", env, seed=seed, device=device, tensorboard_log=tensorboard_log,
                                 verbose=0, **resolve_schedules(hyperparams))


def load_model(algo: str, path: str | Path, env=None, device: str = "auto"):
    """Load an SB3 model saved by DriveLab.

    SB3's zip holds pickled objects besides the weights: load only models you made or trust.
    """
    return algorithm_class(algo).load(str(path), env=env, device=device)


class RandomAgent:
    """Uniformly random actions from the action space, seeded; the baseline every agent must beat."""

    def __init__(self, action_space: gym.Space, seed: int = 0) -> None:
        # Its own copy: seeding the env's space would tie two agents (or the env) to one stream.
        self.action_space = copy.deepcopy(action_space)
        self.action_space.seed(seed)

    def reset(self) -> None:
        """Nothing to forget: the random stream goes on."""

    def predict(self, observation: np.ndarray, state: Any = None, episode_start: np.ndarray | None = None,
                deterministic: bool = True) -> tuple[Any, Any]:
        observation = np.asarray(observation)
        if observation.ndim > 1:
            return np.stack([np.asarray(self.action_space.sample()) for _ in range(observation.shape[0])]), state
        return self.action_space.sample(), state


def scripted_agent(algo: str, env: gym.Env, seed: int = 0):
    """The rule-based driver or the random agent for ``env`` (scripted agents read raw observations)."""
    if algo == "rule_based":
        from drivelab.agents.rule_based import RuleBasedDriver

        return RuleBasedDriver.for_env(env)
    if algo == "random":
        return RandomAgent(env.action_space, seed=seed)
    raise ValueError(f"unknown agent {algo!r}; allowed: {', '.join(ALGOS)}")

