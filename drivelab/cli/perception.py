"""``drivelab perception``: collect a dataset, train the camera CNN on it, and evaluate it.

The work is :mod:`drivelab.perception`'s; this module parses arguments, tracks the training (an
offline W&B run and TensorBoard logs inside the run directory, as trials have) and prints results.
Bad input (a missing or corrupt dataset or model, an image size the model was not made for,
``--device cuda`` without CUDA) is one line on stderr and exit status 2, and leaves nothing in the
run directory: datasets and options are checked before it is made.

``collect`` never leaves a half-written dataset: an interrupted or failed collection removes what it wrote.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from drivelab.cli.common import env_options, first_line_usage_error, stoppable

PERCEPTION_WANDB_MODES = ("offline", "online", "disabled")
WANDB_PROJECT = "drivelab"


class _Tracker:
    """The W&B run (offline by default) and the TensorBoard writer of one perception training.

    Both start at the first logged epoch, not before: a training refused for bad input leaves no
    ``wandb/`` or ``tensorboard/`` behind.
    """

    def __init__(self, run_dir: Path, mode: str, config: dict[str, Any]) -> None:
        self.run_dir, self.mode, self.config = run_dir, mode, config
        self.wandb = None
        self.writer = None

    def _start(self) -> None:
        from torch.utils.tensorboard import SummaryWriter

        from drivelab.experiments.tracking import TENSORBOARD_EVENTS_DIR, WandbRun

        trial = {
            "tracking": {"wandb": {"mode": self.mode, "project": WANDB_PROJECT, "entity": None}, "tensorboard": True},
            "experiment": "perception", "agent": self.run_dir.name, "algo": "perception-cnn",
            "env_id": "DriveLab/LaneKeep-v0", "seed": self.config["seed"], **self.config,
        }
        # W&B syncs TensorBoard from the directory trials use, so both kinds of run directory look alike.
        self.wandb = WandbRun(trial, self.run_dir)
        self.writer = SummaryWriter(str(self.run_dir / TENSORBOARD_EVENTS_DIR))

    def log(self, metrics: dict[str, float], step: int) -> None:
        if self.writer is None:
            self._start()
        for name, value in metrics.items():
            if name != "epoch":
                self.writer.add_scalar(name, value, step)
        self.writer.flush()

    def finish(self, summary: dict[str, Any] | None, exit_code: int = 0) -> None:
        if self.writer is not None:
            self.writer.close()
        if self.wandb is not None:
            self.wandb.finish(summary, exit_code=exit_code)


def _final_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    final = {"final/train_loss": summary["train_loss"], "final/wall_time_s": summary["wall_time_s"]}
    if summary.get("heldout_loss") is not None:
        final["final/heldout_loss"] = summary["heldout_loss"]
        final.update({f"final/heldout_mae/{name}": value for name, value in summary["heldout_mae"].items()})
    return final


def _check_train_options(args: argparse.Namespace) -> None:
    import math

    if args.epochs < 1:
        raise first_line_usage_error(f"--epochs must be >= 1, got {args.epochs}")
    if args.batch_size < 1:
        raise first_line_usage_error(f"--batch-size must be >= 1, got {args.batch_size}")
    if not (args.lr > 0 and math.isfinite(args.lr)):
        raise first_line_usage_error(f"--lr must be a positive number, got {args.lr}")
    if args.seed < 0:
        raise first_line_usage_error(f"--seed must be >= 0, got {args.seed}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise first_line_usage_error(f"--out {out} is a file; give a directory for the perception run")


def cmd_perception_train(args: argparse.Namespace) -> int:
    _check_train_options(args)
    from drivelab.experiments import interruption
    from drivelab.perception.training import TrainingInterrupted, train_perception

    run_dir = Path(args.out)
    config = {"data": str(args.data), "heldout": str(args.heldout) if args.heldout else None, "epochs": args.epochs,
              "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed, "flip": args.flip, "jitter": args.jitter,
              "device": args.device}
    tracker = _Tracker(run_dir, args.wandb, config)
    try:
        summary = train_perception(args.data, run_dir, epochs=args.epochs, device=args.device, heldout_dir=args.heldout,
                                   batch_size=args.batch_size, lr=args.lr, seed=args.seed, flip=args.flip, jitter=args.jitter,
                                   log=tracker.log, progress=not args.json and sys.stderr.isatty(),
                                   should_stop=interruption.stop_requested)
    except TrainingInterrupted:
        tracker.finish(None, exit_code=interruption.EXIT_INTERRUPTED)
        return interruption.EXIT_INTERRUPTED
    except ValueError as error:  # bad datasets, options or run directory: found before anything is written
        tracker.finish(None, exit_code=1)
        raise first_line_usage_error(str(error)) from None
    except BaseException:
        tracker.finish(None, exit_code=1)
        raise
    tracker.finish(_final_metrics(summary))
    result = {"run_dir": str(run_dir), "model": str(run_dir / "model.pt"), **summary}
    result.pop("history", None)
    if args.json:
        print(json.dumps(result))
        return 0
    if summary.get("already_done"):
        print(f"{run_dir} is already trained for {summary['epochs']} epochs; give more --epochs to continue it",
              file=sys.stderr)
    epochs = f"{summary['epochs']} epoch" + ("s" if summary["epochs"] != 1 else "")
    print(f"trained {epochs} on {summary['train_samples']} images in {summary['wall_time_s']:.0f} s "
          f"({summary['device']}); final training loss {summary['train_loss']:.4f}")
    if summary.get("heldout_mae"):
        print(f"held-out ({summary['heldout_samples']} images): loss {summary['heldout_loss']:.4f}")
        _print_mae(summary["heldout_mae"])
    print(f"model: {run_dir / 'model.pt'} (described in {run_dir / 'perception.json'})")
    return 0


def _print_mae(mae: dict[str, float]) -> None:
    width = max(len(name) for name in mae)
    print(f"{'feature':<{width}}  mean abs error")
    for name, value in mae.items():
        print(f"{name:<{width}}  {value:.5f}")


def cmd_perception_eval(args: argparse.Namespace) -> int:
    from drivelab.perception.evaluation import evaluate_perception

    try:
        result = evaluate_perception(args.run_dir, args.data, device=args.device)
    except ValueError as error:  # PerceptionModelError is one, as are dataset and device errors
        raise first_line_usage_error(str(error)) from None
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"perception model {result['run_dir']} on {result['data_dir']} ({result['split']}, {result['samples']} images, "
          f"{result['device']}: {result['images_per_s']:.0f} images/s)")
    _print_mae(result["mae"])
    return 0


def _stoppable_train(args: argparse.Namespace) -> int:

    return stoppable(cmd_perception_train)(args)


def cmd_perception_collect(args: argparse.Namespace) -> int:
    from drivelab.agents.rule_based import RuleBasedDriver
    from drivelab.perception.collect import collect_dataset

    if args.episodes < 1:
        raise first_line_usage_error(f"--episodes must be >= 1, got {args.episodes}")
    camera_options = env_options(args.option)
    try:
        summary = collect_dataset(args.out, args.episodes, make_driver=lambda mode, action, dt: RuleBasedDriver(mode, action, dt),
                                  seed=args.seed, split=args.split, randomize=args.randomize, camera_options=camera_options,
                                  overwrite=args.overwrite, progress=not args.json)
    except ValueError as error:
        raise first_line_usage_error(str(error).splitlines()[0]) from None
    if args.json:
        print(json.dumps(summary))
    else:
        print(f"wrote {summary['samples']} samples from {summary['episodes']} episodes in {summary['shards']} shards, "
              f"{summary['bytes'] / 1e6:.1f} MB, to {summary['dir']}")
    return 0


def add_perception_commands(commands: argparse._SubParsersAction) -> argparse._SubParsersAction:
    """Add the ``perception`` group (collect, train, eval) to the ``drivelab`` parser's subcommands; returns
    the group's own subparsers."""
    perception = commands.add_parser("perception", help="the camera CNN: collect a dataset, train it, evaluate it")
    # The group's parsers are of the same class as drivelab's own, so their errors are one line too.
    actions = perception.add_subparsers(dest="perception_command", metavar="ACTION", parser_class=type(perception))
    actions.required = True

    collect = actions.add_parser("collect", help="drive LaneKeep (the rule-based driver, with noise) and save camera images with their state")
    collect.add_argument("--out", required=True, metavar="DIR", help="dataset directory (compressed shards and a manifest)")
    collect.add_argument("--episodes", type=int, required=True, help="episodes to drive; episode k resets with seed S+k")
    collect.add_argument("--seed", type=int, default=0, help="first reset seed (default: %(default)s)")
    collect.add_argument("--split", choices=["train", "heldout"], default="train",
                         help="train: tracks from [0, 1e6); heldout: tracks from [1e6, 2e6), never trained on (default: %(default)s)")
    collect.add_argument("--randomize", action="store_true",
                         help="domain randomisation: colours, brightness, texture grain, camera height and pitch, per episode")
    collect.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                         help="a camera option, repeatable (camera_width, camera_height, camera_fov_deg, camera_mount, camera_pixel_noise)")
    collect.add_argument("--overwrite", action="store_true", help="replace a dataset already in --out")
    collect.add_argument("--json", action="store_true", help="print the summary as one JSON object (no progress bar)")
    collect.set_defaults(handler=cmd_perception_collect)

    train = actions.add_parser("train", help="train the perception CNN; resumable (run the same command again)")
    train.add_argument("--data", required=True, metavar="DIR", help="training dataset (drivelab perception collect)")
    train.add_argument("--out", required=True, metavar="RUN_DIR", help="run directory: model, checkpoint, logs")
    train.add_argument("--heldout", metavar="DIR", help="held-out dataset (other tracks), evaluated after each epoch")
    train.add_argument("--epochs", type=int, default=10, help="passes over the training set (default: %(default)s)")
    train.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                       help="auto: CUDA when available (mixed precision), else the CPU (default: %(default)s)")
    train.add_argument("--batch-size", type=int, default=128, help="images per step (default: %(default)s)")
    train.add_argument("--lr", type=float, default=2e-3, help="peak learning rate (default: %(default)s)")
    train.add_argument("--seed", type=int, default=0, help="initialisation and shuffling seed (default: %(default)s)")
    train.add_argument("--flip", action="store_true",
                       help="mirror half the images, negating offset, heading and curvature: only for a mirror-symmetric "
                            "scene and a centred camera")
    train.add_argument("--no-jitter", dest="jitter", action="store_false",
                       help="train without the random brightness and colour of each image")
    train.add_argument("--wandb", choices=PERCEPTION_WANDB_MODES, default="offline",
                       help="W&B run mode; offline runs can be synced later with wandb sync (default: %(default)s)")
    train.add_argument("--json", action="store_true", help="print the training summary as one JSON object")
    train.set_defaults(handler=_stoppable_train)

    evaluate = actions.add_parser("eval", help="mean absolute error per estimated feature on a dataset")
    evaluate.add_argument("run_dir", metavar="RUN_DIR", help="perception run directory (model.pt, perception.json)")
    evaluate.add_argument("--data", required=True, metavar="DIR", help="dataset to evaluate on (a held-out one)")
    evaluate.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto", help="(default: %(default)s)")
    evaluate.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    evaluate.set_defaults(handler=cmd_perception_eval)
    return actions
