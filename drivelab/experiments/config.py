"""Experiment configs: YAML validated by a schema, resolved into one config per trial.

A config names an env, one or more agents, seeds, a budget and an evaluation protocol::

    name: lanekeep_ppo_vs_dqn
    env: {id: DriveLab/LaneKeep-v0, options: {}}
    agents:
      - {name: ppo, algo: ppo}                      # the env's default PPO preset
      - {name: dqn, algo: dqn, hyperparams: {learning_rate: 1.0e-3}}
      - {name: rule_based, algo: rule_based}
    seeds: [0, 1, 2, 3, 4]
    budget_steps: 60000
    evaluation: {every_steps: 10000, episodes: 10, first_track_seed: 1000000}

``evaluation.video_every_steps: N`` (off when absent or null) also films one evaluation episode on the
dashboard into the run directory's ``videos/`` each time training passes another multiple of N, and
the final model at the end (see :mod:`drivelab.experiments.trial`).

``checkpoint_replay_buffer: false`` leaves DQN's replay buffer out of its checkpoints, for buffers too
large to write every ``checkpoint_every_steps`` (a 1M-frame Atari buffer holds about 28 GB). A trial
resumed from such a checkpoint starts with an empty buffer and collects transitions again before it
learns (see :func:`drivelab.experiments.trial.refill_steps`).

Any mistake (an unknown key, a wrong type, an unknown algorithm or env, a negative budget) is a
:class:`ConfigError` with one line naming the field and what is allowed.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from drivelab.agents.presets import ALGOS, LEARNING_ALGOS


class ConfigError(ValueError):
    """A config that cannot be run; its message is one line."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnvConfig(_Strict):
    id: str = Field(description="registered Gymnasium id, e.g. DriveLab/LaneKeep-v0")
    options: dict[str, Any] = Field(default_factory=dict, description="env keyword options (train and evaluation)")


class AgentConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="label in reports and the run directory's name")
    algo: Literal["ppo", "dqn", "rule_based", "random"]
    preset: str | None = Field(default=None, description="hyperparameter preset; default: the algorithm's default for the env")
    action: str | None = Field(default=None, description="action mode; default: the preset's")
    n_envs: int | None = Field(default=None, ge=1, le=64, description="parallel envs for training; default: the preset's")
    hyperparams: dict[str, Any] = Field(default_factory=dict, description="overrides of the preset's hyperparameters")
    env_options: dict[str, Any] = Field(default_factory=dict, description="env options for this agent only")
    observation: Literal["state", "camera", "perceived"] | None = Field(
        default=None, description="what the agent reads when evaluated (and trained, unless train_observation says "
                                  "otherwise); default: the preset's, else state")
    train_observation: Literal["state", "camera", "perceived"] | None = Field(
        default=None, description="what a learning agent reads while training; default: observation")
    perception_model: str | None = Field(
        default=None, description="the perception model's run directory (drivelab perception train), for 'perceived'")

    @model_validator(mode="after")
    def _perception_model_with_perceived(self) -> "AgentConfig":
        perceived = "perceived" in (self.observation, self.train_observation)
        if perceived and self.perception_model is None:
            raise ValueError("observation 'perceived' needs perception_model: RUN_DIR (a model from drivelab perception train)")
        if self.perception_model is not None and not perceived:
            raise ValueError("perception_model is for observation 'perceived' (or train_observation 'perceived')")
        return self


class EvaluationConfig(_Strict):
    every_steps: int = Field(default=10_000, ge=1, description="evaluate every N env steps of training")
    episodes: int = Field(default=10, ge=1, le=1000, description="episodes per evaluation, one per evaluation track")
    first_track_seed: int = Field(default=1_000_000, ge=0, description="evaluation tracks: first_track_seed + episode index")
    video_every_steps: int | None = Field(
        default=None, description="film one evaluation episode (the first evaluation track, deterministic policy) "
                                  "into videos/ at the first evaluation at or after each multiple of N env steps "
                                  "(0 included), and the final model; null: no videos")

    @field_validator("video_every_steps", mode="before")
    @classmethod
    def _positive_steps_or_null(cls, value: Any) -> Any:
        if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
            return value
        raise ValueError(f"must be a positive integer of env steps (a video every that many), or null for no "
                         f"videos; got {value!r}")


class WandbConfig(_Strict):
    mode: Literal["auto", "online", "offline", "disabled"] = Field(
        default="auto", description="auto: online when an API key is configured, otherwise offline")
    project: str = "drivelab"
    entity: str | None = None


class TrackingConfig(_Strict):
    wandb: WandbConfig = Field(default_factory=WandbConfig)
    tensorboard: bool = True


class ExperimentConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    env: EnvConfig
    agents: list[AgentConfig] = Field(min_length=1)
    seeds: list[int] = Field(min_length=1)
    budget_steps: int = Field(gt=0, description="env steps of training per trial (PPO rounds up to whole rollouts)")
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    checkpoint_every_steps: int = Field(default=10_000, gt=0)
    checkpoint_replay_buffer: bool = Field(
        default=True, description="keep DQN's replay buffer in its checkpoints; false: a resumed DQN refills it before learning")
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @field_validator("seeds")
    @classmethod
    def _seeds_distinct(cls, seeds: list[int]) -> list[int]:
        if len(set(seeds)) != len(seeds) or any(seed < 0 for seed in seeds):
            raise ValueError("seeds must be distinct integers >= 0")
        return seeds

    @model_validator(mode="after")
    def _agents_distinct(self) -> "ExperimentConfig":
        names = [agent.name for agent in self.agents]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"agent names must be distinct; repeated: {', '.join(duplicates)}")
        return self

    def agent(self, name: str) -> AgentConfig:
        for agent in self.agents:
            if agent.name == name:
                return agent
        raise ConfigError(f"no agent {name!r} in config {self.name!r}; agents: {', '.join(a.name for a in self.agents)}")


def _format_validation_error(error: ValidationError) -> str:
    first = error.errors()[0]
    location = ".".join(str(part) for part in first["loc"]) or "config"
    kind = first["type"]
    if kind == "extra_forbidden":
        return f"unknown key {location!r}; check the spelling (allowed keys are the schema's fields)"
    if kind == "literal_error":
        return f"{location}: {first['msg'].lower()}, got {first.get('input')!r}"
    if kind == "missing":
        return f"{location}: required field is missing"
    if kind == "value_error":  # our own validators' messages say what was wrong and what is allowed
        return f"{location}: {str(first['msg']).removeprefix('Value error, ')}"
    return f"{location}: {first['msg']}, got {first.get('input')!r}"


def _allowed_keys_hint(error: ValidationError) -> str:
    first = error.errors()[0]
    if first["type"] != "extra_forbidden":
        return ""
    parent: type[BaseModel] = ExperimentConfig
    for part in first["loc"][:-1]:
        if isinstance(part, int):
            continue
        field_info = parent.model_fields.get(part)
        annotation = getattr(field_info, "annotation", None)
        inner = getattr(annotation, "__args__", (annotation,))
        models = [arg for arg in inner if isinstance(arg, type) and issubclass(arg, BaseModel)]
        if not models:
            return ""
        parent = models[0]
    return f"; allowed: {', '.join(parent.model_fields)}"


def parse_config(data: Any, source: str = "config") -> ExperimentConfig:
    """Validate a config mapping; env ids, presets and hyperparameters are checked too."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: an experiment config is a YAML mapping (name, env, agents, seeds, budget_steps, ...)")
    try:
        config = ExperimentConfig.model_validate(data)
    except ValidationError as error:
        message = _format_validation_error(error)
        if message.startswith("unknown key"):
            message = message.split(";")[0] + _allowed_keys_hint(error)
        raise ConfigError(f"{source}: {message}") from None
    _check_semantics(config, source)
    return config


def load_config(path: str | Path) -> ExperimentConfig:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} not found; give the path of an experiment YAML (see experiments/)")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}: not valid YAML{where}") from None
    return parse_config(data, str(path))


def _check_semantics(config: ExperimentConfig, source: str) -> None:
    """What the schema cannot see: the env exists, presets and hyperparameters fit, options are valid."""
    import gymnasium as gym

    from drivelab.agents.factory import check_hyperparams
    from drivelab.envs import require_registered
    from drivelab.agents.presets import find_preset

    from drivelab.envs.atari import is_atari

    if is_atari(config.env.id):
        _check_atari(config, source)
        return
    try:
        require_registered(config.env.id)
    except ValueError as error:
        raise ConfigError(f"{source}: env.id: {error}") from None
    evaluation = config.evaluation
    for index, agent in enumerate(config.agents):
        where = f"{source}: agents.{index} ({agent.name})"
        try:
            if agent.algo in LEARNING_ALGOS:
                preset = find_preset(config.env.id, agent.algo, agent.preset, agent.action)
                check_hyperparams(agent.algo, {**preset.hyperparams, **agent.hyperparams})
            elif agent.hyperparams or agent.preset:
                raise ValueError(f"{agent.algo} does not learn: it takes no preset or hyperparams")
        except ValueError as error:
            raise ConfigError(f"{where}: {error}") from None
        if agent.perception_model is not None and not Path(agent.perception_model).is_dir():
            raise ConfigError(f"{where}: perception model {agent.perception_model} does not exist; make it first with "
                              f"drivelab perception collect and drivelab perception train (paths are relative to where "
                              f"you run drivelab)")
        resolved = resolve_trial(config, agent.name, config.seeds[0])
        _check_evaluation_tracks_held_out(evaluation, resolved["train_env_options"], source)
        try:
            env = gym.make(config.env.id, action=resolved["action"], **resolved["env_options"])
            env.close()
        except (ValueError, TypeError) as error:
            raise ConfigError(f"{where}: {str(error).splitlines()[0]}") from None


ATARI_ENV_OPTIONS = {"sticky_actions": "true or false (the v5 protocol's sticky actions; default false)",
                     "vec_env": "default or envpool (the vector backend for training)"}


def _check_atari(config: ExperimentConfig, source: str) -> None:
    """An Atari config: a game the lab plays, its options, agents that can play it (what the schema cannot see)."""
    from drivelab.agents.factory import check_hyperparams
    from drivelab.agents.presets import find_preset
    from drivelab.envs.atari import VEC_ENVS, check_game, require_installed

    try:
        check_game(config.env.id)
    except ValueError as error:
        raise ConfigError(f"{source}: env.id: {error}") from None
    for index, agent in enumerate(config.agents):
        where = f"{source}: agents.{index} ({agent.name})"
        options = {**config.env.options, **agent.env_options}
        for name, value in options.items():
            if name not in ATARI_ENV_OPTIONS:
                raise ConfigError(f"{where}: unknown option {name!r} for {config.env.id}; allowed: "
                                  + "; ".join(f"{key}: {what}" for key, what in ATARI_ENV_OPTIONS.items()))
        if not isinstance(options.get("sticky_actions", False), bool):
            raise ConfigError(f"{where}: option sticky_actions must be true or false, got {options['sticky_actions']!r}")
        backend = options.get("vec_env", "default")
        if backend not in VEC_ENVS:
            raise ConfigError(f"{where}: option vec_env must be one of {', '.join(VEC_ENVS)}, got {backend!r}")
        try:
            require_installed(backend)
        except ValueError as error:
            raise ConfigError(f"{where}: {error}") from None
        if agent.observation or agent.train_observation or agent.perception_model:
            raise ConfigError(f"{where}: Atari agents read the game's frames; observation, train_observation and "
                              f"perception_model are for DriveLab's driving worlds")
        if agent.action is not None and agent.action != "discrete":
            raise ConfigError(f"{where}: action {agent.action!r} does not fit {config.env.id}, whose actions are "
                              f"discrete (the game's minimal action set); allowed: discrete")
        try:
            if agent.algo == "rule_based":
                raise ValueError("the rule-based driver drives DriveLab's worlds, not Atari games; allowed: ppo, dqn, random")
            if agent.algo in LEARNING_ALGOS:
                preset = find_preset(config.env.id, agent.algo, agent.preset)  # every game's actions are discrete
                if preset.action != "discrete":
                    raise ValueError(f"preset {preset.name!r} does not fit {config.env.id}: its action is {preset.action!r}, "
                                     f"the game's are discrete")
                check_hyperparams(agent.algo, {**preset.hyperparams, **agent.hyperparams})
            elif agent.hyperparams or agent.preset:
                raise ValueError(f"{agent.algo} does not learn: it takes no preset or hyperparams")
        except ValueError as error:
            raise ConfigError(f"{where}: {error}") from None


def _check_evaluation_tracks_held_out(evaluation: EvaluationConfig, train_env_options: dict[str, Any], source: str) -> None:
    """Evaluation tracks [first, first + episodes) must lie outside the range training draws tracks from."""
    from drivelab.envs.lanekeep import TRAINING_TRACK_SEEDS_END

    low, high = train_env_options.get("track_seed_range", (0, TRAINING_TRACK_SEEDS_END))
    first, end = evaluation.first_track_seed, evaluation.first_track_seed + evaluation.episodes
    if first < high and end > low:
        raise ConfigError(
            f"{source}: evaluation.first_track_seed must be >= {high} so evaluation tracks are never "
            f"trained on (training draws tracks from [{low}, {high})), got {first}")


def resolve_trial(config: ExperimentConfig, agent_name: str, seed: int) -> dict[str, Any]:
    """Everything one trial needs, with presets applied: what the run directory's config.yaml holds."""
    from drivelab.agents.presets import find_preset

    agent = config.agent(agent_name)
    env_options = {**config.env.options, **agent.env_options}
    if agent.observation is not None:
        env_options["observation"] = agent.observation
    resolved: dict[str, Any] = {
        "experiment": config.name,
        "agent": agent.name,
        "algo": agent.algo,
        "seed": seed,
        "env_id": config.env.id,
        "env_options": copy.deepcopy(env_options),
        "budget_steps": config.budget_steps,
        # video_every_steps only when set: run directories made before it existed keep the same config
        "evaluation": config.evaluation.model_dump(exclude_none=True),
        "checkpoint_every_steps": config.checkpoint_every_steps,
        # only when off: run directories made before it existed keep the same config
        **({} if config.checkpoint_replay_buffer else {"checkpoint_replay_buffer": False}),
        "tracking": config.tracking.model_dump(),
        "device": config.device,
    }
    if agent.algo in LEARNING_ALGOS:
        from drivelab.envs.atari import is_atari

        # An Atari game has one action mode (its discrete actions): the preset is named or the default.
        preset = find_preset(config.env.id, agent.algo, agent.preset, None if is_atari(config.env.id) else agent.action)
        # The preset's env options (an action resolution, say) hold for training and evaluation alike,
        # unless the config sets the same option.
        env_options = {**preset.env_options, **env_options}
        resolved.update(
            preset=preset.name,
            action=preset.action,
            env_options=copy.deepcopy(env_options),
            n_envs=agent.n_envs or preset.n_envs,
            hyperparams={**preset.hyperparams, **agent.hyperparams},
            train_env_options={**preset.train_env_options, **env_options},
        )
    else:
        from drivelab.envs.atari import is_atari

        # The action mode a scripted agent drives in: the game's; the highway's meta-actions; LaneKeep's steering.
        default_action = "discrete" if is_atari(config.env.id) else "meta" if config.env.id == "DriveLab/Highway-v0" else "steer"
        resolved.update(preset=None, action=agent.action or default_action, n_envs=1, hyperparams={},
                        train_env_options=copy.deepcopy(env_options))
    _apply_observations(resolved, agent)
    return resolved


def _apply_observations(resolved: dict[str, Any], agent: AgentConfig) -> None:
    """What the agent reads in evaluation and in training, and the perception model where one reads ``perceived``
    (LaneKeep refuses a perception model for any other observation, so it goes only there)."""
    for key, observation in (("env_options", resolved["env_options"].get("observation")),
                             ("train_env_options", agent.train_observation or resolved["env_options"].get("observation"))):
        options = resolved[key]
        options.pop("perception_model", None)
        if observation is not None:
            options["observation"] = observation
        if observation == "perceived":
            options["perception_model"] = agent.perception_model


__all__ = ["ALGOS", "ConfigError", "ExperimentConfig", "load_config", "parse_config", "resolve_trial"]
