"""Every setting as a command option (`--field-name`), generated from `Settings`' fields so none is forgotten."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any

import typer
from pydantic.fields import FieldInfo

from kgrank.settings_doc import base_type, is_secret, shown
from services.core.settings import CONFIG_FILE, Settings, env_name, option_name

PANEL = "Settings (each also KGRANK_<NAME>, or <name> in kgrank.toml; an option given here wins)"


def declarations(name: str, field: FieldInfo) -> list[str]:
    dashed = name.replace("_", "-")
    if field.annotation is bool:
        return [f"--{dashed}/--no-{dashed}"]
    return list(dict.fromkeys([option_name(name), f"--{dashed}"]))  # the short name first, where there is one


def help_text(name: str, field: FieldInfo) -> str:
    text = f"{field.description} ({env_name(name)}; default: {shown(field.default)})"
    if is_secret(field):
        text += (
            f" A secret: every user of this machine can read a command line (ps), so prefer {env_name(name)} or a "
            f"private {CONFIG_FILE}."
        )
    return text


def setting_parameter(name: str, field: FieldInfo) -> inspect.Parameter:
    """The keyword-only parameter Typer turns into the option. Its default None means not given: the environment,
    the config file or the setting's default decide."""
    parsed = str if is_secret(field) else base_type(field)  # Settings wraps a secret
    option = typer.Option(*declarations(name, field), help=help_text(name, field), rich_help_panel=PANEL)
    annotation = Annotated[parsed | None, option]
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation)


SETTING_PARAMETERS = [setting_parameter(name, field) for name, field in Settings.model_fields.items()]


def with_setting_options(command: Callable[..., None]) -> Callable[..., None]:
    """Give `command(overrides, ...)` one option per setting; `overrides` maps the settings given on the command line
    to their values, for `Settings(**overrides)`."""
    own = list(inspect.signature(command, eval_str=True).parameters.values())[1:]

    @functools.wraps(command)
    def run(**options: Any) -> None:
        given = {name: options.pop(name) for name in Settings.model_fields}
        command({name: value for name, value in given.items() if value is not None}, **options)

    run.__signature__ = inspect.Signature([*own, *SETTING_PARAMETERS])  # type: ignore[attr-defined]
    return run
