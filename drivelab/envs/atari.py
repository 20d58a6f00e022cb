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

import functools
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

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


def game_action_space(env_id: str):
    """The game's action space (its minimal action set), without starting it."""
    import gymnasium as gym

    _register_ale()
    env = gym.make(check_game(env_id), **_ale_kwargs(False))
    space = env.action_space
    env.close()
    return space


def _ale_kwargs(sticky_actions: bool, max_frames: int = MAX_FRAMES_PER_EPISODE) -> dict[str, Any]:
    # frameskip=1: AtariWrapper skips frames itself (and max-pools the last two, which ALE's own skip does not).
    return {"frameskip": 1, "repeat_action_probability": STICKY_ACTION_PROBABILITY if sticky_actions else 0.0,
            "full_action_space": False, "max_num_frames_per_episode": int(max_frames)}


def _register_ale() -> None:
    import gymnasium as gym

    from drivelab.envs.world import quiet_c_output

    with quiet_c_output(1, 2):  # ALE's banner, printed when the first game starts
        import ale_py

        gym.register_envs(ale_py)


def make_training_env(env_id: str, n_envs: int, seed: int, *, sticky_actions: bool = False, frame_stack: int = FRAME_STACK):
    """``n_envs`` copies of the game as DQN and PPO train on it: an SB3 ``VecEnv`` of stacked 84×84 frames
    (``(n_envs, 84, 84, frame_stack)`` uint8), an episode per life, rewards clipped to their sign."""
    return _sb3_atari_env(env_id, n_envs, seed, sticky_actions, frame_stack, MAX_FRAMES_PER_EPISODE)


def make_evaluation_env(env_id: str, seed: int, *, sticky_actions: bool = False, frame_stack: int = FRAME_STACK,
                        max_frames: int = MAX_FRAMES_PER_EPISODE):
    """One copy of the game as the standard protocol scores it: the same observations as training, but
    rewards unclipped and an episode that runs to game over (or the frame cap). The episode's raw score is
    in the final step's ``info["episode"]["r"]`` (SB3's ``Monitor``, which sees the game's own rewards).
    ``max_frames`` caps a game at fewer frames than the protocol's 108,000 (to watch a short part of one)."""
    return _sb3_atari_env(env_id, 1, seed, sticky_actions, frame_stack, max_frames, terminal_on_life_loss=False,
                          clip_reward=False)


def _sb3_atari_env(env_id: str, n_envs: int, seed: int, sticky_actions: bool, frame_stack: int, max_frames: int,
                   **wrapper_kwargs: bool):
    """SB3's ``make_atari_env`` (``AtariWrapper``) with our protocol, frames stacked by ``VecFrameStack``."""
    from stable_baselines3.common.env_util import make_atari_env
    from stable_baselines3.common.vec_env import VecFrameStack

    from drivelab.envs.world import quiet_c_output

    check_game(env_id)
    _register_ale()
    with quiet_c_output(1, 2):
        venv = make_atari_env(env_id, n_envs=n_envs, seed=seed, env_kwargs=_ale_kwargs(sticky_actions, max_frames),
                              wrapper_kwargs={"noop_max": NOOP_MAX, "frame_skip": FRAME_SKIP, **wrapper_kwargs})
    return VecFrameStack(venv, frame_stack)


def evaluate_game(agent: Any, env_id: str, episodes: int, seed: int, *, deterministic: bool = False,
                  sticky_actions: bool = False, should_stop: Callable[[], bool] | None = None) -> list[dict[str, Any]] | None:
    """``episodes`` games played to the end by ``agent`` (anything with SB3's ``predict``), the first from
    reset seed ``seed``: each episode's raw ``score``, its ``human_normalized_score``, its ``frames`` and
    whether the frame cap cut it short (``truncated``).

    The actions are sampled (``deterministic=False``), as rl-baselines3-zoo plays Atari games for its
    published scores: PPO draws from its policy, DQN is ε-greedy at its final exploration rate. A greedy
    policy can stall a game for good (Breakout waits for FIRE after each lost life) until the frame cap.
    ``should_stop`` is asked at every step, since a game can last minutes: when it answers True the
    games are abandoned and the result is None."""
    venv = make_evaluation_env(env_id, seed, sticky_actions=sticky_actions)
    results = []
    try:
        observation = venv.reset()
        while len(results) < episodes:
            if should_stop is not None and should_stop():
                return None
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


ATARI_FRAMES_PER_S = 60  # the console's frame rate


class AtariGame:
    """One game as :func:`make_evaluation_env` plays it, with what a viewer shows beside the agent's input:
    the console's screen in colour and the names of the actions. An agent decides every ``FRAME_SKIP``
    frames, so ``decision_dt_s`` of game time (1/15 s) passes between two decisions.

    :param env_id: the game's ALE id.
    :param sticky_actions: the v5 protocol's sticky actions (see the module's docstring).
    :param max_frames: the frame cap of a game (the protocol's by default).
    """

    decision_dt_s = FRAME_SKIP / ATARI_FRAMES_PER_S

    def __init__(self, env_id: str, *, sticky_actions: bool = False, seed: int = 0,
                 max_frames: int = MAX_FRAMES_PER_EPISODE) -> None:
        self.env_id = check_game(env_id)
        self.sticky_actions = bool(sticky_actions)
        self.max_frames = int(max_frames)
        self.venv = make_evaluation_env(env_id, seed, sticky_actions=sticky_actions, max_frames=max_frames)
        self.action_space = self.venv.action_space
        self._ale_env = self.venv.unwrapped.envs[0].unwrapped
        self.action_names: list[str] = list(self._ale_env.get_action_meanings())

    def reset(self, seed: int):
        """The first stacked observation of a game started from reset seed ``seed`` (shape ``(1, 84, 84, 4)``)."""
        self.venv.seed(int(seed))
        return self.venv.reset()

    def step(self, action: int):
        """The VecEnv's step for one action: ``(observation, reward, done, info)`` of the single game."""
        observation, rewards, dones, infos = self.venv.step(np.asarray([int(action)]))
        return observation, float(rewards[0]), bool(dones[0]), infos[0]

    def screen(self) -> np.ndarray:
        """The console's screen now, ``(210, 160, 3)`` RGB uint8."""
        return self._ale_env.ale.getScreenRGB()

    def close(self) -> None:
        self.venv.close()


VEC_ENVS = ("default", "envpool")


def require_installed(vec_env: str) -> None:
    """A one-line ``ValueError`` when ``vec_env`` needs a package that is not installed (envpool, an optional extra)."""
    import importlib.util

    if vec_env == "envpool" and importlib.util.find_spec("envpool") is None:
        raise ValueError("vec_env envpool needs the envpool package, which is not installed: "
                         "pip install 'drivelab[envpool]' (or vec_env: default)")


def make_training_vec_env(env_id: str, n_envs: int, seed: int, *, vec_env: str = "default", sticky_actions: bool = False,
                          frame_stack: int = FRAME_STACK):
    """The training envs on either backend: ``"default"`` (:func:`make_training_env`: ALE in this process, one
    game after another) or ``"envpool"`` (:class:`EnvpoolVecEnv`: envpool's C++ thread pool, the same
    preprocessing). A backend that is not installed is a one-line ``ValueError``."""
    if vec_env == "default":
        return make_training_env(env_id, n_envs, seed, sticky_actions=sticky_actions, frame_stack=frame_stack)
    if vec_env != "envpool":
        raise ValueError(f"unknown vec_env {vec_env!r}; allowed: {', '.join(VEC_ENVS)}")
    check_game(env_id)
    require_installed(vec_env)
    import envpool

    task = env_id.removeprefix("ALE/")  # envpool names the games as ALE's v5 ids do, without the namespace
    pool = envpool.make(task, env_type="gymnasium", num_envs=n_envs, seed=seed, episodic_life=True, reward_clip=True,
                        noop_max=NOOP_MAX, frame_skip=FRAME_SKIP, stack_num=frame_stack, img_height=84, img_width=84,
                        gray_scale=True, use_fire_reset=True,
                        repeat_action_probability=STICKY_ACTION_PROBABILITY if sticky_actions else 0.0,
                        max_episode_steps=MAX_FRAMES_PER_EPISODE // FRAME_SKIP)
    return EnvpoolVecEnv(pool, n_envs)



@functools.cache
def envpool_vec_env_class():
    """:class:`EnvpoolVecEnv`, made on first use: its base class is stable-baselines3's ``VecEnv``, and
    importing stable-baselines3 imports torch, which ``drivelab.envs`` leaves to those who train."""
    import gymnasium as gym
    import numpy as np
    from stable_baselines3.common.vec_env import VecEnv

    class EnvpoolVecEnv(VecEnv):
        """envpool's Atari games as a stable-baselines3 ``VecEnv`` with the default backend's conventions.

        - Observations: the stack on the last axis, ``(n_envs, 84, 84, 4)`` (envpool stacks on the first).
        - Ends of episodes: as SB3's wrappers, an episode per life; the observation after one is the next
          one's first, the last is in ``info["terminal_observation"]``. envpool resets an env on its next
          step, so the envs that ended are stepped once more at once: after a lost life that goes on with
          the same game (as SB3's ``EpisodicLifeEnv``), after game over it starts a new one.
        - ``info["episode"]`` at game over (or the frame cap) with the raw score ``r`` (envpool's unclipped
          ``info["reward"]``) and ``l`` frames, as SB3's ``Monitor`` reports them on the default backend.

        One difference remains, at an episode's start: envpool's stack holds copies of the first frame where
        SB3's ``VecFrameStack`` holds zeros before it.
        """

        def __init__(self, pool, n_envs: int) -> None:
            stack = pool.observation_space.shape[0]
            space = gym.spaces.Box(0, 255, (84, 84, stack), dtype=np.uint8)
            self.render_mode = None  # VecEnv asks for it: the pool draws nothing
            super().__init__(n_envs, space, pool.action_space)
            self.pool = pool
            self._ids = np.arange(n_envs)
            self._scores = np.zeros(n_envs)
            self._steps = np.zeros(n_envs, dtype=np.int64)
            self._actions = None

        @staticmethod
        def _last_axis(observations):
            return np.ascontiguousarray(np.moveaxis(observations, 1, -1))

        def reset(self):
            observations, _ = self.pool.reset()
            self._scores[:] = 0.0
            self._steps[:] = 0
            self.reset_infos = [{} for _ in range(self.num_envs)]
            return self._last_axis(observations)

        def step_async(self, actions) -> None:
            self._actions = np.asarray(actions).reshape(self.num_envs)

        def step_wait(self):
            observations, rewards, terminated, truncated, info = self.pool.step(self._actions, self._ids)
            order = np.argsort(info["env_id"])  # the pool answers in the order its envs finish: back to env order
            observations, rewards, terminated, truncated = (array[order] for array in (observations, rewards, terminated, truncated))
            info = {key: np.asarray(value)[order] for key, value in info.items() if np.ndim(value) >= 1 and len(value) == len(order)}
            observations = self._last_axis(observations)
            self._scores += info["reward"]
            self._steps += 1
            dones = terminated | truncated
            infos = [{"lives": int(lives)} for lives in info["lives"]]
            ended = np.flatnonzero(dones)
            for index in ended:
                infos[index]["terminal_observation"] = observations[index].copy()
                infos[index]["TimeLimit.truncated"] = bool(truncated[index] and not terminated[index])
                if info["lives"][index] == 0 or truncated[index]:  # the game is over, not just a life
                    infos[index]["episode"] = {"r": float(self._scores[index]), "l": int(self._steps[index]) * FRAME_SKIP}
                    self._scores[index], self._steps[index] = 0.0, 0
            if len(ended):
                first, *_, reset_info = self.pool.step(np.zeros(len(ended), dtype=self._actions.dtype), ended)
                observations[reset_info["env_id"]] = self._last_axis(first)
            return observations, rewards.astype(np.float32), dones, infos

        def close(self) -> None:
            close = getattr(self.pool, "close", None)  # envpool 1.2's pools have none: their threads end with them
            if close is not None:
                close()

        def get_attr(self, attr_name, indices=None):
            return [getattr(self, attr_name)] * len(self._get_indices(indices))

        def set_attr(self, attr_name, value, indices=None) -> None:
            setattr(self, attr_name, value)

        def env_method(self, method_name, *method_args, indices=None, **method_kwargs):
            raise AttributeError(f"envpool's envs have no per-env method {method_name!r}")

        def env_is_wrapped(self, wrapper_class, indices=None):
            return [False] * len(self._get_indices(indices))

    return EnvpoolVecEnv


def EnvpoolVecEnv(pool, n_envs: int):  # noqa: N802 - reads as the class it makes
    return envpool_vec_env_class()(pool, n_envs)
