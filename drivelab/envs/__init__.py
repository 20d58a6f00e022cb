"""Gymnasium environments: PyBullet driving worlds (and, later, ALE makers).

Registration names entry points as strings, so ``import drivelab`` does not import PyBullet.
"""

from __future__ import annotations

import gymnasium as gym

LANEKEEP_ID = "DriveLab/LaneKeep-v0"


def register_envs() -> None:
    """Register DriveLab's environments with Gymnasium (idempotent)."""
    if LANEKEEP_ID not in gym.registry:
        gym.register(id=LANEKEEP_ID, entry_point="drivelab.envs.lanekeep:LaneKeepEnv")


__all__ = ["LANEKEEP_ID", "register_envs"]
