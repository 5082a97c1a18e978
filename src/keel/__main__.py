"""``python -m keel`` runs the CLI."""

from keel.cli.entry import run

run()
