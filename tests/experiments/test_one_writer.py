"""One writer per trial, as users meet it: two `drivelab train` on one trial, two sweeps on one --out."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.experiments.wandb_records import offline_runs

SHORT_EPISODES = {"max_episode_s": 5}
PYBULLET_BANNER = "pybullet build time:"  # printed on stderr when PyBullet is imported


def drivelab_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "drivelab.cli", *args]


def stderr_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith(PYBULLET_BANNER)]


def evaluation_rows(run_dir: Path) -> list[tuple[int, int]]:
    with (run_dir / "evaluations.csv").open() as stream:
        return [(int(row["env_steps"]), int(row["episode"])) for row in csv.DictReader(stream)]


def wait_for(condition, deadline_s: float, what: str) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {deadline_s} s"
        time.sleep(0.01)


def owner_pid(run_dir: Path) -> int | None:
    try:
        return json.loads((run_dir / "owner.json").read_text())["pid"]
    except (FileNotFoundError, ValueError, KeyError):
        return None


def test_two_trains_on_one_trial_one_trains_the_other_is_refused_naming_the_owner(tmp_path):
    config = {
        "name": "onewriter", "env": {"id": "DriveLab/LaneKeep-v0", "options": SHORT_EPISODES},
        "agents": [{"name": "ppo", "algo": "ppo", "n_envs": 2, "hyperparams": {"n_steps": 128, "batch_size": 128}}],
        "seeds": [0], "budget_steps": 1024, "evaluation": {"every_steps": 512, "episodes": 2},
        "checkpoint_every_steps": 512, "tracking": {"wandb": {"mode": "offline"}, "tensorboard": False}, "device": "cpu",
    }
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    run_dir = tmp_path / "runs" / "onewriter" / "ppo" / "seed-0"
    command = drivelab_command("train", str(config_path), "--out", str(tmp_path / "runs"))
    outputs = [(tmp_path / f"out-{index}", tmp_path / f"err-{index}") for index in range(2)]
    processes = [subprocess.Popen(command, stdout=out.open("w"), stderr=err.open("w")) for out, err in outputs]
    by_pid = {process.pid: index for index, process in enumerate(processes)}
    try:
        wait_for(lambda: owner_pid(run_dir) in by_pid, 180, "neither process took the trial")
        # Hold the owner still until the other has answered, however the two were scheduled: the
        # other must find the trial owned, not finished.
        winner = by_pid[owner_pid(run_dir)]
        loser = 1 - winner
        os.kill(processes[winner].pid, signal.SIGSTOP)
        try:
            assert processes[loser].wait(timeout=180) == 2
        finally:
            os.kill(processes[winner].pid, signal.SIGCONT)
        assert processes[winner].wait(timeout=300) == 0, outputs[winner][1].read_text()
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    refusal = stderr_lines(outputs[loser][1].read_text())
    assert len(refusal) == 1, refusal
    assert refusal[0].startswith(f"drivelab: {run_dir} is being run by pid {processes[winner].pid} "
                                 f"on host {socket.gethostname()} (heartbeat ")
    assert " s ago)" in refusal[0] and outputs[loser][0].read_text() == ""
    # The run directory is what one clean run leaves.
    status = json.loads((run_dir / "status.json").read_text())
    assert status["state"] == "done" and status["attempts"] == 1 and status["pid"] == processes[winner].pid
    assert evaluation_rows(run_dir) == [(steps, episode) for steps in (0, 512, 1024) for episode in (0, 1)]
    assert len(offline_runs(run_dir)) == 1
    assert not (run_dir / "owner.json").exists()


PPO_AND_DRIVER = [{"name": "ppo", "algo": "ppo", "n_envs": 1, "hyperparams": {"n_steps": 64, "batch_size": 64}},
                  {"name": "driver", "algo": "rule_based"}]


def write_sweep_config(tmp_path: Path, agents: list[dict] = PPO_AND_DRIVER) -> Path:
    config = {
        "name": "twosweeps", "env": {"id": "DriveLab/LaneKeep-v0", "options": SHORT_EPISODES}, "agents": agents,
        "seeds": [0, 1], "budget_steps": 256, "evaluation": {"every_steps": 128, "episodes": 1},
        "checkpoint_every_steps": 128, "tracking": {"wandb": {"mode": "disabled"}, "tensorboard": False}, "device": "cpu",
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_two_sweeps_started_at_once_run_every_trial_exactly_once(tmp_path):
    config, out = write_sweep_config(tmp_path), tmp_path / "runs"
    command = drivelab_command("sweep", str(config), "--out", str(out), "--workers", "2", "--json")
    sweeps = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [sweep.communicate(timeout=600) for sweep in sweeps]
    summaries = []
    for sweep, (stdout, stderr) in zip(sweeps, results):
        assert sweep.returncode == 0, stderr
        summary = json.loads(stdout)
        assert summary["failed"] == []
        assert summary["done"] + summary["skipped"] + len(summary["running_elsewhere"]) == summary["trials"] == 4
        for elsewhere in summary["running_elsewhere"]:
            assert f"on host {socket.gethostname()}" in elsewhere["owner"]
        summaries.append(summary)
    assert summaries[0]["done"] + summaries[1]["done"] == 4  # each trial run by one of the two
    expected_rows = {"ppo": [(steps, 0) for steps in (0, 128, 256)], "driver": [(0, 0), (256, 0)]}
    for agent, rows in expected_rows.items():
        for seed in (0, 1):
            run_dir = out / "twosweeps" / agent / f"seed-{seed}"
            status = json.loads((run_dir / "status.json").read_text())
            assert status["state"] == "done" and status["attempts"] == 1, (agent, seed, status)
            assert evaluation_rows(run_dir) == rows


def test_a_sweep_leaves_a_trial_that_another_host_runs_alone_until_its_heartbeat_is_stale(tmp_path):
    config, out = write_sweep_config(tmp_path, [{"name": "driver", "algo": "rule_based"}]), tmp_path / "runs"
    owned = out / "twosweeps" / "driver" / "seed-0"
    owned.mkdir(parents=True)
    record = {"host": "another-host.example", "pid": 4242, "started": time.time() - 60,
              "heartbeat": time.time() - 30, "token": "0123456789abcdef"}
    (owned / "owner.json").write_text(json.dumps(record))
    command = drivelab_command("sweep", str(config), "--out", str(out), "--workers", "1")

    first = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr  # nothing failed
    lines = stderr_lines(first.stderr)
    elsewhere = [re.fullmatch(r"running elsewhere  driver seed 0: pid 4242 on host another-host\.example "
                              r"\(heartbeat (\d+) s ago\)", line) for line in lines]
    assert [int(match.group(1)) >= 30 for match in elsewhere if match] == [True], lines
    assert "             done  driver seed 1" in lines
    assert first.stdout.startswith("1 trials run, 0 already done, 1 running elsewhere, 0 failed")
    assert {path.name for path in owned.iterdir()} <= {"owner.json", "owner.lock"}  # nothing written there

    # Under a 10 s limit the 30 s old heartbeat is a dead owner's: taken over and run.
    second = subprocess.run(command + ["--json"], capture_output=True, text=True, timeout=300,
                            env={**os.environ, "DRIVELAB_OWNER_STALE_S": "10"})
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout)
    assert (summary["done"], summary["skipped"], summary["running_elsewhere"]) == (1, 1, [])
    status = json.loads((owned / "status.json").read_text())
    assert status["state"] == "done" and status["attempts"] == 1
    assert not (owned / "owner.json").exists()
