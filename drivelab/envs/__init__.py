"""Gymnasium environments: PyBullet driving worlds, and Atari games on the ALE (:mod:`drivelab.envs.atari`).

Registration names entry points as strings, so ``import drivelab`` does not import PyBullet.
"""

from __future__ import annotations

import gymnasium as gym

LANEKEEP_ID = "DriveLab/LaneKeep-v0"
HIGHWAY_ID = "DriveLab/Highway-v0"


def register_envs() -> None:
    """Register DriveLab's environments with Gymnasium (idempotent)."""
    if LANEKEEP_ID not in gym.registry:
        gym.register(id=LANEKEEP_ID, entry_point="drivelab.envs.lanekeep:LaneKeepEnv")
    if HIGHWAY_ID not in gym.registry:
        gym.register(id=HIGHWAY_ID, entry_point="drivelab.envs.highway:HighwayEnv")


def require_registered(env_id: str) -> None:
    """One-line ``ValueError`` naming DriveLab's envs when ``env_id`` is not registered."""
    register_envs()
    if env_id not in gym.registry:
        known = sorted(name for name in gym.registry if name.startswith("DriveLab/"))
        raise ValueError(f"unknown env {env_id!r}; allowed: {', '.join(known)}")


__all__ = ["HIGHWAY_ID", "LANEKEEP_ID", "register_envs", "require_registered"]
