"""DriveLab: a reinforcement-learning and autonomous-driving simulation lab.

``import drivelab`` registers the environments with Gymnasium::

    import gymnasium as gym
    import drivelab

    env = gym.make("DriveLab/LaneKeep-v0", observation="state", action="steer")
"""

from drivelab.envs import register_envs

__version__ = "0.1.0"

register_envs()

__all__ = ["__version__", "register_envs"]
