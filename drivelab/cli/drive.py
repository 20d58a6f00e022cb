"""``drivelab drive``: episodes of an agent (the rule-based driver, a random one, or a trained trial) with their
metrics, in the terminal or the PyBullet GUI."""

from __future__ import annotations

import argparse
import collections
import json
from pathlib import Path
from typing import Any

from drivelab.cli.common import UsageError, env_options, json_ready, make_env_or_usage_error, print_table

METRIC_COLUMNS = ("route_completion", "lateral_error_rms", "max_lateral_error_m", "off_road", "mean_speed", "episode_time_s")

TRAFFIC_COLUMNS = ("collision", "lane_changes", "headway_violations", "driving_score")  # DriveLab/Highway-v0


def drive_agent(args: argparse.Namespace, loaded: tuple[Any, dict[str, Any]] | None = None):
    """The agent ``drive`` runs and the env it runs in: a scripted agent, or a trained one from its run
    directory (``loaded``: its model and config, when the caller has loaded them already)."""
    from drivelab.agents.factory import RandomAgent

    options = env_options(args.option)
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
        env = make_env_or_usage_error(args.env, args.action or ("meta" if highway else "steer"), options, render_mode=args.render)
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
    env = make_env_or_usage_error(trial["env_id"], trial["action"], {**trial["env_options"], **options}, scaled=True, render_mode=args.render)
    return model, env, f"{trial['algo']} from {args.agent}", trial["action"]


class TimedEpisodes:
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
        agent, env, label, action = drive_agent(args)
        perceived = getattr(env.unwrapped.observation_mode, "mean_absolute_errors", None) is not None
        # Watched in the GUI, the episode runs at --speed times real time (the env steps far faster than that).
        pacer = RealTimePacer(env.unwrapped.decision_dt_s, args.speed) if args.render == "human" else None
        timed = TimedEpisodes(env, pacer)
        episodes = []
        try:
            for seed in range(args.seed, args.seed + args.episodes):
                if perceived:
                    env.unwrapped.observation_mode.reset_errors()
                reset_options = None if args.first_track_seed is None else {"track_seed": args.first_track_seed + seed - args.seed}
                total_reward, _, info = run_episode(agent, timed, seed, reset_options)
                metrics = {key: info[key] for key in info if key in METRIC_COLUMNS + TRAFFIC_COLUMNS
                           or key in ("collision", "rolled_over", "distance_m", "track_seed", "crash")}
                episode = {"seed": seed, "return": total_reward, **metrics, "wall_time_s": timed.wall_time_s}
                if perceived:
                    episode["perception_mae"] = env.unwrapped.observation_mode.mean_absolute_errors()
                episodes.append(episode)
        finally:
            env.close()
    summary = {
        "episodes": len(episodes),
        **({"collision_count": sum(bool(e["collision"]) for e in episodes),
            "crash_kinds": dict(collections.Counter(e["crash"]["kind"] for e in episodes if "crash" in e)),
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
        print(json.dumps(json_ready(result)))
    else:
        print(f"{label} on {env_id}, action={action}, observation={observation}")
        traffic = TRAFFIC_COLUMNS if "driving_score" in episodes[0] else ()
        print_table(episodes, ("seed", "return") + METRIC_COLUMNS + traffic)
        for episode in episodes:
            if "crash" in episode:
                crash = episode["crash"]
                print(f"seed {episode['seed']}: {crash['kind'].replace('_', ' ')} at {crash['speed_mps']:.1f} m/s, the other at "
                      f"{crash['other_speed_mps']:.1f} m/s, {crash['ds_m']:+.1f} m along and {crash['dd_m']:+.1f} m across")
        print(f"mean route completion {summary['route_completion_mean']:.3f}, worst lateral error RMS "
              f"{summary['lateral_error_rms_max']:.3f} m, off road {summary['off_road_count']}/{len(episodes)}, "
              f"mean speed {summary['mean_speed']:.2f} m/s")
        if perceived:
            print("perception mean absolute error: " + ", ".join(f"{name} {value:.4f}" for name, value in summary["perception_mae"].items()))
    return 0


def add_env_arguments(parser: argparse.ArgumentParser) -> None:
    """The env an agent drives in and what it reads, as ``drive`` and ``watch`` take them (see :func:`drive_agent`)."""
    parser.add_argument("--env", default="DriveLab/LaneKeep-v0",
                        help="environment id for scripted agents; watch also takes an Atari game (ALE/Pong-v5) for random, "
                             "which plays the game of an Atari run watched beside it (default: %(default)s)")
    parser.add_argument("--action", help="action mode: direct, steer or steer_discrete (default: steer; a trained agent's own)")
    parser.add_argument("--tracker", default="pid", help="the rule-based driver's lateral tracker: pid, stanley or pure_pursuit (default: %(default)s)")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE", help="env option, repeatable (e.g. target_speed_mps=12)")
    parser.add_argument("--observation", choices=["state", "camera", "perceived"], default=None,
                        help="what the agent reads (default: state; a trained agent's own)")
    parser.add_argument("--perception-model", metavar="RUN_DIR", help="with --observation perceived: the perception model's run directory")


def add_drive_command(commands) -> None:
    """``drive``, on the subcommands of the ``drivelab`` parser."""
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
