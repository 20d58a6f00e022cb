"""One trial: one agent, one seed, trained and evaluated into its own run directory.

Reading order, as in a CleanRL script: resolve the config → own the run directory → prepare it →
make the envs → make (or resume) the agent → learn with callbacks (evaluation, checkpoints, W&B) → save.

The run directory ``<out>/<experiment>/<agent>/seed-<seed>/`` holds everything about the trial:

- ``config.yaml``: the resolved trial config (presets applied);
- ``status.json``: state (running / done / failed / interrupted), env steps, wall time, error, attempts,
  and the host and pid of the process that runs it;
- ``owner.lock`` and ``owner.json``: the lock and the heartbeat record of the one process that runs
  the trial (see :mod:`drivelab.experiments.ownership`); ``owner.json`` is removed when it stops;
- ``checkpoints/``: the latest checkpoint (model, optimizer, DQN replay buffer, step counter, next
  evaluation), written into a fresh folder and switched to by one atomic rename of ``latest.json``;
- ``evaluations.csv`` (one row per evaluation episode) and ``evaluation.json`` (the final one);
- ``videos/`` (with ``evaluation.video_every_steps``): ``eval_<env steps, 8 digits>.mp4``, dashboard videos of
  one evaluation episode (see :class:`Recorder`);
- ``model.zip``: the final model; ``tensorboard/``; ``wandb/`` (the W&B run, offline by default).

A trial killed at any moment and started again with the same command resumes from its last
checkpoint: the model with its optimizer state, the replay buffer, and the step counter. A trial
stopped by a signal (see :mod:`drivelab.experiments.interruption`) writes a checkpoint where it
stopped first, and is marked ``interrupted``. A second process on a trial that a live process owns is
refused before it writes anything.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import socket
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable

import yaml

from drivelab.agents.presets import LEARNING_ALGOS
from drivelab.envs.atari import is_atari
from drivelab.experiments import interruption
from drivelab.experiments.config import ConfigError
from drivelab.experiments.evaluation import (CSV_COLUMNS, FLAG_COLUMNS, GAME_CSV_COLUMNS, csv_columns, evaluate,
                                             evaluation_track_seeds, summarize, summarize_games)
from drivelab.experiments.ownership import TrialOwnership, TrialOwnershipLost
from drivelab.perception.dataset import write_stream_atomic

STATUS_FILE = "status.json"
CONFIG_FILE = "config.yaml"
EVALUATIONS_CSV = "evaluations.csv"
EVALUATION_JSON = "evaluation.json"
MODEL_FILE = "model.zip"
CHECKPOINTS = "checkpoints"
LATEST = "latest.json"
VIDEOS = "videos"
VIDEO_FILE = re.compile(r"eval_(\d+)\.mp4")  # a finished video; one being written has a hidden partial name


def video_path(run_dir: Path, env_steps: int) -> Path:
    """Where the evaluation video of the model at ``env_steps`` goes: ``videos/eval_00012000.mp4``."""
    return Path(run_dir) / VIDEOS / f"eval_{int(env_steps):08d}.mp4"


def recorded_videos(run_dir: Path) -> dict[int, Path]:
    """The finished evaluation videos of a run directory, by env steps (partial files are not among them)."""
    folder = Path(run_dir) / VIDEOS
    if not folder.is_dir():
        return {}
    found = {}
    for path in folder.iterdir():
        match = VIDEO_FILE.fullmatch(path.name)
        if match and path.is_file():
            found[int(match.group(1))] = path
    return dict(sorted(found.items()))


def trial_dir(out: Path, experiment: str, agent: str, seed: int) -> Path:
    return Path(out) / experiment / agent / f"seed-{seed}"


class TrialAlreadyDone(Exception):
    """The trial was found done once its run directory was owned (another process had just finished
    it); it was not trained again and nothing was written. ``status`` is its status."""

    def __init__(self, run_dir: Path, status: dict[str, Any]) -> None:
        super().__init__(f"{run_dir} is already done")
        self.status = status


class TrialInterrupted(Exception):
    """A stop was requested (SIGINT or SIGTERM): the trial was checkpointed and marked ``interrupted``,
    or, with ``started`` False, the stop came before it started and nothing was written."""

    def __init__(self, message: str, *, started: bool = True) -> None:
        super().__init__(message)
        self.started = started


# -- small atomic file helpers ------------------------------------------------------------------

def write_atomic(path: Path, data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that a reader (or a crash) sees the old or the new file, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_stream_atomic(path, lambda stream: stream.write(data.encode() if isinstance(data, str) else data))


def read_status(run_dir: Path) -> dict[str, Any] | None:
    path = Path(run_dir) / STATUS_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def write_status(run_dir: Path, status: dict[str, Any]) -> None:
    write_atomic(Path(run_dir) / STATUS_FILE, json.dumps(status, indent=2) + "\n")


# -- checkpoints -------------------------------------------------------------------------------

def save_checkpoint(model, run_dir: Path, extra: dict[str, Any], replay_buffer: bool = True) -> Path:
    """Model (with optimizer state), replay buffer when there is one (and ``replay_buffer``), and the step counter."""
    checkpoints = run_dir / CHECKPOINTS
    checkpoints.mkdir(exist_ok=True)
    steps = int(model.num_timesteps)
    staging = Path(tempfile.mkdtemp(dir=checkpoints, prefix=".staging-"))
    model.save(staging / "model.zip")
    if replay_buffer and getattr(model, "replay_buffer", None) is not None:
        model.save_replay_buffer(staging / "replay_buffer.pkl")
    (staging / "state.json").write_text(json.dumps({"env_steps": steps, **extra}))
    final = checkpoints / f"step-{steps:09d}"
    if final.exists():
        shutil.rmtree(final)
    os.replace(staging, final)
    write_atomic(checkpoints / LATEST, json.dumps({"path": final.name, "env_steps": steps}))
    for old in checkpoints.iterdir():
        if old.is_dir() and old != final:
            shutil.rmtree(old, ignore_errors=True)
    return final


def refill_steps(hyperparams: dict[str, Any]) -> int:
    """Env steps a DQN resumed without its replay buffer collects before it learns again: as many as
    it collected before its first update (``learning_starts``, SB3's default 100), but no more than the
    buffer holds."""
    return min(int(hyperparams.get("learning_starts", 100)), int(hyperparams.get("buffer_size", 1_000_000)))


def _size_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir() if path.is_file())


def latest_checkpoint(run_dir: Path) -> Path | None:
    pointer = run_dir / CHECKPOINTS / LATEST
    if not pointer.is_file():
        return None
    path = run_dir / CHECKPOINTS / json.loads(pointer.read_text())["path"]
    return path if (path / "model.zip").is_file() else None


# -- evaluation records --------------------------------------------------------------------------

def _keep_evaluations_up_to(run_dir: Path, env_steps: int) -> None:
    """On resume, drop evaluation rows written after the checkpoint: they will be made again."""
    path = run_dir / EVALUATIONS_CSV
    if not path.is_file():
        return
    with path.open() as stream:
        reader = csv.DictReader(stream)
        rows = [row for row in reader if int(row["env_steps"]) <= env_steps]
    kept = io.StringIO()
    writer = csv.DictWriter(kept, fieldnames=reader.fieldnames or CSV_COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, kept.getvalue())


def _evaluation_summary_at(run_dir: Path, env_steps: int) -> dict[str, float]:
    """The summary of the evaluation recorded at ``env_steps`` in evaluations.csv (by an earlier attempt)."""
    with (run_dir / EVALUATIONS_CSV).open() as stream:
        rows = [row for row in csv.DictReader(stream) if int(row["env_steps"]) == env_steps]
    if rows and "score" in rows[0]:  # an Atari game's
        return summarize_games([{"score": float(row["score"]), "human_normalized_score": float(row["human_normalized_score"]),
                                 "truncated": bool(int(row["truncated"]))} for row in rows])
    return summarize([{**{key: float(row[key]) for key in ("route_completion", "lateral_error_rms", "mean_speed", "return")},
                       "off_road": bool(int(row["off_road"])),
                       **({"collision": bool(int(row["collision"])),
                           **{key: float(row[key]) for key in ("lane_changes", "headway_violations", "driving_score")}}
                          if "driving_score" in row else {})} for row in rows])


def _append_evaluation_rows(path: Path, rows: list[dict[str, Any]], columns: tuple[str, ...] = CSV_COLUMNS) -> None:
    new_file = not path.is_file()
    with path.open("a", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns, extrasaction="ignore")
        if new_file:
            writer.writeheader()
        for row in rows:
            flags = {name: int(bool(row[name])) for name in FLAG_COLUMNS if name in row}
            writer.writerow({**row, **flags})
        stream.flush()
        os.fsync(stream.fileno())


class _FilmingStopped(Exception):
    """A stop request came while an evaluation video was being filmed; the partial video is gone."""


def _stop_between_steps(env, should_stop: Callable[[], bool]):
    """``env`` raising :class:`_FilmingStopped` before a step once ``should_stop()``: what lets a stop request
    end a video's episode at the next env step, as it ends training (the viewer drives the episode itself)."""
    import gymnasium as gym

    class StopBetweenSteps(gym.Wrapper):
        def step(self, action):
            if should_stop():
                raise _FilmingStopped()
            return self.env.step(action)

    return StopBetweenSteps(env)


def _stoppable_game(env_id: str, should_stop: Callable[[], bool], **options: Any):
    """An Atari game (:class:`~drivelab.envs.atari.AtariGame`) raising :class:`_FilmingStopped` before a step
    once ``should_stop()``, as :func:`_stop_between_steps` does for a driving env."""
    from drivelab.envs.atari import AtariGame

    class StoppableGame(AtariGame):
        def step(self, action: int):
            if should_stop():
                raise _FilmingStopped()
            return super().step(action)

    return StoppableGame(env_id, **options)


class Recorder:
    """Evaluates an agent and records the result: CSV rows and W&B, and, with ``evaluation.video_every_steps``
    (V), evaluation videos.

    When videos are on, an evaluation at ``S`` env steps also films one episode on the dashboard
    (:func:`drivelab.viewer.watch.record_episode`) into ``videos/eval_<S>.mp4`` when no video yet
    exists for the multiple of V that ``S`` passed (the videos' steps divided by V, rounded down,
    differ from S's): the first evaluation at or after 0, V, 2V, ... is filmed. The model at the end
    of training is always filmed (``final``), and a scripted agent's single evaluation is filmed once,
    named by the budget. The episode is the one evaluation drives first: the first evaluation track,
    the deterministic policy, the same agent (frame stacking included) in the same env; the video's
    frames are its steps and then 2 s of the metrics card. A video whose file exists is never filmed
    again (a resumed trial keeps its videos); a stop request ends the episode at the next env step and
    leaves no file (the video is written under a hidden temporary name and renamed when complete).
    The video goes to W&B as ``eval/video`` at ``S``. An Atari trial films one whole game on the game's
    dashboard (:mod:`drivelab.viewer.atari`), from the evaluation's first start seed with the actions drawn
    as evaluation draws them: a game like the recorded ones, not a replay of one of them.
    """

    def __init__(self, trial: dict[str, Any], run_dir: Path, tracker, clock_origin: float,
                 should_stop: Callable[[], bool] = lambda: False) -> None:
        from drivelab.agents.factory import make_env

        self.trial, self.run_dir, self.tracker, self.clock_origin = trial, run_dir, tracker, clock_origin
        self.should_stop = should_stop
        evaluation = trial["evaluation"]
        self.track_seeds = evaluation_track_seeds(evaluation["first_track_seed"], evaluation["episodes"])
        self.atari = is_atari(trial["env_id"])
        # An Atari game is evaluated in an env of its own per evaluation (drivelab.envs.atari.evaluate_game).
        self.env = None if self.atari else make_env(trial["env_id"], trial["env_options"], trial["action"],
                                                    scaled=trial["algo"] in LEARNING_ALGOS)
        self.seconds_evaluating = 0.0
        self.checkpoint_times: list[tuple[float, int]] = []  # (seconds, bytes) of each checkpoint made while learning
        self.video_every: int | None = evaluation.get("video_every_steps")
        self.seconds_filming = 0.0
        self.last: dict[str, float] | None = None
        if self.video_every:
            # We own the run directory: a partial video in it was left by an attempt that was killed.
            for partial in (run_dir / VIDEOS).glob(".eval_*.partial-*"):
                partial.unlink(missing_ok=True)

    def evaluate(self, agent, env_steps: int, record_as: tuple[int, ...] | None = None,
                 final: bool = False) -> list[dict[str, Any]] | None:
        """One episode per evaluation track, recorded at ``env_steps`` (or at each of ``record_as``), and
        the video due then, if any (named by the last of ``record_as``); ``final``: the model is the last.

        A model trained on stacked frames drives the single evaluation env through an agent that
        stacks them as training did (:func:`~drivelab.agents.factory.single_env_agent`).

        :return: the episodes, or None, with nothing recorded, when a stop came before the last one
            or during the video.
        """
        if self.atari:
            return self._evaluate_games(agent, env_steps, record_as, final)
        from drivelab.agents.factory import single_env_agent

        agent = single_env_agent(agent, self.trial["hyperparams"])
        begin = time.perf_counter()
        episodes: list[dict[str, Any]] = []
        for track_seed in self.track_seeds:
            if self.should_stop():
                self.seconds_evaluating += time.perf_counter() - begin
                return None
            episodes += evaluate(agent, self.env, [track_seed])
        self.seconds_evaluating += time.perf_counter() - begin
        recorded = self._film_and_record(agent, episodes, summarize(episodes), record_as or (env_steps,), final,
                                         csv_columns(self.trial["env_id"]))
        return episodes if recorded else None

    def _film_and_record(self, agent, episodes: list[dict[str, Any]], summary: dict[str, float],
                         steps_recorded: tuple[int, ...], final: bool, columns: tuple[str, ...]) -> bool:
        """The video due at the last of ``steps_recorded``, if any, then the evaluation's records and the video's
        W&B entry. False, with nothing recorded, when a stop came while filming."""
        video_steps = max(steps_recorded)
        filmed = None
        if self.video_due(video_steps, final):
            filmed = self._film(agent, video_steps)
            if filmed is None:
                return False
        self._record(episodes, summary, steps_recorded, columns)
        if filmed is not None:
            self.tracker.log_video(video_steps, *filmed)
        return True

    def _record(self, episodes: list[dict[str, Any]], summary: dict[str, float], steps_recorded: tuple[int, ...],
                columns: tuple[str, ...]) -> None:
        """One evaluation's rows in evaluations.csv and its summary in W&B, at each of ``steps_recorded``."""
        for steps in steps_recorded:
            rows = [{"env_steps": steps, "wall_time_s": round(time.perf_counter() - self.clock_origin, 3), "episode": index, **episode}
                    for index, episode in enumerate(episodes)]
            _append_evaluation_rows(self.run_dir / EVALUATIONS_CSV, rows, columns)
            self.tracker.log_evaluation(steps, summary)
        self.last = summary

    def _evaluate_games(self, agent, env_steps: int, record_as: tuple[int, ...] | None,
                        final: bool) -> list[dict[str, Any]] | None:
        """An Atari evaluation by the standard protocol: ``episodes`` whole games (raw score, to game over), the
        first from reset seed ``first_track_seed``; the agent sees the frames stacked by the env, as in training."""
        from drivelab.envs.atari import evaluate_game

        if self.should_stop():
            return None
        evaluation, options = self.trial["evaluation"], self.trial["env_options"]
        begin = time.perf_counter()
        games = evaluate_game(agent, self.trial["env_id"], evaluation["episodes"], evaluation["first_track_seed"],
                              sticky_actions=bool(options.get("sticky_actions", False)), should_stop=self.should_stop)
        self.seconds_evaluating += time.perf_counter() - begin
        if games is None:
            return None
        rows = [{"seed": evaluation["first_track_seed"], **game} for game in games]
        recorded = self._film_and_record(agent, rows, summarize_games(games), record_as or (env_steps,), final,
                                         GAME_CSV_COLUMNS)
        return games if recorded else None

    def video_due(self, env_steps: int, final: bool = False) -> bool:
        """Whether an evaluation at ``env_steps`` films a video (see the class's docstring)."""
        if not self.video_every:
            return False
        recorded = recorded_videos(self.run_dir)
        if env_steps in recorded:
            return False
        return final or all(steps // self.video_every != env_steps // self.video_every for steps in recorded)

    def film_final(self, agent, env_steps: int) -> bool:
        """The final model's video, when its evaluation was made without one; False when a stop cut it short."""
        from drivelab.agents.factory import single_env_agent

        if not self.video_due(env_steps, final=True):
            return True
        filmed = self._film(agent if self.atari else single_env_agent(agent, self.trial["hyperparams"]), env_steps)
        if filmed is None:
            return False
        self.tracker.log_video(env_steps, *filmed)
        return True

    def _film(self, agent, env_steps: int) -> tuple[Path, str] | None:
        """Film the first evaluation track (or game) into ``videos/``: (the video, its caption), or None when stopped."""
        from drivelab.viewer.watch import record_episode

        path = video_path(self.run_dir, env_steps)
        path.parent.mkdir(exist_ok=True)
        track_seed = self.track_seeds[0]
        label = f"{self.trial['agent']} seed {self.trial['seed']} at {env_steps:,} env steps"
        begin = time.perf_counter()
        game = None
        try:
            if self.atari:
                # A game from the evaluation's first start seed, its actions drawn as evaluation draws them.
                game = _stoppable_game(self.trial["env_id"], self.should_stop,
                                      sticky_actions=bool(self.trial["env_options"].get("sticky_actions", False)))
                episode = record_episode(agent, game, path, label=label, seed=track_seed)
            else:
                # reset seed = track seed, as evaluate() drives it
                episode = record_episode(agent, _stop_between_steps(self.env, self.should_stop), path, label=label,
                                         seed=track_seed, track_seed=track_seed)
        except _FilmingStopped:
            return None
        finally:
            self.seconds_filming += time.perf_counter() - begin
            if game is not None:
                game.close()
        if self.atari:
            caption = (f"{label}, a game from start seed {track_seed}: score {episode['score']:.0f} "
                       f"(human-normalised {episode['human_normalized_score']:.3f}), {episode['frames']:,} frames")
        else:
            caption = (f"{label}, evaluation track {track_seed}: route completion {episode['route_completion']:.3f}, "
                       f"lateral error RMS {episode['lateral_error_rms']:.3f} m, return {episode['return']:.2f}")
        return path, caption

    def close(self) -> None:
        if self.env is not None:
            self.env.close()


def _make_callback(recorder: Recorder, trial: dict[str, Any], run_dir: Path, next_eval: int, next_checkpoint: int):
    from stable_baselines3.common.callbacks import BaseCallback

    every_eval = trial["evaluation"]["every_steps"]
    every_checkpoint = trial["checkpoint_every_steps"]
    budget = trial["budget_steps"]

    class EvaluateAndCheckpoint(BaseCallback):
        """Evaluates every ``evaluation.every_steps`` and checkpoints every ``checkpoint_every_steps``;
        ends ``learn`` (by returning False) when a stop is requested, where the rerun can pick up exactly."""

        def __init__(self) -> None:
            super().__init__()
            self.next_eval, self.next_checkpoint = next_eval, next_checkpoint
            self.rollout_start: tuple[int, int] | None = None
            self.cut_short = False

        def _on_rollout_start(self) -> None:
            self.rollout_start = (self.model.num_timesteps, self.next_eval)

        def resume_point(self) -> tuple[int, int]:
            """Env steps and next evaluation to checkpoint at, after a stop.

            PPO's weights change only at the end of a rollout, and the rollout buffer is not saved:
            the steps of the unfinished rollout taught the model nothing, so the checkpoint says so
            and the rerun collects whole rollouts again, ending on the budget as an uninterrupted run.
            """
            from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

            if self.cut_short and isinstance(self.model, OnPolicyAlgorithm) and self.rollout_start is not None:
                return self.rollout_start
            return self.model.num_timesteps, self.next_eval

        def _stop_between_updates(self) -> bool:
            """DQN trains every ``train_freq`` steps; stopping on that grid keeps the rerun on it too
            (at most ``train_freq - 1`` more steps). Returns what ``_on_step`` returns."""
            frequency = getattr(self.model, "train_freq", None)
            on_grid = (frequency is None or getattr(frequency.unit, "value", "step") != "step"
                       or (self.model.num_timesteps // self.model.n_envs) % frequency.frequency == 0)
            self.cut_short = on_grid
            return not on_grid

        def _on_step(self) -> bool:
            if recorder.should_stop():
                return self._stop_between_updates()
            steps = self.model.num_timesteps
            # From the budget on, the evaluation waits for the end of learn: DQN's last gradient step and PPO's
            # last update come after this step's callbacks, and the final evaluation drives the saved model.
            if self.next_eval <= steps < budget:
                # Logged to W&B directly (not through SB3's logger, whose TensorBoard sync would log it twice).
                if recorder.evaluate(self.model, steps) is None:
                    return self._stop_between_updates()  # next_eval stays: the evaluation is made on resume
                while self.next_eval <= steps:
                    self.next_eval += every_eval
            if steps >= self.next_checkpoint:
                begin = time.perf_counter()
                path = save_checkpoint(self.model, run_dir, {"next_eval": self.next_eval},
                                       replay_buffer=trial.get("checkpoint_replay_buffer", True))
                recorder.checkpoint_times.append((time.perf_counter() - begin, _size_bytes(path)))
                while self.next_checkpoint <= steps:
                    self.next_checkpoint += every_checkpoint
            return True

    return EvaluateAndCheckpoint()


def check_run_dir_config(trial: dict[str, Any], run_dir: Path) -> None:
    """Refuse (ConfigError, one line) a run directory that holds a trial with a different config; reads only."""
    config_path = Path(run_dir) / CONFIG_FILE
    if config_path.is_file() and yaml.safe_load(config_path.read_text()) != yaml.safe_load(yaml.safe_dump(trial, sort_keys=True)):
        raise ConfigError(f"{run_dir} holds a trial with a different config; use another --out or remove that directory")


def prepare_run_dir(trial: dict[str, Any], run_dir: Path) -> None:
    """Create the run directory with its config, or check that an existing one holds the same config."""
    check_run_dir_config(trial, run_dir)
    config_path = run_dir / CONFIG_FILE
    if config_path.is_file():
        return
    run_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(config_path, yaml.safe_dump(trial, sort_keys=True))


def run_trial(trial: dict[str, Any], run_dir: Path, *, progress_bar: bool = False,
              say: Callable[[str], None] = lambda _message: None) -> dict[str, Any]:
    """Run (or resume) one trial as the one process that writes its run directory; returns its final status.

    :raises ConfigError: the run directory holds a trial with a different config; nothing was written.
    :raises TrialOwnedElsewhere: another live process owns the run directory; nothing was written.
    :raises TrialAlreadyDone: the trial was done once the run directory was owned; nothing was written.
    :raises TrialInterrupted: a stop was requested (:mod:`drivelab.experiments.interruption`): the trial
        was checkpointed where it stopped and marked ``interrupted``.
    :raises KeyboardInterrupt: a forced stop: the trial was marked ``interrupted``, without a fresh checkpoint.

    Other exceptions are recorded (state ``failed``, ``error.log``), then re-raised.
    """
    run_dir = Path(run_dir)
    check_run_dir_config(trial, run_dir)
    if interruption.stop_requested():
        raise TrialInterrupted(f"stopped before {run_dir} started", started=False)
    with TrialOwnership.acquire(run_dir) as owner:
        previous = read_status(run_dir) or {}
        if previous.get("state") == "done":
            raise TrialAlreadyDone(run_dir, previous)
        prepare_run_dir(trial, run_dir)
        return _run_owned(trial, run_dir, owner, previous, progress_bar, say)


def _run_owned(trial: dict[str, Any], run_dir: Path, owner: TrialOwnership, previous: dict[str, Any],
               progress_bar: bool, say: Callable[[str], None]) -> dict[str, Any]:
    import torch

    from drivelab.experiments.tracking import WandbRun

    status: dict[str, Any] = {
        "state": "running", "experiment": trial["experiment"], "agent": trial["agent"], "algo": trial["algo"],
        "env_id": trial["env_id"], "seed": trial["seed"], "env_steps": 0, "budget_steps": trial["budget_steps"],
        "wall_time_s": previous.get("wall_time_s", 0.0), "error": None, "attempts": previous.get("attempts", 0) + 1,
        "resumed_from_env_steps": None, "host": socket.gethostname(), "pid": os.getpid(),
    }
    write_status(run_dir, status)
    # One thread per trial: small MLPs gain nothing from more, and trials share the cores.
    torch.set_num_threads(1)
    started = time.perf_counter()
    tracker = None
    try:
        tracker = WandbRun(trial, run_dir)
        # Evaluations are timed on the trial's clock, which runs on across resumed commands as status.json's does.
        recorder = Recorder(trial, run_dir, tracker, started - status["wall_time_s"],
                            should_stop=lambda: interruption.stop_requested() or owner.lost)
        if trial["algo"] in LEARNING_ALGOS:
            model, learn_seconds = _train(trial, run_dir, recorder, tracker, status, owner, progress_bar, say)
            env_steps = int(model.num_timesteps)
        else:
            from drivelab.agents.factory import scripted_agent

            if recorder.atari:
                from drivelab.agents.factory import RandomAgent
                from drivelab.envs.atari import game_action_space

                agent = RandomAgent(game_action_space(trial["env_id"]), seed=trial["seed"])
            else:
                agent = scripted_agent(trial["algo"], recorder.env, seed=trial["seed"])
            # A scripted agent does not learn: one evaluation stands for step 0 and the budget.
            if (run_dir / EVALUATIONS_CSV).exists():
                (run_dir / EVALUATIONS_CSV).unlink()
            if recorder.evaluate(agent, 0, record_as=(0, trial["budget_steps"]), final=True) is None:
                _stop_here(None, run_dir, None, owner)
            env_steps, learn_seconds = 0, 0.0
        final = recorder.last
        write_atomic(run_dir / EVALUATION_JSON, json.dumps({"env_steps": env_steps, **final}, indent=2) + "\n")
        recorder.close()
        elapsed = time.perf_counter() - started
        status.update(state="done", env_steps=env_steps, wall_time_s=status["wall_time_s"] + elapsed,
                      train_seconds=learn_seconds, evaluation_seconds=recorder.seconds_evaluating,
                      final=final, wandb_mode=tracker.mode)
        if recorder.checkpoint_times:
            seconds, sizes = zip(*recorder.checkpoint_times)
            status["checkpoints"] = {"count": len(seconds), "mean_seconds": sum(seconds) / len(seconds),
                                     "max_seconds": max(seconds), "last_bytes": sizes[-1]}
        if recorder.video_every:
            status.update(video_seconds=recorder.seconds_filming,
                          videos=[path.name for path in recorded_videos(run_dir).values()])
        tracker.finish(summary={f"final/{key}": value for key, value in final.items()})
        write_status(run_dir, status)
        return status
    except TrialOwnershipLost:
        _finish_quietly(tracker, exit_code=1)  # the run directory is another process's now: no status written
        raise
    except (TrialInterrupted, KeyboardInterrupt):
        checkpoint_steps = _checkpoint_env_steps(run_dir)
        status.update(state="interrupted", env_steps=checkpoint_steps or 0, checkpoint_env_steps=checkpoint_steps,
                      wall_time_s=status["wall_time_s"] + time.perf_counter() - started)
        write_status(run_dir, status)
        # A non-zero exit code; the rerun resumes the same W&B run id.
        _finish_quietly(tracker, exit_code=interruption.EXIT_INTERRUPTED)
        raise
    except BaseException as error:
        status.update(state="failed", error=f"{type(error).__name__}: {error}".splitlines()[0],
                      wall_time_s=status["wall_time_s"] + time.perf_counter() - started)
        write_atomic(run_dir / "error.log", traceback.format_exc())
        write_status(run_dir, status)
        _finish_quietly(tracker, exit_code=1)
        raise


def _finish_quietly(tracker, exit_code: int) -> None:
    if tracker is None:
        return
    try:
        tracker.finish(exit_code=exit_code)
    except Exception:  # the original error or stop matters more than a tracking hiccup
        pass


def _stop_here(model, run_dir: Path, next_eval: int | None, owner: TrialOwnership, replay_buffer: bool = True):
    """End the trial where a stop request found it: checkpoint (a learning trial), then raise."""
    if owner.lost:
        raise TrialOwnershipLost(run_dir, owner.lost_to)
    if model is not None:
        save_checkpoint(model, run_dir, {"next_eval": next_eval}, replay_buffer)
        raise TrialInterrupted(f"stopped at {int(model.num_timesteps)} env steps")
    raise TrialInterrupted("stopped during the evaluation")


def _checkpoint_env_steps(run_dir: Path) -> int | None:
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        return None
    return int(json.loads((checkpoint / "state.json").read_text())["env_steps"])


def _train(trial, run_dir: Path, recorder: Recorder, tracker, status: dict[str, Any], owner: TrialOwnership,
           progress_bar: bool, say):
    from drivelab.agents.factory import frame_stack, load_model, make_model, make_training_env
    from drivelab.experiments.tracking import TENSORBOARD_LOG_NAME

    atari = is_atari(trial["env_id"])
    if atari:
        from drivelab.envs.atari import make_training_vec_env

        options = trial["train_env_options"]
        venv = make_training_vec_env(trial["env_id"], trial["n_envs"], trial["seed"], vec_env=options.get("vec_env", "default"),
                                     sticky_actions=bool(options.get("sticky_actions", False)),
                                     frame_stack=frame_stack(trial["hyperparams"]))
    else:
        venv = make_training_env(trial["env_id"], trial["train_env_options"], trial["action"], trial["n_envs"], trial["seed"],
                                 frame_stack=frame_stack(trial["hyperparams"]))
    tensorboard = str(run_dir / "tensorboard") if trial["tracking"]["tensorboard"] else None
    checkpoint = latest_checkpoint(run_dir)
    every_eval, every_checkpoint = trial["evaluation"]["every_steps"], trial["checkpoint_every_steps"]
    keep_buffer = trial.get("checkpoint_replay_buffer", True)
    if checkpoint is not None:
        # Our own checkpoint, written by this code into this run directory: trusted.
        model = load_model(trial["algo"], checkpoint / "model.zip", env=venv, device=trial["device"])
        if (checkpoint / "replay_buffer.pkl").is_file():
            model.load_replay_buffer(checkpoint / "replay_buffer.pkl")
            status["replay_buffer_size_at_resume"] = int(model.replay_buffer.size())
        elif getattr(model, "replay_buffer", None) is not None:
            # Checkpointed without its buffer: learning waits until the buffer holds transitions again.
            model.learning_starts = int(model.num_timesteps) + refill_steps(trial["hyperparams"])
            status["replay_buffer_size_at_resume"] = 0
            status["learning_resumes_at_env_steps"] = model.learning_starts
        if tensorboard:
            model.tensorboard_log = tensorboard
        state = json.loads((checkpoint / "state.json").read_text())
        steps = int(model.num_timesteps)
        next_eval = int(state["next_eval"])
        status["resumed_from_env_steps"] = steps
        _keep_evaluations_up_to(run_dir, steps)
        say(f"resuming {trial['agent']} seed {trial['seed']} from its checkpoint at {steps} env steps")
    else:
        if (run_dir / EVALUATIONS_CSV).exists():
            (run_dir / EVALUATIONS_CSV).unlink()
        model = make_model(trial["algo"], venv, trial["hyperparams"], trial["seed"], tensorboard_log=tensorboard,
                           device=trial["device"], image_encoder="nature" if atari else "perception")
        steps, next_eval = 0, 0
    write_status(run_dir, status)
    if next_eval <= steps:
        # Due now: a fresh model's evaluation at step 0, or one that a stop cut short.
        if recorder.evaluate(model, steps) is None:
            _stop_here(model, run_dir, next_eval, owner, keep_buffer)
        while next_eval <= steps:
            next_eval += every_eval
    next_checkpoint = (steps // every_checkpoint + 1) * every_checkpoint
    schedule = _make_callback(recorder, trial, run_dir, next_eval, next_checkpoint)
    callbacks = [schedule]
    if tracker.active:
        callbacks.append(tracker.sb3_callback())
    remaining = trial["budget_steps"] - steps
    begin = time.perf_counter()
    if remaining > 0:
        model.learn(total_timesteps=remaining, callback=callbacks, reset_num_timesteps=False,
                    progress_bar=progress_bar, tb_log_name=TENSORBOARD_LOG_NAME)
    learn_seconds = time.perf_counter() - begin
    if recorder.should_stop():
        model.num_timesteps, resume_eval = schedule.resume_point()
        _stop_here(model, run_dir, resume_eval, owner, keep_buffer)
    final_steps = int(model.num_timesteps)
    if _last_evaluated_steps(run_dir) == final_steps:
        # Evaluated at the last step already (the callback leaves that step to the end of learn): by this attempt
        # before learn, resumed from a checkpoint at the budget, or by an attempt that stopped after the final
        # evaluation (whose rows were kept, the checkpoint being at the last step); the final video may still be due.
        if recorder.last is None:
            recorder.last = _evaluation_summary_at(run_dir, final_steps)
        if not recorder.film_final(model, final_steps):
            _stop_here(model, run_dir, schedule.next_eval, owner, keep_buffer)
    elif recorder.evaluate(model, final_steps, final=True) is None:
        _stop_here(model, run_dir, schedule.next_eval, owner, keep_buffer)
    model_path = run_dir / MODEL_FILE
    staging = run_dir / ".model.staging.zip"
    model.save(staging)
    os.replace(staging, model_path)
    tracker.log_model(model_path, f"{trial['experiment']}-{trial['agent']}-seed{trial['seed']}",
                      {"env_steps": final_steps, "algo": trial["algo"]})
    venv.close()
    return model, learn_seconds


def load_trained_agent(run_dir: Path):
    """The final model of a finished learning trial as an agent for one env, and the trial's resolved config.

    The agent is the SB3 model itself, or, for a model trained on stacked frames, the model behind a
    :class:`~drivelab.agents.pixels.FrameStackingAgent` that stacks the env's observations as training did.
    The model is an SB3 zip, which holds pickled objects: load only run directories you trust.
    :raises ValueError: (one line) when ``run_dir`` is not a finished learning trial.
    """
    from drivelab.agents.factory import load_model, single_env_agent

    run_dir = Path(run_dir)
    config_path, model_path = run_dir / CONFIG_FILE, run_dir / MODEL_FILE
    if not config_path.is_file():
        raise ValueError(f"{run_dir} is not a trial's run directory (no {CONFIG_FILE}); give rule_based, random or a run directory")
    trial = yaml.safe_load(config_path.read_text())
    if trial.get("algo") not in LEARNING_ALGOS:
        raise ValueError(f"{run_dir} is a {trial.get('algo')} trial, which has no model; use --agent {trial.get('algo')}")
    if not model_path.is_file():
        raise ValueError(f"{run_dir} has no {MODEL_FILE} yet: the trial has not finished (run it again to resume)")
    return single_env_agent(load_model(trial["algo"], model_path, device="cpu"), trial["hyperparams"]), trial


def _last_evaluated_steps(run_dir: Path) -> int | None:
    path = run_dir / EVALUATIONS_CSV
    if not path.is_file():
        return None
    with path.open() as stream:
        steps = [int(row["env_steps"]) for row in csv.DictReader(stream)]
    return max(steps) if steps else None
