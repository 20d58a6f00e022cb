"""The ``drivelab`` command line.

Heavy modules (pybullet, torch, highway-env) are imported inside the commands, so ``drivelab --help``
answers at once. Bad input gets one line on stderr naming the problem and what is allowed, and exit
status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
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


def _make_env(env_id: str, action: str, options: dict[str, Any], render_mode: str | None = None):
    import gymnasium as gym

    import drivelab  # noqa: F401  (registers the environments)

    if env_id not in gym.registry:
        known = sorted(name for name in gym.registry if name.startswith("DriveLab/"))
        raise UsageError(f"unknown env {env_id!r}; allowed: {', '.join(known)}")
    try:
        return gym.make(env_id, action=action, render_mode=render_mode, **options)
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


def cmd_drive(args: argparse.Namespace) -> int:
    from drivelab.agents.rule_based import RuleBasedDriver, RuleBasedDriverConfig

    if args.episodes < 1:
        raise UsageError(f"--episodes must be >= 1, got {args.episodes}")
    try:
        config = RuleBasedDriverConfig(tracker=args.tracker)
    except ValueError as error:
        raise UsageError(str(error)) from None
    env = _make_env(args.env, args.action, _env_options(args.option), render_mode=args.render)
    driver = RuleBasedDriver.for_env(env, config)
    episodes = []
    try:
        for episode in range(args.episodes):
            seed = args.seed + episode
            observation, _ = env.reset(seed=seed)
            driver.reset()
            total_reward, info = 0.0, {}
            done = False
            while not done:
                action, _ = driver.predict(observation)
                observation, reward, terminated, truncated, info = env.step(action)
                total_reward += reward
                if args.render:
                    env.render()
                done = terminated or truncated
            metrics = {key: info[key] for key in info if key in METRIC_COLUMNS or key in ("collision", "rolled_over", "distance_m", "track_seed")}
            episodes.append({"seed": seed, "return": total_reward, **metrics})
    finally:
        env.close()
    summary = {
        "episodes": len(episodes),
        "route_completion_mean": sum(e["route_completion"] for e in episodes) / len(episodes),
        "lateral_error_rms_max": max(e["lateral_error_rms"] for e in episodes),
        "off_road_count": sum(bool(e["off_road"]) for e in episodes),
        "mean_speed": sum(e["mean_speed"] for e in episodes) / len(episodes),
    }
    result = {"env": args.env, "action": args.action, "agent": "rule_based", "tracker": args.tracker,
              "episodes": episodes, "summary": summary}
    if args.json:
        print(json.dumps(_json_ready(result)))
    else:
        print(f"rule-based driver ({args.tracker} tracker) on {args.env}, action={args.action}")
        _print_table(episodes, ("seed", "return") + METRIC_COLUMNS)
        print(f"mean route completion {summary['route_completion_mean']:.3f}, worst lateral error RMS "
              f"{summary['lateral_error_rms_max']:.3f} m, off road {summary['off_road_count']}/{len(episodes)}, "
              f"mean speed {summary['mean_speed']:.2f} m/s")
    return 0


def cmd_bench_env(args: argparse.Namespace) -> int:
    from drivelab.experiments.bench import bench_env

    if not (args.seconds > 0 and math.isfinite(args.seconds)):
        raise UsageError(f"--seconds must be a positive number, got {args.seconds}")
    result = bench_env(seconds=args.seconds, with_peer=not args.no_peer, progress=None if args.json else print)
    if args.json:
        print(json.dumps(_json_ready(result)))
    else:
        from drivelab.experiments.bench import format_env_bench

        print(format_env_bench(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="drivelab", description="DriveLab: RL and autonomous-driving lab on PyBullet.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    drive = commands.add_parser("drive", help="drive episodes with the rule-based driver (planner + PID) and print metrics")
    drive.add_argument("--env", default="DriveLab/LaneKeep-v0", help="environment id (default: %(default)s)")
    drive.add_argument("--episodes", type=int, default=10, help="number of episodes; episode i uses seed S+i (default: %(default)s)")
    drive.add_argument("--seed", type=int, default=0, help="first reset seed (default: %(default)s)")
    drive.add_argument("--action", default="steer", help="action mode: direct, steer or steer_discrete (default: %(default)s)")
    drive.add_argument("--tracker", default="pid", help="lateral tracker: pid, stanley or pure_pursuit (default: %(default)s)")
    drive.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="env option, repeatable (e.g. target_speed_mps=12)")
    drive.add_argument("--render", choices=["human"], default=None, help="watch in the PyBullet GUI")
    drive.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    drive.set_defaults(handler=cmd_drive)

    bench = commands.add_parser("bench", help="benchmarks, each against a reference run in the same command")
    targets = bench.add_subparsers(dest="target", metavar="TARGET", parser_class=_Parser)
    targets.required = True
    env = targets.add_parser("env", help="env steps/s and real-time factor vs highway-fast-v0 and raw PyBullet")
    env.add_argument("--seconds", type=float, default=10.0, help="wall time per measured env (default: %(default)s)")
    env.add_argument("--no-peer", action="store_true", help="skip highway-env even when installed")
    env.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    env.set_defaults(handler=cmd_bench_env)
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
    """The console script: ``main`` and exit."""
    sys.exit(main())


if __name__ == "__main__":
    run()
