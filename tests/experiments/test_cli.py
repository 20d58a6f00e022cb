"""The ``drivelab`` command line, run as users run it: a subprocess, stdout and stderr read back."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PEER_KEYS = ("peer_steps_per_s", "peer_sim_seconds_per_s", "ratio_vs_peer", "rtf_ratio_vs_peer")


def drivelab(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "drivelab.cli", *args],
        capture_output=True, text=True, timeout=timeout,
    )


def test_help_is_instant_and_imports_no_simulator():
    code = (
        "import sys, runpy; sys.argv = ['drivelab', '--help']\n"
        "try:\n    runpy.run_module('drivelab.cli', run_name='__main__')\n"
        "except SystemExit:\n    pass\n"
        "print([m for m in ('pybullet', 'torch', 'stable_baselines3', 'highway_env') if m in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "drive" in result.stdout and "bench" in result.stdout
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_drive_json_prints_one_object_with_each_episodes_metrics():
    result = drivelab("drive", "--episodes", "2", "--seed", "3", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # nothing else on stdout: PyBullet's own prints are kept off it
    assert [episode["seed"] for episode in report["episodes"]] == [3, 4]
    for episode in report["episodes"]:
        assert episode["route_completion"] == 1.0
        assert episode["off_road"] is False
        assert 0.0 <= episode["lateral_error_rms"] <= 0.10
        assert episode["mean_speed"] >= 8.0
    assert report["summary"]["episodes"] == 2
    assert report["summary"]["off_road_count"] == 0


def test_drive_prints_a_table_without_json():
    result = drivelab("drive", "--episodes", "1", "--option", "max_episode_s=3")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("rule-based driver (pid tracker)")
    assert "route_completion" in lines[1] and "lateral_error_rms" in lines[1]
    assert lines[-1].startswith("mean route completion")


@pytest.mark.parametrize(
    "args, expected",
    [
        (["drive", "--option", "speed=3"], "unknown option 'speed'; allowed:"),
        (["drive", "--option", "target_speed_mps=-3"], "option target_speed_mps must be a positive number"),
        (["drive", "--option", "nonsense"], "--option takes KEY=VALUE"),
        (["drive", "--env", "DriveLab/Nope-v0"], "unknown env 'DriveLab/Nope-v0'; allowed: DriveLab/Highway-v0, DriveLab/LaneKeep-v0"),
        (["drive", "--action", "fly"], "unknown action 'fly'; allowed: direct, steer, steer_discrete"),
        (["drive", "--tracker", "magic"], "unknown tracker 'magic'; allowed: pid, stanley, pure_pursuit"),
        (["drive", "--episodes", "0"], "--episodes must be >= 1, got 0"),
        (["drive", "--episodes", "many"], "invalid int value: 'many'"),
        (["bench", "env", "--seconds", "-1"], "--seconds must be a positive number"),
        (["bench", "env", "--env", "DriveLab/Nope-v0"], "--env must be DriveLab/LaneKeep-v0 or DriveLab/Highway-v0"),
        (["bench", "env", "--env", "DriveLab/Highway-v0", "--vehicles", "500"], "--vehicles must be an integer in 0..200"),
        (["bench", "env", "--option", "speed_loop_hz=30"], "option speed_loop_hz must be None (every physics step), 'decision_hz' "
                                                            "(once per decision_hz period) or a rate that divides physics_hz (100.0) "
                                                            "and is a whole multiple of decision_hz (20.0), got 30"),
        (["bench", "env", "--env", "DriveLab/Highway-v0", "--option", "speed_loop_hz=20"], "--option is for DriveLab/LaneKeep-v0's bench"),
        (["fly"], "invalid choice: 'fly'"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(args, expected):
    result = drivelab(*args, timeout=120)
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]


def test_bench_env_takes_lanekeep_options_for_its_env_and_the_ceilings_scene():
    result = drivelab("bench", "env", "--option", "physics_hz=200", "--option", "speed_loop_hz=20", "--seconds", "0.3",
                      "--rounds", "1", "--no-peer", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["options"] == {"physics_hz": 200, "speed_loop_hz": 20}
    assert report["physics_hz"] == 200 and report["decision_hz"] == 20
    # The ceiling steps the same scene at 200 Hz: ten physics steps make one env step.
    assert report["ceiling_steps_per_s"] == pytest.approx(report["ceiling_physics_steps_per_s"] / 10)
    assert report["ceiling_sim_seconds_per_s"] == pytest.approx(report["ceiling_physics_steps_per_s"] / 200)


def test_option_values_read_as_yaml_and_none_as_null():
    from drivelab.cli.common import env_options

    options = env_options(["speed_loop_hz=None", "max_lateral_accel_mps2=null", "camera_mount=hood",
                           "target_speed_mps=12", "curvature_preview_m=[0, 5]"])
    assert options == {"speed_loop_hz": None, "max_lateral_accel_mps2": None, "camera_mount": "hood",
                       "target_speed_mps": 12, "curvature_preview_m": [0, 5]}


def test_drive_with_the_speed_loop_at_every_physics_step_spelled_none():
    result = drivelab("drive", "--episodes", "1", "--option", "speed_loop_hz=None", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["summary"]["route_completion_mean"] == 1.0


def test_bench_env_json_has_every_figure_and_consistent_ratios():
    result = drivelab("bench", "env", "--seconds", "0.5", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    for key in ("steps_per_s", "sim_seconds_per_s", "ceiling_steps_per_s", "decision_hz", "physics_hz", *PEER_KEYS):
        assert key in report
    assert report["decision_hz"] == 20 and report["physics_hz"] == 100
    assert report["steps_per_s"] > 0
    # The env cannot step faster than its own physics alone.
    assert report["steps_per_s"] < report["ceiling_steps_per_s"]
    assert report["sim_seconds_per_s"] == pytest.approx(report["steps_per_s"] / 20)
    assert report["fraction_of_ceiling"] == pytest.approx(report["steps_per_s"] / report["ceiling_steps_per_s"])
    # The driver's time comes on top of the env's own; each replayed lap is a whole lap (about 850 steps).
    assert 0 < report["with_driver_steps_per_s"] < report["ceiling_steps_per_s"]
    assert report["with_driver_fraction_of_ceiling"] == pytest.approx(report["with_driver_steps_per_s"] / report["ceiling_steps_per_s"])
    assert all(800 < length < 1000 for length in report["replayed_episode_lengths"])
    if report["peer_steps_per_s"] is not None:  # highway-env is in the dev extra
        assert report["ratio_vs_peer"] == pytest.approx(report["steps_per_s"] / report["peer_steps_per_s"])
        assert report["rtf_ratio_vs_peer"] == pytest.approx(report["sim_seconds_per_s"] / report["peer_sim_seconds_per_s"])
        assert report["peer_decision_hz"] == 1 and report["peer_physics_hz"] == 5


def test_bench_env_on_the_highway_measures_each_action_mode_beside_the_peer():
    result = drivelab("bench", "env", "--env", "DriveLab/Highway-v0", "--seconds", "1.5", "--rounds", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["env"] == "DriveLab/Highway-v0" and report["vehicles"] == 20
    assert {mode: figures["decision_hz"] for mode, figures in report["modes"].items()} == {"meta": 1, "steer": 20, "direct": 20}
    for figures in report["modes"].values():
        assert figures["steps_per_s"] > 0 and figures["physics_hz"] == 100
        assert figures["sim_seconds_per_s"] == pytest.approx(figures["steps_per_s"] / figures["decision_hz"])
    assert report["sim_seconds_per_s"] == report["modes"]["meta"]["sim_seconds_per_s"]
    if report["peer"] is not None:  # highway-env is in the dev extra; its highway-fast-v0 has 20 vehicles too
        assert report["peer_vehicles"] == 20 and report["peer_decision_hz"] == 1
        assert report["rtf_ratio_vs_peer"] == pytest.approx(report["sim_seconds_per_s"] / report["peer_sim_seconds_per_s"])


def test_bench_train_compares_tracked_training_with_plain_sb3():
    result = drivelab("bench", "train", "--steps", "1000", "--repeats", "1", "--json", timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["algo"] == "ppo" and report["repeats"] == 1
    assert len(report["plain_sb3_runs"]) == len(report["drivelab_train_runs"]) == 1
    assert report["ratio"] == pytest.approx(report["drivelab_train_steps_per_s"] / report["plain_sb3_steps_per_s"])
    assert report["end_to_end_ratio"] == pytest.approx(
        report["drivelab_train_end_to_end_steps_per_s"] / report["plain_sb3_end_to_end_steps_per_s"])
    # End to end includes set-up and saving, so it cannot be faster than the learning loop alone.
    assert report["drivelab_train_end_to_end_steps_per_s"] <= report["drivelab_train_steps_per_s"]
    assert report["plain_sb3_end_to_end_steps_per_s"] <= report["plain_sb3_steps_per_s"]


def test_drive_on_given_tracks_drives_track_k_plus_i():
    result = drivelab("drive", "--episodes", "2", "--first-track-seed", "1000005", "--option", "max_episode_s=2", "--json")
    assert result.returncode == 0, result.stderr
    assert [episode["track_seed"] for episode in json.loads(result.stdout)["episodes"]] == [1000005, 1000006]
    refused = drivelab("drive", "--episodes", "1", "--first-track-seed", "-1")
    assert refused.returncode == 2 and refused.stderr.strip() == "drivelab: --first-track-seed must be >= 0, got -1"


def test_bench_perception_json_has_every_figure_and_consistent_ratios():
    result = drivelab("bench", "perception", "--seconds", "0.6", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["camera_fps"] > 0 and figures["pybullet_camera_fps"] > 0
    assert figures["camera_ratio"] == pytest.approx(figures["camera_fps"] / figures["pybullet_camera_fps"])
    assert figures["camera_ratio"] > 2  # the fast camera is the fast one, even on a busy machine
    assert figures["cpu_images_per_s"] > 0 and "cuda_images_per_s" in figures
    assert figures["perceived_cost_ratio"] == pytest.approx(figures["state_steps_per_s"] / figures["perceived_steps_per_s"])
    assert figures["model"] == "default architecture, untrained weights"
    missing = drivelab("bench", "perception", "--model", "/nonexistent/run", "--seconds", "0.6")
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1


def test_bench_perception_cnn_only_needs_no_simulator():
    """What a GPU machine without PyBullet runs (benchmarks/perception_gpu.sh): the CNN's inference alone."""
    script = ("import json, sys; from drivelab.cli import main; "
              "status = main(['bench', 'perception', '--cnn-only', '--seconds', '0.3', '--batch-size', '8', '--json']); "
              "print(json.dumps({'status': status, 'pybullet': 'pybullet' in sys.modules}))")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    figures, outcome = (json.loads(line) for line in result.stdout.strip().splitlines()[-2:])
    assert outcome == {"status": 0, "pybullet": False}
    assert figures["batch_size"] == 8 and figures["cpu_images_per_s"] > 0
    assert "camera_fps" not in figures and "state_steps_per_s" not in figures
    refused = drivelab("bench", "perception", "--cnn-only", "--batch-size", "0")
    assert refused.returncode == 2 and refused.stderr.strip() == "drivelab: --batch-size must be >= 1, got 0"


def test_bench_train_on_an_atari_game_compares_with_plain_sb3_and_measures_both_backends():
    result = drivelab("bench", "train", "--env", "ALE/Pong-v5", "--algo", "ppo", "--vec-env", "envpool", "--steps", "1000",
                      "--repeats", "1", "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["env"] == "ALE/Pong-v5" and figures["vec_env"] == "envpool" and figures["device"] == "cpu"
    assert figures["steps"] == 1000 and figures["plain_sb3_steps_per_s"] > 0 and figures["drivelab_train_steps_per_s"] > 0
    assert figures["ratio"] == pytest.approx(figures["drivelab_train_steps_per_s"] / figures["plain_sb3_steps_per_s"])
    throughput = figures["env_throughput"]
    assert throughput["n_envs"] == 8 and throughput["default_steps_per_s"] > 0 and throughput["envpool_steps_per_s"] > 0
    assert throughput["envpool_ratio"] == pytest.approx(throughput["envpool_steps_per_s"] / throughput["default_steps_per_s"])
    for args, expected in ((["--env", "ALE/Nope-v5"], "unknown Atari game 'ALE/Nope-v5'"),
                           (["--vec-env", "envpool"], "--vec-env is for the Atari games"),
                           (["--env", "ALE/Pong-v5", "--vec-env", "fast"], "--vec-env must be one of default, envpool")):
        refused = drivelab("bench", "train", *args)
        assert refused.returncode == 2 and expected in refused.stderr and refused.stderr.count("\n") == 1, refused.stderr


def test_drive_on_the_highway_says_how_each_crash_came_about():
    result = drivelab("drive", "--env", "DriveLab/Highway-v0", "--agent", "random", "--episodes", "3", "--seed", "0",
                      "--option", "density_per_km=80", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    crashed = [episode for episode in report["episodes"] if episode["collision"]]
    assert crashed, "random lane changes in dense traffic crash"
    assert all(episode["crash"]["kind"] in ("own_lane_change", "cut_in", "rear_end", "from_behind") for episode in crashed)
    assert not any("crash" in episode for episode in report["episodes"] if not episode["collision"])
    assert sum(report["summary"]["crash_kinds"].values()) == report["summary"]["collision_count"] == len(crashed)
    text = drivelab("drive", "--env", "DriveLab/Highway-v0", "--agent", "random", "--episodes", "3", "--seed", "0",
                    "--option", "density_per_km=80").stdout.splitlines()
    assert text[-1].startswith("mean route completion")
    first = crashed[0]["crash"]
    assert f"seed {crashed[0]['seed']}: {first['kind'].replace('_', ' ')} at {first['speed_mps']:.1f} m/s" in "\n".join(text)
