"""Building agents: stable-baselines3 models from an algorithm name and hyperparameters, and the
scripted agents (rule-based driver, random) behind the same ``predict`` interface.

Every agent answers ``predict(observation, state=None, episode_start=None, deterministic=True)``
like an SB3 model, so every command that takes an agent takes any of them.

An env whose observation is an image (``observation="camera"``) gets a CNN policy on the perception
CNN's architecture (:mod:`drivelab.agents.pixels`), unscaled observations, and frame stacking.
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
# DriveLab's own agent settings, written among the hyperparameters (as rl-baselines3-zoo writes
# frame_stack there), so that presets and experiment configs set and override them like any other and
# the run directory's config.yaml records them. The factory consumes them; SB3 never sees them.
# - frame_stack: how many consecutive observations the agent sees at once (1: the current one only);
# - encoder_from: a perception run directory whose trained backbone initialises a pixel agent's CNN.
AGENT_SETTINGS = ("frame_stack", "encoder_from")


def algorithm_class(algo: str):
    from stable_baselines3 import DQN, PPO

    classes = {"ppo": PPO, "dqn": DQN}
    if algo not in classes:
        raise ValueError(f"unknown learning algorithm {algo!r}; allowed: {', '.join(classes)}")
    return classes[algo]


def allowed_hyperparams(algo: str) -> list[str]:
    parameters = inspect.signature(algorithm_class(algo).__init__).parameters
    return sorted([*(name for name in parameters if name not in RESERVED_HYPERPARAMS and name != "self"), *AGENT_SETTINGS])


def check_hyperparams(algo: str, hyperparams: dict[str, Any]) -> None:
    """One-line ``ValueError`` for a hyperparameter the algorithm does not take (a typo, usually), a
    schedule that is not ``lin_<number>``, a ``frame_stack`` that is not a whole number >= 1, or a
    ``encoder_from`` that is not a perception run directory."""
    allowed = allowed_hyperparams(algo)
    for name in hyperparams:
        if name not in allowed:
            raise ValueError(f"unknown hyperparameter {name!r} for {algo}; allowed: {', '.join(allowed)}")
    frames = hyperparams.get("frame_stack", 1)
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        raise ValueError(f"hyperparameter frame_stack must be a whole number >= 1 (observations seen at once), got {frames!r}")
    encoder_from = hyperparams.get("encoder_from")
    if encoder_from is not None:
        if not isinstance(encoder_from, str):
            raise ValueError(f"hyperparameter encoder_from must be a perception run directory, got {encoder_from!r}")
        from drivelab.perception.model import read_metadata

        read_metadata(encoder_from)  # one-line PerceptionModelError (a ValueError) when it is not one
    resolve_schedules(hyperparams)


def frame_stack(hyperparams: dict[str, Any]) -> int:
    """Observations an agent with these hyperparameters sees at once (``frame_stack``, default 1)."""
    return int(hyperparams.get("frame_stack", 1))


def is_image_space(space: gym.Space) -> bool:
    """An image observation (height, width, channels) of uint8 pixels: a CNN's input, never scaled."""
    return isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


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
    """One env as an agent sees it: learning agents get state features scaled to order one (images
    stay uint8: SB3 divides them by 255 itself)."""
    import drivelab  # noqa: F401  (registers the environments)

    env = gym.make(env_id, action=action, render_mode=render_mode, **options)
    return ScaledObservation(env) if scaled and not is_image_space(env.observation_space) else env


def make_training_env(env_id: str, options: dict[str, Any], action: str, n_envs: int, seed: int, frame_stack: int = 1):
    """``n_envs`` copies in one process (DummyVecEnv: the physics is cheap next to inter-process traffic),
    with ``frame_stack`` > 1 the last that many observations stacked on the last (channel) axis, oldest first.
    On ``observation="perceived"`` the perception CNN runs once per step over all the envs' images."""
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecFrameStack

    venv = make_vec_env(
        lambda: make_env(env_id, options, action, scaled=True), n_envs=n_envs, seed=seed,
    )
    if options.get("observation") == "perceived":
        from drivelab.perception.vector import BatchedPerception

        venv = BatchedPerception(venv)  # one forward pass of the CNN for all the envs each step
    return VecFrameStack(venv, frame_stack, channels_order="last") if frame_stack > 1 else venv


def make_model(algo: str, env, hyperparams: dict[str, Any], seed: int, *, tensorboard_log: str | None = None,
               device: str = "auto", image_encoder: str = "perception"):
    """A fresh SB3 model; ``hyperparams`` are the algorithm's own keyword arguments and DriveLab's
    :data:`AGENT_SETTINGS` (``frame_stack`` is the env's business: :func:`make_training_env`).

    On image observations the policy is SB3's ``CnnPolicy`` with the perception CNN's architecture as
    its features extractor, initialised from ``encoder_from`` when one is given; with ``image_encoder="nature"``
    (the Atari games) SB3's own ``CnnPolicy`` as it comes.
    """
    check_hyperparams(algo, hyperparams)
    own = {name: value for name, value in hyperparams.items() if name not in AGENT_SETTINGS}
    encoder_from = hyperparams.get("encoder_from")
    policy = "MlpPolicy"
    if image_encoder == "nature" and is_image_space(env.observation_space):
        # The Atari games: SB3's own CnnPolicy (the DQN Nature paper's network), as rl-baselines3-zoo trains them.
        if encoder_from is not None:
            raise ValueError("hyperparameter encoder_from is for agents that see DriveLab's camera, not Atari frames")
        policy = "CnnPolicy"
    elif is_image_space(env.observation_space):
        from drivelab.agents.pixels import PerceptionFeaturesExtractor, perception_extractor_kwargs

        policy = "CnnPolicy"
        policy_kwargs = dict(own.get("policy_kwargs") or {})
        extractor_kwargs = dict(policy_kwargs.get("features_extractor_kwargs") or {})
        if encoder_from is not None:
            architecture = perception_extractor_kwargs(encoder_from)
            for name, value in extractor_kwargs.items():
                if name in architecture and (list(value) if name == "channels" else value) != architecture[name]:
                    raise ValueError(f"features_extractor_kwargs.{name} is {value!r}, but the perception model "
                                     f"{encoder_from} has {architecture[name]!r}; drop it to take the model's")
            extractor_kwargs.update(architecture)
        # The class goes in here, never in a config: configs stay plain YAML.
        own["policy_kwargs"] = {**policy_kwargs, "features_extractor_class": PerceptionFeaturesExtractor,
                                "features_extractor_kwargs": extractor_kwargs}
    elif encoder_from is not None:
        raise ValueError("hyperparameter encoder_from is for agents that see camera images (observation: camera)")
    model = algorithm_class(algo)(policy, env, seed=seed, device=device, tensorboard_log=tensorboard_log,
                                  verbose=0, **resolve_schedules(own))
    if encoder_from is not None:
        from drivelab.agents.pixels import initialise_from_perception_model

        # After construction, not through the extractor's arguments: the saved model then holds the
        # architecture and its own weights, and loads without the perception run directory.
        initialise_from_perception_model(model.policy, encoder_from)
    return model


def single_env_agent(model, hyperparams: dict[str, Any]):
    """``model`` as an agent that drives one (unstacked) env: with ``frame_stack`` > 1 it keeps the
    stack itself (:class:`~drivelab.agents.pixels.FrameStackingAgent`), exactly as training stacked."""
    frames = frame_stack(hyperparams)
    if frames == 1:
        return model
    from drivelab.agents.pixels import FrameStackingAgent

    return FrameStackingAgent(model, frames)


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
        from drivelab.envs.highway import HighwayEnv

        if isinstance(env.unwrapped, HighwayEnv):
            from drivelab.agents.highway_driver import HighwayDriver

            return HighwayDriver.for_env(env)
        from drivelab.agents.rule_based import RuleBasedDriver

        return RuleBasedDriver.for_env(env)
    if algo == "random":
        return RandomAgent(env.action_space, seed=seed)
    raise ValueError(f"unknown agent {algo!r}; allowed: {', '.join(ALGOS)}")

