"""``drivelab train``, ``sweep`` and ``compare``: the trials of an experiment config and their comparison."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from drivelab.cli.common import UsageError, json_ready, stoppable


def load_config_or_usage_error(path: str):
    from drivelab.experiments.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as error:
        raise UsageError(str(error)) from None


def check_stale_limit() -> None:
    from drivelab.experiments.ownership import stale_after_s

    try:
        stale_after_s()
    except ValueError as error:
        raise UsageError(str(error)) from None


def owned_elsewhere_line(error: Exception) -> str:
    return f"{error}; wait for it to finish, or stop it and run this command again"


def cmd_train(args: argparse.Namespace) -> int:
    from drivelab.experiments.config import ConfigError, resolve_trial
    from drivelab.experiments.interruption import EXIT_INTERRUPTED, stop_requested
    from drivelab.experiments.ownership import TrialOwnedElsewhere, TrialOwnershipLost
    from drivelab.experiments.trial import (TrialAlreadyDone, TrialInterrupted, check_run_dir_config, read_status,
                                            run_trial, trial_dir)

    check_stale_limit()
    config = load_config_or_usage_error(args.config)
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
            raise UsageError(owned_elsewhere_line(owned)) from None
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
        print(json.dumps(json_ready({"run_dir": str(run_dir), **status})))
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
    check_stale_limit()
    config = load_config_or_usage_error(args.config)
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
        result = compare([Path(d) for d in args.dirs], out, metric=args.metric, peer=[Path(f) for f in args.peer])
    except ValueError as error:
        raise UsageError(str(error).splitlines()[0]) from None
    if args.json:
        print(json.dumps(json_ready(result)))
    else:
        print(format_table(result))
        for agent in result["agents"]:
            video = agent.get("video")
            if video is not None:  # its path is relative to the report; here, where the user stands
                print(f"last video of {agent['agent']} (seed {video['seed']}, {video['env_steps']:,} env steps): "
                      f"{os.path.relpath(Path(result['out_dir']) / video['path'])}")
        print(f"report: {result['report']}")
    return 0


def add_experiment_commands(commands) -> None:
    """``train``, ``sweep`` and ``compare``, on the subcommands of the ``drivelab`` parser."""
    train = commands.add_parser("train", help="train and evaluate one trial (one agent, one seed) of an experiment config")
    train.add_argument("config", help="experiment YAML (see experiments/)")
    train.add_argument("--agent", help="agent name from the config (required when it has several)")
    train.add_argument("--seed", type=int, help="training seed (default: the config's first)")
    train.add_argument("--out", default="runs", help="where run directories go (default: %(default)s)")
    train.add_argument("--json", action="store_true", help="print the trial's status as one JSON object")
    train.set_defaults(handler=stoppable(cmd_train))

    sweep = commands.add_parser("sweep", help="run every (agent, seed) trial of a config; resumable")
    sweep.add_argument("config", help="experiment YAML (see experiments/)")
    sweep.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1)), help="parallel trials (local backend; default: %(default)s)")
    sweep.add_argument("--backend", choices=["local", "ray"], default="local", help="local worker processes or Ray tasks (default: %(default)s)")
    sweep.add_argument("--address", help="Ray cluster address (default: start a local Ray)")
    sweep.add_argument("--out", default="runs", help="where run directories go (default: %(default)s)")
    sweep.add_argument("--json", action="store_true", help="print the sweep summary as one JSON object")
    sweep.set_defaults(handler=stoppable(cmd_sweep))

    compare = commands.add_parser("compare", help="learning curves, IQM with bootstrap CIs, and a markdown report")
    compare.add_argument("dirs", nargs="+", metavar="DIR", help="experiment, agent or trial directories")
    compare.add_argument("--out", help="report directory (default: DIR/comparison of the first DIR)")
    compare.add_argument("--metric", help="evaluation metric to compare (default: route_completion; score for Atari games)")
    compare.add_argument("--peer", nargs="+", default=[], metavar="FILE",
                         help="highway runs: the peer's results beside ours, the --json outputs of "
                              "benchmarks/highway_env_dqn.py, one per seed")
    compare.add_argument("--json", action="store_true", help="print the comparison as one JSON object")
    compare.set_defaults(handler=cmd_compare)
