"""Compare agents from their run directories, locally and without an account.

``compare(run_dirs, out_dir)`` finds every trial below the given directories (a directory that holds a
``status.json`` is a trial: ``<out>/<experiment>/<agent>/seed-<seed>/``), keeps those whose state is
``done``, groups them by (experiment, agent) and writes into ``out_dir``:

- ``learning_curves.png``: per agent, the mean over seeds of each evaluation's mean ``metric`` against
  env steps, with a 95% percentile-bootstrap band across seeds;
- ``report.md``: the final-performance table, the figure, a link to each agent's last evaluation video (when
  its trials recorded videos, ``evaluation.video_every_steps``), the skipped trials and how the CIs were made;
- ``comparison.json``: the same numbers as ``compare`` returns.

Final performance follows rliable (Agarwal et al., 2021, "Deep RL at the Edge of the Statistical
Precipice"): each seed's score is the mean ``metric`` over the episodes of its last evaluation; across
seeds we report the interquartile mean (IQM) and the mean, each with a 95% stratified-bootstrap CI.

Bad input (a missing directory, no trials, no finished trial, an unknown metric) raises ``ValueError``
with one line, before anything is written.
"""

from __future__ import annotations

import csv
import json
import math
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from drivelab.experiments.trial import EVALUATIONS_CSV, STATUS_FILE, VIDEO_FILE, VIDEOS, write_atomic

LEARNING_CURVES_FILE = "learning_curves.png"
REPORT_FILE = "report.md"
COMPARISON_FILE = "comparison.json"

# evaluations.csv columns that say when and on what an episode ran, not how it went
BOOKKEEPING_COLUMNS = ("env_steps", "wall_time_s", "episode", "track_seed", "seed")
ROUTE_COMPLETION_TARGET = 0.95  # "steps to 95%": first evaluation whose mean route completion reaches this
# a mean of episodes that each completed exactly 95% comes out as 0.9499999…: that still counts
_TARGET_TOLERANCE = 1e-9
CONFIDENCE = 0.95
# trial directories hold big trees of their own (tensorboard/, wandb/); no trial lies inside a trial
_SEED_DIR_PREFIX = "seed-"


@dataclass
class Trial:
    """One finished trial: its status fields and its evaluation episodes, column by column."""

    run_dir: Path
    experiment: str
    agent: str
    algo: str | None
    seed: int | None
    env_steps: int | None
    wall_time_s: float | None
    evaluations: dict[str, np.ndarray]  # column -> one value per evaluation episode

    def per_evaluation_mean(self, column: str) -> tuple[np.ndarray, np.ndarray]:
        """(env steps of each evaluation, ascending; mean of ``column`` over that evaluation's episodes)."""
        steps = self.evaluations["env_steps"]
        values = self.evaluations[column]
        unique_steps = np.unique(steps)
        means = np.array([_nanmean(values[steps == step]) for step in unique_steps])
        return unique_steps, means

    def final_mean(self, column: str) -> float:
        """Mean of ``column`` over the episodes of the last evaluation (the largest env steps)."""
        if column not in self.evaluations:
            return math.nan
        steps = self.evaluations["env_steps"]
        return _nanmean(self.evaluations[column][steps == steps.max()])


# --------------------------------------------------------------------------------------------- finding trials


def find_trial_dirs(run_dir: Path) -> list[Path]:
    """Every directory at or below ``run_dir`` that holds a ``status.json``, sorted."""
    found = []
    for root, dirs, files in os.walk(run_dir):
        if STATUS_FILE in files:
            found.append(Path(root))
            dirs[:] = []  # a trial's own subfolders (tensorboard/, wandb/) hold no trials
        else:
            dirs.sort()
    return sorted(found)


def _number(text: str) -> float:
    text = text.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return 1.0 if lowered == "true" else 0.0
    if text == "":
        return math.nan
    return float(text)


def _read_evaluations(path: Path) -> tuple[list[str], dict[str, np.ndarray]]:
    with open(path, newline="") as handle:
        reader = csv.reader(handle)
        header = [name.strip() for name in next(reader, [])]
        rows = [row for row in reader if row]
    columns: dict[str, np.ndarray] = {}
    for index, name in enumerate(header):
        try:
            columns[name] = np.array([_number(row[index]) if index < len(row) else math.nan for row in rows], float)
        except ValueError:  # a text column: not a metric
            continue
    return header, columns


def _seed_from_dir(trial_dir: Path) -> int | None:
    name = trial_dir.name
    if name.startswith(_SEED_DIR_PREFIX) and name[len(_SEED_DIR_PREFIX):].lstrip("-").isdigit():
        return int(name[len(_SEED_DIR_PREFIX):])
    return None


def _load_trial(trial_dir: Path) -> tuple[Trial | None, dict[str, Any] | None]:
    """(the trial, None) when it is done and has evaluations, else (None, a 'skipped' entry)."""
    fallback_agent = trial_dir.parent.name
    fallback_experiment = trial_dir.parent.parent.name
    try:
        status = json.loads((trial_dir / STATUS_FILE).read_text())
        if not isinstance(status, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as error:
        return None, {"run_dir": str(trial_dir), "experiment": fallback_experiment, "agent": fallback_agent,
                      "seed": _seed_from_dir(trial_dir), "state": "unreadable",
                      "error": f"{STATUS_FILE}: {str(error).splitlines()[0] if str(error) else type(error).__name__}"}

    experiment = str(status.get("experiment") or fallback_experiment)
    agent = str(status.get("agent") or fallback_agent)
    seed = status.get("seed", _seed_from_dir(trial_dir))
    state = status.get("state")

    def skipped(state_word: Any, error: Any) -> tuple[None, dict[str, Any]]:
        return None, {"run_dir": str(trial_dir), "experiment": experiment, "agent": agent, "seed": seed,
                      "state": state_word, "error": error}

    if state != "done":
        return skipped(state, status.get("error"))
    evaluations_path = trial_dir / EVALUATIONS_CSV
    if not evaluations_path.is_file():
        return skipped(state, f"no {EVALUATIONS_CSV}")
    try:
        _, columns = _read_evaluations(evaluations_path)
    except (OSError, csv.Error, UnicodeDecodeError) as error:
        return skipped(state, f"{EVALUATIONS_CSV}: {error}")
    if "env_steps" not in columns or columns["env_steps"].size == 0 or np.isnan(columns["env_steps"]).all():
        return skipped(state, f"{EVALUATIONS_CSV} has no evaluation rows")
    keep = ~np.isnan(columns["env_steps"])
    columns = {name: values[keep] for name, values in columns.items()}

    env_steps = status.get("env_steps")
    wall_time_s = status.get("wall_time_s")
    trial = Trial(
        run_dir=trial_dir,
        experiment=experiment,
        agent=agent,
        algo=status.get("algo"),
        seed=int(seed) if seed is not None else None,
        env_steps=int(env_steps) if env_steps is not None else int(columns["env_steps"].max()),
        wall_time_s=float(wall_time_s) if wall_time_s is not None else None,
        evaluations=columns,
    )
    return trial, None


def discover(run_dirs: Sequence[Path]) -> tuple[list[Trial], list[dict[str, Any]]]:
    """Finished trials and skipped ones below ``run_dirs``; ``ValueError`` (one line) on bad input."""
    if not run_dirs:
        raise ValueError("no run directories given; pass one or more sweep, experiment, agent or trial directories")
    trial_dirs: list[Path] = []
    seen: set[Path] = set()
    for run_dir in map(Path, run_dirs):
        if not run_dir.exists():
            raise ValueError(f"run directory {str(run_dir)!r} does not exist; pass a sweep, experiment, agent or trial directory")
        if not run_dir.is_dir():
            raise ValueError(f"{str(run_dir)!r} is not a directory; pass a sweep, experiment, agent or trial directory")
        found = find_trial_dirs(run_dir)
        if not found:
            raise ValueError(f"no {STATUS_FILE} found under {str(run_dir)!r}; pass a directory written by 'drivelab sweep' or 'drivelab train'")
        for trial_dir in found:
            if trial_dir.resolve() not in seen:
                seen.add(trial_dir.resolve())
                trial_dirs.append(trial_dir)

    trials, skipped = [], []
    for trial_dir in trial_dirs:
        trial, skip = _load_trial(trial_dir)
        if trial is not None:
            trials.append(trial)
        else:
            skipped.append(skip)
    if not trials:
        states = ", ".join(f"{count} {state}" for state, count in _count_states(skipped).items())
        raise ValueError(f"no finished trial under {', '.join(repr(str(d)) for d in run_dirs)} ({states}); "
                         f"compare needs trials whose {STATUS_FILE} says state 'done' and that have evaluations")

    owner: dict[tuple[str, str, int | None], Path] = {}
    for trial in trials:
        key = (trial.experiment, trial.agent, trial.seed)
        if key in owner:
            raise ValueError(f"seed {trial.seed} of {trial.experiment}/{trial.agent} appears twice "
                             f"({owner[key]} and {trial.run_dir}); pass only one of them")
        owner[key] = trial.run_dir
    return trials, skipped


def latest_video(trials: Sequence[Trial]) -> dict[str, Any] | None:
    """The evaluation video with the most env steps among ``trials`` (the lowest seed's among equals), or None.

    :return: ``path`` (as found below the trial's run directory), ``env_steps``, ``seed`` and ``run_dir``.
    """
    best: dict[str, Any] | None = None
    for trial in sorted(trials, key=lambda trial: (trial.seed is None, trial.seed if trial.seed is not None else 0)):
        folder = trial.run_dir / VIDEOS
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            match = VIDEO_FILE.fullmatch(path.name)
            if match is None or not path.is_file():
                continue
            steps = int(match.group(1))
            if best is None or steps > best["env_steps"]:
                best = {"path": str(path), "env_steps": steps, "seed": trial.seed, "run_dir": str(trial.run_dir)}
    return best


def _count_states(skipped: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for entry in skipped:
        counts[str(entry["state"])] = counts.get(str(entry["state"]), 0) + 1
    return counts


# --------------------------------------------------------------------------------------------- statistics


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, float)
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def _import_rliable():
    """``rliable.library`` and ``rliable.metrics`` (imported late: they pull in pandas and arch)."""
    from rliable import library, metrics

    return library, metrics


def rliable_estimates(final_scores: np.ndarray, reps: int, seed: int) -> dict[str, Any]:
    """IQM and mean of per-seed final scores (one per run, or runs × tasks: seeds × games), each with a 95%
    stratified-bootstrap CI (rliable).

    rliable 1.2's ``StratifiedBootstrap.update_indices`` draws from numpy's global RNG (not the
    ``random_state`` it is given), so we seed the global RNG for the call and restore it afterwards.
    Each agent is seeded afresh, so its CI does not depend on which other agents are compared.
    """
    scores = np.asarray(final_scores, float)
    scores = scores.reshape(-1, 1) if scores.ndim == 1 else scores  # (num_runs, num_tasks)
    library, metrics = _import_rliable()

    def aggregates(matrix: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(matrix), metrics.aggregate_mean(matrix)])

    if scores.shape[0] < 2:
        iqm, mean = (float(value) for value in aggregates(scores))
        return {"iqm": iqm, "iqm_ci": [iqm, iqm], "mean": mean, "mean_ci": [mean, mean],
                "note": "1 seed: no bootstrap possible, CI shown as the point estimate"}

    saved = np.random.get_state()
    try:
        np.random.seed(seed)
        points, intervals = library.get_interval_estimates(
            {"agent": scores}, aggregates, method="percentile", reps=reps, confidence_interval_size=CONFIDENCE)
    finally:
        np.random.set_state(saved)
    point, interval = points["agent"], intervals["agent"]  # interval: rows (low, high), columns (iqm, mean)
    return {"iqm": float(point[0]), "iqm_ci": [float(interval[0, 0]), float(interval[1, 0])],
            "mean": float(point[1]), "mean_ci": [float(interval[0, 1]), float(interval[1, 1])], "note": None}


def bootstrap_curve(per_seed: list[tuple[np.ndarray, np.ndarray]], reps: int, rng: np.random.Generator) -> dict[str, list]:
    """Mean over seeds at each evaluation step, and a percentile-bootstrap 95% CI across seeds.

    Seeds may have evaluated at different steps (a different budget): each step uses the seeds that have it.
    """
    all_steps = np.unique(np.concatenate([steps for steps, _ in per_seed]))
    means, lows, highs = [], [], []
    alpha = (1.0 - CONFIDENCE) / 2.0
    for step in all_steps:
        values = np.array([curve[steps == step][0] for steps, curve in per_seed if np.any(steps == step)])
        values = values[~np.isnan(values)]
        if values.size == 0:
            means.append(math.nan), lows.append(math.nan), highs.append(math.nan)
            continue
        resampled = values[rng.integers(0, values.size, size=(reps, values.size))].mean(axis=1)
        low, high = np.quantile(resampled, [alpha, 1.0 - alpha])
        means.append(float(values.mean())), lows.append(float(low)), highs.append(float(high))
    return {"env_steps": [int(step) for step in all_steps], "mean": means, "ci_low": lows, "ci_high": highs}


def steps_to_route_completion(trial: Trial, target: float = ROUTE_COMPLETION_TARGET) -> float:
    """Env steps of the first evaluation whose mean route completion is ≥ ``target``; inf if none is."""
    if "route_completion" not in trial.evaluations:
        return math.nan
    steps, completion = trial.per_evaluation_mean("route_completion")
    reached = np.flatnonzero(completion >= target - _TARGET_TOLERANCE)
    return float(steps[reached[0]]) if reached.size else math.inf


def _json_number(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def _summarise(label: str, trials: list[Trial], metric: str, reps: int, seed: int) -> dict[str, Any]:
    trials = sorted(trials, key=lambda trial: (trial.seed is None, trial.seed if trial.seed is not None else 0))
    final_scores = np.array([trial.final_mean(metric) for trial in trials])
    estimates = rliable_estimates(final_scores, reps, seed)

    # a seed that never reaches 95% counts as infinitely slow: the median is then finite only if most seeds got there
    reach = np.array([steps_to_route_completion(trial) for trial in trials])
    has_completion = ~np.isnan(reach)
    steps_to_target = float(np.median(reach[has_completion])) if has_completion.any() else math.nan
    wall_times = [trial.wall_time_s for trial in trials if trial.wall_time_s is not None]
    algos = sorted({trial.algo for trial in trials if trial.algo})

    # seeded per agent, like rliable's CIs: an agent's band does not depend on the others compared
    curve = bootstrap_curve([trial.per_evaluation_mean(metric) for trial in trials], reps, np.random.default_rng(seed))
    return {
        "agent": label,
        "experiment": trials[0].experiment,
        "algo": algos[0] if len(algos) == 1 else (algos or None),
        "seeds": len(trials),
        "seed_ids": [trial.seed for trial in trials],
        "final_scores": [_json_number(score) for score in final_scores],
        "iqm": estimates["iqm"],
        "iqm_ci": estimates["iqm_ci"],
        "mean": estimates["mean"],
        "mean_ci": estimates["mean_ci"],
        "lateral_error_rms": _json_number(_nanmean(np.array([t.final_mean("lateral_error_rms") for t in trials]))),
        "off_road_rate": _json_number(_nanmean(np.array([t.final_mean("off_road") for t in trials]))),
        "steps_to_95pct_route_completion": _json_number(steps_to_target),
        "seeds_reaching_95pct": int(np.sum(np.isfinite(reach))) if has_completion.any() else None,
        "wall_time_s": float(np.median(wall_times)) if wall_times else None,
        "env_steps": max(trial.env_steps for trial in trials if trial.env_steps is not None),
        "note": estimates["note"],
        "run_dirs": [str(trial.run_dir) for trial in trials],
        "learning_curve": curve,
        "video": latest_video(trials),
        **_human_normalized(trials, reps, seed),
        **_traffic(trials),
    }


def _traffic(trials: list[Trial]) -> dict[str, Any]:
    """A highway agent's last evaluation in traffic, means over seeds: collision rate, speed, driving score."""
    if not all("driving_score" in trial.evaluations for trial in trials):
        return {}
    return {"collision_rate": _json_number(_nanmean(np.array([t.final_mean("collision") for t in trials]))),
            "mean_speed": _json_number(_nanmean(np.array([t.final_mean("mean_speed") for t in trials]))),
            "driving_score": _json_number(_nanmean(np.array([t.final_mean("driving_score") for t in trials])))}


HUMAN_NORMALIZED = "human_normalized_score"


def _human_normalized(trials: list[Trial], reps: int, seed: int) -> dict[str, Any]:
    """An Atari agent's final human-normalised score: IQM and mean over seeds with their CIs (nothing for others)."""
    if not all(HUMAN_NORMALIZED in trial.evaluations for trial in trials):
        return {}
    estimates = rliable_estimates(np.array([trial.final_mean(HUMAN_NORMALIZED) for trial in trials]), reps, seed)
    return {"human_normalized_iqm": estimates["iqm"], "human_normalized_iqm_ci": estimates["iqm_ci"],
            "human_normalized_mean": estimates["mean"], "human_normalized_mean_ci": estimates["mean_ci"]}


def across_games(trials: list[Trial], reps: int, seed: int) -> list[dict[str, Any]]:
    """Per agent name, the human-normalised score over several Atari games (one experiment per game), as rliable
    aggregates it: IQM and mean over the seeds × games matrix, stratified-bootstrap CIs. Only the seeds that every
    game has count (the matrix is rectangular); agents found in fewer than two games are left out."""
    by_agent: dict[str, dict[str, dict[int, float]]] = {}
    for trial in trials:
        if HUMAN_NORMALIZED in trial.evaluations and trial.seed is not None:
            by_agent.setdefault(trial.agent, {}).setdefault(trial.experiment, {})[trial.seed] = trial.final_mean(HUMAN_NORMALIZED)
    summaries = []
    for agent, games in sorted(by_agent.items()):
        seeds = sorted(set.intersection(*(set(scores) for scores in games.values())))
        if len(games) < 2 or not seeds:
            continue
        matrix = np.array([[games[game][s] for game in sorted(games)] for s in seeds])
        estimates = rliable_estimates(matrix, reps, seed)
        summaries.append({"agent": agent, "games": sorted(games), "seeds": seeds, "iqm": estimates["iqm"],
                          "iqm_ci": estimates["iqm_ci"], "mean": estimates["mean"], "mean_ci": estimates["mean_ci"]})
    return summaries


PEER_KEYS = ("env", "recipe", "steps", "seed", "episodes", "collision_free_rate", "mean_speed")
# the metrics a peer's results file gives, as evaluations.csv names them
PEER_METRICS = ("collision", "mean_speed")


def read_peer(paths: Sequence[Path], metric: str, reps: int, seed: int) -> dict[str, Any]:
    """A peer's learning results beside ours: ``benchmarks/highway_env_dqn.py --json`` files, one per seed, read as
    plain JSON. Their collision rates and mean speeds are averaged over seeds; where ``metric`` is one of those,
    its IQM and mean get CIs as the agents' do.

    :raises ValueError: one line, naming the file, for a missing or unreadable file or one without the keys.
    """
    runs = []
    for path in paths:
        try:
            run = json.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"peer results {str(path)!r}: cannot read it as JSON ({type(error).__name__}); give the "
                             f"output of benchmarks/highway_env_dqn.py --json") from None
        missing = [key for key in PEER_KEYS if not isinstance(run, dict) or key not in run]
        if missing:
            raise ValueError(f"peer results {str(path)!r} lacks {', '.join(missing)}; give the output of "
                             f"benchmarks/highway_env_dqn.py --json")
        figures = [run[key] for key in ("collision_free_rate", "mean_speed")]
        if not all(isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) for value in figures) \
                or not 0.0 <= run["collision_free_rate"] <= 1.0:
            raise ValueError(f"peer results {str(path)!r}: collision_free_rate must be a number in [0, 1] and mean_speed "
                             f"a finite number, got {figures[0]!r} and {figures[1]!r}")
        runs.append(run)
    if len({(run["env"], run["recipe"], run["steps"]) for run in runs}) > 1:
        raise ValueError("peer results mix envs, recipes or step budgets; give one peer's seeds")
    runs.sort(key=lambda run: run["seed"])
    collision = np.array([1.0 - float(run["collision_free_rate"]) for run in runs])
    speed = np.array([float(run["mean_speed"]) for run in runs])
    peer = {"agent": f"{runs[0]['env']} (peer)", "env": runs[0]["env"], "recipe": runs[0]["recipe"],
            "steps": runs[0]["steps"], "seeds": len(runs), "seed_ids": [run["seed"] for run in runs],
            "episodes": [run["episodes"] for run in runs], "collision_rate": float(collision.mean()),
            "mean_speed": float(speed.mean()), "files": [str(path) for path in paths]}
    if metric in PEER_METRICS:
        estimates = rliable_estimates(collision if metric == "collision" else speed, reps, seed)
        peer.update(iqm=estimates["iqm"], iqm_ci=estimates["iqm_ci"], mean=estimates["mean"], mean_ci=estimates["mean_ci"],
                    note=estimates["note"])
    return peer


# --------------------------------------------------------------------------------------------- the entry point


def compare(run_dirs: list[Path], out_dir: Path, metric: str | None = None,
            bootstrap_reps: int = 2000, seed: int = 0, peer: Sequence[Path] = ()) -> dict:
    """Compare the agents of finished trials below ``run_dirs``; write the figure, report and JSON to ``out_dir``.

    :param run_dirs: sweep output, experiment, agent or single-trial directories (anything with
        ``status.json`` files below it).
    :param out_dir: where ``learning_curves.png``, ``report.md`` and ``comparison.json`` go (created).
    :param metric: an ``evaluations.csv`` column; the final score of a seed is its mean over the last
        evaluation's episodes. Default: ``score`` (the raw game score) when every trial is an Atari game's,
        else ``route_completion``.
    :param bootstrap_reps: bootstrap resamples, for rliable's CIs and for the learning-curve bands.
    :param seed: seeds both bootstraps, so the same inputs give the same CIs.
    :param peer: a highway comparison's peer, shown beside the agents: the ``--json`` outputs of
        ``benchmarks/highway_env_dqn.py``, one per seed (:func:`read_peer`).
    :return: the content of ``comparison.json``: ``agents`` (one dict per agent, its last evaluation video
        under ``video``: ``path`` relative to ``out_dir``, ``env_steps``, ``seed``, ``run_dir``; or None),
        ``videos`` (agent → that video's path relative to ``out_dir``, for the agents that have one),
        ``metric``, ``skipped``, and the paths ``out_dir``, ``report``, ``learning_curves``, ``comparison``.
    :raises ValueError: one line, before anything is written, for bad input.
    """
    if bootstrap_reps < 1:
        raise ValueError(f"bootstrap_reps must be a positive integer, got {bootstrap_reps}")
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"output directory {str(out_dir)!r} is a file; pass a directory (it is created if missing)")
    trials, skipped = discover(run_dirs)
    if metric is None:
        metric = "score" if trials and all("score" in trial.evaluations for trial in trials) else "route_completion"
    for trial in trials:
        if metric not in trial.evaluations:
            allowed = [name for name in trial.evaluations if name not in BOOKKEEPING_COLUMNS]
            raise ValueError(f"metric {metric!r} is not a column of {trial.run_dir / EVALUATIONS_CSV}; "
                             f"allowed: {', '.join(allowed)}")

    groups: dict[tuple[str, str], list[Trial]] = {}
    for trial in trials:
        groups.setdefault((trial.experiment, trial.agent), []).append(trial)
    several_experiments = len({experiment for experiment, _ in groups}) > 1
    agents = [_summarise(f"{experiment}/{agent}" if several_experiments else agent, group, metric,
                         bootstrap_reps, seed)
              for (experiment, agent), group in sorted(groups.items())]
    peer_summary = None
    if peer:
        if not agents or not all("driving_score" in agent for agent in agents):
            raise ValueError("--peer is for comparisons of DriveLab/Highway-v0 runs (highway-env's figures beside them)")
        peer_summary = read_peer(peer, metric, bootstrap_reps, seed)
    for agent in agents:
        if agent["video"] is not None:  # as the report links it: relative to the report's directory
            agent["video"]["path"] = Path(os.path.relpath(os.path.abspath(agent["video"]["path"]),
                                                          os.path.abspath(out_dir))).as_posix()

    result: dict[str, Any] = {
        "metric": metric,
        "run_dirs": [str(run_dir) for run_dir in run_dirs],
        "out_dir": str(out_dir),
        "report": str(out_dir / REPORT_FILE),
        "learning_curves": str(out_dir / LEARNING_CURVES_FILE),
        "comparison": str(out_dir / COMPARISON_FILE),
        "bootstrap_reps": bootstrap_reps,
        "seed": seed,
        "ci_method": ci_method_sentence(bootstrap_reps),
        "agents": agents,
        "videos": {agent["agent"]: agent["video"]["path"] for agent in agents if agent["video"] is not None},
        "across_games": across_games(trials, bootstrap_reps, seed),
        "peer": peer_summary,
        "skipped": skipped,
    }
    png = render_learning_curves(result)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / LEARNING_CURVES_FILE, png)
    write_atomic(out_dir / REPORT_FILE, render_report(result))
    write_atomic(out_dir / COMPARISON_FILE, json.dumps(result, indent=2, allow_nan=False) + "\n")
    return result


# --------------------------------------------------------------------------------------------- rendering


def ci_method_sentence(bootstrap_reps: int) -> str:
    return (f"Final score per seed: mean over the last evaluation's episodes. Aggregates across seeds: "
            f"interquartile mean (IQM) and mean, with {CONFIDENCE:.0%} confidence intervals from rliable's "
            f"stratified bootstrap (percentile method, {bootstrap_reps} resamples). Learning-curve bands: "
            f"{CONFIDENCE:.0%} percentile bootstrap over seeds at each evaluation step.")


def render_learning_curves(result: dict[str, Any]) -> bytes:
    """The learning-curve figure as PNG bytes."""
    import io

    # Figure + Agg canvas, no pyplot: no global backend switch, nothing left open
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 5), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for agent in result["agents"]:
        curve = agent["learning_curve"]
        steps = np.array(curve["env_steps"], float)
        mean = np.array(curve["mean"], float)
        (line,) = axes.plot(steps, mean, marker="o", markersize=3, label=f"{agent['agent']} (n={agent['seeds']})")
        axes.fill_between(steps, np.array(curve["ci_low"], float), np.array(curve["ci_high"], float),
                          color=line.get_color(), alpha=0.2, linewidth=0)
    axes.set_xlabel("env steps")
    axes.set_ylabel(result["metric"])
    axes.set_title(f"{result['metric']}: mean over seeds, {CONFIDENCE:.0%} bootstrap CI")
    axes.grid(True, alpha=0.3)
    axes.legend(loc="best")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


TABLE_COLUMNS = ("agent", "seeds", "IQM [95% CI]", "mean [95% CI]", "lateral RMS (m)", "off-road",
                 "steps to 95%", "wall time")


def _format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def _format_value(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


GAME_TABLE_COLUMNS = ("agent", "seeds", "IQM [95% CI]", "mean [95% CI]", "human-normalised IQM [95% CI]", "wall time")
TRAFFIC_TABLE_COLUMNS = ("agent", "seeds", "IQM [95% CI]", "mean [95% CI]", "collision-free", "mean speed (m/s)",
                         "driving score", "wall time")


def _is_games(result: dict[str, Any]) -> bool:
    return bool(result["agents"]) and all("human_normalized_iqm" in agent for agent in result["agents"])


def _is_traffic(result: dict[str, Any]) -> bool:
    return bool(result["agents"]) and all("driving_score" in agent for agent in result["agents"])


def table_columns(result: dict[str, Any]) -> tuple[str, ...]:
    return GAME_TABLE_COLUMNS if _is_games(result) else TRAFFIC_TABLE_COLUMNS if _is_traffic(result) else TABLE_COLUMNS


def table_rows(result: dict[str, Any]) -> list[list[str]]:
    """One row of cells per agent, in ``table_columns(result)`` order."""
    rows = []
    if _is_games(result):
        for agent in result["agents"]:
            low, high = agent["human_normalized_iqm_ci"]
            rows.append([agent["agent"], str(agent["seeds"]),
                         f"{agent['iqm']:.3f} [{agent['iqm_ci'][0]:.3f}, {agent['iqm_ci'][1]:.3f}]",
                         f"{agent['mean']:.3f} [{agent['mean_ci'][0]:.3f}, {agent['mean_ci'][1]:.3f}]",
                         f"{agent['human_normalized_iqm']:.3f} [{low:.3f}, {high:.3f}]", _format_seconds(agent["wall_time_s"])])
        return rows
    if _is_traffic(result):
        for agent in result["agents"]:
            rows.append([agent["agent"], str(agent["seeds"]),
                         f"{agent['iqm']:.3f} [{agent['iqm_ci'][0]:.3f}, {agent['iqm_ci'][1]:.3f}]",
                         f"{agent['mean']:.3f} [{agent['mean_ci'][0]:.3f}, {agent['mean_ci'][1]:.3f}]",
                         f"{1.0 - agent['collision_rate']:.0%}", f"{agent['mean_speed']:.1f}", f"{agent['driving_score']:.3f}",
                         _format_seconds(agent["wall_time_s"])])
        peer = result.get("peer")
        if peer is not None:  # what the peer's results give; the rest it does not measure
            estimate = ("-", "-") if "iqm" not in peer else (
                f"{peer['iqm']:.3f} [{peer['iqm_ci'][0]:.3f}, {peer['iqm_ci'][1]:.3f}]",
                f"{peer['mean']:.3f} [{peer['mean_ci'][0]:.3f}, {peer['mean_ci'][1]:.3f}]")
            rows.append([peer["agent"], str(peer["seeds"]), *estimate, f"{1.0 - peer['collision_rate']:.0%}",
                         f"{peer['mean_speed']:.1f}", "-", "-"])
        return rows
    for agent in result["agents"]:
        steps = agent["steps_to_95pct_route_completion"]
        if steps is None:
            steps_cell = "never" if agent.get("seeds_reaching_95pct") is not None else "-"
        else:
            steps_cell = f"{int(round(steps)):,}"
        off_road = agent["off_road_rate"]
        rows.append([
            agent["agent"],
            str(agent["seeds"]),
            f"{agent['iqm']:.3f} [{agent['iqm_ci'][0]:.3f}, {agent['iqm_ci'][1]:.3f}]",
            f"{agent['mean']:.3f} [{agent['mean_ci'][0]:.3f}, {agent['mean_ci'][1]:.3f}]",
            _format_value(agent["lateral_error_rms"]),
            "-" if off_road is None else f"{100 * off_road:.1f}%",
            steps_cell,
            _format_seconds(agent["wall_time_s"]),
        ])
    return rows


def format_table(result: dict[str, Any]) -> str:
    """Fixed-width text table of the final performance, one line per agent, for the terminal."""
    columns = table_columns(result)
    table = [list(columns)] + table_rows(result)
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    lines = ["  ".join(cell.ljust(width) if i == 0 else cell.rjust(width)
                       for i, (cell, width) in enumerate(zip(line, widths))).rstrip() for line in table]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def format_markdown_table(result: dict[str, Any]) -> str:
    def escape(cell: str) -> str:
        return cell.replace("|", "\\|")

    columns = table_columns(result)
    lines = ["| " + " | ".join(columns) + " |",
             "| " + " | ".join(["---"] + ["---:"] * (len(columns) - 1)) + " |"]
    lines += ["| " + " | ".join(escape(cell) for cell in row) + " |" for row in table_rows(result)]
    return "\n".join(lines)


def render_report(result: dict[str, Any]) -> str:
    """``report.md``: run directories, the table, the figure (by relative path), skipped trials, the CI method."""
    metric = result["metric"]
    lines = [f"# Agent comparison: {metric}", "", "Run directories:", ""]
    lines += [f"- `{run_dir}`" for run_dir in result["run_dirs"]]
    lines += ["", f"## Final performance ({metric})", "", format_markdown_table(result), ""]
    if _is_traffic(result):
        explained = ("Collision-free is the share of the last evaluation's episodes without a collision, mean speed (m/s) and "
                     "driving score (route completion × infraction penalties) its means; each is averaged over seeds, and "
                     "wall time is the median over seeds.")
        peer = result.get("peer")
        if peer is not None:
            explained += (f" The last row is the peer, on its own env: {peer['recipe']} on {peer['env']}, {peer['steps']:,} "
                          f"steps, seeds {', '.join(str(s) for s in peer['seed_ids'])}, each evaluated on "
                          f"{', '.join(str(n) for n in peer['episodes'])} episodes by its deterministic policy; its mean "
                          f"speed is over every decision (results from {', '.join(f'`{f}`' for f in peer['files'])}).")
    elif _is_games(result):
        explained = ("Scores are raw game scores of whole games (no reward clipping, every life, up to 108,000 frames); "
                     "human-normalised is (score − random) / (human − random) with the random and human scores of the "
                     "DQN Nature paper (Mnih et al., 2015); wall time is the median over seeds.")
    else:
        explained = (f"Lateral RMS and off-road are means over seeds of the last evaluation; steps to 95% is the median "
                     f"over seeds of the first evaluation whose mean route completion reaches {ROUTE_COMPLETION_TARGET:.0%} "
                     f"(a seed that never does counts as never); wall time is the median over seeds.")
    lines += [result["ci_method"], "", explained, ""]
    if result.get("across_games"):
        lines += ["## Across games (human-normalised)", "",
                  "| agent | games | seeds | IQM [95% CI] | mean [95% CI] |", "| --- | --- | ---: | ---: | ---: |"]
        for entry in result["across_games"]:
            lines.append(f"| {entry['agent']} | {', '.join(entry['games'])} | {len(entry['seeds'])} | "
                         f"{entry['iqm']:.3f} [{entry['iqm_ci'][0]:.3f}, {entry['iqm_ci'][1]:.3f}] | "
                         f"{entry['mean']:.3f} [{entry['mean_ci'][0]:.3f}, {entry['mean_ci'][1]:.3f}] |")
        lines += ["", "Over the seeds × games matrix of final human-normalised scores, stratified bootstrap over "
                      "seeds within each game (rliable).", ""]
    notes = [f"- {agent['agent']}: {agent['note']}" for agent in result["agents"] if agent.get("note")]
    if notes:
        lines += ["Notes:", "", *notes, ""]
    lines += ["## Learning curves", "", f"![learning curves]({LEARNING_CURVES_FILE})", ""]
    videos = [agent for agent in result["agents"] if agent.get("video")]
    if videos:
        lines += ["## Videos", "", "Each agent's last evaluation video (the most env steps among its seeds, the lowest "
                                   "seed among equals): the first evaluation track, driven by the deterministic policy.", ""]
        for agent in videos:
            video = agent["video"]
            lines.append(f"- {agent['agent']}: [seed {video['seed']}, {video['env_steps']:,} env steps]"
                         f"({urllib.parse.quote(video['path'])})")
        lines.append("")
    lines += ["## Skipped trials", ""]
    if result["skipped"]:
        for entry in result["skipped"]:
            error = f": {entry['error']}" if entry.get("error") else ""
            lines.append(f"- `{entry['run_dir']}` ({entry['experiment']}/{entry['agent']}, seed {entry['seed']}): "
                         f"{entry['state']}{error}")
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"
