"""``python -m drivelab.cli``: the ``drivelab`` command."""

from drivelab.cli import run

run()
