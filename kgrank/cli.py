"""`kgrank` command line. Every failure kgrank foresees ends as one `error:` line and exit code 2.

torch and transformers take seconds to import, so the commands that need them import them when they
run: `kgrank --help` and the data and graph commands start at once.
"""

from __future__ import annotations

import logging
import sys

import typer
from pydantic import ValidationError
from tqdm.contrib.logging import logging_redirect_tqdm

# typer bundles its own click; these two are the usage errors it raises for what the user typed.
from typer._click.exceptions import NoArgsIsHelpError, UsageError

from kgrank.base_model_cli import base_model_app
from kgrank.config_cli import config_app
from kgrank.config_file import command_defaults
from kgrank.data_cli import data_app
from kgrank.demo import demo
from kgrank.evaluate_cli import evaluate
from kgrank.graph_cli import graph_app
from kgrank.serve_cli import serve
from kgrank.train_cli import train_app
from services.core.atomic import remove_new_folders
from services.core.errors import KgrankError

FAILURE_STATUS = 2  # every failure kgrank foresees, usage errors included (click gives those 2 too)

app = typer.Typer(
    help="kgrank: a knowledge-graph-backed recommendation ranking service.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # click's plain help for every command (the root's mode is its subcommands'): Rich markup would swallow
    # the `[@RANKER]` of a syntax the help shows, and Rich's table cuts option names short in a narrow terminal.
    rich_markup_mode=None,
)
app.add_typer(data_app, name="data")
app.add_typer(graph_app, name="graph")
app.add_typer(train_app, name="train")
app.add_typer(base_model_app, name="base-model")
app.add_typer(config_app, name="config")
app.command("evaluate")(evaluate)
app.command("demo")(demo)
app.command("serve")(serve)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("neo4j").setLevel(logging.ERROR)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per request is noise in CLI output
    status = 1  # a traceback (a bug) is a failure too
    try:
        status = run(sys.argv[1:])
    finally:
        if status != 0:
            remove_new_folders()  # a failed command leaves no empty output folder of its own behind
    sys.exit(status)


def run(args: list[str]) -> int:
    """Run one command line; its exit status, after one `error:` line for every failure kgrank foresees."""
    try:
        # Log lines (estimates, warnings) print above an open progress bar, not glued to it.
        with logging_redirect_tqdm():
            status = app(args=args, prog_name="kgrank", standalone_mode=False, default_map=command_defaults(app))
    except NoArgsIsHelpError as e:  # `kgrank` or `kgrank data` alone: a request for help
        typer.echo(e.format_message())
        return 0
    except UsageError as e:
        return fail(f"{usage_message(e)} (see '{e.ctx.command_path} --help')" if e.ctx else usage_message(e))
    except KgrankError as e:
        return fail(e.message)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return fail(f"invalid {where or 'input'}: {first['msg']}")
    except OSError as e:
        return fail(f"{e.strerror or e}: {e.filename or ''}".rstrip(": "))
    # Not standalone, typer returns the status of an exit (--help's 0, Ctrl-C's 130) and a command's None.
    return status if isinstance(status, int) else 0


def usage_message(error: UsageError) -> str:
    # typer checks choices with pydantic, which prefixes their message with its own "Value error, ".
    message = error.format_message().replace("Value error, ", "").rstrip(".")
    return message[:1].lower() + message[1:]


def fail(message: str) -> int:
    typer.echo(f"error: {' '.join(message.split())}", err=True)  # one line, whatever the cause wrote
    return FAILURE_STATUS
