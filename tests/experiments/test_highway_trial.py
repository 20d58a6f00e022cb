"""DriveLab/Highway-v0 through the experiment layer: a smoke sweep of DQN, PPO and the rule-based driver
records the traffic metrics, compare ranks by them, and drive runs the highway's rule-based driver."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from tests.experiments.test_trial import drivelab

SMOKE = {
    "name": "highway_smoke",
    "env": {"id": "DriveLab/Highway-v0", "options": {"density_per_km": 20.0, "route_length_m": 150.0, "max_episode_s": 8.0}},
    "agents": [
        {"name": "dqn", "algo": "dqn", "hyperparams": {"learning_starts": 16, "buffer_size": 500}},
        {"name": "ppo", "algo": "ppo", "n_envs": 2, "hyperparams": {"n_steps": 16, "batch_size": 16, "n_epochs": 1}},
        {"name": "rule_based", "algo": "rule_based"},
    ],
    "seeds": [0],
    "budget_steps": 32,
    "evaluation": {"every_steps": 32, "episodes": 2},
    "checkpoint_every_steps": 32,
    "tracking": {"wandb": {"mode": "disabled"}, "tensorboard": False},
    "device": "cpu",
}


def test_a_highway_sweep_records_the_traffic_metrics_and_compare_ranks_by_them(tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(SMOKE))
    out = tmp_path / "runs"
    swept = drivelab("sweep", str(config), "--out", str(out), "--workers", "2", "--json")
    assert swept.returncode == 0, swept.stderr
    assert json.loads(swept.stdout)["done"] == 3
    for agent in ("dqn", "ppo", "rule_based"):
        run_dir = out / "highway_smoke" / agent / "seed-0"
        trial = yaml.safe_load((run_dir / "config.yaml").read_text())
        assert trial["action"] == "meta" and trial.get("preset") in (None, f"{agent}-meta")
        with (run_dir / "evaluations.csv").open() as stream:
            rows = list(csv.DictReader(stream))
        assert {"collision", "lane_changes", "headway_violations", "driving_score"} <= set(rows[0])
        for row in rows:
            assert row["collision"] in ("0", "1") and 0.0 <= float(row["driving_score"]) <= float(row["route_completion"])
            assert int(row["track_seed"]) >= 1_000_000  # held-out roads and traffic
        status = json.loads((run_dir / "status.json").read_text())
        assert 0.0 <= status["final"]["collision_rate"] <= 1.0 and "driving_score" in status["final"]
    for metric in ("collision", "driving_score", "mean_speed"):
        compared = drivelab("compare", str(out / "highway_smoke"), "--metric", metric, "--json", "--out", str(tmp_path / metric))
        assert compared.returncode == 0, compared.stderr
        result = json.loads(compared.stdout)
        assert result["metric"] == metric and {a["agent"] for a in result["agents"]} == {"dqn", "ppo", "rule_based"}
        for agent in result["agents"]:  # the traffic's own columns, from the last evaluation
            assert 0.0 <= agent["collision_rate"] <= 1.0 and agent["mean_speed"] > 0 and 0.0 <= agent["driving_score"] <= 1.0
        report = Path(result["report"]).read_text()
        assert "| collision-free | mean speed (m/s) | driving score |" in report and "lateral RMS" not in report
    # watch: the trained DQN beside the rule-based driver, which drives the run's highway (no --env needed).
    video = tmp_path / "highway.mp4"
    watched = drivelab("watch", "--agent", "rule_based", "--agent", str(out / "highway_smoke" / "dqn" / "seed-0"),
                       "--option", "max_episode_s=2", "--out", str(video), "--json")
    assert watched.returncode == 0, watched.stderr
    rule, dqn = json.loads(watched.stdout)["agents"]
    assert rule["label"].startswith("rule-based highway driver") and dqn["label"].startswith("dqn from")
    for agent in (rule, dqn):
        (episode,) = agent["episodes"]
        assert "driving_score" in episode and episode["steps"] == 2
    assert video.stat().st_size > 0


@pytest.mark.parametrize("args, expected", [
    (("--agent", "rule_based", "--action", "steer"), "the highway's rule-based driver decides meta-actions"),
    (("--option", "lane_count=0"), "option lane_count must be an integer in 2..6, got 0"),
    (("--option", "density_per_km=-2"), "option density_per_km must be a number >= 0, got -2"),
])
def test_drive_on_the_highway_refuses_bad_input_in_one_line(args, expected):
    result = drivelab("drive", "--env", "DriveLab/Highway-v0", "--episodes", "1", *args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr


def test_drive_runs_the_highways_rule_based_driver_and_reports_the_traffic_metrics():
    result = drivelab("drive", "--env", "DriveLab/Highway-v0", "--episodes", "1", "--option", "route_length_m=300", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["action"] == "meta"
    (episode,) = report["episodes"]
    assert {"collision", "lane_changes", "headway_violations", "driving_score"} <= set(episode)
    assert episode["route_completion"] == pytest.approx(1.0) or episode["collision"]


def test_the_shipped_highway_configs_resolve_to_the_meta_presets():
    from drivelab.experiments.config import load_config, resolve_trial

    root = Path(__file__).resolve().parents[2] / "experiments"
    for name, budget in (("highway_dqn_vs_ppo.yaml", 200_000), ("highway_quick.yaml", 20_000)):
        config = load_config(root / name)
        assert config.env.id == "DriveLab/Highway-v0" and config.budget_steps == budget
        for agent in config.agents:
            trial = resolve_trial(config, agent.name, 0)
            assert trial["action"] == "meta"
            if agent.algo != "rule_based":
                assert trial["preset"] == f"{agent.algo}-meta"
    dqn = resolve_trial(load_config(root / "highway_quick.yaml"), "dqn", 0)["hyperparams"]
    # highway-env's documented recipe, but for gamma (0.8 there: see the preset's comment)
    assert dqn["learning_rate"] == 5.0e-4 and dqn["buffer_size"] == 15_000 and dqn["learning_starts"] == 200
    assert dqn["gamma"] == 0.9 and dqn["target_update_interval"] == 50 and dqn["policy_kwargs"] == {"net_arch": [256, 256]}
