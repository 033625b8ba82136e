"""`kgrank` command line. Every failure kgrank foresees ends as one `error:` line and exit code 2.

torch and transformers take seconds to import, so the commands that need them import them when they
run: `kgrank --help` and the data and graph commands start at once.
"""

from __future__ import annotations

import logging
import sys

import typer
from pydantic import ValidationError

from kgrank.base_model_cli import base_model_app
from kgrank.data_cli import data_app
from kgrank.demo import demo
from kgrank.evaluate_cli import evaluate
from kgrank.graph_cli import graph_app
from kgrank.serve_cli import serve
from kgrank.train_cli import train_app
from services.core.errors import KgrankError

app = typer.Typer(
    help="kgrank: a knowledge-graph-backed recommendation ranking service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")
app.add_typer(graph_app, name="graph")
app.add_typer(train_app, name="train")
app.add_typer(base_model_app, name="base-model")
app.command("evaluate")(evaluate)
app.command("demo")(demo)
app.command("serve")(serve)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("neo4j").setLevel(logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request is noise in CLI output
    try:
        app()
    except KgrankError as e:
        typer.echo(f"error: {' '.join(e.message.split())}", err=True)  # one line, whatever the cause wrote
        sys.exit(2)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        typer.echo(f"error: invalid {where or 'input'}: {first['msg']}", err=True)
        sys.exit(2)
    except OSError as e:
        typer.echo(f"error: {e.strerror or e}: {e.filename or ''}".rstrip(": "), err=True)
        sys.exit(2)
