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
                 episodes: int = 2, wandb_mode: str = "offline") -> Path:
    config = {
        "name": "trialtest",
        "env": {"id": "DriveLab/LaneKeep-v0", "options": SHORT_EPISODES},
        "agents": agents,
        "seeds": [0],
        "budget_steps": budget,
        "evaluation": {"every_steps": every_eval, "episodes": episodes},
        "checkpoint_every_steps": every_checkpoint,
        "tracking": {"wandb": {"mode": wandb_mode}, "tensorboard": True},
        "device": "cpu",
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def drivelab(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "drivelab.experiments.cli", *args], capture_output=True, text=True,
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
    command = [sys.executable, "-m", "drivelab.experiments.cli", "train", str(config), "--out", str(tmp_path / "runs")]
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
