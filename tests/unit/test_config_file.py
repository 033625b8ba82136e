"""kgrank.toml: where settings come from (option > env > file > default), the file's errors, per-command option
defaults, `kgrank config show`, every setting as a `kgrank serve` option, and the generated README table and example."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
import typer.main
from pydantic import ValidationError
from typer.core import TyperGroup

from kgrank.config_cli import config_app
from kgrank.config_file import command_defaults
from kgrank.settings_doc import EXAMPLE, README, example_config, readme_block, readme_settings
from kgrank.settings_options import with_setting_options
from services.core.errors import ConfigError
from services.core.settings import Settings, how_to_set

SECRETS = ("file-secret-0123", "env-secret-4567", "url-secret-89ab")


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder and no KGRANK_* variables: only what a test writes counts."""
    for name in list(os.environ):
        if name.startswith("KGRANK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_config(text: str, path: Path = Path("kgrank.toml")) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def kgrank_app() -> typer.Typer:
    """`kgrank` with `kgrank config` (kgrank/cli.py registers it; until it does, the tests add it)."""
    from kgrank.cli import app

    if not any(group.name == "config" for group in app.registered_groups):
        app.add_typer(config_app, name="config")
    return app


def run(app: typer.Typer, *args: str) -> Any:
    """Run a command as `kgrank` does, with the config file's option defaults."""
    return typer.main.get_command(app).main(list(args), default_map=command_defaults(app), standalone_mode=False)


def show_json(capsys: pytest.CaptureFixture[str], *options: str) -> dict[str, Any]:
    run(kgrank_app(), "config", "show", "--json", *options)
    return json.loads(capsys.readouterr().out)


def test_an_option_beats_the_environment_which_beats_the_file_which_beats_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_config("batch_size = 3\ncache_ttl_s = 60\nretry_after_s = 2.5\n")
    monkeypatch.setenv("KGRANK_BATCH_SIZE", "5")
    monkeypatch.setenv("KGRANK_CACHE_TTL_S", "120")
    settings = Settings(batch_size=7)
    assert (settings.batch_size, settings.cache_ttl_s, settings.retry_after_s) == (7, 120, 2.5)
    assert settings.write_burst == Settings.model_fields["write_burst"].default


def test_config_show_says_where_each_value_came_from(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], workdir: Path
) -> None:
    write_config("batch_size = 3\ncache_ttl_s = 60\nretry_after_s = 2.5\n")
    monkeypatch.setenv("KGRANK_BATCH_SIZE", "5")
    monkeypatch.setenv("KGRANK_CACHE_TTL_S", "120")
    report = show_json(capsys, "--batch-size", "7", "--no-fusion")
    settings = report["settings"]
    assert report["config_file"] == str(workdir / "kgrank.toml")
    assert settings["batch_size"] == {"value": 7, "origin": "option"}
    assert settings["fusion"] == {"value": False, "origin": "option"}
    assert settings["cache_ttl_s"] == {"value": 120, "origin": "env"}
    assert settings["retry_after_s"] == {"value": 2.5, "origin": "file"}
    assert settings["write_burst"] == {"value": 100, "origin": "default"}
    assert set(settings) == set(Settings.model_fields)
    run(kgrank_app(), "config", "show", "--batch-size", "7")
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"config file: {workdir / 'kgrank.toml'}"
    assert re.fullmatch(r"batch_size +7 +option", next(line for line in lines if line.startswith("batch_size ")))
    assert re.fullmatch(r"cache_ttl_s +120 +env KGRANK_CACHE_TTL_S", next(x for x in lines if "cache_ttl_s" in x))
    assert len(lines) == 1 + len(Settings.model_fields)


def test_config_show_masks_every_secret(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    file_secret, env_secret, url_secret = SECRETS
    write_config(f'neo4j_password = "{file_secret}"\n')
    monkeypatch.setenv("KGRANK_API_KEY", env_secret)
    url = f"redis://:{url_secret}@127.0.0.1:1/0"
    report = show_json(capsys, "--redis-url", url)["settings"]
    assert report["neo4j_password"]["value"] == report["api_key"]["value"] == "**********"
    assert report["redis_url"]["value"] == "redis://:**********@127.0.0.1:1/0"
    run(kgrank_app(), "config", "show", "--redis-url", url)
    text = capsys.readouterr().out
    assert "**********" in text
    for secret in SECRETS:
        assert secret not in json.dumps(report) and secret not in text


def test_kgrank_config_chooses_the_file(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config("batch_size = 3\n")
    elsewhere = write_config("batch_size = 4\n", workdir / "elsewhere.toml")
    assert Settings().batch_size == 3
    monkeypatch.setenv("KGRANK_CONFIG", str(elsewhere))
    assert Settings().batch_size == 4
    monkeypatch.setenv("KGRANK_CONFIG", "")  # set but empty: no file at all
    assert Settings().batch_size == Settings.model_fields["batch_size"].default


def test_a_missing_kgrank_config_file_is_one_clear_error(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_config("batch_size = 3\n")  # not read instead of the missing one
    monkeypatch.setenv("KGRANK_CONFIG", str(workdir / "missing.toml"))
    with pytest.raises(ConfigError, match=r"KGRANK_CONFIG names .*missing\.toml, which is not a file"):
        Settings()
    with pytest.raises(ConfigError, match=r"KGRANK_CONFIG names"):
        command_defaults(kgrank_app())


def test_an_unknown_key_names_the_key_and_the_file() -> None:
    write_config('neo4j_uri = "bolt://127.0.0.1:7687"\nneo4j_ur = "bolt://x:7687"\n')
    with pytest.raises(ConfigError, match=r"^kgrank\.toml: unknown setting 'neo4j_ur' \(did you mean 'neo4j_uri'\?\)"):
        Settings()
    # Commands that never read the settings refuse it too, before they run.
    with pytest.raises(ConfigError, match=r"unknown setting 'neo4j_ur'"):
        command_defaults(kgrank_app())


def test_a_syntax_error_names_the_file_and_the_line() -> None:
    write_config('batch_size = 3\nneo4j_uri = "bolt://unterminated\n')
    with pytest.raises(ConfigError, match=r"^kgrank\.toml is not valid TOML: .*line 2"):
        Settings()


def test_a_bad_config_file_is_one_error_line_from_the_command_line(workdir: Path) -> None:
    write_config("batch_sise = 3\n")
    environment = {name: value for name, value in os.environ.items() if not name.startswith("KGRANK_")}
    result = subprocess.run(
        [sys.executable, "-m", "kgrank", "serve"],
        cwd=workdir,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        "error: kgrank.toml: unknown setting 'batch_sise' (did you mean 'batch_size'?); settings are the KGRANK_* "
        "names in lower case without the prefix"
    ]


def test_paths_in_the_file_expand_the_home_folder() -> None:
    write_config('dataset_dir = "~/data/ml"\n')
    assert Settings().dataset_dir == Path.home() / "data" / "ml"
    assert Settings().cache_dir == Path.home() / ".cache" / "kgrank"


def test_messages_that_ask_for_a_setting_name_every_way_to_give_it() -> None:
    assert how_to_set("dataset_dir") == "--data, KGRANK_DATASET_DIR or dataset_dir in kgrank.toml"
    with pytest.raises(ValidationError, match=r"KGRANK_API_KEY is set but empty.*--api-key.*api_key in kgrank\.toml"):
        Settings(api_key=" ")


def toy_app() -> typer.Typer:
    """Two levels of commands, like `kgrank train retriever`, that print the options they got."""
    app, train = typer.Typer(), typer.Typer()

    @train.command("retriever")
    def retriever(max_epochs: int = 10, model: str = "lrurec") -> None:
        typer.echo(f"{max_epochs} {model}")

    @train.command("ranker")
    def ranker(epochs: int = 1) -> None:
        typer.echo(str(epochs))

    app.add_typer(train, name="train")
    return app


def test_command_tables_become_option_defaults_and_the_command_line_still_wins(
    capsys: pytest.CaptureFixture[str],
) -> None:
    write_config('batch_size = 3\n\n[train.retriever]\nmax_epochs = 50\nmodel = "sasrec"\n')
    app = toy_app()
    assert command_defaults(app) == {"train": {"retriever": {"max_epochs": 50, "model": "sasrec"}}}
    run(app, "train", "retriever")
    run(app, "train", "retriever", "--max-epochs", "7")
    run(app, "train", "ranker")
    assert capsys.readouterr().out.splitlines() == ["50 sasrec", "7 sasrec", "1"]


def test_a_config_file_without_tables_sets_no_option_defaults() -> None:
    assert command_defaults(toy_app()) == {}  # no file at all
    write_config("batch_size = 3\n")
    assert command_defaults(toy_app()) == {}


def test_command_tables_follow_the_real_command_tree() -> None:
    write_config("[train.retriever]\nmax_epochs = 50\n[serve]\nport = 9123\n[config.show]\njson = true\n")
    assert command_defaults(kgrank_app()) == {
        "train": {"retriever": {"max_epochs": 50}},
        "serve": {"port": 9123},
        "config": {"show": {"as_json": True}},  # keyed as typed (--json), handed to Click by parameter
    }


@pytest.mark.parametrize(
    ("table", "error"),
    [
        (
            "[train.retriever]\nmax_epoch = 50",
            r"\[train\.retriever\] 'max_epoch' is no option of kgrank train "
            r"retriever \(did you mean 'max_epochs'\?\)",
        ),
        ("[trian.retriever]\nmax_epochs = 50", r"trian: kgrank has no command 'trian' \(did you mean 'train'\?\)"),
        ("[train]\nmax_epochs = 50", r"train\.max_epochs: kgrank train has no command 'max_epochs'"),
        ("[train]\nretriever = 50", r"train\.retriever must be a table"),
        (
            "[serve]\nredis_url = 'redis://127.0.0.1:1'",
            r"\[serve\] redis_url is the setting redis_url: set it at the top",
        ),
        ("[graph.load]\nneo4j_uri = 'bolt://127.0.0.1:1'", r"\[graph\.load\] neo4j_uri is the setting neo4j_uri"),
        ("[serve]\ndata = 'data/ml'", r"\[serve\] data is the setting dataset_dir"),
    ],
)
def test_a_key_that_names_no_option_is_refused_with_the_file(table: str, error: str) -> None:
    write_config(table + "\n")
    with pytest.raises(ConfigError, match=r"^kgrank\.toml: .*" + error):
        command_defaults(kgrank_app())


def serve_options() -> dict[str, list[str]]:
    command = typer.main.get_command(kgrank_app())
    assert isinstance(command, TyperGroup)
    return {str(param.name): [*param.opts, *param.secondary_opts] for param in command.commands["serve"].params}


def test_every_setting_is_a_serve_option_and_the_old_option_names_still_work() -> None:
    options = serve_options()
    for name, field in Settings.model_fields.items():
        dashed = name.replace("_", "-")
        assert f"--{dashed}" in options[name], name
        if field.annotation is bool:
            assert f"--no-{dashed}" in options[name], name
    given = {flag for flags in options.values() for flag in flags}
    old = "--data --model --retriever --fusion --no-fusion --neo4j-uri --redis-url --scorer --open-writes --vllm-url"
    assert {*old.split(), "--host", "--port", "--workers"} <= given


def test_setting_options_reach_the_command_as_overrides() -> None:
    got: list[tuple[dict[str, Any], int]] = []

    @with_setting_options
    def command(overrides: dict[str, Any], port: int = 1) -> None:
        got.append((overrides, port))

    app = typer.Typer()
    app.command("a")(command)
    app.command("b")(command)  # two commands keep the group, as in kgrank
    args = ["a", "--data", "d", "--no-fusion", "--api-key", "k", "--batch-size", "4", "--port", "2"]
    typer.main.get_command(app).main(args, standalone_mode=False)
    assert got == [({"dataset_dir": Path("d"), "fusion": False, "api_key": "k", "batch_size": 4}, 2)]


def test_secret_options_warn_that_a_command_line_is_visible() -> None:
    command = typer.main.get_command(kgrank_app())
    assert isinstance(command, TyperGroup)
    helps = {param.name: getattr(param, "help", "") or "" for param in command.commands["serve"].params}
    for secret in ("api_key", "neo4j_password"):
        assert "(ps)" in helps[secret] and f"KGRANK_{secret.upper()}" in helps[secret]
    assert "(ps)" not in helps["neo4j_user"]


def test_serve_builds_its_settings_from_the_options() -> None:
    """Two options that contradict each other are refused by Settings, before serve imports the server."""
    with pytest.raises(ValidationError, match="either open or keyed"):
        run(kgrank_app(), "serve", "--open-writes", "--api-key", "a-real-key-1234")


def test_every_setting_is_described_and_an_unset_one_has_an_example() -> None:
    for name, field in Settings.model_fields.items():
        assert field.description, name
        assert field.default is not None or field.examples, name


def test_the_readme_table_is_generated_from_the_settings() -> None:
    current = readme_settings(README.read_text(encoding="utf-8"))
    assert current == readme_block(), "run: .venv/bin/python -m kgrank.settings_doc --write"
    for name in ("neo4j_database", "redis_timeout_s", "cache_entries", "explanations_per_item"):
        assert f"| `KGRANK_{name.upper()}` |" in current


def test_the_example_file_is_generated_and_loads_as_it_is_and_uncommented(workdir: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    assert text == example_config(), "run: .venv/bin/python -m kgrank.settings_doc --write"
    write_config(text)
    assert command_defaults(kgrank_app()) == {}
    as_is = Settings()
    Path("kgrank.toml").unlink()
    assert as_is == Settings()  # every line a comment: nothing set
    uncommented = re.sub(r"(?m)^# (?=[a-z0-9_]+ = |\[[a-z.-]+\]$)", "", text)
    write_config(uncommented)
    settings = Settings()
    for name, field in Settings.model_fields.items():
        assert re.search(rf"(?m)^{name} = ", uncommented), name
        expected = field.default if field.default is not None else field.examples[0]  # type: ignore[index]
        value = getattr(settings, name)
        shown = value.get_secret_value() if hasattr(value, "get_secret_value") else value
        assert shown == (Path(expected).expanduser() if isinstance(shown, Path) else expected), name
    assert command_defaults(kgrank_app())["train"] == {"retriever": {"max_epochs": 50}}
