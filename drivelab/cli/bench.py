"""``drivelab bench``: each benchmark beside its reference run in the same command."""

from __future__ import annotations

import argparse
import json
import math
import sys

from drivelab.cli.common import Parser, UsageError, env_options, json_ready


def cmd_bench_env(args: argparse.Namespace) -> int:
    from drivelab.experiments.bench import bench_env

    if not (args.seconds > 0 and math.isfinite(args.seconds)):
        raise UsageError(f"--seconds must be a positive number, got {args.seconds}")
    if args.rounds < 1:
        raise UsageError(f"--rounds must be >= 1, got {args.rounds}")
    options = env_options(args.option)
    if options and args.env != "DriveLab/LaneKeep-v0":
        raise UsageError(f"--option is for DriveLab/LaneKeep-v0's bench (its env and the ceiling's scene), not {args.env}")
    if args.env == "DriveLab/Highway-v0":
        from drivelab.experiments.bench_highway import bench_highway, check_vehicles, format_highway_bench

        try:
            vehicles = check_vehicles(args.vehicles)
        except ValueError as error:
            raise UsageError(str(error)) from None
        result = bench_highway(seconds=args.seconds, rounds=args.rounds, vehicles=vehicles, with_peer=not args.no_peer,
                               progress=None if args.json else print)
        print(json.dumps(json_ready(result)) if args.json else format_highway_bench(result))
        return 0
    if args.env != "DriveLab/LaneKeep-v0":
        raise UsageError(f"--env must be DriveLab/LaneKeep-v0 or DriveLab/Highway-v0, got {args.env!r}")
    try:
        result = bench_env(seconds=args.seconds, with_peer=not args.no_peer, rounds=args.rounds,
                           progress=None if args.json else print, options=options)
    except ValueError as error:  # a bad --option, as gym.make words it
        raise UsageError(str(error).splitlines()[0]) from None
    if args.json:
        print(json.dumps(json_ready(result)))
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
    print(json.dumps(json_ready(result)) if args.json else format_perception_bench(result))
    return 0


def cmd_bench_watch(args: argparse.Namespace) -> int:
    from drivelab.experiments.bench_watch import bench_watch, format_watch_bench

    if not (args.seconds > 0 and math.isfinite(args.seconds)):
        raise UsageError(f"--seconds must be a positive number, got {args.seconds}")
    result = bench_watch(seconds=args.seconds, progress=None if args.json else print)
    print(json.dumps(json_ready(result)) if args.json else format_watch_bench(result))
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
    print(json.dumps(json_ready(result)) if args.json else format_train_bench(result))
    return 0


def add_bench_command(commands) -> None:
    """``bench`` and its targets, on the subcommands of the ``drivelab`` parser."""
    bench = commands.add_parser("bench", help="benchmarks, each against a reference run in the same command")
    targets = bench.add_subparsers(dest="target", metavar="TARGET", parser_class=Parser)
    targets.required = True
    env = targets.add_parser("env", help="env steps/s (replayed actions, and with the driver) vs highway-fast-v0 and raw PyBullet")
    env.add_argument("--seconds", type=float, default=10.0, help="wall time per measured workload (default: %(default)s)")
    env.add_argument("--rounds", type=int, default=5, help="interleaved rounds the wall time is split into (default: %(default)s)")
    env.add_argument("--no-peer", action="store_true", help="skip highway-env even when installed")
    env.add_argument("--env", default="DriveLab/LaneKeep-v0",
                     help="DriveLab/LaneKeep-v0 (replayed laps, the physics ceiling) or DriveLab/Highway-v0 (each action "
                          "mode, with --vehicles others) (default: %(default)s)")
    env.add_argument("--vehicles", type=int, default=20, help="with DriveLab/Highway-v0: other vehicles (default: %(default)s, as highway-fast-v0)")
    env.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                     help="with DriveLab/LaneKeep-v0: an env option for its workloads and the ceiling's scene (repeatable)")
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
