"""Experiment configs: the shipped ones load; every kind of mistake is one line, exit 2, no run directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from drivelab.experiments.config import ConfigError, load_config, parse_config, resolve_trial

ROOT = Path(__file__).resolve().parents[2]

VALID = {
    "name": "check",
    "env": {"id": "DriveLab/LaneKeep-v0", "options": {"target_speed_mps": 9}},
    "agents": [{"name": "ppo", "algo": "ppo", "hyperparams": {"learning_rate": 1.0e-3}},
               {"name": "dqn", "algo": "dqn"}, {"name": "driver", "algo": "rule_based"}],
    "seeds": [0, 1],
    "budget_steps": 1000,
}


def with_changes(**changes) -> dict:
    config = yaml.safe_load(yaml.safe_dump(VALID))
    config.update(changes)
    return config


def test_shipped_comparison_config_is_ppo_vs_dqn_vs_rule_based_on_five_seeds():
    config = load_config(ROOT / "experiments" / "lanekeep_ppo_vs_dqn.yaml")
    assert [(agent.name, agent.algo) for agent in config.agents] == [("ppo", "ppo"), ("dqn", "dqn"), ("rule_based", "rule_based")]
    assert config.seeds == [0, 1, 2, 3, 4]
    assert config.evaluation.first_track_seed >= 1_000_000


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "experiments").glob("*.yaml")))
def test_every_shipped_config_is_valid(name, tmp_path, monkeypatch):
    agents = yaml.safe_load((ROOT / "experiments" / name).read_text())["agents"]
    models = {agent["perception_model"] for agent in agents if agent.get("perception_model")}
    if models:  # what the config's header has users make first, here an untrained stand-in
        from drivelab.perception.model import save_untrained_model

        monkeypatch.chdir(tmp_path)
        for model in models:
            save_untrained_model(tmp_path / model)
    assert load_config(ROOT / "experiments" / name).budget_steps > 0


def test_a_config_whose_perception_model_is_not_made_yet_says_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="perception model runs/perception/cnn does not exist"):
        load_config(ROOT / "experiments" / "lanekeep_perception.yaml")


def test_resolve_trial_applies_the_preset_then_the_overrides():
    trial = resolve_trial(parse_config(VALID), "ppo", 1)
    assert trial["preset"] == "ppo-steer" and trial["action"] == "steer" and trial["n_envs"] == 8
    assert trial["hyperparams"]["learning_rate"] == 1.0e-3  # override
    assert trial["hyperparams"]["n_steps"] == 256  # from the preset
    # Training starts displaced (preset), evaluation uses the env as configured.
    assert trial["train_env_options"] == {"initial_offset_max_m": 0.5, "initial_heading_max_rad": 0.1, "target_speed_mps": 9}
    assert trial["env_options"] == {"target_speed_mps": 9}
    dqn = resolve_trial(parse_config(VALID), "dqn", 0)
    assert (dqn["preset"], dqn["action"]) == ("dqn-steer_discrete", "steer_discrete")


_VIDEO_EVERY_ALLOWED = ("evaluation.video_every_steps: must be a positive integer of env steps (a video every that "
                        "many), or null for no videos")


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"budget_step": 10}, "unknown key 'budget_step'"),
        ({"seeds": "zero"}, "seeds: Input should be a valid list"),
        ({"budget_steps": -5}, "budget_steps: Input should be greater than 0"),
        ({"agents": [{"name": "x", "algo": "sac"}]}, "agents.0.algo: input should be 'ppo', 'dqn', 'rule_based' or 'random'"),
        ({"env": {"id": "DriveLab/Nope-v0"}}, "env.id: unknown env 'DriveLab/Nope-v0'; allowed: DriveLab/Highway-v0, DriveLab/LaneKeep-v0"),
        ({"agents": [{"name": "p", "algo": "ppo", "hyperparams": {"lerning_rate": 1}}]}, "unknown hyperparameter 'lerning_rate' for ppo"),
        ({"agents": [{"name": "p", "algo": "dqn", "action": "steer"}]}, "no preset 'dqn-steer' for dqn"),
        ({"env": {"id": "DriveLab/LaneKeep-v0", "options": {"speed": 3}}}, "unknown option 'speed'"),
        ({"evaluation": {"first_track_seed": 5}}, "evaluation.first_track_seed must be >= 1000000"),
        ({"seeds": [1, 1]}, "seeds must be distinct"),
        ({"evaluation": {"video_every_steps": 0}}, _VIDEO_EVERY_ALLOWED + "; got 0"),
        ({"evaluation": {"video_every_steps": -500}}, _VIDEO_EVERY_ALLOWED + "; got -500"),
        ({"evaluation": {"video_every_steps": 2.5}}, _VIDEO_EVERY_ALLOWED + "; got 2.5"),
        ({"evaluation": {"video_every_steps": True}}, _VIDEO_EVERY_ALLOWED + "; got True"),
        ({"evaluation": {"video_every_steps": "often"}}, _VIDEO_EVERY_ALLOWED + "; got 'often'"),
    ],
)
def test_bad_configs_are_one_line_errors(changes, expected):
    with pytest.raises(ConfigError) as caught:
        parse_config(with_changes(**changes), "bad.yaml")
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("bad.yaml: ")
    assert expected in message


def test_video_every_steps_is_off_unless_set_and_then_in_the_resolved_trial():
    assert parse_config(VALID).evaluation.video_every_steps is None
    # absent from the resolved trial when off: run directories made before the option existed keep their config
    assert "video_every_steps" not in resolve_trial(parse_config(VALID), "ppo", 0)["evaluation"]
    for value in (None, 5000):
        config = parse_config(with_changes(evaluation={"video_every_steps": value}))
        assert config.evaluation.video_every_steps == value
    assert resolve_trial(config, "driver", 0)["evaluation"]["video_every_steps"] == 5000


def test_unknown_key_lists_the_allowed_ones_at_its_level():
    config = with_changes(evaluation={"episode": 3})
    with pytest.raises(ConfigError, match=r"unknown key 'evaluation.episode'; allowed: every_steps, episodes, first_track_seed"):
        parse_config(config, "bad.yaml")


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"budget_step": 10}, "unknown key 'budget_step'"),
        ({"seeds": "zero"}, "seeds: Input should be a valid list"),
        ({"agents": [{"name": "x", "algo": "sac"}]}, "agents.0.algo"),
        ({"env": {"id": "DriveLab/Nope-v0"}}, "unknown env"),
        ({"budget_steps": -1}, "budget_steps"),
        ({"evaluation": {"video_every_steps": 0}}, "evaluation.video_every_steps: must be a positive integer"),
    ],
)
def test_cli_refuses_bad_configs_with_exit_2_and_creates_nothing(tmp_path, changes, expected):
    config_path = tmp_path / "bad.yaml"
    config_path.write_text(yaml.safe_dump(with_changes(**changes)))
    out = tmp_path / "runs"
    for command in (["train", str(config_path), "--agent", "ppo"], ["sweep", str(config_path)]):
        result = subprocess.run([sys.executable, "-m", "drivelab.cli", *command, "--out", str(out)],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0]
        assert not out.exists()


def test_cli_refuses_missing_file_and_broken_yaml(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("name: [unclosed\n")
    for path, expected in ((tmp_path / "missing.yaml", "not found"), (broken, "not valid YAML at line")):
        result = subprocess.run([sys.executable, "-m", "drivelab.cli", "train", str(path), "--out", str(tmp_path / "runs")],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 2
        assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "runs").exists()


def test_an_agent_trains_on_one_observation_and_is_evaluated_on_another(tmp_path, monkeypatch):
    from drivelab.perception.model import save_untrained_model

    monkeypatch.chdir(tmp_path)
    save_untrained_model(tmp_path / "cnn")
    config = parse_config({
        "name": "perceived", "env": {"id": "DriveLab/LaneKeep-v0"}, "seeds": [0], "budget_steps": 1000,
        "agents": [
            {"name": "ppo", "algo": "ppo", "train_observation": "state", "observation": "perceived", "perception_model": "cnn"},
            {"name": "driver", "algo": "rule_based", "observation": "perceived", "perception_model": "cnn"},
        ],
    })
    ppo = resolve_trial(config, "ppo", 0)
    assert ppo["env_options"]["observation"] == "perceived" and ppo["env_options"]["perception_model"] == "cnn"
    assert ppo["train_env_options"]["observation"] == "state" and "perception_model" not in ppo["train_env_options"]
    driver = resolve_trial(config, "driver", 0)
    assert driver["env_options"] == {"observation": "perceived", "perception_model": "cnn"}


@pytest.mark.parametrize("agent, words", [
    ({"observation": "perceived"}, "observation 'perceived' needs perception_model"),
    ({"observation": "state", "perception_model": "cnn"}, "perception_model is for observation 'perceived'"),
    ({"observation": "lidar"}, "agents.0.observation"),
])
def test_observation_settings_are_checked_in_one_line(agent, words):
    with pytest.raises(ConfigError, match=words):
        parse_config({"name": "x", "env": {"id": "DriveLab/LaneKeep-v0"}, "seeds": [0], "budget_steps": 1000,
                      "agents": [{"name": "a", "algo": "rule_based", **agent}]})
