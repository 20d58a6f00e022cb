"""``drivelab watch``: videos decoded and checked frame by frame, side by side, the episode card, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.viewer.conftest import (CONTENT_FRACTION, assert_no_blank_panel, decode, drivelab, panel_contents,
                                   sigint_as_at_a_terminal)

CARD_FRAMES = 40  # 2 s of card at 20 decisions per second
SHORT = ("--option", "max_episode_s=3")  # 60 decision steps


def test_the_rule_based_drivers_video_has_a_frame_per_step_then_its_card(tmp_path):
    out = tmp_path / "rule.mp4"
    result = drivelab("watch", *SHORT, "--seed", "1", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert Path(report["video"]) == out and report["size"] == [1280, 720]
    episode = report["agents"][0]["episodes"][0]
    assert episode["episode_time_s"] == pytest.approx(3.0) and not episode["off_road"]
    frames = decode(out)
    assert len(frames) == 60 + CARD_FRAMES
    assert all(frame.shape == (720, 1280, 3) for frame in frames)
    for index in (0, 30, 59):
        assert_no_blank_panel(frames[index])
    # One frame per decision step: each differs from the one before (the car, the clock, the plots move).
    changes = [float(np.abs(a.astype(int) - b.astype(int)).mean()) for a, b in zip(frames[:59], frames[1:60])]
    assert min(changes) > 0.05, changes
    # The card: held still for its 2 s, and not a dashboard (its panels' places hold the metrics and the track).
    card = frames[-CARD_FRAMES:]
    assert max(np.abs(card[0].astype(int) - frame.astype(int)).mean() for frame in card) < 2  # codec noise only
    assert np.abs(card[0].astype(int) - frames[59].astype(int)).mean() > 20
    # watch drives exactly as drive does: same seed, same episode.
    driven = drivelab("drive", *SHORT, "--seed", "1", "--episodes", "1", "--json")
    assert driven.returncode == 0, driven.stderr
    expected = json.loads(driven.stdout)["episodes"][0]
    assert episode["return"] == pytest.approx(expected["return"], abs=1e-9)
    assert episode["route_completion"] == pytest.approx(expected["route_completion"], abs=1e-12)


def test_a_trained_ppo_run_and_the_rule_based_driver_side_by_side(tmp_path, ppo_run):
    out = tmp_path / "both.mp4"
    result = drivelab("watch", "--agent", str(ppo_run), "--agent", "rule_based", "--track-seed", "1000000",
                      "--option", "max_episode_s=2", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    ppo, rule = report["agents"]
    assert ppo["label"].startswith("ppo from") and rule["label"].startswith("rule-based")
    assert ppo["episodes"][0]["track_seed"] == rule["episodes"][0]["track_seed"] == 1000000
    steps = max(round(agent["episodes"][0]["episode_time_s"] / 0.05) for agent in (ppo, rule))
    frames = decode(out)
    assert len(frames) == steps + CARD_FRAMES
    assert frames[0].shape == (1440, 1280, 3)  # two 1280x720 dashboards, stacked
    for top in (0, 720):
        assert_no_blank_panel(frames[steps // 2], top)
    # Each agent alone drives the same episode it drove beside the other.
    alone = drivelab("watch", "--agent", str(ppo_run), "--track-seed", "1000000", "--option", "max_episode_s=2",
                     "--out", str(tmp_path / "ppo.mp4"), "--json")
    assert alone.returncode == 0, alone.stderr
    assert json.loads(alone.stdout)["agents"][0]["episodes"] == ppo["episodes"]
    ppo_frames = decode(tmp_path / "ppo.mp4")
    ppo_steps = round(ppo["episodes"][0]["episode_time_s"] / 0.05)
    assert len(ppo_frames) == ppo_steps + CARD_FRAMES and ppo_frames[0].shape == (720, 1280, 3)
    assert_no_blank_panel(ppo_frames[ppo_steps // 2])
    # PPO's decision panel draws its Gaussian: the std box (blue) and the action (amber) are there.
    decision = ppo_frames[10][432 + 28:720 - 2, 960 + 2:1280 - 2]
    blue = (np.abs(decision.astype(int) - (90, 170, 255)).max(axis=2) < 40).mean()
    amber = (np.abs(decision.astype(int) - (255, 196, 64)).max(axis=2) < 40).mean()
    assert blue > 0.002 and amber > 0.0005, (blue, amber)


def test_a_gif_at_another_size(tmp_path):
    out = tmp_path / "small.gif"
    result = drivelab("watch", "--option", "max_episode_s=1", "--size", "640x360", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert f"video: {out}" in result.stdout
    import imageio.v3 as iio

    frames = iio.imread(out, index=None)
    assert frames.shape[1:3] == (360, 640)
    durations = [iio.immeta(out, index=i)["duration"] for i in range(len(frames))]
    # GIF merges the card's identical frames into one longer frame: the total is still 1 s + 2 s.
    assert sum(durations) == pytest.approx(3000, abs=60)
    assert content_of_frame(frames[10]) > CONTENT_FRACTION


def content_of_frame(frame: np.ndarray) -> float:
    from tests.viewer.conftest import content_fraction

    return content_fraction(frame[..., :3])


def test_without_out_it_writes_rollout_mp4_here_and_says_where(tmp_path):
    result = drivelab("watch", "--option", "max_episode_s=0.5", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "rollout.mp4").is_file()
    assert f"video: {tmp_path / 'rollout.mp4'}" in result.stdout
    assert len(decode(tmp_path / "rollout.mp4")) == 10 + CARD_FRAMES


@pytest.mark.parametrize("args, expected", [
    (["--out", "clip.avi"], "unknown extension '.avi'; allowed: .mp4, .gif"),
    (["--out", "missing/clip.mp4"], "directory 'missing' does not exist"),
    (["--out", "afile/clip.mp4"], "directory 'afile' does not exist"),
    (["--out", "."], "unknown extension"),
    (["--agent", "no/such/run"], "is not a trial's run directory"),
    (["--live"], "--live needs a display, and DISPLAY is not set"),
    (["--size", "1279x720"], "--size must be even numbers"),
    (["--size", "big"], "--size must be WIDTHxHEIGHT"),
    (["--speed", "-1"], "speed must be a finite number >= 0"),
    (["--episodes", "0"], "--episodes must be >= 1"),
    (["--agent", "rule_based"] * 5, "--agent is given 1 to 4 times"),
])
def test_bad_input_is_one_line_exit_2_and_leaves_no_file(tmp_path, args, expected):
    (tmp_path / "afile").write_text("not a directory")
    env = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    result = drivelab("watch", *args, cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["afile"]


def test_ctrl_c_leaves_no_partial_video(tmp_path):
    out = tmp_path / "long.mp4"
    process = subprocess.Popen([sys.executable, "-m", "drivelab.cli", "watch", "--option", "max_episode_s=60",
                                "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=sigint_as_at_a_terminal)
    deadline = time.monotonic() + 120
    while not any(tmp_path.iterdir()) and time.monotonic() < deadline:  # ffmpeg has begun writing
        time.sleep(0.2)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted; no video was written" in stderr
    assert list(tmp_path.iterdir()) == []


def test_the_perceived_dashboard_shows_the_estimate_beside_the_truth(tmp_path):
    import gymnasium as gym

    import drivelab  # noqa: F401
    from drivelab.agents.rule_based import RuleBasedDriver
    from drivelab.perception.model import save_untrained_model
    from drivelab.viewer.dashboard import Dashboard
    from drivelab.viewer.probe import EpisodeProbe

    model = save_untrained_model(tmp_path / "cnn")
    env = gym.make("DriveLab/LaneKeep-v0", observation="perceived", perception_model=str(model), max_episode_s=1)
    probe = EpisodeProbe(RuleBasedDriver.for_env(env), env)
    probe.reset(seed=0)
    observation = probe.observation
    mode = env.unwrapped.observation_mode
    truth_before = mode.last_truth.copy()
    view = probe.step()
    names = env.unwrapped.observation_features
    # The estimate and truth the agent's observation came from, read from perception, not recomputed.
    assert set(view.perceived) == {names[i] for i in mode.estimated_indices}
    for name, value in view.perceived.items():
        assert value == pytest.approx(float(observation[names.index(name)]), abs=1e-6)
        assert view.truth[name] == pytest.approx(float(truth_before[names.index(name)]), abs=1e-6)
    assert view.image is not None and view.image.shape == (84, 84, 3)
    dashboard = Dashboard("rule-based on perceived")
    dashboard.start_episode(env, 0, 1, 0)
    frame = dashboard.draw(view)
    assert_no_blank_panel(frame)
    perception = frame[432 + 28:720 - 2, 320 + 2:640 - 2]
    orange = (np.abs(perception.astype(int) - (255, 140, 60)).max(axis=2) < 40).mean()
    green = (np.abs(perception.astype(int) - (90, 210, 120)).max(axis=2) < 40).mean()
    assert orange > 0.003 and green > 0.003, (orange, green)
    assert panel_contents(frame)["input"] > 0.1  # the camera image fills the input panel
    env.close()


def test_bench_watch_reports_the_dashboard_rate_and_each_panels_cost():
    result = drivelab("bench", "watch", "--seconds", "1.5", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["dashboard_size"] == [1280, 720] and report["threads"] == 1
    assert set(report["panel_ms"]) == {"chase", "map", "input", "perception", "controls", "decision"}
    frame_ms = 1000 / report["dashboard_fps"]
    assert all(ms > 0 for ms in report["panel_ms"].values())
    assert 0.5 * frame_ms < sum(report["panel_ms"].values()) <= frame_ms
    assert report["ratio_vs_pybullet"] == pytest.approx(report["dashboard_fps"] / report["pybullet_chase_fps"])
    assert report["recording_realtime_factor"] == pytest.approx(report["recording_fps"] / 20.0)


def test_agents_that_decide_at_different_rates_stay_at_the_same_simulated_time():
    import gymnasium as gym

    import drivelab  # noqa: F401
    from drivelab.agents.factory import RandomAgent
    from drivelab.agents.rule_based import RuleBasedDriver
    from drivelab.viewer.watch import WatchedAgent, watch

    fast = gym.make("DriveLab/LaneKeep-v0", max_episode_s=1)  # 20 decisions/s
    slow = gym.make("DriveLab/LaneKeep-v0", max_episode_s=1, decision_hz=10)
    frames: list[np.ndarray] = []  # a video sink: VideoFile's interface is append(frame)
    agents = watch([WatchedAgent("fast", RuleBasedDriver.for_env(fast), fast),
                    WatchedAgent("slow", RandomAgent(slow.action_space, 0), slow)], size=(640, 360), video=frames)
    assert len(frames) == 20 + 40  # a frame per step of the faster agent, then 2 s of cards
    assert frames[0].shape == (720, 640, 3)
    assert [a.episodes[0]["episode_time_s"] for a in agents] == [1.0, 1.0]
    # The slow agent's half changes every other frame only: it decided 10 times in the 20 frames.
    slow_changes = sum(np.abs(a[360:].astype(int) - b[360:].astype(int)).mean() > 0 for a, b in zip(frames[:19], frames[1:20]))
    fast_changes = sum(np.abs(a[:360].astype(int) - b[:360].astype(int)).mean() > 0 for a, b in zip(frames[:19], frames[1:20]))
    assert fast_changes == 19 and slow_changes == 9
    fast.close()
    slow.close()


def test_the_highway_on_the_dashboard_shows_the_traffic_and_the_lane_change_plan(tmp_path):
    out = tmp_path / "highway.mp4"
    result = drivelab("watch", "--env", "DriveLab/Highway-v0", "--agent", "rule_based", "--option", "max_episode_s=8",
                      "--option", "density_per_km=30", "--seed", "2", "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    (episode,) = json.loads(result.stdout)["agents"][0]["episodes"]
    assert {"collision", "lane_changes", "headway_violations", "driving_score"} <= set(episode)
    frames = decode(out)
    # A frame per control step (20 a decision at 1 Hz), then the 2 s card: the video plays at 20 frames/s.
    assert len(frames) == 20 * episode["steps"] + 40
    assert_no_blank_panel(frames[30])
    changes = [float(np.abs(a.astype(int) - b.astype(int)).mean()) for a, b in zip(frames[:60], frames[1:61])]
    assert min(changes) > 0.1, changes  # every frame moves, within decisions too
    # The map draws the other vehicles (blue) around the car (red), and the chase view draws them too.
    from drivelab.viewer.dashboard import LAYOUT

    blue = (np.abs(frames[30].astype(int) - (70, 130, 240)).max(axis=2) < 40)
    assert blue[LAYOUT["map"].y:LAYOUT["map"].y + LAYOUT["map"].h, LAYOUT["map"].x:].mean() > 0.001
    assert blue[LAYOUT["chase"].y + 30:LAYOUT["chase"].h, :LAYOUT["chase"].w].mean() > 0.0005
