"""``drivelab.experiments.compare`` on synthetic run directories whose numbers are known by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from drivelab.experiments.compare import compare, format_table

HEADER = "env_steps,wall_time_s,episode,track_seed,return,episode_length,route_completion,lateral_error_rms,off_road,mean_speed"
TRACK_SEEDS = (100, 101, 102)
REPS = 200

# agent "ppo": route completion of each evaluation (every 1000 steps) per seed; the last one is the final score
PPO_CURVES = {
    0: [0.1, 0.5, 0.8, 0.9],    # never reaches 0.95
    1: [0.1, 0.6, 0.95, 0.95],  # reaches it at 2000
    2: [0.2, 0.96, 1.0, 1.0],   # at 1000
    3: [0.3, 0.7, 1.0, 1.0],    # at 2000
    4: [0.1, 0.97, 0.5, 0.2],   # at 1000, then collapses
}
PPO_FINAL = [0.9, 0.95, 1.0, 1.0, 0.2]
PPO_WALL_TIMES = [100.0, 200.0, 300.0, 400.0, 500.0]


def write_trial(root: Path, experiment: str, agent: str, seed: int, *, state: str = "done", algo: str = "ppo",
                curve: list[float] | None = None, steps: list[int] | None = None, lateral: float = 0.1,
                off_road_final: int = 0, wall_time_s: float = 10.0, error: str | None = None,
                final_episodes: list[float] | None = None) -> Path:
    """One trial directory; each evaluation runs 3 episodes whose route completion averages to ``curve[i]``."""
    trial = root / experiment / agent / f"seed-{seed}"
    trial.mkdir(parents=True)
    steps = steps if steps is not None else [1000 * i for i in range(len(curve or []))]
    status = {"state": state, "experiment": experiment, "agent": agent, "algo": algo, "env_id": "DriveLab/LaneKeep-v0",
              "seed": seed, "env_steps": steps[-1] if steps else 0, "wall_time_s": wall_time_s, "error": error,
              "attempts": 1}
    (trial / "status.json").write_text(json.dumps(status))
    if curve is None:
        return trial
    lines = [HEADER]
    for index, (step, value) in enumerate(zip(steps, curve)):
        final = index == len(curve) - 1
        episodes = final_episodes if (final and final_episodes) else [value] * len(TRACK_SEEDS)
        for episode, (track_seed, completion) in enumerate(zip(TRACK_SEEDS, episodes)):
            off_road = off_road_final if final else 0
            lines.append(f"{step},{index * 5.0},{episode},{track_seed},{10 * completion},400,{completion},"
                         f"{lateral},{off_road},8.0")
    (trial / "evaluations.csv").write_text("\n".join(lines) + "\n")
    return trial


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """A sweep with experiment 'lanekeep': ppo (5 done seeds, 1 failed) and rule_based (3 done, 1 running)."""
    out = tmp_path / "runs"
    for seed, curve in PPO_CURVES.items():
        write_trial(out, "lanekeep", "ppo", seed, curve=curve, lateral=0.1 * (seed + 1),
                    off_road_final=1 if seed == 4 else 0, wall_time_s=PPO_WALL_TIMES[seed],
                    # seed 0's last evaluation varies across episodes: the final score is their mean
                    final_episodes=[0.85, 0.9, 0.95] if seed == 0 else None)
    write_trial(out, "lanekeep", "ppo", 5, state="failed", error="RuntimeError: simulator crashed")
    for seed in range(3):
        write_trial(out, "lanekeep", "rule_based", seed, algo="rule_based", curve=[0.5, 0.5], steps=[0, 3000],
                    lateral=0.5, wall_time_s=2.0)
    write_trial(out, "lanekeep", "rule_based", 3, state="running", algo="rule_based")
    return out


def by_agent(result: dict) -> dict[str, dict]:
    return {agent["agent"]: agent for agent in result["agents"]}


def test_final_performance_matches_hand_computed_numbers(sweep: Path, tmp_path: Path):
    result = compare([sweep], tmp_path / "report", bootstrap_reps=REPS)
    agents = by_agent(result)
    assert sorted(agents) == ["ppo", "rule_based"]  # one experiment: labelled by agent alone

    ppo = agents["ppo"]
    assert ppo["seeds"] == 5
    assert ppo["final_scores"] == pytest.approx(PPO_FINAL)
    # IQM of 5 runs = scipy's 25% trimmed mean: drops int(0.25 * 5) = 1 score each side, mean of 0.9, 0.95, 1.0
    assert scipy.stats.trim_mean(PPO_FINAL, 0.25) == pytest.approx(0.95)
    assert ppo["iqm"] == pytest.approx(0.95, abs=1e-12)
    assert ppo["mean"] == pytest.approx(np.mean(PPO_FINAL), abs=1e-12)  # 0.81
    for key, point in (("iqm_ci", ppo["iqm"]), ("mean_ci", ppo["mean"])):
        low, high = ppo[key]
        assert min(PPO_FINAL) - 1e-12 <= low <= point <= high <= max(PPO_FINAL) + 1e-12
        assert low < high
    assert ppo["lateral_error_rms"] == pytest.approx(0.3)  # mean of 0.1 … 0.5
    assert ppo["off_road_rate"] == pytest.approx(0.2)  # seed 4 off road in all final episodes
    # per seed: never, 2000, 1000, 2000, 1000 -> median 2000 (never counts as slowest)
    assert ppo["steps_to_95pct_route_completion"] == 2000
    assert ppo["seeds_reaching_95pct"] == 4
    assert ppo["wall_time_s"] == 300.0
    assert ppo["env_steps"] == 3000
    assert ppo["algo"] == "ppo"

    rule = agents["rule_based"]
    assert rule["seeds"] == 3
    assert rule["iqm"] == pytest.approx(0.5) and rule["mean"] == pytest.approx(0.5)
    assert rule["iqm_ci"] == pytest.approx([0.5, 0.5]) and rule["mean_ci"] == pytest.approx([0.5, 0.5])
    assert rule["steps_to_95pct_route_completion"] is None
    assert rule["off_road_rate"] == 0.0 and rule["lateral_error_rms"] == pytest.approx(0.5)
    assert rule["learning_curve"]["env_steps"] == [0, 3000]


def test_learning_curve_is_the_mean_over_seeds_with_a_band_around_it(sweep: Path, tmp_path: Path):
    curve = by_agent(compare([sweep], tmp_path / "report", bootstrap_reps=REPS))["ppo"]["learning_curve"]
    assert curve["env_steps"] == [0, 1000, 2000, 3000]
    expected = np.mean(list(PPO_CURVES.values()), axis=0)
    assert curve["mean"] == pytest.approx(expected)
    for low, mean, high in zip(curve["ci_low"], curve["mean"], curve["ci_high"]):
        assert low <= mean + 1e-12 and mean <= high + 1e-12


def test_skipped_trials_are_listed_with_their_state_and_error(sweep: Path, tmp_path: Path):
    result = compare([sweep], tmp_path / "report", bootstrap_reps=REPS)
    skipped = {(entry["agent"], entry["seed"]): entry for entry in result["skipped"]}
    assert set(skipped) == {("ppo", 5), ("rule_based", 3)}
    assert skipped[("ppo", 5)]["state"] == "failed"
    assert skipped[("ppo", 5)]["error"] == "RuntimeError: simulator crashed"
    assert skipped[("rule_based", 3)]["state"] == "running"
    report = Path(result["report"]).read_text()
    assert "RuntimeError: simulator crashed" in report and "running" in report


def test_writes_png_report_and_json_that_round_trips(sweep: Path, tmp_path: Path):
    out_dir = tmp_path / "nested" / "report"
    result = compare([sweep], out_dir, bootstrap_reps=REPS)
    assert sorted(path.name for path in out_dir.iterdir()) == ["comparison.json", "learning_curves.png", "report.md"]

    png = (out_dir / "learning_curves.png").read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 10_000

    report = (out_dir / "report.md").read_text()
    assert "![learning curves](learning_curves.png)" in report
    assert str(sweep) in report
    assert "stratified bootstrap" in report and f"{REPS} resamples" in report and "IQM" in report
    ppo = by_agent(result)["ppo"]
    assert f"| ppo | 5 | 0.950 [{ppo['iqm_ci'][0]:.3f}, {ppo['iqm_ci'][1]:.3f}] | 0.810 [" in report
    assert "| rule_based | 3 | 0.500 [0.500, 0.500] | 0.500 [0.500, 0.500] |" in report
    assert "| 2,000 |" in report and "| never |" in report

    assert json.loads((out_dir / "comparison.json").read_text()) == result
    assert result["report"] == str(out_dir / "report.md")
    assert result["learning_curves"] == str(out_dir / "learning_curves.png")
    assert result["metric"] == "route_completion"


def test_terminal_table_has_one_aligned_line_per_agent(sweep: Path, tmp_path: Path):
    table = format_table(compare([sweep], tmp_path / "report", bootstrap_reps=REPS)).splitlines()
    assert len(table) == 4  # header, rule, ppo, rule_based
    assert table[0].split()[0] == "agent" and "IQM [95% CI]" in table[0]
    assert table[2].startswith("ppo ") and "0.950 [" in table[2] and "20.0%" in table[2] and "2,000" in table[2]
    assert table[3].startswith("rule_based ") and "never" in table[3]
    assert len({len(line) for line in table[:2]}) == 1


def test_same_inputs_give_identical_intervals_and_leave_numpy_global_rng_alone(sweep: Path, tmp_path: Path):
    np.random.seed(123)
    expected_draw = np.random.random()
    np.random.seed(123)
    first = compare([sweep], tmp_path / "a", bootstrap_reps=REPS, seed=7)
    assert np.random.random() == expected_draw
    second = compare([sweep], tmp_path / "b", bootstrap_reps=REPS, seed=7)
    for one, two in zip(first["agents"], second["agents"]):
        assert one["iqm_ci"] == two["iqm_ci"] and one["mean_ci"] == two["mean_ci"]
        assert one["learning_curve"] == two["learning_curve"]


def test_accepts_agent_and_trial_dirs_and_labels_by_experiment_when_several(tmp_path: Path):
    out = tmp_path / "runs"
    write_trial(out, "lanekeep", "ppo", 0, curve=[0.2, 0.8])
    write_trial(out, "lanekeep", "ppo", 1, curve=[0.4, 1.0])
    lone = write_trial(out, "curvy", "dqn", 0, algo="dqn", curve=[0.1, 0.6])

    result = compare([out / "lanekeep" / "ppo", lone], tmp_path / "report", bootstrap_reps=REPS)
    agents = by_agent(result)
    assert sorted(agents) == ["curvy/dqn", "lanekeep/ppo"]
    assert agents["lanekeep/ppo"]["seeds"] == 2 and agents["lanekeep/ppo"]["mean"] == pytest.approx(0.9)
    dqn = agents["curvy/dqn"]  # one seed: no bootstrap, the CI is the point estimate, and the report says so
    assert dqn["iqm"] == pytest.approx(0.6) and dqn["iqm_ci"] == [dqn["iqm"], dqn["iqm"]]
    assert dqn["note"] and dqn["note"] in Path(result["report"]).read_text()


def test_other_metric_is_compared(sweep: Path, tmp_path: Path):
    result = compare([sweep], tmp_path / "report", metric="return", bootstrap_reps=REPS)
    assert by_agent(result)["ppo"]["mean"] == pytest.approx(10 * np.mean(PPO_FINAL))


def assert_one_line_error(run_dirs: list[Path], out_dir: Path, match: str, **kwargs) -> None:
    with pytest.raises(ValueError, match=match) as caught:
        compare(run_dirs, out_dir, bootstrap_reps=REPS, **kwargs)
    assert "\n" not in str(caught.value)
    assert not out_dir.exists()


def test_missing_directory_is_a_one_line_error(tmp_path: Path):
    assert_one_line_error([tmp_path / "nope"], tmp_path / "report", "does not exist")


def test_directory_without_status_files_is_a_one_line_error(tmp_path: Path):
    (tmp_path / "empty" / "something").mkdir(parents=True)
    assert_one_line_error([tmp_path / "empty"], tmp_path / "report", "no status.json found")


def test_no_finished_trial_is_a_one_line_error(tmp_path: Path):
    out = tmp_path / "runs"
    write_trial(out, "lanekeep", "ppo", 0, state="failed", error="boom")
    write_trial(out, "lanekeep", "ppo", 1, state="running")
    assert_one_line_error([out], tmp_path / "report", r"no finished trial .*1 failed, 1 running")


def test_unknown_metric_is_a_one_line_error_listing_the_columns(sweep: Path, tmp_path: Path):
    assert_one_line_error([sweep], tmp_path / "report", r"'speed'.*allowed: return, episode_length, route_completion",
                          metric="speed")


def add_videos(trial: Path, *names: str) -> None:
    (trial / "videos").mkdir(exist_ok=True)
    for name in names:
        (trial / "videos" / name).write_bytes(b"not really an mp4")


def test_report_links_each_agents_last_video_relative_to_itself(sweep: Path, tmp_path: Path):
    ppo = sweep / "lanekeep" / "ppo"
    add_videos(ppo / "seed-1", "eval_00001000.mp4", "eval_00003000.mp4")
    add_videos(ppo / "seed-3", "eval_00003000.mp4", "eval_00002000.mp4")  # as late as seed 1's: the lower seed wins
    add_videos(ppo / "seed-4", ".eval_00009000.partial-42.mp4", "eval_00009000.gif", "notes.txt")  # none of them a video
    add_videos(ppo / "seed-5", "eval_00009000.mp4")  # a failed trial's: not compared
    # rule_based has no videos: no link, no error

    result = compare([sweep], tmp_path / "report", bootstrap_reps=REPS)
    link = "../runs/lanekeep/ppo/seed-1/videos/eval_00003000.mp4"
    assert result["videos"] == {"ppo": link}
    agents = by_agent(result)
    assert agents["ppo"]["video"] == {"path": link, "env_steps": 3000, "seed": 1, "run_dir": str(ppo / "seed-1")}
    assert agents["rule_based"]["video"] is None
    report = Path(result["report"]).read_text()
    assert "## Videos" in report and f"- ppo: [seed 1, 3,000 env steps]({link})" in report
    assert "- rule_based: [" not in report
    assert (Path(result["report"]).parent / link).is_file()
    assert json.loads(Path(result["comparison"]).read_text()) == result


def test_report_has_no_video_section_when_no_trial_filmed_one(sweep: Path, tmp_path: Path):
    result = compare([sweep], tmp_path / "report", bootstrap_reps=REPS)
    assert result["videos"] == {} and all(agent["video"] is None for agent in result["agents"])
    assert "## Videos" not in Path(result["report"]).read_text()


TRAFFIC_HEADER = "env_steps,wall_time_s,episode,track_seed,return,episode_length,route_completion,lateral_error_rms,off_road,mean_speed,collision,driving_score"


def write_traffic_trial(root: Path, agent: str, seed: int, collisions: list[int], speed: float) -> None:
    """A highway trial with one evaluation at 1000 steps, one episode per entry of ``collisions``."""
    trial = root / "highway" / agent / f"seed-{seed}"
    trial.mkdir(parents=True)
    status = {"state": "done", "experiment": "highway", "agent": agent, "algo": "dqn", "env_id": "DriveLab/Highway-v0",
              "seed": seed, "env_steps": 1000, "wall_time_s": 60.0, "error": None, "attempts": 1}
    (trial / "status.json").write_text(json.dumps(status))
    lines = [TRAFFIC_HEADER] + [f"1000,5.0,{i},{1_000_000 + i},10,40,1.0,0.1,0,{speed},{hit},{0.5 if hit else 1.0}"
                                for i, hit in enumerate(collisions)]
    (trial / "evaluations.csv").write_text("\n".join(lines) + "\n")


def write_peer(path: Path, seed: int, collision_free_rate: float, mean_speed: float) -> Path:
    """What ``benchmarks/highway_env_dqn.py --json`` prints (the keys compare reads, and some it does not)."""
    path.write_text(json.dumps({"env": "highway-fast-v0", "recipe": "highway-env scripts/sb3_highway_dqn.py",
                                "steps": 20000, "seed": seed, "episodes": 20, "collision_free_rate": collision_free_rate,
                                "mean_speed": mean_speed, "vehicles": 20, "lanes": 3, "train_seconds": 700.0}))
    return path


def test_highway_comparison_shows_the_peers_figures_beside_the_agents(tmp_path: Path):
    runs = tmp_path / "runs"
    for seed in range(3):
        write_traffic_trial(runs, "dqn", seed, [0, 0, 0, 1] if seed == 0 else [0, 0, 0, 0], 25.0 + seed)
    peers = [write_peer(tmp_path / f"peer-{seed}.json", seed, rate, speed)
             for seed, rate, speed in ((2, 0.75, 21.0), (0, 0.85, 22.0), (1, 0.9, 23.0))]
    result = compare([runs], tmp_path / "report", metric="collision", bootstrap_reps=REPS, peer=peers)
    peer = result["peer"]
    assert peer["seed_ids"] == [0, 1, 2] and peer["steps"] == 20000 and peer["episodes"] == [20, 20, 20]
    assert peer["collision_rate"] == pytest.approx((0.15 + 0.1 + 0.25) / 3)
    assert peer["mean_speed"] == pytest.approx(22.0)
    # The metric compared is the collision rate: the peer's seeds get IQM and CI as the agents' do.
    assert peer["mean"] == pytest.approx((0.15 + 0.1 + 0.25) / 3) and peer["mean_ci"][0] <= peer["mean"] <= peer["mean_ci"][1]
    assert format_table(result).splitlines()[-1].split() == [
        "highway-fast-v0", "(peer)", "3", "0.167", "[0.100,", "0.250]", "0.167", "[0.100,", "0.250]", "83%", "22.0", "-", "-"]
    report = Path(result["report"]).read_text()
    assert "| highway-fast-v0 (peer) | 3 | 0.167 [0.100, 0.250] |" in report
    assert "highway-env scripts/sb3_highway_dqn.py on highway-fast-v0" in report
    assert "20,000 steps, seeds 0, 1, 2" in report and str(peers[0]) in report
    # A metric the peer does not measure: its row keeps what it has, the rest is a dash.
    by_score = compare([runs], tmp_path / "by_score", metric="driving_score", bootstrap_reps=REPS, peer=peers)
    assert "iqm" not in by_score["peer"]
    assert format_table(by_score).splitlines()[-1].split() == ["highway-fast-v0", "(peer)", "3", "-", "-", "83%", "22.0", "-", "-"]


def test_a_bad_peer_file_or_a_peer_beside_lanekeep_runs_is_a_one_line_error(sweep: Path, tmp_path: Path):
    runs = tmp_path / "highway_runs"
    write_traffic_trial(runs, "dqn", 0, [0, 0], 25.0)
    broken = tmp_path / "broken.json"
    broken.write_text('{"env": "highway-fast-v0"')
    lacking = tmp_path / "lacking.json"
    lacking.write_text(json.dumps({"env": "highway-fast-v0", "seed": 0}))
    bad_rate = write_peer(tmp_path / "bad_rate.json", 0, 1.5, 22.0)
    for files, expected in (([broken], "cannot read it as JSON"), ([lacking], "lacks recipe, steps, episodes"),
                            ([bad_rate], r"collision_free_rate must be a number in \[0, 1\]"),
                            ([tmp_path / "missing.json"], "cannot read it as JSON")):
        with pytest.raises(ValueError, match=expected) as error:
            compare([runs], tmp_path / "out", peer=files, bootstrap_reps=REPS)
        assert len(str(error.value).splitlines()) == 1
    with pytest.raises(ValueError, match="--peer is for comparisons of DriveLab/Highway-v0 runs"):
        compare([sweep], tmp_path / "out", peer=[write_peer(tmp_path / "p.json", 0, 0.9, 22.0)], bootstrap_reps=REPS)
    assert not (tmp_path / "out").exists()  # nothing written


def write_game_trial(root: Path, game: str, seed: int, normalised: list[float]) -> None:
    """A finished Atari trial of agent 'ppo': its last evaluation's episodes have these human-normalised scores."""
    trial = root / game / "ppo" / f"seed-{seed}"
    trial.mkdir(parents=True)
    (trial / "status.json").write_text(json.dumps({"state": "done", "experiment": game, "agent": "ppo", "algo": "ppo",
                                                   "env_id": f"ALE/{game.title()}-v5", "seed": seed, "env_steps": 2000,
                                                   "wall_time_s": 60.0}))
    lines = ["env_steps,wall_time_s,episode,seed,score,human_normalized_score,frames,truncated"]
    for step, scores in ((1000, [0.0] * len(normalised)), (2000, normalised)):
        lines += [f"{step},30.0,{episode},{1000 + episode},{10 * score},{score},4000,0" for episode, score in enumerate(scores)]
    (trial / "evaluations.csv").write_text("\n".join(lines) + "\n")


def test_runs_of_several_games_are_also_aggregated_across_games_in_the_report(tmp_path: Path):
    runs = tmp_path / "runs"
    for game, finals in (("pong", [0.2, 0.4, 0.6]), ("breakout", [1.0, 3.0, 2.0])):
        for seed, final in enumerate(finals):
            write_game_trial(runs, game, seed, [final - 0.1, final + 0.1])
    result = compare([runs], tmp_path / "report", bootstrap_reps=REPS)
    (entry,) = result["across_games"]
    assert entry["games"] == ["breakout", "pong"] and entry["seeds"] == [0, 1, 2]
    assert entry["mean"] == pytest.approx(np.mean([0.2, 0.4, 0.6, 1.0, 3.0, 2.0]))
    # rliable's IQM (scipy's trim_mean at 0.25) cuts one of six from each end: 0.4, 0.6, 1.0 and 2.0 stay
    assert entry["iqm"] == pytest.approx(np.mean([0.4, 0.6, 1.0, 2.0]))
    assert entry["iqm_ci"][0] <= entry["iqm"] <= entry["iqm_ci"][1]
    report = Path(result["report"]).read_text()
    row = next(line for line in report.splitlines() if line.startswith("| ppo | breakout, pong | 3 |"))
    assert f"{entry['iqm']:.3f} [{entry['iqm_ci'][0]:.3f}, {entry['iqm_ci'][1]:.3f}]" in row
    assert json.loads(Path(result["comparison"]).read_text())["across_games"][0]["games"] == ["breakout", "pong"]
    # One game alone: nothing to aggregate across, and no such section.
    alone = compare([runs / "pong"], tmp_path / "pong_report", bootstrap_reps=REPS)
    assert alone["across_games"] == [] and "Across games" not in Path(alone["report"]).read_text()
