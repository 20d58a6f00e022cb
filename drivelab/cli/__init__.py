"""The ``drivelab`` command line: one module per command group (``drive``, ``train``/``sweep``/``compare``,
``bench``, ``perception``, ``watch``), each parsing its arguments and calling the package that does the work.

Heavy modules (pybullet, torch, highway-env) are imported inside the commands, so ``drivelab --help``
answers at once. Bad input gets one line on stderr naming the problem and what is allowed, and exit
status 2; so does ``train`` on a trial that another live process is running (the line names it).

``train`` and ``sweep`` stop cleanly on Ctrl-C (SIGINT) and SIGTERM: the trials they run are
checkpointed and marked ``interrupted``, the command prints ``interrupted; run the same command to
resume`` and exits with status 130, without a traceback (see :mod:`drivelab.experiments.interruption`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from drivelab.cli.bench import add_bench_command
from drivelab.cli.common import EXIT_USAGE, Parser, UsageError
from drivelab.cli.drive import add_drive_command
from drivelab.cli.experiments import add_experiment_commands
from drivelab.cli.perception import add_perception_commands
from drivelab.cli.watch import add_watch_command


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="drivelab", description="DriveLab: RL and autonomous-driving lab on PyBullet.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands.required = True
    add_drive_command(commands)
    add_experiment_commands(commands)
    add_bench_command(commands)
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
