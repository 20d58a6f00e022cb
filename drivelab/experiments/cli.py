"""The ``drivelab`` command line.

Heavy modules (pybullet, torch, highway-env) are imported inside the commands, so ``drivelab --help``
answers at once. Bad input gets one line on stderr naming the problem and what is allowed, and exit
status 2; so does ``train`` on a trial that another live process is running (the line names it).

``train`` and ``sweep`` stop cleanly on Ctrl-C (SIGINT) and SIGTERM: the trials they run are
checkpointed and marked ``interrupted``, the command prints ``interrupted; run the same command to
resume`` and exits with status 130, without a traceback (see :mod:`drivelab.experiments.interruption`).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse prints usage + error over two lines; we want one
        raise UsageError(f"{self.prog}: {message}")


def _env_options(pairs: Sequence[str]) -> dict[str, Any]:
    import yaml

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--option takes KEY=VALUE (for example target_speed_mps=12), got {pair!r}")
        try:
            options[key] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise UsageError(f"--option {key}: cannot read value {value!r}; give a number, a word or a [list]") from None
    return options


def _make_env(env_id: str, action: str, options: dict[str, Any], *, scaled: bool = False, render_mode: str | None = None):
    from drivelab.agents.factory import make_env
    from drivelab.envs import require_registered

    try:
        require_registered(env_id)
        return make_env(env_id, options, action, scaled=scaled, render_mode=render_mode)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error).splitlines()[0]) from None


def _json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(item) for item in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


METRIC_COLUMNS = ("route_completion", "lateral_error_rms", "max_lateral_error_m", "off_road", "mean_speed", "episode_time_s")
TRAFFIC_COLUMNS = ("collision", "lane_changes", "headway_violations", "driving_score")  # DriveLab/Highway-v0


def _print_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    def cell(value: Any) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, float):
            return f"{value:.3f}"
        return str(value)

    table = [list(columns)] + [[cell(row.get(column, "")) for column in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    for line in table:
        print("  ".join(text.rjust(width) for text, width in zip(line, widths)))


def _drive_agent(args: argparse.Namespace, loaded: tuple[Any, dict[str, Any]] | None = None):
    """The agent ``drive`` runs and the env it runs in: a scripted agent, or a trained one from its run
    directory (``loaded``: its model and config, when the caller has loaded them already)."""
    from drivelab.agents.factory import RandomAgent

    options = _env_options(args.option)
    if args.observation is not None:
        options["observation"] = args.observation
    if args.perception_model is not None:
        if options.get("observation", "state") != "perceived":
            raise UsageError("--perception-model is for --observation perceived")
        options["perception_model"] = args.perception_model
    elif options.get("observation") == "perceived" and "perception_model" not in options:
        raise UsageError("--observation perceived needs --perception-model RUN_DIR (a model from `drivelab perception train`)")
    if args.agent in ("rule_based", "random"):
        from drivelab.agents.rule_based import RuleBasedDriver, RuleBasedDriverConfig

        try:
            config = RuleBasedDriverConfig(tracker=args.tracker)
        except ValueError as error:
            raise UsageError(str(error)) from None
        highway = args.env == "DriveLab/Highway-v0"
        env = _make_env(args.env, args.action or ("meta" if highway else "steer"), options, render_mode=args.render)
        if args.agent == "rule_based" and highway:
            if env.unwrapped.action_mode.name != "meta":
                raise UsageError("the highway's rule-based driver decides meta-actions: drop --action or give --action meta")
            from drivelab.agents.highway_driver import HighwayDriver

            return HighwayDriver.for_env(env), env, "rule-based highway driver (MOBIL)", "meta"
        agent = RuleBasedDriver.for_env(env, config) if args.agent == "rule_based" else RandomAgent(env.action_space, args.seed)
        label = f"rule-based driver ({args.tracker} tracker)" if args.agent == "rule_based" else "random agent"
        return agent, env, label, env.unwrapped.action_mode.name
    from drivelab.experiments.trial import load_trained_agent

    if loaded is None:
        try:
            loaded = load_trained_agent(Path(args.agent))
        except ValueError as error:
            raise UsageError(str(error)) from None
    model, trial = loaded
    from drivelab.envs.atari import is_atari

    if is_atari(trial["env_id"]):
        raise UsageError(f"{args.agent} plays {trial['env_id']}: drive takes DriveLab's driving worlds; "
                         f"watch the game with drivelab watch --agent {args.agent}")
    if args.action and args.action != trial["action"]:
        raise UsageError(f"{args.agent} was trained with action {trial['action']!r}; drop --action or give that one")
    trained_on = trial["env_options"].get("observation", "state")
    if "observation" in options and (options["observation"] == "camera") != (trained_on == "camera"):
        readable = "camera" if trained_on == "camera" else "state or perceived"
        raise UsageError(f"{args.agent} was trained on observation {trained_on!r}; it can drive on {readable}, "
                         f"not {options['observation']!r}")
    env = _make_env(trial["env_id"], trial["action"], {**trial["env_options"], **options}, scaled=True, render_mode=args.render)
    return model, env, f"{trial['algo']} from {args.agent}", trial["action"]


class _TimedEpisodes:
    """The env as ``drive`` runs it: each episode timed from its first observation to its last step (what
    reset costs, building the road's meshes say, is left out), and with ``--render human`` each step drawn
    and paced to ``--speed`` (:class:`drivelab.viewer.pacing.RealTimePacer`)."""

    def __init__(self, env, pacer=None) -> None:
        import time

        self.env, self.pacer, self._clock = env, pacer, time.monotonic
        self.started_s = self.finished_s = 0.0

    def reset(self, **kwargs):
        result = self.env.reset(**kwargs)
        if self.pacer is not None:
            self.env.render()  # the first observation on screen, then the schedule starts
            self.pacer.start()
        self.started_s = self.finished_s = self._clock()
        return result

    def step(self, action):
        result = self.env.step(action)
        if self.pacer is not None:
            self.env.render()
            self.pacer.wait()
        self.finished_s = self._clock()
        return result

    @property
    def wall_time_s(self) -> float:
        return self.finished_s - self.started_s


def cmd_drive(args: argparse.Namespace) -> int:
    import contextlib

    from drivelab.envs.world import quiet_c_output
    from drivelab.experiments.evaluation import run_episode
    from drivelab.viewer.pacing import RealTimePacer, check_speed

    if args.episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {args.episodes}")
    if args.first_track_seed is not None and args.first_track_seed < 0:
        raise UsageError(f"--first-track-seed must be >= 0, got {args.first_track_seed}")
    try:
        check_speed(args.speed)
    except ValueError as error:
        raise UsageError(f"--{error}") from None
    # The GUI's threads print to stdout (C's printf: the GL vendor, thread shutdowns) whenever they like; that
    # is kept off stdout until the GUI is closed, so that --json prints one JSON object there and nothing else.
    with quiet_c_output(1) if args.render == "human" else contextlib.nullcontext():
        agent, env, label, action = _drive_agent(args)
        perceived = getattr(env.unwrapped.observation_mode, "mean_absolute_errors", None) is not None
        # Watched in the GUI, the episode runs at --speed times real time (the env steps far faster than that).
        pacer = RealTimePacer(env.unwrapped.decision_dt_s, args.speed) if args.render == "human" else None
        timed = _TimedEpisodes(env, pacer)
        episodes = []
        try:
            for seed in range(args.seed, args.seed + args.episodes):
                if perceived:
                    env.unwrapped.observation_mode.reset_errors()
                reset_options = None if args.first_track_seed is None else {"track_seed": args.first_track_seed + seed - args.seed}
                total_reward, _, info = run_episode(agent, timed, seed, reset_options)
                metrics = {key: info[key] for key in info if key in METRIC_COLUMNS + TRAFFIC_COLUMNS
                           or key in ("collision", "rolled_over", "distance_m", "track_seed")}
                episode = {"seed": seed, "return": total_reward, **metrics, "wall_time_s": timed.wall_time_s}
                if perceived:
                    episode["perception_mae"] = env.unwrapped.observation_mode.mean_absolute_errors()
                episodes.append(episode)
        finally:
            env.close()
    summary = {
        "episodes": len(episodes),
        **({"collision_count": sum(bool(e["collision"]) for e in episodes),
            "driving_score_mean": sum(e["driving_score"] for e in episodes) / len(episodes)}
           if "driving_score" in episodes[0] else {}),
        "route_completion_mean": sum(e["route_completion"] for e in episodes) / len(episodes),
        "lateral_error_rms_max": max(e["lateral_error_rms"] for e in episodes),
        "off_road_count": sum(bool(e["off_road"]) for e in episodes),
        "mean_speed": sum(e["mean_speed"] for e in episodes) / len(episodes),
    }
    if perceived:
        names = episodes[0]["perception_mae"]
        summary["perception_mae"] = {name: sum(e["perception_mae"][name] for e in episodes) / len(episodes) for name in names}
    env_id = env.unwrapped.spec.id if env.unwrapped.spec else args.env
    observation = env.unwrapped.observation_mode.name
    result = {"env": env_id, "action": action, "observation": observation, "agent": args.agent,
              "tracker": args.tracker if args.agent == "rule_based" else None, "episodes": episodes, "summary": summary}
    if args.json:
        print(json.dumps(_json_ready(result)))
    else:
        print(f"{label} on {env_id}, action={action}, observation={observation}")
        traffic = TRAFFIC_COLUMNS if "driving_score" in episodes[0] else ()
        _print_table(episodes, ("seed", "return") + METRIC_COLUMNS + traffic)
        print(f"mean route completion {summary['route_completion_mean']:.3f}, worst lateral error RMS "
              f"{summary['lateral_error_rms_max']:.3f} m, off road {summary['off_road_count']}/{len(episodes)}, "
              f"mean speed {summary['mean_speed']:.2f} m/s")
        if perceived:
            print("perception mean absolute error: " + ", ".join(f"{name} {value:.4f}" for name, value in summary["perception_mae"].items()))
    return 0


def cmd_bench_env(args: argparse.Namespace) -> int:
    from drivelab.experiments.bench import bench_env

    if not (args.seconds > 0 and math.isfinite(args.seconds)):
        raise UsageError(f"--seconds must be a positive number, got {args.seconds}")
    if args.rounds < 1:
        raise UsageError(f"--rounds must be >= 1, got {args.rounds}")
    if args.env == "DriveLab/Highway-v0":
        from drivelab.experiments.bench_highway import bench_highway, check_vehicles, format_highway_bench

        try:
            vehicles = check_vehicles(args.vehicles)
        except ValueError as error:
            raise UsageError(str(error)) from None
        result = bench_highway(seconds=args.seconds, rounds=args.rounds, vehicles=vehicles, with_peer=not args.no_peer,
                               progress=None if args.json else print)
        print(json.dumps(_json_ready(result)) if args.json else format_highway_bench(result))
        return 0
    if args.env != "DriveLab/LaneKeep-v0":
        raise UsageError(f"--env must be DriveLab/LaneKeep-v0 or DriveLab/Highway-v0, got {args.env!r}")
    result = bench_env(seconds=args.seconds, with_peer=not args.no_peer, rounds=args.rounds,
                       progress=None if args.json else print)
    if args.json:
        print(json.dumps(_json_ready(result)))
    else:
        from drivelab.experiments.bench import format_env_bench

        print(format_env_bench(result))
    return 0


def cmd_bench_perception(args: argparse.Namespace) -> int:
    from drivelab.experiments.bench_perception import bench_perception, format_perception_bench

    if not (args.seconds > 0 and math.isfinite(args.seconds)):
        raise UsageError(f"--seconds must be a positive number, got {args.seconds}")
    try:
        if args.batch_size < 1:
            raise UsageError(f"--batch-size must be >= 1, got {args.batch_size}")
        result = bench_perception(args.model, seconds=args.seconds, progress=None if args.json else print,
                                  cnn_only=args.cnn_only, batch_size=args.batch_size)
    except ValueError as error:  # a missing or corrupt --model
        raise UsageError(str(error).splitlines()[0]) from None
    print(json.dumps(_json_ready(result)) if args.json else format_perception_bench(result))
    return 0


def cmd_bench_watch(args: argparse.Namespace) -> int:
    from drivelab.experiments.bench_watch import bench_watch, format_watch_bench

    if not (args.seconds > 0 and math.isfinite(args.seconds)):
        raise UsageError(f"--seconds must be a positive number, got {args.seconds}")
    result = bench_watch(seconds=args.seconds, progress=None if args.json else print)
    print(json.dumps(_json_ready(result)) if args.json else format_watch_bench(result))
    return 0


def _load_config(path: str):
    from drivelab.experiments.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as error:
        raise UsageError(str(error)) from None


def _stoppable(command):
    """Run a command that stops cleanly on SIGINT and SIGTERM: one line, exit status 130, no traceback."""
    from drivelab.experiments import interruption

    def run_stoppable(args: argparse.Namespace) -> int:
        with interruption.stop_on_signals():
            try:
                status = command(args)
            except KeyboardInterrupt:  # a second signal, or one before the command could check
                status = interruption.EXIT_INTERRUPTED
            if status == interruption.EXIT_INTERRUPTED or interruption.stop_requested():
                print(interruption.INTERRUPTED_LINE, file=sys.stderr)
                return interruption.EXIT_INTERRUPTED
            return status

    return run_stoppable


def _check_stale_limit() -> None:
    from drivelab.experiments.ownership import stale_after_s

    try:
        stale_after_s()
    except ValueError as error:
        raise UsageError(str(error)) from None


def _owned_elsewhere_line(error: Exception) -> str:
    return f"{error}; wait for it to finish, or stop it and run this command again"


def cmd_train(args: argparse.Namespace) -> int:
    from drivelab.experiments.config import ConfigError, resolve_trial
    from drivelab.experiments.interruption import EXIT_INTERRUPTED, stop_requested
    from drivelab.experiments.ownership import TrialOwnedElsewhere, TrialOwnershipLost
    from drivelab.experiments.trial import (TrialAlreadyDone, TrialInterrupted, check_run_dir_config, read_status,
                                            run_trial, trial_dir)

    _check_stale_limit()
    config = _load_config(args.config)
    if args.agent is None:
        if len(config.agents) > 1:
            raise UsageError(f"{args.config} has agents {', '.join(a.name for a in config.agents)}: choose one with --agent")
        agent = config.agents[0].name
    else:
        agent = args.agent
    seed = config.seeds[0] if args.seed is None else args.seed
    if seed < 0:
        raise UsageError(f"--seed must be >= 0, got {seed}")
    run_dir = trial_dir(Path(args.out), config.name, agent, seed)
    try:
        trial = resolve_trial(config, agent, seed)
        check_run_dir_config(trial, run_dir)  # the same config, or a one-line refusal
    except ConfigError as error:
        raise UsageError(str(error)) from None
    already_done = f"{agent} seed {seed} is already done in {run_dir}; remove that directory to train again"
    previous = read_status(run_dir)
    if previous is not None and previous.get("state") == "done":
        print(already_done, file=sys.stderr)
        status = previous
    else:
        try:
            status = run_trial(trial, run_dir, progress_bar=not args.json and sys.stderr.isatty(),
                               say=lambda message: print(message, file=sys.stderr))
        except TrialOwnershipLost as lost:
            print(f"drivelab: {lost}", file=sys.stderr)
            return 1
        except TrialOwnedElsewhere as owned:
            raise UsageError(_owned_elsewhere_line(owned)) from None
        except TrialAlreadyDone as done:  # another process finished it while this one started
            print(already_done, file=sys.stderr)
            status = done.status
        except TrialInterrupted:
            return EXIT_INTERRUPTED
        except ConfigError as error:
            raise UsageError(str(error)) from None
        except Exception as error:  # recorded in the run directory; the user gets one line and where to look
            print(f"drivelab: trial failed: {str(error).splitlines()[0] if str(error) else type(error).__name__} "
                  f"(traceback in {run_dir / 'error.log'})", file=sys.stderr)
            return 1
    if stop_requested():  # a signal that came after the trial ended is still answered with the one line and 130
        return EXIT_INTERRUPTED
    if args.json:
        print(json.dumps(_json_ready({"run_dir": str(run_dir), **status})))
    else:
        final = status["final"]
        if "score" in final:  # an Atari game's
            figures = f"score {final['score']:.1f}, human-normalised {final['human_normalized_score']:.3f}"
        else:
            figures = (f"route completion {final['route_completion']:.3f}, lateral error RMS {final['lateral_error_rms']:.3f} m, "
                       f"off road {100 * final['off_road_rate']:.0f}%")
        print(f"{agent} seed {seed}: {status['env_steps']} env steps in {status['wall_time_s']:.0f} s; final evaluation: {figures}")
        print(f"run directory: {run_dir}")
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from drivelab.experiments import interruption
    from drivelab.experiments.sweep import DONE, FAILED, RUNNING_ELSEWHERE, SKIPPED, run_sweep

    if args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    if args.address and args.backend != "ray":
        raise UsageError("--address is for --backend ray")
    _check_stale_limit()
    config = _load_config(args.config)
    total = len(config.agents) * len(config.seeds)
    from tqdm import tqdm

    bar = tqdm(total=total, desc=f"sweep {config.name}", unit="trial", disable=args.json or not sys.stderr.isatty())

    def report(outcome) -> None:
        bar.update(1)
        if not args.json and not interruption.stop_requested():  # once stopped, the one line says it all
            detail = f": {outcome.error}" if outcome.error else ""
            bar.write(f"{outcome.state:>17}  {outcome.agent} seed {outcome.seed}{detail}", file=sys.stderr)

    from drivelab.experiments.config import ConfigError

    try:
        outcomes = run_sweep(config, Path(args.out), workers=args.workers, backend=args.backend, address=args.address,
                             on_outcome=report)
    except (ConfigError, ValueError) as error:
        raise UsageError(str(error).splitlines()[0]) from None
    finally:
        if interruption.stop_requested():
            bar.leave = False
        bar.close()
    if interruption.stop_requested():
        return interruption.EXIT_INTERRUPTED
    failed = [o for o in outcomes if o.state == FAILED]
    elsewhere = [o for o in outcomes if o.state == RUNNING_ELSEWHERE]
    experiment_dir = Path(args.out) / config.name
    summary = {"experiment_dir": str(experiment_dir), "trials": len(outcomes),
               "done": sum(o.state == DONE for o in outcomes), "skipped": sum(o.state == SKIPPED for o in outcomes),
               "running_elsewhere": [{"agent": o.agent, "seed": o.seed, "owner": o.error, "run_dir": o.run_dir} for o in elsewhere],
               "failed": [{"agent": o.agent, "seed": o.seed, "error": o.error, "run_dir": o.run_dir} for o in failed]}
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"{summary['done']} trials run, {summary['skipped']} already done, {len(elsewhere)} running elsewhere, "
              f"{len(failed)} failed; results in {experiment_dir}")
        if failed:
            print("run the same command again to retry the failed trials", file=sys.stderr)
        if elsewhere:
            print("trials running elsewhere were left alone; run the same command once they stop to pick up any "
                  "that did not finish", file=sys.stderr)
    return 1 if failed else 0


def cmd_compare(args: argparse.Namespace) -> int:
    from drivelab.experiments.compare import compare, format_table

    out = Path(args.out) if args.out else Path(args.dirs[0]) / "comparison"
    try:
        result = compare([Path(d) for d in args.dirs], out, metric=args.metric)
    except ValueError as error:
        raise UsageError(str(error).splitlines()[0]) from None
    if args.json:
        print(json.dumps(_json_ready(result)))
    else:
        print(format_table(result))
        for agent in result["agents"]:
            video = agent.get("video")
            if video is not None:  # its path is relative to the report; here, where the user stands
                print(f"last video of {agent['agent']} (seed {video['seed']}, {video['env_steps']:,} env steps): "
                      f"{os.path.relpath(Path(result['out_dir']) / video['path'])}")
        print(f"report: {result['report']}")
    return 0


def cmd_bench_train(args: argparse.Namespace) -> int:
    from drivelab.experiments.bench import bench_train, format_train_bench

    if args.steps < 1000:
        raise UsageError(f"--steps must be >= 1000, got {args.steps}")
    if args.repeats < 1:
        raise UsageError(f"--repeats must be >= 1, got {args.repeats}")
    from drivelab.envs.atari import VEC_ENVS, check_game, is_atari, require_installed

    if is_atari(args.env):
        try:
            check_game(args.env)
        except ValueError as error:
            raise UsageError(str(error)) from None
        if args.vec_env not in VEC_ENVS:
            raise UsageError(f"--vec-env must be one of {', '.join(VEC_ENVS)}, got {args.vec_env!r}")
        try:
            require_installed(args.vec_env)
        except ValueError as error:
            raise UsageError(str(error)) from None
    elif args.env != "DriveLab/LaneKeep-v0":
        raise UsageError(f"--env must be DriveLab/LaneKeep-v0 or an Atari game (ALE/Pong-v5, ...), got {args.env!r}")
    elif args.vec_env != "default":
        raise UsageError("--vec-env is for the Atari games")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda: no CUDA device here; use --device cpu or auto")
    result = bench_train(steps=args.steps, algo=args.algo, repeats=args.repeats, env_id=args.env, vec_env=args.vec_env,
                         device=args.device, progress=None if args.json else lambda m: print(m, file=sys.stderr))
    print(json.dumps(_json_ready(result)) if args.json else format_train_bench(result))
    return 0


def add_env_arguments(parser: argparse.ArgumentParser) -> None:
    """The env an agent drives in and what it reads, as ``drive`` and ``watch`` take them (see :func:`_drive_agent`)."""
    parser.add_argument("--env", default="DriveLab/LaneKeep-v0",
                        help="environment id for scripted agents; watch also takes an Atari game (ALE/Pong-v5) for random, "
                             "which plays the game of an Atari run watched beside it (default: %(default)s)")
    parser.add_argument("--action", help="action mode: direct, steer or steer_discrete (default: steer; a trained agent's own)")
    parser.add_argument("--tracker", default="pid", help="the rule-based driver's lateral tracker: pid, stanley or pure_pursuit (default: %(default)s)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="env option, repeatable (e.g. target_speed_mps=12)")
    parser.add_argument("--observation", choices=["state", "camera", "perceived"], default=None,
                        help="what the agent reads (default: state; a trained agent's own)")
    parser.add_argument("--perception-model", metavar="RUN_DIR", help="with --observation perceived: the perception model's run directory")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="drivelab", description="DriveLab: RL and autonomous-driving lab on PyBullet.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    drive = commands.add_parser("drive", help="drive episodes with an agent (default: the rule-based driver) and print metrics")
    drive.add_argument("--agent", default="rule_based",
                       help="rule_based, random, or a trial's run directory (its model.zip; load only runs you trust) (default: %(default)s)")
    drive.add_argument("--episodes", type=int, default=10, help="number of episodes; episode i uses seed S+i (default: %(default)s)")
    drive.add_argument("--seed", type=int, default=0, help="first reset seed (default: %(default)s)")
    drive.add_argument("--first-track-seed", type=int, metavar="K",
                       help="episode i drives track K+i (evaluation tracks start at 1000000; default: a track drawn from the reset seed)")
    add_env_arguments(drive)
    drive.add_argument("--render", choices=["human"], default=None, help="watch in the PyBullet GUI")
    drive.add_argument("--speed", type=float, default=1.0, metavar="X",
                       help="with --render human: simulated seconds shown per second, 1 = real time, 2 = twice as fast, "
                            "0 = as fast as it goes (default: %(default)s)")
    drive.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    drive.set_defaults(handler=cmd_drive)

    train = commands.add_parser("train", help="train and evaluate one trial (one agent, one seed) of an experiment config")
    train.add_argument("config", help="experiment YAML (see experiments/)")
    train.add_argument("--agent", help="agent name from the config (required when it has several)")
    train.add_argument("--seed", type=int, help="training seed (default: the config's first)")
    train.add_argument("--out", default="runs", help="where run directories go (default: %(default)s)")
    train.add_argument("--json", action="store_true", help="print the trial's status as one JSON object")
    train.set_defaults(handler=_stoppable(cmd_train))

    sweep = commands.add_parser("sweep", help="run every (agent, seed) trial of a config; resumable")
    sweep.add_argument("config", help="experiment YAML (see experiments/)")
    sweep.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1)), help="parallel trials (local backend; default: %(default)s)")
    sweep.add_argument("--backend", choices=["local", "ray"], default="local", help="local worker processes or Ray tasks (default: %(default)s)")
    sweep.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    sweep.add_argument("--out", default="runs", help="where run directories go (default: %(default)s)")
    sweep.add_argument("--json", action="store_true", help="print the sweep summary as one JSON object")
    sweep.set_defaults(handler=_stoppable(cmd_sweep))

    compare = commands.add_parser("compare", help="learning curves, IQM with bootstrap CIs, and a markdown report")
    compare.add_argument("dirs", nargs="+", metavar="DIR", help="experiment, agent or trial directories")
    compare.add_argument("--out", help="report directory (default: DIR/comparison of the first DIR)")
    compare.add_argument("--metric", help="evaluation metric to compare (default: route_completion; score for Atari games)")
    compare.add_argument("--json", action="store_true", help="print the comparison as one JSON object")
    compare.set_defaults(handler=cmd_compare)

    bench = commands.add_parser("bench", help="benchmarks, each against a reference run in the same command")
    targets = bench.add_subparsers(dest="target", metavar="TARGET", parser_class=_Parser)
    targets.required = True
    env = targets.add_parser("env", help="env steps/s (replayed actions, and with the driver) vs highway-fast-v0 and raw PyBullet")
    env.add_argument("--seconds", type=float, default=10.0, help="wall time per measured workload (default: %(default)s)")
    env.add_argument("--rounds", type=int, default=5, help="interleaved rounds the wall time is split into (default: %(default)s)")
    env.add_argument("--no-peer", action="store_true", help="skip highway-env even when installed")
    env.add_argument("--env", default="DriveLab/LaneKeep-v0",
                     help="DriveLab/LaneKeep-v0 (replayed laps, the physics ceiling) or DriveLab/Highway-v0 (each action "
                          "mode, with --vehicles others) (default: %(default)s)")
    env.add_argument("--vehicles", type=int, default=20, help="with DriveLab/Highway-v0: other vehicles (default: %(default)s, as highway-fast-v0)")
    env.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    env.set_defaults(handler=cmd_bench_env)
    train_bench = targets.add_parser("train", help="drivelab train (with tracking) vs a plain stable-baselines3 script")
    train_bench.add_argument("--steps", type=int, default=20_000, help="env steps per run (default: %(default)s)")
    train_bench.add_argument("--algo", choices=["ppo", "dqn"], default="ppo", help="algorithm (default: %(default)s)")
    train_bench.add_argument("--repeats", type=int, default=2, help="interleaved repeats of each (default: %(default)s)")
    train_bench.add_argument("--env", default="DriveLab/LaneKeep-v0", help="DriveLab/LaneKeep-v0 or an Atari game, e.g. ALE/Pong-v5 (default: %(default)s)")
    train_bench.add_argument("--vec-env", default="default", help="Atari's vector backend: default or envpool (default: %(default)s)")
    train_bench.add_argument("--device", choices=["cpu", "cuda", "auto"], default="cpu", help="where the networks run (default: %(default)s)")
    train_bench.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    train_bench.set_defaults(handler=cmd_bench_train)
    perception_bench = targets.add_parser("perception", help="fast camera vs PyBullet's renderer, CNN images/s, env steps/s perceived vs state")
    perception_bench.add_argument("--model", metavar="RUN_DIR", help="a trained perception model (default: the untrained default architecture)")
    perception_bench.add_argument("--seconds", type=float, default=6.0, help="wall time per measured workload (default: %(default)s)")
    perception_bench.add_argument("--cnn-only", action="store_true",
                                  help="only the CNN's batched inference (needs neither PyBullet nor the env)")
    perception_bench.add_argument("--batch-size", type=int, default=256, help="images per inference batch (default: %(default)s)")
    perception_bench.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    perception_bench.set_defaults(handler=cmd_bench_perception)

    watch_bench = targets.add_parser("watch", help="dashboard frames/s at 1280x720 on one core, per panel, vs PyBullet's chase view")
    watch_bench.add_argument("--seconds", type=float, default=6.0, help="wall time of the measured workloads (default: %(default)s)")
    watch_bench.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    watch_bench.set_defaults(handler=cmd_bench_watch)

    from drivelab.experiments.perception_cli import add_perception_commands
    from drivelab.experiments.watch_cli import add_watch_command

    add_perception_commands(commands)
    add_watch_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status (callable in-process, as the tests do)."""
    try:
        args = build_parser().parse_args(argv)
        return args.handler(args)
    except UsageError as error:
        message = str(error)
        print(message if message.startswith("drivelab") else f"drivelab: {message}", file=sys.stderr)
        return EXIT_USAGE


def run() -> None:
    """The console script: ``main`` and exit; a Ctrl-C that no command handles ends it without a traceback."""
    try:
        status = main()
    except KeyboardInterrupt:
        status = 130
    sys.exit(status)


if __name__ == "__main__":
    # Under `python -m` this file is __main__, a second copy of the module: the command modules raise
    # drivelab.experiments.cli.UsageError, so that module's main must be the one that catches it.
    from drivelab.experiments.cli import run as run_imported

    run_imported()
