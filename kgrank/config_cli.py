"""`kgrank config show`: every setting, its value and where it came from (option, env, file or default)."""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Annotated, Any, Literal

import typer
from pydantic import BaseModel, JsonValue
from pydantic_settings import EnvSettingsSource

from kgrank.settings_doc import shown
from kgrank.settings_options import with_setting_options
from services.core.settings import CONFIG_FILE, Settings, config_path, env_name, file_settings

Origin = Literal["option", "env", "file", "default"]
MASK = "**********"  # what pydantic shows for a SecretStr
# The password in a URL's user part (redis://:password@host, bolt://user:password@host) is a secret too.
URL_PASSWORD = re.compile(r"(://[^/@:,]*):[^/@,]*@")

config_app = typer.Typer(
    help=f"The settings kgrank runs with: options, KGRANK_* variables, {CONFIG_FILE} and defaults.",
    no_args_is_help=True,
)


class Setting(BaseModel):
    value: JsonValue  # secrets masked
    origin: Origin


class ConfigReport(BaseModel):
    config_file: str | None
    settings: dict[str, Setting]


def config_report(overrides: dict[str, Any]) -> ConfigReport:
    """The effective settings with `overrides` given as options, and where each value came from."""
    settings = Settings(**overrides)
    path = config_path()
    from_env = EnvSettingsSource(Settings)()  # the same reading of KGRANK_* that Settings does
    from_file = file_settings(path) if path else {}
    values = settings.model_dump(mode="json")  # a SecretStr dumps masked
    # Highest precedence first, as Settings ranks its sources.
    layers: list[tuple[Origin, Collection[str]]] = [("option", overrides), ("env", from_env), ("file", from_file)]
    origins = {name: next((origin for origin, names in layers if name in names), "default") for name in values}
    return ConfigReport(
        config_file=str(path.resolve()) if path else None,
        settings={name: Setting(value=masked(value), origin=origins[name]) for name, value in values.items()},
    )


def masked(value: JsonValue) -> JsonValue:
    return URL_PASSWORD.sub(rf"\1:{MASK}@", value) if isinstance(value, str) else value


def origin_text(name: str, origin: Origin) -> str:
    return f"env {env_name(name)}" if origin == "env" else origin


@config_app.command("show")
@with_setting_options
def show(
    overrides: dict[str, Any],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON document, for machines.")] = False,
) -> None:
    """Every setting, its value and where it came from. Secrets are masked. Takes the options `kgrank serve` takes,
    to show what a server started with them would use."""
    report = config_report(overrides)
    if as_json:
        typer.echo(report.model_dump_json(indent=2))
        return
    typer.echo(f"config file: {report.config_file or 'none'}")
    rows = [(name, shown(entry.value), origin_text(name, entry.origin)) for name, entry in report.settings.items()]
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    for name, value, origin in rows:
        typer.echo(f"{name:<{widths[0]}}  {value:<{widths[1]}}  {origin}")
