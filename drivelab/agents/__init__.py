"""Decision: learning agents (DQN, PPO from stable-baselines3) built from presets, on the state vector
or on camera pixels (:mod:`drivelab.agents.pixels`), the rule-based driver and a random agent, all
answering ``predict`` like an SB3 model."""

from drivelab.agents.presets import ALGOS, LEARNING_ALGOS, SCRIPTED_AGENTS, Preset, find_preset

__all__ = ["ALGOS", "LEARNING_ALGOS", "SCRIPTED_AGENTS", "Preset", "find_preset"]
