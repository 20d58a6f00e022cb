"""Atari games on the dashboard: ``drivelab watch`` on a trained Atari run (beside the random agent) and the
videos an Atari trial films during training, decoded and checked; bad input is one line and no file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from drivelab.viewer.atari import GAME_LAYOUT, HEADER
from tests.viewer.conftest import CONTENT_FRACTION, assert_no_blank_panel, content_fraction, decode, drivelab

CARD_FRAMES = 30  # 2 s of card at 15 decisions per second (every 4th frame of the console's 60)


def assert_no_blank_game_panel(frame: np.ndarray, top: int = 0) -> None:
    """Every panel of the game's dashboard has content, and so does its header."""
    assert_no_blank_panel(frame, top, GAME_LAYOUT)
    header = frame[top + HEADER.y:top + HEADER.y + HEADER.h, HEADER.x:HEADER.x + HEADER.w]
    assert content_fraction(header) >= CONTENT_FRACTION


@pytest.fixture(scope="module")
def breakout_run(tmp_path_factory) -> Path:
    """A Breakout PPO trial trained for 128 steps by ``drivelab train``, filming at 0 and 128 steps."""
    root = tmp_path_factory.mktemp("breakout_run")
    config = {
        "name": "breakout_watch",
        "env": {"id": "ALE/Breakout-v5"},
        "agents": [{"name": "ppo", "algo": "ppo", "n_envs": 2, "hyperparams": {"n_steps": 64, "batch_size": 64, "n_epochs": 1}}],
        "seeds": [0],
        "budget_steps": 128,
        "evaluation": {"every_steps": 128, "episodes": 1, "video_every_steps": 128},
        "checkpoint_every_steps": 128,
        "tracking": {"wandb": {"mode": "offline"}, "tensorboard": False},
        "device": "cpu",
    }
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    result = drivelab("train", str(path), "--out", str(root / "runs"), cwd=root)
    assert result.returncode == 0, result.stderr
    return root / "runs" / "breakout_watch" / "ppo" / "seed-0"


def test_an_atari_trial_films_whole_games_on_the_game_dashboard_and_sends_them_to_wandb(breakout_run):
    from tests.experiments.test_trial import wandb_videos

    videos = sorted(path.name for path in (breakout_run / "videos").iterdir())
    assert videos == ["eval_00000000.mp4", "eval_00000128.mp4"]
    for name in videos:
        frames = decode(breakout_run / "videos" / name)
        # A whole game of Breakout: 5 lives lost, hundreds of decisions, then the card.
        assert len(frames) > 100 + CARD_FRAMES and frames[0].shape == (720, 1280, 3)
        for index in (5, (len(frames) - CARD_FRAMES) // 2):
            assert_no_blank_game_panel(frames[index])
    logged = wandb_videos(breakout_run)
    assert sorted(steps for steps, _, _ in logged) == [0, 128]
    for steps, record, media in logged:
        assert record["_type"] == "video-file" and "a game from start seed 1000000: score" in record["caption"]
        assert media.read_bytes() == (breakout_run / "videos" / f"eval_{steps:08d}.mp4").read_bytes()


def test_a_trained_atari_run_beside_the_random_agent_on_its_game(tmp_path, breakout_run):
    out = tmp_path / "both.mp4"
    short = ("--option", "max_episode_frames=400")
    result = drivelab("watch", "--agent", str(breakout_run), "--agent", "random", *short, "--seed", "3",
                      "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    ppo, random = json.loads(result.stdout)["agents"]
    assert ppo["label"].startswith("ppo from") and random["label"] == "random agent"
    for agent in (ppo, random):
        (episode,) = agent["episodes"]
        assert episode["seed"] == 3 and 0 <= episode["score"] == int(episode["score"]) and episode["frames"] <= 400
        assert episode["human_normalized_score"] == pytest.approx((episode["score"] - 1.7) / 30.1)
        assert episode["truncated"] == (episode["frames"] == 400)
        assert 1 <= episode["steps"] <= 100  # a decision every 4 frames
    frames = decode(out)
    steps = max(ppo["episodes"][0]["steps"], random["episodes"][0]["steps"])
    assert len(frames) == steps + CARD_FRAMES
    assert frames[0].shape == (1440, 1280, 3)  # two 1280x720 dashboards, stacked
    for top in (0, 720):
        assert_no_blank_game_panel(frames[min(30, steps - 1)], top)
    # The game moves: each of the first frames differs from the one before it.
    changes = [float(np.abs(a.astype(int) - b.astype(int)).mean()) for a, b in zip(frames[:20], frames[1:21])]
    assert min(changes) > 0.01, changes
    # PPO's decision panel: a probability bar per action of Breakout's four, the drawn one in amber.
    decision = GAME_LAYOUT["decision"]
    panel = frames[10][decision.y + 28:decision.y + decision.h - 2, decision.x + 2:decision.x + decision.w - 2]
    amber = (np.abs(panel.astype(int) - (255, 196, 64)).max(axis=2) < 40).mean()
    assert amber > 0.0005, amber
    # The same reset seed plays the same game: PPO alone repeats its game, actions drawn from the seed.
    alone = drivelab("watch", "--agent", str(breakout_run), *short, "--seed", "3", "--out", str(tmp_path / "ppo.gif"), "--json")
    assert alone.returncode == 0, alone.stderr
    assert json.loads(alone.stdout)["agents"][0]["episodes"] == ppo["episodes"]


@pytest.mark.parametrize("extra, expected", [
    (("--agent", "rule_based", "--env", "ALE/Pong-v5"), "--agent rule_based drives DriveLab's worlds; an Atari game takes random"),
    (("--agent", "random", "--env", "ALE/Pongg-v5"), "--env: unknown Atari game 'ALE/Pongg-v5'; allowed: ALE/Pong-v5"),
    (("--agent", "RUN", "--track-seed", "5"), "--track-seed is for driving worlds; an Atari game has no tracks"),
    (("--agent", "RUN", "--option", "max_episode_frames=0"), "--option max_episode_frames=0: an Atari game takes"),
    (("--agent", "RUN", "--option", "target_speed_mps=3"), "--option target_speed_mps=3: an Atari game takes"),
    (("--agent", "RUN", "--observation", "camera"), "--observation is for driving worlds"),
    (("--agent", "RUN", "--agent", "rule_based"), "--agent rule_based drives DriveLab's worlds"),
])
def test_bad_atari_watch_input_is_one_line_exit_2_and_no_file(tmp_path, breakout_run, extra, expected):
    args = [str(breakout_run) if value == "RUN" else value for value in extra]
    result = drivelab("watch", *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []


def test_drive_points_an_atari_run_to_watch(breakout_run):
    result = drivelab("drive", "--agent", str(breakout_run))
    assert result.returncode == 2
    assert "plays ALE/Breakout-v5: drive takes DriveLab's driving worlds; watch the game with drivelab watch" in result.stderr
