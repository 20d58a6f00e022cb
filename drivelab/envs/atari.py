"""Atari games on the Arcade Learning Environment (``ale-py``, whose wheel carries the ROMs).

Games are named by their ALE ids (``ALE/Pong-v5``, ``ALE/Breakout-v5``, ``ALE/Enduro-v5``). The
preprocessing is DeepMind's, by stable-baselines3's own wrappers (``AtariWrapper``, ``VecFrameStack``):
up to 30 no-op starts, each action repeated for 4 frames with the last two max-pooled, 84×84 greyscale,
the last 4 frames stacked; and, for training only, an episode per life and rewards clipped to their sign.

The protocol is the one rl-baselines3-zoo trains and reports with (the ``NoFrameskip-v4`` games): no
sticky actions, the minimal action set, episodes capped at 108,000 frames (30 minutes of play). Its
figures (PPO: Pong 20.99, Breakout 398.0, Enduro 996.4 after 10M steps) compare with ours.
``sticky_actions=True`` gives the v5 protocol instead (the previous action repeats with probability
0.25, as Machado et al., 2018, recommend), which the zoo's figures do not compare with.

Evaluation follows the standard protocol (:func:`make_evaluation_env`): the raw game score, no reward
clipping, no episode per life (an episode ends at game over or at the frame cap), and the score
human-normalised with the random and human scores of the DQN Nature paper (Mnih et al., 2015).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FRAME_SKIP = 4
FRAME_STACK = 4
NOOP_MAX = 30
MAX_FRAMES_PER_EPISODE = 108_000
STICKY_ACTION_PROBABILITY = 0.25


@dataclass(frozen=True)
class ReferenceScores:
    """A game's reference scores from the DQN Nature paper (Mnih et al., 2015, Extended Data Table 2)."""

    random: float
    human: float


REFERENCE_SCORES = {
    "ALE/Pong-v5": ReferenceScores(random=-20.7, human=9.3),
    "ALE/Breakout-v5": ReferenceScores(random=1.7, human=31.8),
    "ALE/Enduro-v5": ReferenceScores(random=0.0, human=309.6),
}
ATARI_GAMES = tuple(REFERENCE_SCORES)


def is_atari(env_id: str) -> bool:
    return env_id.startswith("ALE/")


def check_game(env_id: str) -> str:
    """``env_id`` when it is a game the lab plays, else a one-line ``ValueError`` naming the allowed ones."""
    if env_id not in REFERENCE_SCORES:
        raise ValueError(f"unknown Atari game {env_id!r}; allowed: {', '.join(ATARI_GAMES)}")
    return env_id


def human_normalized_score(env_id: str, score: float) -> float:
    """``(score - random) / (human - random)``: 0 plays like a random policy, 1 like the paper's human tester."""
    reference = REFERENCE_SCORES[check_game(env_id)]
    return (float(score) - reference.random) / (reference.human - reference.random)


def _ale_kwargs(sticky_actions: bool) -> dict[str, Any]:
    # frameskip=1: AtariWrapper skips frames itself (and max-pools the last two, which ALE's own skip does not).
    return {"frameskip": 1, "repeat_action_probability": STICKY_ACTION_PROBABILITY if sticky_actions else 0.0,
            "full_action_space": False, "max_num_frames_per_episode": MAX_FRAMES_PER_EPISODE}


def _register_ale() -> None:
    import gymnasium as gym

    from drivelab.envs.world import quiet_c_output

    with quiet_c_output(1, 2):  # ALE's banner, printed when the first game starts
        import ale_py

        gym.register_envs(ale_py)


def make_training_env(env_id: str, n_envs: int, seed: int, *, sticky_actions: bool = False, frame_stack: int = FRAME_STACK):
    """``n_envs`` copies of the game as DQN and PPO train on it: an SB3 ``VecEnv`` of stacked 84×84 frames
    (``(n_envs, 84, 84, frame_stack)`` uint8), an episode per life, rewards clipped to their sign."""
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    from drivelab.envs.world import quiet_c_output

    check_game(env_id)
    _register_ale()
    with quiet_c_output(1, 2):
        venv = make_atari_env(env_id, n_envs=n_envs, seed=seed, env_kwargs=_ale_kwargs(sticky_actions),
                              wrapper_kwargs={"noop_max": NOOP_MAX, "frame_skip": FRAME_SKIP})
    return VecFrameStack(venv, frame_stack)


def make_evaluation_env(env_id: str, seed: int, *, sticky_actions: bool = False, frame_stack: int = FRAME_STACK):
    """One copy of the game as the standard protocol scores it: the same observations as training, but
    rewards unclipped and an episode that runs to game over (or the frame cap). The episode's raw score is
    in the final step's ``info["episode"]["r"]`` (SB3's ``Monitor``, which sees the game's own rewards)."""
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    from drivelab.envs.world import quiet_c_output

    check_game(env_id)
    _register_ale()
    with quiet_c_output(1, 2):
        venv = make_atari_env(env_id, n_envs=1, seed=seed, env_kwargs=_ale_kwargs(sticky_actions),
                              wrapper_kwargs={"noop_max": NOOP_MAX, "frame_skip": FRAME_SKIP,
                                              "terminal_on_life_loss": False, "clip_reward": False})
    return VecFrameStack(venv, frame_stack)


def evaluate_game(agent: Any, env_id: str, episodes: int, seed: int, *, deterministic: bool = True,
                  sticky_actions: bool = False) -> list[dict[str, Any]]:
    """``episodes`` games played to the end by ``agent`` (anything with SB3's ``predict``), the first from
    reset seed ``seed``: each episode's raw ``score``, its ``human_normalized_score``, its ``frames`` and
    whether the frame cap cut it short (``truncated``)."""
    venv = make_evaluation_env(env_id, seed, sticky_actions=sticky_actions)
    results = []
    try:
        observation = venv.reset()
        while len(results) < episodes:
            action, _ = agent.predict(observation, deterministic=deterministic)
            observation, _, dones, infos = venv.step(action)
            if dones[0] and "episode" in infos[0]:  # game over or the frame cap, not a lost life
                episode = infos[0]["episode"]
                frames = int(episode["l"])  # Monitor sits under the frame skip: it counts the game's frames
                results.append({"score": float(episode["r"]), "human_normalized_score": human_normalized_score(env_id, episode["r"]),
                                "frames": frames, "truncated": bool(infos[0].get("TimeLimit.truncated", False))
                                or frames >= MAX_FRAMES_PER_EPISODE})
    finally:
        venv.close()
    return results
