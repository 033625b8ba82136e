"""`kgrank demo`: the pipeline on ml-latest-small with embedded defaults (no servers needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from kgrank.graph_cli import describe_paths, load_embedded
from services.core.atomic import write_json
from services.core.settings import Settings
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.prepare import prepare_dataset
from services.graph_loader.sample_data import locate_sample_data
from services.ranker.paths import HistoryCutoff, PathConfig, PathRequest
from services.ranker.paths.open import open_path_source
from services.ranker.paths.render import candidate_letter, path_cypher


def demo(
    raw: Annotated[
        Path | None,
        typer.Option(help="ml-latest-small folder (default: $KGRANK_DATA_DIR, ../shared/data, download, synthetic)."),
    ] = None,
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its data and graph.")] = Path(".kgrank/demo"),
    candidates: Annotated[int, typer.Option(min=2, max=20, help="How many candidates to show paths for.")] = 10,
) -> None:
    """Prepare ml-latest-small, build the embedded graph, show relation paths for a sample user."""
    raw_dir, source = locate_sample_data(raw, workdir)
    if source == "synthetic":
        typer.secho(
            "!! No ml-latest-small found and no network: using a SYNTHETIC dataset in the same format. !!",
            fg=typer.colors.RED,
            bold=True,
            err=True,
        )
    typer.echo(f"data: {raw_dir} ({source})")
    data_dir = workdir / "data"
    dataset = prepare_dataset("ml-latest-small", raw_dir, data_dir)
    stats = dataset.stats
    typer.echo(f"prepared: {stats.users:,} users, {stats.items:,} items, {stats.interactions:,} interactions")
    graph_path = data_dir / "graph.sqlite"
    report = load_embedded(dataset, graph_path, split="all")
    typer.echo(f"embedded graph: {graph_path} ({sum(report.counts.relationships.values()):,} relationships)")

    request, held_out = sample_request(dataset, candidates)
    # Always the embedded graph the demo just built, whatever KGRANK_NEO4J_URI says.
    with open_path_source(
        Settings(neo4j_uri=None),
        dataset=dataset.name,
        data_hash=dataset.manifest.data_hash,
        schema=dataset.schema,
        embedded_path=graph_path,
        config=PathConfig(history_length=10, max_paths_per_pair=2),
    ) as paths:
        (result,) = paths.fetch([request])
    typer.echo("")
    typer.echo(describe_paths(result, dataset=dataset, with_cypher=False, shown_per_candidate=2))
    position = request.candidates.index(held_out)
    held_out_title = result.candidates[position].title
    typer.echo(f"\nThe user's real next item (held out): ({candidate_letter(position)}) {held_out_title}")
    if result.paths:
        first = result.paths[0]
        typer.echo("\nOpen the first path in Neo4j Browser (after `kgrank graph load --neo4j-uri …`):")
        typer.echo(f"  {path_cypher(first, dataset=dataset.name, schema=dataset.schema)}")
    write_json(
        workdir / "demo.json",
        {"source": source, "request": request.model_dump(), "paths": result.model_dump()},
    )
    typer.echo(f"\nfull result: {workdir / 'demo.json'}")


def sample_request(dataset: ProcessedDataset, size: int) -> tuple[PathRequest, str]:
    """The first user's held-out test item among the most popular items they have not seen, and its id.

    The cutoff keeps the test event (and anything after it) out of the history the paths start from.
    """
    frame = dataset.interactions
    user_idx = int(frame["user"].iloc[0])
    events = frame[frame["user"] == user_idx]
    test = events[events["split"] == "test"].iloc[0]
    seen = set(events["item"].tolist())
    popular = [int(i) for i in frame["item"].value_counts(sort=True).index if int(i) not in seen]
    chosen = sorted([int(test["item"]), *popular[: size - 1]])
    request = PathRequest(
        user_id=dataset.user_id(user_idx),
        candidates=tuple(dataset.item(idx).id for idx in chosen),
        cutoff=HistoryCutoff(timestamp=int(test["timestamp"]), item_idx=int(test["item"])),
    )
    return request, dataset.item(int(test["item"])).id
