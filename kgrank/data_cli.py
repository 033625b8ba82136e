"""`kgrank data …`: turn raw upstream files into a processed dataset."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from services.graph_loader.prepare import prepare_dataset

data_app = typer.Typer(help="Read raw datasets and write processed ones.", no_args_is_help=True)


class DatasetKind(StrEnum):
    ml_latest_small = "ml-latest-small"
    ml_100k = "ml-100k"
    amazon = "amazon"
    generic = "generic"


@data_app.command("prepare")
def prepare(
    dataset: Annotated[DatasetKind, typer.Option("--dataset", help="Format of the raw files.")],
    raw: Annotated[Path, typer.Option("--raw", help="Folder with the upstream files.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write the processed dataset to.")],
    name: Annotated[str | None, typer.Option(help="Dataset name in the graph (default: from the format).")] = None,
    category: Annotated[str | None, typer.Option(help="Amazon category, e.g. Beauty.")] = None,
    mapping: Annotated[
        Path | None, typer.Option(help="Generic format: mapping.json (default: RAW/mapping.json).")
    ] = None,
    min_interactions: Annotated[int, typer.Option(min=1, help="k of the iterative k-core filter.")] = 5,
    download: Annotated[bool, typer.Option(help="Fetch the official files if they are missing from RAW.")] = False,
    download_url: Annotated[str | None, typer.Option(help="Fetch from this URL instead (a mirror).")] = None,
    events: Annotated[
        Path | None,
        typer.Option(help="Live events exported by `kgrank graph events`, added to the raw interactions."),
    ] = None,
    catalog: Annotated[
        Path | None,
        typer.Option(help="Items exported by `kgrank graph catalog`, added to the raw items."),
    ] = None,
) -> None:
    """Title filter, iterative k-core, stable id maps, leave-one-out split; writes OUT and OUT/stats.json."""
    processed = prepare_dataset(
        dataset.value,
        raw,
        out,
        name=name,
        category=category,
        mapping=mapping,
        min_interactions=min_interactions,
        download=download,
        download_url=download_url,
        events=events,
        catalog=catalog,
    )
    stats = processed.stats
    typer.echo(
        f"{processed.name}: {stats.users:,} users, {stats.items:,} items, "
        f"{stats.interactions:,} interactions "
        f"(from {stats.raw_users:,} / {stats.raw_items:,} / {stats.raw_interactions:,}; "
        f"{stats.dropped_untitled:,} untitled and {stats.dropped_duplicates:,} duplicate events dropped, "
        f"{stats.k_core_rounds} k-core rounds)"
    )
    typer.echo(f"wrote {out} (stats: {out / 'stats.json'}, data hash {processed.manifest.data_hash[:12]})")
