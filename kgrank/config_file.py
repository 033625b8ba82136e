"""kgrank.toml's command tables as Click's `default_map`: `[train.retriever]` with `max_epochs = 50` makes 50 the
default of `kgrank train retriever --max-epochs`. Every key is checked against the command tree, so a typo stops the
run instead of being ignored."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
import typer.main
from typer.core import TyperCommand, TyperGroup

from services.core.errors import ConfigError
from services.core.settings import Settings, config_path, did_you_mean, read_config, settings_part


def command_defaults(app: typer.Typer) -> dict[str, Any]:
    """The default_map for `app` from the config file kgrank reads (none: empty). The file's settings are checked
    here too, so that a command that never reads them still refuses a typo."""
    path = config_path()
    if path is None:
        return {}
    document = read_config(path)
    settings_part(document, path)
    tables = {key: value for key, value in document.items() if key not in Settings.model_fields}
    root = typer.main.get_command(app)
    assert isinstance(root, TyperGroup), "kgrank's command line is a group of commands"
    return group_defaults(root, tables, path=path, where="")


def group_defaults(group: TyperGroup, tables: dict[str, Any], *, path: Path, where: str) -> dict[str, Any]:
    """Each key of a group's table names one of its commands; the value is that command's table."""
    defaults: dict[str, Any] = {}
    for name, table in tables.items():
        command = group.commands.get(name)
        inner = f"{where}.{name}" if where else name
        if command is None:
            raise ConfigError(
                f"{path}: {inner}: {spoken(where)} has no command {name!r}{did_you_mean(name, group.commands)}; "
                "settings go at the top of the file, before any table"
            )
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: {inner} must be a table, [{inner}], of {spoken(inner)}'s option defaults")
        if isinstance(command, TyperGroup):
            defaults[name] = group_defaults(command, table, path=path, where=inner)
        else:
            defaults[name] = option_defaults(command, table, path=path, where=inner)  # type: ignore[arg-type]
    return defaults


def option_defaults(command: TyperCommand, table: dict[str, Any], *, path: Path, where: str) -> dict[str, Any]:
    """A command's table: options by the name they are typed with, _ for - (`--max-epochs`: max_epochs), and their
    defaults, keyed for Click by the parameter each sets."""
    options = {
        flag.removeprefix("--").replace("-", "_"): param
        for param in command.params
        if param.param_type_name == "option"
        for flag in param.opts
        if flag.startswith("--")
    }
    defaults: dict[str, Any] = {}
    for key, value in table.items():
        option = options.get(key)
        if option is None or option.name is None:
            raise ConfigError(f"{path}: [{where}] {key!r} is no option of {spoken(where)}{did_you_mean(key, options)}")
        # An option named after a setting, without a default of its own, stands for that setting (kgrank serve's,
        # --neo4j-uri): a default from this table would outrank KGRANK_*, so the setting belongs at the top.
        if option.name in Settings.model_fields and option.default is None:
            raise ConfigError(
                f"{path}: [{where}] {key} is the setting {option.name}: set it at the top of the file, before any "
                "table, for every command"
            )
        defaults[option.name] = value
    return defaults


def spoken(where: str) -> str:
    """`train.retriever` as typed: `kgrank train retriever`."""
    return " ".join(["kgrank", *where.split(".")]) if where else "kgrank"
