"""One trial end to end: the run directory, the offline W&B run read back, and kill-and-resume."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.experiments.wandb_records import offline_runs, read_run

SHORT_EPISODES = {"max_episode_s": 15}  # evaluation episodes stay short in tests


def write_config(tmp_path: Path, agents: list[dict], budget: int, every_eval: int, every_checkpoint: int,
                 episodes: int = 2, wandb_mode: str = "offline", options: dict | None = None,
                 video_every: int | None = None, tensorboard: bool = True) -> Path:
    evaluation = {"every_steps": every_eval, "episodes": episodes}
    if video_every is not None:
        evaluation["video_every_steps"] = video_every
    config = {
        "name": "trialtest",
        "env": {"id": "DriveLab/LaneKeep-v0", "options": SHORT_EPISODES if options is None else options},
        "agents": agents,
        "seeds": [0],
        "budget_steps": budget,
        "evaluation": evaluation,
        "checkpoint_every_steps": every_checkpoint,
        "tracking": {"wandb": {"mode": wandb_mode}, "tensorboard": tensorboard},
        "device": "cpu",
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def drivelab(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "drivelab.cli", *args], capture_output=True, text=True,
                          timeout=timeout)


def evaluation_steps(run_dir: Path) -> list[int]:
    with (run_dir / "evaluations.csv").open() as stream:
        return [int(row["env_steps"]) for row in csv.DictReader(stream)]


def test_ppo_trial_fills_its_run_directory_and_its_wandb_run(tmp_path):
    config = write_config(tmp_path, [{"name": "ppo", "algo": "ppo", "n_envs": 2, "hyperparams": {"n_steps": 128, "batch_size": 128}}],
                          budget=1024, every_eval=512, every_checkpoint=512)
    result = drivelab("train", str(config), "--out", str(tmp_path / "runs"), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    run_dir = tmp_path / "runs" / "trialtest" / "ppo" / "seed-0"
    assert Path(report["run_dir"]) == run_dir
    assert report["state"] == "done" and report["env_steps"] == 1024 and report["attempts"] == 1

    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resolved["hyperparams"]["n_steps"] == 128 and resolved["preset"] == "ppo-steer"
    assert sorted(set(evaluation_steps(run_dir))) == [0, 512, 1024]
    assert len(evaluation_steps(run_dir)) == 3 * 2  # 2 episodes per evaluation
    final = json.loads((run_dir / "evaluation.json").read_text())
    assert final["env_steps"] == 1024 and 0.0 <= final["route_completion"] <= 1.0
    assert json.loads((run_dir / "checkpoints" / "latest.json").read_text())["env_steps"] == 1024
    assert list((run_dir / "tensorboard").rglob("events.out.tfevents.*"))

    from stable_baselines3 import PPO

    model = PPO.load(run_dir / "model.zip", device="cpu")  # our own file
    assert model.num_timesteps == 1024

    # The saved agent loads back for evaluation (and viewing, with --render human) like any agent.
    driven = drivelab("drive", "--agent", str(run_dir), "--episodes", "1", "--seed", "1000000", "--json")
    assert driven.returncode == 0, driven.stderr
    drive_report = json.loads(driven.stdout)
    assert drive_report["agent"] == str(run_dir) and drive_report["action"] == "steer"
    assert 0.0 <= drive_report["episodes"][0]["route_completion"] <= 1.0
    again = drivelab("train", str(config), "--out", str(tmp_path / "runs"))
    assert again.returncode == 0 and "ppo seed 0 is already done" in again.stderr
    assert json.loads((run_dir / "status.json").read_text())["attempts"] == 1  # not trained again
    refused = drivelab("drive", "--agent", str(run_dir), "--action", "direct")
    assert refused.returncode == 2 and "was trained with action 'steer'" in refused.stderr

    runs = offline_runs(run_dir)
    assert len(runs) == 1
    wandb_run = read_run(runs[0])
    assert wandb_run["run"]["group"] == "trialtest" and wandb_run["run"]["job_type"] == "ppo"
    assert {"ppo", "DriveLab/LaneKeep-v0", "seed-0"} <= set(wandb_run["run"]["tags"])
    assert wandb_run["config"]["budget_steps"] == 1024 and wandb_run["config"]["hyperparams"]["batch_size"] == 128
    eval_rows = [row for row in wandb_run["history"] if "eval/route_completion" in row]
    assert [row["global_step"] for row in eval_rows] == [0, 512, 1024]
    assert any("train/value_loss" in row for row in wandb_run["history"])  # SB3's curves, via TensorBoard sync
    assert wandb_run["summary"]["final/route_completion"] == pytest.approx(final["route_completion"])
    assert {"name": "trialtest-ppo-seed0", "type": "model"} in wandb_run["artifacts"]
    assert wandb_run["exit_code"] == 0


def test_the_final_evaluation_drives_the_saved_model(tmp_path):
    """DQN trains after the callbacks of the step that ends its budget, so an evaluation made by the callback
    at that step drove the model one gradient step before model.zip. The final evaluation is made after
    ``learn``: driving model.zip on the evaluation tracks gives the recorded returns exactly. (A learning rate
    of 0.01 and an update every step make that last gradient step change the drive.)"""
    agent = {"name": "dqn", "algo": "dqn",
             "hyperparams": {"learning_starts": 100, "train_freq": 1, "learning_rate": 0.01, "buffer_size": 5000}}
    config = write_config(tmp_path, [agent], budget=600, every_eval=300, every_checkpoint=300, wandb_mode="disabled")
    result = drivelab("train", str(config), "--out", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "runs" / "trialtest" / "dqn" / "seed-0"
    assert evaluation_steps(run_dir) == [0, 0, 300, 300, 600, 600]
    with (run_dir / "evaluations.csv").open() as stream:
        recorded = [float(row["return"]) for row in csv.DictReader(stream) if row["env_steps"] == "600"]

    driven = drivelab("drive", "--agent", str(run_dir), "--episodes", "2", "--seed", "1000000",
                      "--first-track-seed", "1000000", "--json")
    assert driven.returncode == 0, driven.stderr
    assert [episode["return"] for episode in json.loads(driven.stdout)["episodes"]] == pytest.approx(recorded, rel=1e-12)


def test_rule_based_trial_is_evaluated_once_and_recorded_at_zero_and_the_budget(tmp_path):
    config = write_config(tmp_path, [{"name": "driver", "algo": "rule_based"}], budget=5000, every_eval=1000,
                          every_checkpoint=1000, wandb_mode="disabled")
    result = drivelab("train", str(config), "--out", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    run_dir = tmp_path / "runs" / "trialtest" / "driver" / "seed-0"
    assert evaluation_steps(run_dir) == [0, 0, 5000, 5000]
    final = json.loads((run_dir / "evaluation.json").read_text())
    # 15 s of driving from rest at 10 m/s is about a third of a 400 m lap, all of it on the road.
    assert final["off_road_rate"] == 0.0 and 0.25 < final["route_completion"] < 0.4
    assert not (run_dir / "wandb").exists()
    assert "off road 0%" in result.stdout


def test_sigkilled_training_resumes_from_its_last_checkpoint(tmp_path):
    agent = {"name": "dqn", "algo": "dqn", "hyperparams": {"learning_starts": 200, "buffer_size": 20000}}
    config = write_config(tmp_path, [agent], budget=5000, every_eval=2500, every_checkpoint=1000, episodes=1)
    run_dir = tmp_path / "runs" / "trialtest" / "dqn" / "seed-0"
    command = [sys.executable, "-m", "drivelab.cli", "train", str(config), "--out", str(tmp_path / "runs")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = run_dir / "checkpoints" / "latest.json"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            if latest.is_file() and json.loads(latest.read_text())["env_steps"] >= 2000:
                break
            assert process.poll() is None, "training ended before it could be killed"
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint at 2000 steps within 240 s")
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    killed_at = json.loads(latest.read_text())["env_steps"]
    assert json.loads((run_dir / "status.json").read_text())["state"] == "running"
    assert killed_at < 5000
    # The killed owner's record stays behind: its pid is dead and its lock released, so it is taken over.
    assert json.loads((run_dir / "owner.json").read_text())["pid"] == process.pid

    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert f"resuming dqn seed 0 from its checkpoint at {killed_at} env steps" in result.stderr
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "done" and status["attempts"] == 2
    assert status["resumed_from_env_steps"] == killed_at and status["env_steps"] == 5000
    assert not (run_dir / "owner.json").exists()
    # The replay buffer came back too: every transition but the one in flight when the checkpoint
    # was written (SB3 calls callbacks before it stores the step's transition).
    assert status["replay_buffer_size_at_resume"] == killed_at - 1
    steps = evaluation_steps(run_dir)
    assert steps == sorted(steps) and sorted(set(steps)) == [0, 2500, 5000]  # no evaluation twice
    # The same W&B run id is resumed, not a second run started (each attempt leaves an offline
    # directory; `wandb sync` merges them into one run). The killed attempt may not have flushed
    # its run record, so the id is read from the log files' names, run-<id>.wandb.
    logs = offline_runs(run_dir)
    assert len(logs) == 2
    run_id = (run_dir / "wandb_run_id.txt").read_text().strip()
    assert {path.name for path in logs} == {f"run-{run_id}.wandb"}
    resumed = read_run(logs[-1])
    assert resumed["run"]["id"] == run_id and resumed["exit_code"] == 0
    resumed_evaluations = [row["global_step"] for row in resumed["history"] if "eval/route_completion" in row]
    assert resumed_evaluations == [step for step in (2500, 5000) if step > killed_at]


def test_rerun_with_a_changed_config_is_refused(tmp_path):
    config = write_config(tmp_path, [{"name": "driver", "algo": "rule_based"}], budget=100, every_eval=100,
                          every_checkpoint=100, episodes=1, wandb_mode="disabled")
    assert drivelab("train", str(config), "--out", str(tmp_path / "runs")).returncode == 0
    changed = yaml.safe_load(config.read_text())
    changed["budget_steps"] = 200
    config.write_text(yaml.safe_dump(changed))
    result = drivelab("train", str(config), "--out", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert "holds a trial with a different config" in result.stderr


def evaluation_rows(run_dir: Path) -> list[dict]:
    with (run_dir / "evaluations.csv").open() as stream:
        return list(csv.DictReader(stream))


def video_names(run_dir: Path) -> list[str]:
    """Everything in videos/, hidden files (a partial video) included."""
    return sorted(path.name for path in (run_dir / "videos").iterdir())


def wandb_videos(run_dir: Path) -> list[tuple[int, dict, Path]]:
    """(env steps, the eval/video record, the media file it refers to) of every video in the trial's offline runs."""
    found = []
    for log in offline_runs(run_dir):
        run = read_run(log)
        for row in run["history"]:
            if "eval/video" in row:
                assert row["eval/video"]["path"] in run["files"]  # saved with the run
                found.append((row["global_step"], row["eval/video"], log.parent / "files" / row["eval/video"]["path"]))
    return found


def test_evaluation_videos_are_filmed_past_each_multiple_survive_a_stop_and_reach_wandb_and_compare(tmp_path):
    import hashlib

    import imageio.v2 as imageio

    from drivelab.experiments.compare import compare
    from drivelab.experiments.interruption import EXIT_INTERRUPTED
    from drivelab.viewer.watch import CARD_S

    agents = [{"name": "ppo", "algo": "ppo", "n_envs": 2, "hyperparams": {"n_steps": 64, "batch_size": 128}},
              {"name": "driver", "algo": "rule_based"}]
    # Evaluations at 0, 192, 384 and 512 (the end); videos at the first evaluation at or after 0, 256, 512.
    config = write_config(tmp_path, agents, budget=512, every_eval=192, every_checkpoint=1_000_000, episodes=1,
                          options={"max_episode_s": 3}, video_every=256, tensorboard=False)
    runs = tmp_path / "runs"
    run_dir = runs / "trialtest" / "ppo" / "seed-0"
    command = [sys.executable, "-m", "drivelab.cli", "train", str(config), "--agent", "ppo", "--out", str(runs)]

    # Ctrl-C while the video at 384 steps is being filmed: the episode stops there and no video is left of it.
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while not list((run_dir / "videos").glob(".eval_00000384.partial-*")):
            assert process.poll() is None, f"ended before the video at 384 steps: {process.communicate()}"
            assert time.monotonic() < deadline, "no video at 384 steps within 240 s"
            time.sleep(0.02)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert json.loads((run_dir / "status.json").read_text())["state"] == "interrupted"
    # the step-0 video, and the one at 384 only if the stop came after its episode, while its card was written
    assert video_names(run_dir) in (["eval_00000000.mp4"], ["eval_00000000.mp4", "eval_00000384.mp4"])
    first_video = (run_dir / "videos" / "eval_00000000.mp4").read_bytes()

    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "done" and status["attempts"] == 2 and status["env_steps"] == 512
    assert evaluation_steps(run_dir) == [0, 192, 384, 512]
    assert video_names(run_dir) == ["eval_00000000.mp4", "eval_00000384.mp4", "eval_00000512.mp4"]
    assert status["videos"] == video_names(run_dir)
    assert (run_dir / "videos" / "eval_00000000.mp4").read_bytes() == first_video  # not filmed again

    # The episode is the evaluation's first: as many frames as its steps, then the card; the default size.
    episode = next(row for row in evaluation_rows(run_dir) if row["env_steps"] == "384" and row["episode"] == "0")
    with imageio.get_reader(run_dir / "videos" / "eval_00000384.mp4") as reader:
        shapes = [frame.shape for frame in reader]
    assert len(shapes) == int(episode["episode_length"]) + round(CARD_S * 20)
    assert set(shapes) == {(720, 1280, 3)}

    # W&B: each video once over both attempts, as eval/video at its env steps, the media file saved with the run.
    logged = wandb_videos(run_dir)
    assert sorted(steps for steps, _, _ in logged) == [0, 384, 512]
    for steps, record, media in logged:
        assert record["_type"] == "video-file" and media.is_file()
        assert hashlib.sha256(media.read_bytes()).hexdigest() == record["sha256"]
        assert media.read_bytes() == (run_dir / "videos" / f"eval_{steps:08d}.mp4").read_bytes()
    caption = next(record["caption"] for steps, record, _ in logged if steps == 384)
    assert f"route completion {float(episode['route_completion']):.3f}" in caption

    # A scripted agent is evaluated once, for step 0 and the budget: one video, named by the budget.
    driver = subprocess.run(command[:-4] + ["--agent", "driver", "--out", str(runs)], capture_output=True, text=True,
                            timeout=600)
    assert driver.returncode == 0, driver.stderr
    driver_dir = runs / "trialtest" / "driver" / "seed-0"
    assert video_names(driver_dir) == ["eval_00000512.mp4"]
    assert [steps for steps, _, _ in wandb_videos(driver_dir)] == [512]

    # compare links each agent's last video, relative to the report.
    result = compare([runs], tmp_path / "comparison", bootstrap_reps=50)
    assert result["videos"] == {"driver": "../runs/trialtest/driver/seed-0/videos/eval_00000512.mp4",
                                "ppo": "../runs/trialtest/ppo/seed-0/videos/eval_00000512.mp4"}
    report = Path(result["report"]).read_text()
    assert "- ppo: [seed 0, 512 env steps](../runs/trialtest/ppo/seed-0/videos/eval_00000512.mp4)" in report


def test_write_atomic_gives_the_umasks_permissions_and_on_an_error_keeps_the_old_file_and_no_temporary(tmp_path):
    from drivelab.experiments.trial import write_atomic

    path = tmp_path / "status.json"
    umask = os.umask(0o027)
    try:
        write_atomic(path, "old\n")
        write_atomic(path, b"new\n")
    finally:
        os.umask(umask)
    assert path.read_text() == "new\n" and path.stat().st_mode & 0o777 == 0o640  # not mkstemp's private 0o600
    with pytest.raises(TypeError):
        write_atomic(path, 12345)  # fails mid-write
    assert path.read_text() == "new\n" and [p.name for p in tmp_path.iterdir()] == ["status.json"]
