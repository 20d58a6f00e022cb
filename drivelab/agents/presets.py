"""Hyperparameter presets per environment, read from ``drivelab/agents/presets/*.yaml``."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

PRESET_DIR = Path(__file__).with_name("presets")
LEARNING_ALGOS = ("ppo", "dqn")
SCRIPTED_AGENTS = ("rule_based", "random")
ALGOS = LEARNING_ALGOS + SCRIPTED_AGENTS


@dataclass(frozen=True)
class Preset:
    """A named set of hyperparameters for one algorithm in one action mode of one env."""

    name: str
    env_id: str
    algo: str
    action: str
    n_envs: int
    hyperparams: dict[str, Any] = field(default_factory=dict)
    train_env_options: dict[str, Any] = field(default_factory=dict)
    env_options: dict[str, Any] = field(default_factory=dict)  # the preset's own env options, training and evaluation


@lru_cache(maxsize=None)
def _preset_files() -> dict[str, dict[str, Any]]:
    files = {}
    for path in sorted(PRESET_DIR.glob("*.yaml")):
        with path.open() as handle:
            content = yaml.safe_load(handle)
        files[content["env_id"]] = content
    return files


def _presets_for(env_id: str) -> dict[str, Any] | None:
    """The preset file for ``env_id``: its own, or its family's (``ALE/*`` for every Atari game)."""
    files = _preset_files()
    family = env_id.split("/", 1)[0] + "/*" if "/" in env_id else None
    return files.get(env_id) or (files.get(family) if family else None)


def preset_names(env_id: str) -> list[str]:
    return sorted((_presets_for(env_id) or {}).get("presets", {}))


def find_preset(env_id: str, algo: str, preset: str | None = None, action: str | None = None) -> Preset:
    """The preset for ``algo`` on ``env_id``: the one named, else the one for ``action``, else the default.

    :raises ValueError: (one line) when no preset fits, naming those that exist.
    """
    content = _presets_for(env_id)
    if content is None:
        raise ValueError(f"no hyperparameter presets for env {env_id!r}; presets exist for: {', '.join(_preset_files())}")
    presets = content["presets"]
    if preset is None:
        preset = f"{algo}-{action}" if action is not None else content["defaults"].get(algo)
    if preset not in presets:
        fitting = [name for name, entry in presets.items() if entry["algo"] == algo]
        raise ValueError(f"no preset {preset!r} for {algo} on {env_id}; available: {', '.join(fitting) or 'none'}")
    entry = presets[preset]
    if entry["algo"] != algo:
        raise ValueError(f"preset {preset!r} is for {entry['algo']}, not {algo}")
    if action is not None and entry["action"] != action:
        raise ValueError(f"preset {preset!r} uses action {entry['action']!r}, not {action!r}")
    return Preset(
        name=preset,
        env_id=env_id,
        algo=algo,
        action=entry["action"],
        n_envs=int(entry.get("n_envs", 1)),
        hyperparams=copy.deepcopy(entry.get("hyperparams", {})),
        train_env_options=copy.deepcopy(content.get("train_env_options", {})),
        env_options=copy.deepcopy(entry.get("env_options", {})),
    )
