"""The ``keel`` entry point: builds the app and turns a KeelError into one sentence."""

from __future__ import annotations

import sys

import typer

from keel import __version__
from keel.cli import audit as audit_cli
from keel.cli import ci as ci_cli
from keel.cli import config, example, project, store
from keel.cli import data as data_cli
from keel.cli import delivery as delivery_cli
from keel.cli import features as features_cli
from keel.cli import monitoring as monitoring_cli
from keel.cli import partitions as partitions_cli
from keel.cli import predict as predict_cli
from keel.cli import serving as serving_cli
from keel.cli import training as training_cli
from keel.cli import ui as ui_cli
from keel.cli import worker as worker_cli
from keel.errors import KeelError

__all__ = ["app", "run"]

app = typer.Typer(
    name="keel",
    help="Keel takes a machine-learning model from pilot to production.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
project.register(app)
audit_cli.register(app)
app.add_typer(config.app, name="config")
app.add_typer(example.app, name="example")
app.add_typer(store.app, name="store")
app.add_typer(ci_cli.app, name="ci")
app.add_typer(features_cli.app, name="features")
data_cli.register(app)
partitions_cli.register(data_cli.app)
training_cli.register(app)
worker_cli.register(app)
delivery_cli.register(app)
monitoring_cli.register(app)
serving_cli.register(app)
predict_cli.register(app)
ui_cli.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"keel {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Keel takes a machine-learning model from pilot to production."""


def run() -> None:
    """Console-script entry: user errors get one line on stderr and exit code 1."""
    try:
        app()
    except KeelError as error:
        sys.stderr.write(f"error: {error}\n")
        sys.exit(1)
