"""``drivelab watch``: agents driving on the pipeline dashboard, to a video file or a live window.

The work is :mod:`drivelab.viewer`'s; this module parses arguments, loads the agents as ``drivelab drive``
does, and prints where the video went. Bad input (an unknown agent or run directory, an output path that
cannot be written or has an unknown extension, ``--live`` without a display) is one line on stderr and
exit status 2, checked before anything is written; an interrupted or failed run leaves no partial video.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

from drivelab.cli.common import UsageError, env_options, first_line_usage_error, json_ready, print_table
from drivelab.cli.drive import add_env_arguments, drive_agent

DEFAULT_VIDEO = "rollout.mp4"
MAX_AGENTS = 4


def _watched_agent(args: argparse.Namespace, spec: str):
    """The agent ``spec`` (rule_based, random or a run directory) and the world it is watched in."""
    from drivelab.envs.atari import is_atari
    from drivelab.viewer.watch import WatchedAgent

    loaded = None
    if spec not in ("rule_based", "random"):
        from drivelab.experiments.trial import load_trained_agent

        try:
            loaded = load_trained_agent(Path(spec))
        except ValueError as error:
            raise UsageError(str(error)) from None
    if is_atari(loaded[1]["env_id"] if loaded is not None else args.env):
        return _game_agent(args, spec, loaded)
    one = copy.copy(args)
    one.agent, one.render, one.first_track_seed = spec, None, None
    agent, env, label, _ = drive_agent(one, loaded)
    return WatchedAgent(label, agent, env)


def _beside_runs(args: argparse.Namespace, specs: list[str]) -> argparse.Namespace:
    """``args``, with ``--env`` set to the world of the run directories among ``specs`` when it was left at its
    default: the rule-based driver or the random agent watched with a highway run drives the highway, with an
    Atari run plays its game."""
    import yaml

    from drivelab.envs import LANEKEEP_ID
    from drivelab.experiments.trial import CONFIG_FILE

    if args.env != LANEKEEP_ID:  # add_env_arguments' default: --env was given
        return args
    for spec in specs:
        config = Path(spec) / CONFIG_FILE
        if spec not in ("rule_based", "random") and config.is_file():
            world = (yaml.safe_load(config.read_text()) or {}).get("env_id")
            if isinstance(world, str) and world != LANEKEEP_ID:
                beside = copy.copy(args)
                beside.env = world
                return beside
    return args


def _game_agent(args: argparse.Namespace, spec: str, loaded):
    """An agent playing an Atari game: a trained run's model, or the random agent on ``--env``'s game."""
    from drivelab.agents.factory import RandomAgent
    from drivelab.agents.pixels import FrameStackingAgent
    from drivelab.envs.atari import MAX_FRAMES_PER_EPISODE, AtariGame, check_game
    from drivelab.viewer.watch import WatchedAgent

    if spec == "rule_based":
        raise first_line_usage_error("--agent rule_based drives DriveLab's worlds; an Atari game takes random or a run directory")
    if args.track_seed is not None:
        raise first_line_usage_error("--track-seed is for driving worlds; an Atari game has no tracks (--seed picks its start)")
    for flag, value in (("--action", args.action), ("--observation", args.observation),
                        ("--perception-model", args.perception_model)):
        if value is not None:
            raise first_line_usage_error(f"{flag} is for driving worlds; an Atari game plays its own actions and frames")
    options = env_options(args.option)
    for key, value in options.items():
        allowed = {"sticky_actions": isinstance(value, bool),
                   "max_episode_frames": type(value) is int and 1 <= value <= MAX_FRAMES_PER_EPISODE}
        if not allowed.get(key, False):
            raise first_line_usage_error(f"--option {key}={value}: an Atari game takes sticky_actions=true|false and "
                               f"max_episode_frames=1..{MAX_FRAMES_PER_EPISODE}")
    max_frames = options.get("max_episode_frames", MAX_FRAMES_PER_EPISODE)
    if loaded is None:
        try:
            env_id = check_game(args.env)
        except ValueError as error:
            raise first_line_usage_error(f"--env: {error}") from None
        game = AtariGame(env_id, sticky_actions=options.get("sticky_actions", False), seed=args.seed, max_frames=max_frames)
        return WatchedAgent("random agent", RandomAgent(game.action_space, args.seed), game)
    model, trial = loaded
    # The game stacks its frames itself (as evaluation does): the model, not a stacking agent around it.
    agent = model.model if isinstance(model, FrameStackingAgent) else model
    sticky = options.get("sticky_actions", bool(trial["env_options"].get("sticky_actions", False)))
    game = AtariGame(trial["env_id"], sticky_actions=sticky, seed=args.seed, max_frames=max_frames)
    return WatchedAgent(f"{trial['algo']} from {spec}", agent, game)


def cmd_watch(args: argparse.Namespace) -> int:
    from drivelab.envs.atari import AtariGame

    specs = args.agent or ["rule_based"]
    if len(specs) > MAX_AGENTS:
        raise first_line_usage_error(f"--agent is given 1 to {MAX_AGENTS} times, got {len(specs)}")
    if args.episodes < 1:
        raise first_line_usage_error(f"--episodes must be >= 1, got {args.episodes}")
    if args.seed < 0:
        raise first_line_usage_error(f"--seed must be >= 0, got {args.seed}")
    if args.track_seed is not None and args.track_seed < 0:
        raise first_line_usage_error(f"--track-seed must be >= 0, got {args.track_seed}")
    from drivelab.viewer.pacing import check_speed
    from drivelab.viewer.video import LiveWindow, VideoFile, check_display, check_video_path
    from drivelab.viewer.watch import check_size, frame_period_s, watch

    try:
        size = check_size(args.size)
        speed = check_speed(args.speed)
        out = args.out if args.out is not None else (None if args.live else DEFAULT_VIDEO)
        path = check_video_path(out) if out is not None else None
        if args.live:
            check_display()
    except ValueError as error:
        raise first_line_usage_error(str(error)) from None

    watched, wall_s = [], []
    try:
        scripted_args = _beside_runs(args, specs)
        for spec in specs:
            watched.append(_watched_agent(scripted_args, spec))
        if len({isinstance(agent.env, AtariGame) for agent in watched}) > 1:
            raise first_line_usage_error("--agent: an Atari run and a driving agent cannot be watched side by side; give one kind")
        fps = 1.0 / frame_period_s(watched)
        window = None
        if args.live:
            try:
                window = LiveWindow()
            except ValueError as error:
                raise first_line_usage_error(str(error)) from None
        video = VideoFile(path, fps) if path is not None else None
        try:
            watch(watched, episodes=args.episodes, seed=args.seed, track_seed=args.track_seed, size=size, video=video,
                  window=window, speed=speed, close_at_end=args.close, episode_wall_s=wall_s)
        except BaseException:
            if video is not None:
                video.abort()
            raise
        finally:
            if window is not None:
                window.close()
        if video is not None:
            video.close()
    except KeyboardInterrupt:
        print("interrupted; no video was written" if path is not None else "interrupted", file=sys.stderr)
        return 130
    finally:
        for agent in watched:
            agent.env.close()
    result = {"video": str(path) if path is not None else None, "size": list(size), "live": bool(args.live),
              "speed": speed if args.live else None, "episode_wall_s": wall_s,
              "agents": [{"label": a.label, "episodes": a.episodes} for a in watched]}
    if args.json:
        print(json.dumps(json_ready(result)))
        return 0

    for agent in watched:
        print(agent.label)
        if isinstance(agent.env, AtariGame):
            print_table(agent.episodes, ("seed", "score", "human_normalized_score", "frames", "truncated"))
        else:
            traffic = ("collision", "lane_changes", "headway_violations", "driving_score") \
                if agent.episodes and "driving_score" in agent.episodes[0] else ()
            print_table(agent.episodes, ("seed", "track_seed", "return", "route_completion", "lateral_error_rms",
                                          "off_road", "mean_speed") + traffic)
    if path is not None:
        print(f"video: {path.resolve()}")
    return 0


def add_watch_command(commands) -> None:

    watch = commands.add_parser(
        "watch", help="agents driving on the pipeline dashboard, or playing an Atari game, to a video (mp4, gif) or a live window")
    watch.add_argument("--agent", action="append", metavar="AGENT",
                       help="rule_based, random, or a trial's run directory (load only runs you trust); give it twice "
                            "to watch two agents side by side on the same tracks (default: rule_based)")
    watch.add_argument("--episodes", type=int, default=1, help="episodes; episode i uses reset seed S+i (default: %(default)s)")
    watch.add_argument("--seed", type=int, default=0, help="first reset seed (default: %(default)s)")
    watch.add_argument("--track-seed", type=int, metavar="K",
                       help="episode i drives track K+i (evaluation tracks start at 1000000; default: a track drawn from the reset seed)")
    add_env_arguments(watch)
    watch.add_argument("--out", metavar="FILE", help=f"video file, .mp4 or .gif (default: {DEFAULT_VIDEO} unless --live)")
    watch.add_argument("--live", action="store_true", help="show the dashboard in a window as the agents drive")
    watch.add_argument("--speed", type=float, default=1.0,
                       help="live playback in times real time; 0 plays as fast as it can (default: %(default)s)")
    watch.add_argument("--close", action="store_true", help="close the live window after the last episode instead of waiting for a key")
    watch.add_argument("--size", default="1280x720", metavar="WxH", help="each agent's dashboard size (default: %(default)s)")
    watch.add_argument("--json", action="store_true", help="print the video's path and each episode's metrics as one JSON object")
    watch.set_defaults(handler=cmd_watch, agent=None)

