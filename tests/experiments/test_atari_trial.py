"""Atari through the experiment layer: a smoke run of ``sweep`` (every trial through ``train``'s runner),
``train`` and ``compare`` on Pong, the presets, and configs refused with one line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from drivelab.agents.presets import find_preset
from drivelab.experiments.compare import across_games
from tests.experiments.test_trial import drivelab

SMOKE = {
    "name": "pong_smoke",
    "env": {"id": "ALE/Pong-v5"},
    "agents": [
        {"name": "ppo", "algo": "ppo", "n_envs": 2, "hyperparams": {"n_steps": 64, "batch_size": 64, "n_epochs": 1}},
        {"name": "dqn", "algo": "dqn", "hyperparams": {"learning_starts": 100, "buffer_size": 500}},
        {"name": "random", "algo": "random"},
    ],
    "seeds": [0],
    "budget_steps": 256,
    "evaluation": {"every_steps": 256, "episodes": 1},
    "checkpoint_every_steps": 256,
    "tracking": {"wandb": {"mode": "disabled"}, "tensorboard": False},
    "device": "cpu",
}


def write(tmp_path: Path, config: dict, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config))
    return path


def rows(run_dir: Path) -> list[dict[str, str]]:
    with (run_dir / "evaluations.csv").open() as stream:
        return list(csv.DictReader(stream))


def test_the_presets_are_rl_baselines3_zoos_atari_hyperparameters():
    ppo = find_preset("ALE/Breakout-v5", "ppo")
    assert ppo.name == "ppo-atari" and ppo.action == "discrete" and ppo.n_envs == 8
    assert ppo.hyperparams == {"frame_stack": 4, "n_steps": 128, "n_epochs": 4, "batch_size": 256,
                               "learning_rate": "lin_2.5e-4", "clip_range": "lin_0.1", "vf_coef": 0.5, "ent_coef": 0.01}
    dqn = find_preset("ALE/Enduro-v5", "dqn")
    assert dqn.n_envs == 1 and dqn.hyperparams["buffer_size"] == 10_000 and dqn.hyperparams["learning_starts"] == 100_000
    assert dqn.hyperparams["optimize_memory_usage"] is True and dqn.hyperparams["exploration_final_eps"] == 0.01


def test_pong_smoke_run_through_sweep_train_and_compare(tmp_path):
    config = write(tmp_path, SMOKE)
    out = tmp_path / "runs"
    swept = drivelab("sweep", str(config), "--out", str(out), "--workers", "2", "--json")
    assert swept.returncode == 0, swept.stderr
    summary = json.loads(swept.stdout)
    assert summary["done"] == 3 and not summary["failed"]
    for agent in ("ppo", "dqn", "random"):
        run_dir = out / "pong_smoke" / agent / "seed-0"
        status = json.loads((run_dir / "status.json").read_text())
        assert status["state"] == "done"
        recorded = rows(run_dir)
        assert sorted({int(row["env_steps"]) for row in recorded}) == [0, 256]
        for row in recorded:
            # the standard protocol: the raw score of a whole game of Pong (21 points to one side), never clipped
            assert -21 <= float(row["score"]) <= 21 and float(row["score"]) == int(float(row["score"]))
            assert float(row["human_normalized_score"]) == pytest.approx((float(row["score"]) + 20.7) / 30.0)
            assert int(row["frames"]) > 0 and row["truncated"] == "0"
        assert status["final"]["score"] == pytest.approx(float(recorded[-1]["score"]))
        if agent != "random":  # status.json tells what checkpoints cost: time and size
            checkpoints = status["checkpoints"]
            assert checkpoints["count"] >= 1 and checkpoints["max_seconds"] >= checkpoints["mean_seconds"] > 0
            on_disk = sum(path.stat().st_size for path in (run_dir / "checkpoints").glob("step-*/*"))
            assert checkpoints["last_bytes"] == on_disk
    assert (out / "pong_smoke" / "ppo" / "seed-0" / "model.zip").is_file()
    # train on a finished trial says so; compare defaults to the raw score and adds the human-normalised IQM
    again = drivelab("train", str(config), "--agent", "ppo", "--out", str(out))
    assert again.returncode == 0 and "already done" in again.stderr
    compared = drivelab("compare", str(out / "pong_smoke"), "--json")
    assert compared.returncode == 0, compared.stderr
    result = json.loads(compared.stdout)
    assert result["metric"] == "score"
    for agent in result["agents"]:
        assert agent["iqm"] == pytest.approx(agent["final_scores"][0])
        assert agent["human_normalized_iqm"] == pytest.approx((agent["iqm"] + 20.7) / 30.0)
    report = Path(result["report"]).read_text()
    assert "human-normalised IQM [95% CI]" in report and "Mnih et al., 2015" in report
    refused = drivelab("drive", "--agent", str(out / "pong_smoke" / "ppo" / "seed-0"))
    assert refused.returncode == 2 and "plays ALE/Pong-v5" in refused.stderr


def test_the_human_normalised_score_is_aggregated_across_games_as_rliable_does():
    from drivelab.experiments.compare import Trial

    def trial(experiment: str, seed: int, score: float) -> Trial:
        return Trial(run_dir=Path(experiment), experiment=experiment, agent="ppo", algo="ppo", seed=seed, env_steps=10,
                     wall_time_s=1.0, evaluations={"env_steps": np.array([10]), "human_normalized_score": np.array([score])})

    trials = [trial("pong", 0, 1.0), trial("pong", 1, 0.5), trial("breakout", 0, 2.0), trial("breakout", 1, 3.0),
              trial("breakout", 2, 9.0)]  # seed 2 has no Pong run: left out
    (entry,) = across_games(trials, reps=200, seed=0)
    assert entry["games"] == ["breakout", "pong"] and entry["seeds"] == [0, 1]
    assert entry["mean"] == pytest.approx(np.mean([1.0, 0.5, 2.0, 3.0]))
    assert entry["iqm"] == pytest.approx(np.mean([1.0, 2.0]))  # the middle half of the four scores
    assert entry["iqm_ci"][0] <= entry["iqm"] <= entry["iqm_ci"][1]


@pytest.mark.parametrize("change, expected", [
    ({"env": {"id": "ALE/Pongg-v5"}}, "unknown Atari game 'ALE/Pongg-v5'; allowed: ALE/Pong-v5, ALE/Breakout-v5, ALE/Enduro-v5"),
    ({"env": {"id": "ALE/Pong-v5", "options": {"vec_env": "fast"}}}, "option vec_env must be one of default, envpool"),
    ({"env": {"id": "ALE/Pong-v5", "options": {"target_speed_mps": 3}}}, "unknown option 'target_speed_mps' for ALE/Pong-v5"),
    ({"agents": [{"name": "ppo", "algo": "ppo", "preset": "ppo-steer"}]}, "no preset 'ppo-steer' for ppo on ALE/Pong-v5"),
    ({"agents": [{"name": "ppo", "algo": "ppo", "action": "steer"}]}, "action 'steer' does not fit ALE/Pong-v5"),
    ({"agents": [{"name": "rb", "algo": "rule_based"}]}, "the rule-based driver drives DriveLab's worlds, not Atari games"),
    ({"agents": [{"name": "ppo", "algo": "ppo", "observation": "camera"}]}, "Atari agents read the game's frames"),
])
def test_bad_atari_configs_are_one_line_exit_2_and_nothing_written(tmp_path, change, expected):
    config = write(tmp_path, {**SMOKE, **change})
    result = drivelab("train", str(config), "--agent", "ppo" if "rb" not in str(change) else "rb", "--out", str(tmp_path / "runs"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
    assert not (tmp_path / "runs").exists()


def test_the_shipped_atari_configs_resolve_to_the_zoo_presets():
    from drivelab.experiments.config import load_config, resolve_trial

    root = Path(__file__).resolve().parents[2] / "experiments"
    for name, game in (("atari_pong_dqn_vs_ppo.yaml", "ALE/Pong-v5"), ("atari_enduro_ppo.yaml", "ALE/Enduro-v5"),
                       ("atari_breakout_quick.yaml", "ALE/Breakout-v5")):
        config = load_config(root / name)
        assert config.env.id == game
        for agent in config.agents:
            trial = resolve_trial(config, agent.name, 0)
            assert trial["action"] == "discrete"
            if agent.algo != "random":
                assert trial["preset"] == f"{agent.algo}-atari"
    assert load_config(root / "atari_breakout_quick.yaml").budget_steps == 1_000_000


def test_a_trial_trains_on_the_envpool_backend(tmp_path):
    config = write(tmp_path, {**SMOKE, "env": {"id": "ALE/Pong-v5", "options": {"vec_env": "envpool"}},
                              "agents": [SMOKE["agents"][0]], "budget_steps": 128,
                              "evaluation": {"every_steps": 128, "episodes": 1}, "checkpoint_every_steps": 128})
    result = drivelab("train", str(config), "--out", str(tmp_path / "runs"), "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["state"] == "done" and status["env_steps"] == 128
    trial = yaml.safe_load((tmp_path / "runs" / "pong_smoke" / "ppo" / "seed-0" / "config.yaml").read_text())
    assert trial["train_env_options"]["vec_env"] == "envpool"
