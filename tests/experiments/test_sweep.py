"""Sweeps: a failed trial does not stop the others, a second run retries only it; the Ray backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SHORT = {"max_episode_s": 5}


def write_config(tmp_path: Path, agents: list[dict], seeds: list[int]) -> Path:
    config = {
        "name": "sweeptest",
        "env": {"id": "DriveLab/LaneKeep-v0", "options": SHORT},
        "agents": agents,
        "seeds": seeds,
        "budget_steps": 256,
        "evaluation": {"every_steps": 256, "episodes": 1},
        "checkpoint_every_steps": 256,
        "tracking": {"wandb": {"mode": "disabled"}, "tensorboard": False},
        "device": "cpu",
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def sweep(config: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "drivelab.cli", "sweep", str(config), "--out", str(out),
                           "--json", *extra], capture_output=True, text=True, timeout=600)


def status(out: Path, agent: str, seed: int) -> dict:
    return json.loads((out / "sweeptest" / agent / f"seed-{seed}" / "status.json").read_text())


def test_a_failing_trial_is_recorded_and_only_it_is_retried(tmp_path):
    agents = [
        {"name": "driver", "algo": "rule_based"},
        {"name": "ppo", "algo": "ppo", "n_envs": 1, "hyperparams": {"n_steps": 128, "batch_size": 64}},
        # PPO refuses a mini-batch of one when it is built: a failure inside the trial, not in the config.
        {"name": "broken", "algo": "ppo", "n_envs": 1, "hyperparams": {"n_steps": 128, "batch_size": 1}},
    ]
    config, out = write_config(tmp_path, agents, seeds=[0, 1]), tmp_path / "runs"

    first = sweep(config, out, "--workers", "2")
    assert first.returncode == 1  # some trial failed
    summary = json.loads(first.stdout)
    assert summary["done"] == 4 and summary["skipped"] == 0
    assert sorted((f["agent"], f["seed"]) for f in summary["failed"]) == [("broken", 0), ("broken", 1)]
    for seed in (0, 1):
        failed = status(out, "broken", seed)
        assert failed["state"] == "failed" and failed["attempts"] == 1
        assert "batch_size" in failed["error"] and "\n" not in failed["error"]
        assert "Traceback" in (out / "sweeptest" / "broken" / f"seed-{seed}" / "error.log").read_text()
        assert status(out, "driver", seed)["state"] == status(out, "ppo", seed)["state"] == "done"
    finished_before = {(agent, seed): (out / "sweeptest" / agent / f"seed-{seed}" / "status.json").stat().st_mtime_ns
                       for agent in ("driver", "ppo") for seed in (0, 1)}

    second = sweep(config, out, "--workers", "2")
    assert second.returncode == 1
    summary = json.loads(second.stdout)
    assert summary["skipped"] == 4 and summary["done"] == 0 and len(summary["failed"]) == 2
    for seed in (0, 1):
        assert status(out, "broken", seed)["attempts"] == 2  # retried
        for agent in ("driver", "ppo"):
            assert status(out, agent, seed)["attempts"] == 1  # not run again
            assert (out / "sweeptest" / agent / f"seed-{seed}" / "status.json").stat().st_mtime_ns == finished_before[(agent, seed)]


def test_ray_backend_runs_trials_as_ray_tasks_into_the_same_layout(tmp_path):
    pytest.importorskip("ray")
    config, out = write_config(tmp_path, [{"name": "driver", "algo": "rule_based"}, {"name": "random", "algo": "random"}],
                               seeds=[0, 1]), tmp_path / "runs"
    result = sweep(config, out, "--backend", "ray")  # no --address: a local Ray, on loopback
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["done"] == 4 and summary["failed"] == []
    for agent in ("driver", "random"):
        for seed in (0, 1):
            trial = status(out, agent, seed)
            assert trial["state"] == "done"
            run_dir = out / "sweeptest" / agent / f"seed-{seed}"
            assert {"config.yaml", "status.json", "evaluations.csv", "evaluation.json"} <= {p.name for p in run_dir.iterdir()}
    again = sweep(config, out, "--backend", "ray")
    assert json.loads(again.stdout)["skipped"] == 4


def test_address_without_ray_backend_is_a_usage_error(tmp_path):
    config = write_config(tmp_path, [{"name": "driver", "algo": "rule_based"}], seeds=[0])
    result = subprocess.run([sys.executable, "-m", "drivelab.cli", "sweep", str(config), "--address", "auto",
                             "--out", str(tmp_path / "runs")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and result.stderr.strip() == "drivelab: --address is for --backend ray"
    assert not (tmp_path / "runs").exists()


def test_one_worker_running_two_tracked_trials_syncs_each_ones_tensorboard_without_warnings(tmp_path):
    """A sweep worker runs trial after trial in one process: each W&B run gets its own trial's SB3 curves
    under SB3's names, and W&B has nothing to warn about (its TensorBoard patch is replaced per trial)."""
    from tests.experiments.wandb_records import offline_runs, read_run

    agents = [{"name": "ppo", "algo": "ppo", "n_envs": 1, "hyperparams": {"n_steps": 128, "batch_size": 64}}]
    config, out = write_config(tmp_path, agents, seeds=[0, 1]), tmp_path / "runs"
    tracked = yaml.safe_load(config.read_text())
    tracked["tracking"] = {"wandb": {"mode": "offline"}, "tensorboard": True}
    config.write_text(yaml.safe_dump(tracked))
    result = sweep(config, out, "--workers", "1")
    assert result.returncode == 0, result.stderr
    assert "event log directories" not in result.stderr and "wandb: WARNING" not in result.stderr
    for seed in (0, 1):
        runs = offline_runs(out / "sweeptest" / "ppo" / f"seed-{seed}")
        assert len(runs) == 1
        history = read_run(runs[0])["history"]
        assert any("train/value_loss" in row for row in history)
        assert not any(key.startswith("train_0/") for row in history for key in row)
