"""What every ``drivelab`` command shares: the one-line usage error (exit status 2), the parser that raises it,
``--option KEY=VALUE`` pairs, JSON-ready values, plain tables, and the clean stop on SIGINT and SIGTERM."""

from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the user: reported as one line, exit status 2."""


def first_line_usage_error(message: str) -> UsageError:
    """A usage error of the first line of ``message`` (an exception's text may run on to details)."""
    return UsageError(message.splitlines()[0] if message else message)


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse prints usage + error over two lines; we want one
        raise UsageError(f"{self.prog}: {message}")


def env_options(pairs: Sequence[str]) -> dict[str, Any]:
    import yaml

    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--option takes KEY=VALUE (for example target_speed_mps=12), got {pair!r}")
        try:
            # The env docs spell the empty option as Python does; YAML reads None as a word, so it is taken as null.
            options[key] = None if value == "None" else yaml.safe_load(value)
        except yaml.YAMLError:
            raise UsageError(f"--option {key}: cannot read value {value!r}; give a number, a word or a [list]") from None
    return options


def make_env_or_usage_error(env_id: str, action: str, options: dict[str, Any], *, scaled: bool = False, render_mode: str | None = None):
    from drivelab.agents.factory import make_env
    from drivelab.envs import require_registered

    try:
        require_registered(env_id)
        return make_env(env_id, options, action, scaled=scaled, render_mode=render_mode)
    except (ValueError, TypeError) as error:
        raise UsageError(str(error).splitlines()[0]) from None


def json_ready(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: json_ready(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(item) for item in value]
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def print_table(rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
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


def stoppable(command):
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
