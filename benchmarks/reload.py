"""Hot reload under load: POST /admin/reload swaps in a checkpoint while clients post /rank.

    .venv/bin/python -m benchmarks.reload --data DATA --model MODEL_DIR --retriever RUN \
        [--clients 4] [--seconds 10] [--reloads 3]
Writes benchmarks/results/ml-latest-small/reload.{json,md}.

The API runs on the embedded graph (DATA/graph.sqlite) with the in-process cache and scorer. Clients rank
back to back (a dataset user, then a new user: half the requests are sure misses); after a quiet phase
the run reloads the same checkpoint folder RELOADS times (each reload loads a full new unit beside the
served one and swaps it in) and then runs quietly again. Per phase: requests, statuses, latency; per
reload: how long loading took. The model version stays the same here (the same folder), so the check that
no answer mixes two models is the test's (tests/api/test_reload.py); this measures the cost of a swap.
"""

from __future__ import annotations

import argparse
import secrets
from collections import Counter
from typing import Any

import httpx

from benchmarks.common import (
    command_line,
    environment,
    markdown_table,
    percentiles,
    served_model_arguments,
    write_results,
)
from benchmarks.serving_latency import requests_for
from services.api.app import build_service, create_app
from services.api.local import serve_in_thread
from services.core.settings import Settings
from services.graph_loader.dataset import ProcessedDataset
from support.phased_load import Answer, PhasedLoad


def summarize(answers: list[Answer]) -> dict[str, Any]:
    statuses = Counter(a.status for a in answers)
    latencies = [a.seconds * 1000 for a in answers]
    return {
        "sent": len(answers),
        "statuses": {str(s): n for s, n in sorted(statuses.items())},
        "failed": sum(n for s, n in statuses.items() if s != 200),
        "latency_ms": percentiles(latencies) | {"max": round(max(latencies), 3)} if latencies else {},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    served_model_arguments(parser)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the quiet phases")
    parser.add_argument("--reloads", type=int, default=3)
    parser.add_argument("--users", type=int, default=200)
    args = parser.parse_args()

    dataset = ProcessedDataset.load(args.data)
    requests = requests_for(dataset, args.retriever, args.users)
    key = secrets.token_urlsafe(24)
    settings = Settings(
        dataset_dir=args.data,
        model_dir=args.model,
        retriever_dir=args.retriever,
        neo4j_uri=None,
        redis_url=None,
        api_key=key,
    )
    headers = {"X-API-Key": key}
    reloads: list[dict[str, Any]] = []
    with (
        serve_in_thread(create_app(settings, service=build_service(settings))) as url,
        PhasedLoad(url, requests, clients=args.clients, headers=headers) as load,
    ):
        load.during("before", args.seconds)
        load.phase = "reloading"
        for n in range(args.reloads):
            print(f"reload {n + 1} of {args.reloads}", flush=True)
            answer = httpx.post(f"{url}/admin/reload", json={}, headers=headers, timeout=300)
            answer.raise_for_status()
            reloads.append(answer.json())
        load.during("after", args.seconds)
    phases = {phase: summarize(load.sent_in(phase)) for phase in ("before", "reloading", "after")}
    total = summarize(load.answers)
    payload = {
        "command": command_line("benchmarks.reload", args),
        "environment": environment("not used"),
        "clients": args.clients,
        "reloads": reloads,
        "phases": phases,
        "total": total,
    }
    rows = [
        [
            phase,
            p["sent"],
            p["failed"],
            ", ".join(f"{s} {n}" for s, n in p["statuses"].items()),
            p["latency_ms"].get("p50", "-"),
            p["latency_ms"].get("p99", "-"),
            p["latency_ms"].get("max", "-"),
        ]
        for phase, p in [*phases.items(), ("all", total)]
    ]
    seconds = ", ".join(f"{r['seconds']:.2f}" for r in reloads)
    markdown = (
        f"# POST /admin/reload under load\n\n`{payload['command']}` on {payload['environment']['machine']}, "
        f"{payload['environment']['date']}.\n{args.clients} clients back to back (half the requests new users: "
        f"cache misses), embedded graph, in-process cache and scorer; {args.reloads} reloads of the served "
        f"checkpoint in a row between two quiet {args.seconds:g} s phases. Loading took {seconds} s; requests "
        "were answered by the served models meanwhile. Latencies seen by the client, in ms.\n\n"
        + markdown_table(["phase", "sent", "failed", "statuses", "p50", "p99", "max"], rows)
        + f"\n\n**{total['failed']} failed requests** of {total['sent']}.\n"
    )
    write_results("ml-latest-small/reload", payload, markdown)


if __name__ == "__main__":
    main()
