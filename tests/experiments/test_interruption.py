"""Ctrl-C and SIGTERM stop `drivelab sweep` and `drivelab train` cleanly: one line, exit status 130,
the trial `interrupted` with a checkpoint where it stopped, and the same command finishes it."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from drivelab.experiments.interruption import EXIT_INTERRUPTED, INTERRUPTED_LINE
from tests.experiments.wandb_records import offline_runs, read_run

SHORT_EPISODES = {"max_episode_s": 5}
PYBULLET_BANNER = "pybullet build time:"  # printed on stderr when PyBullet is imported, long before any signal
NO_PERIODIC_CHECKPOINT = 1_000_000  # so that a checkpoint can only be the one written on the stop


def write_config(tmp_path: Path, agents: list[dict], budget: int, every_eval: int, wandb_mode: str) -> Path:
    config = {
        "name": "stoptest", "env": {"id": "DriveLab/LaneKeep-v0", "options": SHORT_EPISODES}, "agents": agents,
        "seeds": [0], "budget_steps": budget, "evaluation": {"every_steps": every_eval, "episodes": 1},
        "checkpoint_every_steps": NO_PERIODIC_CHECKPOINT, "tracking": {"wandb": {"mode": wandb_mode}, "tensorboard": False},
        "device": "cpu",
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def evaluated_steps(run_dir: Path) -> list[int]:
    path = run_dir / "evaluations.csv"
    if not path.is_file():
        return []
    with path.open() as stream:
        return [int(row["env_steps"]) for row in csv.DictReader(stream)]


def start_and_signal_once_evaluated(command: list[str], run_dir: Path, at_steps: int, send) -> subprocess.CompletedProcess:
    """Start ``command`` in its own session, call ``send(process)`` once an evaluation at ``at_steps``
    or later is recorded (the trial is training), and return what it printed and its exit status."""
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 240
    try:
        while not any(steps >= at_steps for steps in evaluated_steps(run_dir)):
            assert process.poll() is None, f"ended before it could be signalled: {process.communicate()}"
            assert time.monotonic() < deadline, f"no evaluation at {at_steps} steps within 240 s"
            time.sleep(0.05)
        send(process)
        stdout, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def assert_stopped_cleanly(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == EXIT_INTERRUPTED, result.stderr
    assert result.stdout == ""
    assert [line for line in result.stderr.splitlines() if not line.startswith(PYBULLET_BANNER)] == [INTERRUPTED_LINE]


def test_ctrl_c_on_a_sweep_marks_its_trials_interrupted_and_the_same_command_finishes_them(tmp_path):
    agents = [{"name": "dqn", "algo": "dqn", "hyperparams": {"learning_starts": 200, "buffer_size": 20000}},
              # finishes at once: its worker is idle when the Ctrl-C comes, and must stay quiet too
              {"name": "driver", "algo": "rule_based"}]
    config = write_config(tmp_path, agents, budget=2500, every_eval=500, wandb_mode="offline")
    run_dir = tmp_path / "runs" / "stoptest" / "dqn" / "seed-0"
    command = [sys.executable, "-m", "drivelab.cli", "sweep", str(config), "--out", str(tmp_path / "runs"),
               "--workers", "2", "--json"]

    # The whole process group, as a terminal's Ctrl-C: the sweep and its workers.
    result = start_and_signal_once_evaluated(command, run_dir, 500, lambda process: os.killpg(process.pid, signal.SIGINT))

    assert_stopped_cleanly(result)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "interrupted" and status["error"] is None and status["attempts"] == 1
    stopped_at = status["checkpoint_env_steps"]
    # Written on the stop (there are no periodic ones), on DQN's train_freq grid of 4 steps.
    assert 500 <= stopped_at < 2500 and stopped_at % 4 == 0
    assert json.loads((run_dir / "checkpoints" / "latest.json").read_text())["env_steps"] == stopped_at
    assert not (run_dir / "owner.json").exists()

    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["done"] + summary["skipped"] == 2 and summary["failed"] == []
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "done" and status["attempts"] == 2
    assert status["resumed_from_env_steps"] == stopped_at and status["env_steps"] == 2500
    assert status["replay_buffer_size_at_resume"] == stopped_at - 1  # all but the step the stop cut off
    assert evaluated_steps(run_dir) == [0, 500, 1000, 1500, 2000, 2500]  # each once, none lost
    # The rerun resumed the interrupted W&B run: one id, the first attempt closed with exit code 130.
    runs = offline_runs(run_dir)
    run_id = (run_dir / "wandb_run_id.txt").read_text().strip()
    assert len(runs) == 2 and {path.name for path in runs} == {f"run-{run_id}.wandb"}
    assert [read_run(path)["exit_code"] for path in runs] == [EXIT_INTERRUPTED, 0]


def test_sigterm_on_train_checkpoints_ppo_at_its_last_update_and_the_rerun_ends_on_the_budget(tmp_path):
    agents = [{"name": "ppo", "algo": "ppo", "n_envs": 2, "hyperparams": {"n_steps": 64, "batch_size": 128}}]
    config = write_config(tmp_path, agents, budget=2560, every_eval=512, wandb_mode="disabled")
    run_dir = tmp_path / "runs" / "stoptest" / "ppo" / "seed-0"
    command = [sys.executable, "-m", "drivelab.cli", "train", str(config), "--out", str(tmp_path / "runs")]

    # The process alone, as a scheduler sends it.
    result = start_and_signal_once_evaluated(command, run_dir, 512, lambda process: process.send_signal(signal.SIGTERM))

    assert_stopped_cleanly(result)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "interrupted" and status["attempts"] == 1
    stopped_at = status["checkpoint_env_steps"]
    # PPO learns once per rollout (64 steps x 2 envs): the steps of the unfinished rollout taught the
    # model nothing, so the checkpoint stands at the rollout's start.
    assert 512 <= stopped_at < 2560 and stopped_at % 128 == 0
    first_attempt_s = status["wall_time_s"]

    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"resuming ppo seed 0 from its checkpoint at {stopped_at} env steps" in again.stderr
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "done" and status["attempts"] == 2 and status["env_steps"] == 2560
    assert evaluated_steps(run_dir) == [0, 512, 1024, 1536, 2048, 2560]
    # Evaluations are timed on the trial's clock: the resumed command's go on from the first one's time.
    with (run_dir / "evaluations.csv").open() as stream:
        timed = [(int(row["env_steps"]), float(row["wall_time_s"])) for row in csv.DictReader(stream)]
    assert [seconds for _, seconds in timed] == sorted(seconds for _, seconds in timed), timed
    # The final evaluation ends the trial: its time is the trial's whole time (both commands) but a moment.
    assert 0 <= status["wall_time_s"] - timed[-1][1] < first_attempt_s / 2, (first_attempt_s, status["wall_time_s"], timed)


def test_sigterm_to_the_sweep_process_alone_reaches_its_workers(tmp_path):
    agents = [{"name": "ppo", "algo": "ppo", "n_envs": 2, "hyperparams": {"n_steps": 64, "batch_size": 128}}]
    config = write_config(tmp_path, agents, budget=3072, every_eval=512, wandb_mode="disabled")
    run_dir = tmp_path / "runs" / "stoptest" / "ppo" / "seed-0"
    command = [sys.executable, "-m", "drivelab.cli", "sweep", str(config), "--out", str(tmp_path / "runs"),
               "--workers", "1"]

    # As a scheduler sends it: to the sweep's process, not to its process group.
    result = start_and_signal_once_evaluated(command, run_dir, 512, lambda process: process.send_signal(signal.SIGTERM))

    assert_stopped_cleanly(result)
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "interrupted" and 512 <= status["checkpoint_env_steps"] < 3072


def test_a_dqn_checkpointed_without_its_replay_buffer_refills_it_before_learning_again(tmp_path):
    agents = [{"name": "dqn", "algo": "dqn", "hyperparams": {"learning_starts": 200, "buffer_size": 20000}}]
    config = write_config(tmp_path, agents, budget=1500, every_eval=500, wandb_mode="disabled")
    config.write_text(config.read_text() + "checkpoint_replay_buffer: false\n")
    run_dir = tmp_path / "runs" / "stoptest" / "dqn" / "seed-0"
    command = [sys.executable, "-m", "drivelab.cli", "train", str(config), "--out", str(tmp_path / "runs")]

    assert_stopped_cleanly(start_and_signal_once_evaluated(command, run_dir, 500, lambda p: p.send_signal(signal.SIGINT)))
    stopped_at = json.loads((run_dir / "status.json").read_text())["checkpoint_env_steps"]
    (checkpoint,) = (run_dir / "checkpoints").glob("step-*")
    assert sorted(path.name for path in checkpoint.iterdir()) == ["model.zip", "state.json"]  # no replay_buffer.pkl
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["checkpoint_replay_buffer"] is False

    again = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "done" and status["env_steps"] == 1500
    # An empty buffer at the resume, and no update until it holds learning_starts (200) transitions again.
    assert status["replay_buffer_size_at_resume"] == 0
    assert status["learning_resumes_at_env_steps"] == stopped_at + 200
    from stable_baselines3 import DQN

    model = DQN.load(run_dir / "model.zip", device="cpu")
    # One gradient step per rollout of 4 env steps past learning_starts (train_freq 4, gradient_steps 1): up to
    # the rollout the stop cut short (not trained), then none for the refill's 200 steps. Without the
    # refill, the (stopped_at + 200 - stopped_at) / 4 = 50 updates it skipped would be there.
    updates_before_stop = (stopped_at - 4 - 200) // 4
    assert model._n_updates == updates_before_stop + (1500 - (stopped_at + 200)) // 4, (model._n_updates, stopped_at)
