"""Atari on the ALE: DeepMind's preprocessing for training, and the standard evaluation protocol (raw
scores, episodes to game over, human-normalised scores)."""

from __future__ import annotations

import numpy as np
import pytest

from drivelab.envs.atari import (MAX_FRAMES_PER_EPISODE, REFERENCE_SCORES, evaluate_game, human_normalized_score,
                                 make_evaluation_env, make_training_env)


class RandomPlayer:
    """Uniform random actions for a one-env VecEnv, seeded."""

    def __init__(self, space, seed: int = 0) -> None:
        self.space = space
        self.space.seed(seed)

    def predict(self, observation, deterministic: bool = True):
        return np.array([self.space.sample() for _ in range(len(observation))]), None


def wrappers(venv) -> list[str]:
    env, names = venv.venv.envs[0], []
    while hasattr(env, "env"):
        names.append(type(env).__name__)
        env = env.env
    return names + [type(env).__name__]


def test_training_observations_are_four_stacked_84x84_greyscale_frames():
    venv = make_training_env("ALE/Pong-v5", n_envs=2, seed=0)
    observation = venv.reset()
    assert observation.shape == (2, 84, 84, 4) and observation.dtype == np.uint8
    for _ in range(8):
        observation, *_ = venv.step(np.array([venv.action_space.sample() for _ in range(2)]))
    # The stack holds the last four frames, newest last: consecutive stacks share three of them.
    previous = observation.copy()
    observation, *_ = venv.step(np.zeros(2, dtype=int))
    np.testing.assert_array_equal(observation[..., :3], previous[..., 1:])
    names = wrappers(venv)
    for wrapper in ("NoopResetEnv", "MaxAndSkipEnv", "EpisodicLifeEnv", "WarpFrame", "ClipRewardEnv"):
        assert wrapper in names
    ale = venv.venv.envs[0].unwrapped.ale
    assert ale.getFloat("repeat_action_probability") == 0.0  # rl-baselines3-zoo's protocol: no sticky actions
    assert ale.getInt("max_num_frames_per_episode") == MAX_FRAMES_PER_EPISODE
    assert venv.action_space.n == 6  # Pong's minimal action set
    venv.close()


def test_evaluation_scores_raw_and_plays_to_game_over_while_training_ends_at_a_lost_life():
    game = "ALE/Breakout-v5"
    train = make_training_env(game, n_envs=1, seed=1)
    train.reset()
    player = RandomPlayer(train.action_space, seed=1)
    while True:
        _, _, dones, infos = train.step(player.predict(np.zeros((1,)))[0])
        if dones[0]:
            break
    assert train.venv.envs[0].unwrapped.ale.lives() == 4  # training: one life is one episode
    train.close()

    evaluation = make_evaluation_env(game, seed=1)
    names = wrappers(evaluation)
    assert "ClipRewardEnv" not in names and "EpisodicLifeEnv" not in names
    evaluation.reset()
    player = RandomPlayer(evaluation.action_space, seed=1)
    total, lives_seen = 0.0, set()
    while True:
        _, rewards, dones, infos = evaluation.step(player.predict(np.zeros((1,)))[0])
        total += float(rewards[0])
        lives_seen.add(infos[0]["lives"])
        if dones[0]:
            break
    assert lives_seen >= {4, 3, 2, 1} and infos[0]["lives"] == 0  # on through every lost life, to game over
    assert infos[0]["episode"]["r"] == pytest.approx(total)  # the score is the sum of the game's own rewards
    evaluation.close()


def test_evaluate_game_reports_raw_and_human_normalised_scores_per_episode():
    evaluation = make_evaluation_env("ALE/Breakout-v5", seed=0)
    player = RandomPlayer(evaluation.action_space, seed=0)
    evaluation.close()
    episodes = evaluate_game(player, "ALE/Breakout-v5", episodes=3, seed=0)
    assert len(episodes) == 3
    for episode in episodes:
        assert episode["score"] >= 0 and episode["score"] == int(episode["score"])
        assert episode["human_normalized_score"] == pytest.approx((episode["score"] - 1.7) / (31.8 - 1.7))
        assert 0 < episode["frames"] < MAX_FRAMES_PER_EPISODE and not episode["truncated"]


class GreedyNoop:
    """A greedy policy that never presses FIRE: Breakout never serves, and the game would run to the cap."""

    def __init__(self) -> None:
        self.deterministic_calls = 0

    def predict(self, observation, deterministic=False):
        self.deterministic_calls += bool(deterministic)
        return np.zeros(len(observation), dtype=np.int64), None


def test_evaluation_draws_actions_and_a_stop_request_ends_a_game_at_the_next_step():
    player = GreedyNoop()
    asked = []

    def stop_after_200_steps() -> bool:
        asked.append(1)
        return len(asked) > 200

    # A game that never serves would last 27,000 steps; the stop ends it after 200, and nothing is reported.
    assert evaluate_game(player, "ALE/Breakout-v5", episodes=1, seed=0, should_stop=stop_after_200_steps) is None
    assert len(asked) == 201
    assert player.deterministic_calls == 0  # the protocol samples (rl-baselines3-zoo plays Atari stochastically)


@pytest.mark.parametrize("game, score, expected", [
    ("ALE/Pong-v5", -20.7, 0.0), ("ALE/Pong-v5", 9.3, 1.0), ("ALE/Pong-v5", 21.0, 41.7 / 30.0),
    ("ALE/Breakout-v5", 1.7, 0.0), ("ALE/Breakout-v5", 16.75, 0.5), ("ALE/Breakout-v5", 398.0, 396.3 / 30.1),
    ("ALE/Enduro-v5", 0.0, 0.0), ("ALE/Enduro-v5", 309.6, 1.0), ("ALE/Enduro-v5", 996.4, 996.4 / 309.6),
])
def test_human_normalised_scores_of_known_inputs(game, score, expected):
    assert human_normalized_score(game, score) == pytest.approx(expected)


def test_an_unknown_game_is_one_line_naming_the_allowed_ones():
    with pytest.raises(ValueError) as error:
        make_training_env("ALE/Pongg-v5", n_envs=1, seed=0)
    message = str(error.value)
    assert "\n" not in message and "unknown Atari game 'ALE/Pongg-v5'" in message
    assert all(game in message for game in REFERENCE_SCORES)


def test_the_envpool_backend_means_what_the_default_one_means():
    """Same observations (shape, dtype, range, the stack newest last), an episode per life with clipped rewards in
    training, and raw game scores in ``info["episode"]`` at game over, on both backends."""
    from drivelab.envs.atari import make_training_vec_env

    seen = {}
    for backend in ("default", "envpool"):
        venv = make_training_vec_env("ALE/Breakout-v5", n_envs=2, seed=3, vec_env=backend)
        player = RandomPlayer(venv.action_space, seed=3)
        observation = venv.reset()
        assert observation.shape == (2, 84, 84, 4) and observation.dtype == np.uint8
        assert venv.observation_space.shape == (84, 84, 4) and venv.action_space.n == 4
        lives_at_ends, scores, rewards_seen, brightness = [], [], set(), []
        for _ in range(3000):
            previous = observation
            observation, rewards, dones, infos = venv.step(player.predict(observation)[0])
            rewards_seen.update(float(r) for r in rewards)
            brightness.append(float(observation[..., -1].mean()))
            for index in range(2):
                if dones[index]:
                    lives_at_ends.append(infos[index]["lives"])
                    assert infos[index]["terminal_observation"].shape == (84, 84, 4)
                    if "episode" in infos[index]:
                        scores.append(infos[index]["episode"]["r"])
                else:  # the stack moves by one frame a step
                    np.testing.assert_array_equal(observation[index, ..., :3], previous[index, ..., 1:])
        venv.close()
        assert rewards_seen <= {0.0, 1.0}  # clipped to the sign
        assert {4, 3, 2, 1, 0} <= set(lives_at_ends)  # an episode ends at every lost life
        assert scores and all(score >= 0 and score == int(score) for score in scores)
        seen[backend] = (np.mean(brightness), np.max(brightness))
    # Greyscale frames of the same game at the same size and scale: their brightness agrees.
    assert seen["envpool"][0] == pytest.approx(seen["default"][0], rel=0.1)
    assert seen["envpool"][1] == pytest.approx(seen["default"][1], rel=0.1)


def test_a_backend_that_does_not_exist_is_one_line():
    from drivelab.envs.atari import make_training_vec_env

    with pytest.raises(ValueError, match="unknown vec_env 'fast'; allowed: default, envpool"):
        make_training_vec_env("ALE/Pong-v5", 1, 0, vec_env="fast")


@pytest.mark.parametrize("backend", ["default", "envpool"])
def test_stable_baselines3_trains_on_either_backend(backend):
    from stable_baselines3 import PPO

    from drivelab.envs.atari import make_training_vec_env

    venv = make_training_vec_env("ALE/Pong-v5", n_envs=2, seed=0, vec_env=backend)
    model = PPO("CnnPolicy", venv, n_steps=32, batch_size=32, n_epochs=1, seed=0, device="cpu")
    model.learn(64)
    assert model.num_timesteps == 64
    action, _ = model.predict(venv.reset(), deterministic=True)
    assert action.shape == (2,) and all(0 <= a < 6 for a in action)
    venv.close()
