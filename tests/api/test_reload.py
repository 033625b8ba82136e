"""Hot reload: a new checkpoint swapped in through POST /admin/reload while clients rank, without a restart,
without a failed request, and without an answer that mixes the two models."""

from __future__ import annotations

import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

import httpx
import pytest
import torch
from safetensors.torch import load_file, save_file

from services.api.app import build_service, create_app
from services.api.local import serve_in_thread
from support.phased_load import PhasedLoad
from tests.api.conftest import ClientFactory, Served, candidates_for

KEY = "admin-key-0123456789"


def retrained(served: Served, folder: Path) -> Path:
    """The served checkpoint with its weights nudged and its training record changed, as a new training run
    leaves them: another model version (the version digests the metadata and training record, not the
    weights) that ranks a little differently."""
    shutil.copytree(served.bundle.ranker, folder)
    record = folder / "training.json"
    record.write_text(json.dumps(json.loads(record.read_text()) | {"retrained_for": "test_reload"}))
    for file in folder.glob("*.safetensors"):
        weights = load_file(file)
        generator = torch.Generator().manual_seed(7)
        nudged = {
            name: t + 0.05 * torch.randn(t.shape, generator=generator, dtype=t.dtype) for name, t in weights.items()
        }
        save_file(nudged, file, metadata={"format": "pt"})
    return folder


@pytest.mark.neo4j
@pytest.mark.redis
def test_a_reload_under_load_fails_nothing_and_mixes_no_models(
    served: Served, neo4j_served: dict[str, object], redis_url: str, tmp_path: Path
) -> None:
    second = retrained(served, tmp_path / "ranker-2")
    settings = served.settings(**neo4j_served, redis_url=redis_url, api_key=KEY)
    requests = [{"user_id": served.dataset.user_id(u), "candidates": candidates_for(served, u, 8)} for u in (1, 2, 3)]
    headers = {"X-API-Key": KEY}
    with (
        serve_in_thread(create_app(settings, service=build_service(settings))) as url,
        PhasedLoad(url, requests, clients=2, headers=headers) as load,
    ):
        load.until("warm-up", lambda answer: answer.status == 200, timeout_s=60, at_least=4)  # both request kinds
        load.during("before", 2)
        load.phase = "reloading"
        reloaded = httpx.post(f"{url}/admin/reload", json={"model_dir": str(second)}, headers=headers, timeout=120)
        load.during("after", 2)
        exposition = httpx.get(f"{url}/metrics").text
    assert reloaded.status_code == 200, reloaded.text
    old, new = reloaded.json()["previous_version"], reloaded.json()["version"]
    assert old != new and reloaded.json()["model_dir"] == str(second)
    served_versions = re.findall(r'^kgrank_model_info\{version="([^"]+)"\} 1\.0$', exposition, flags=re.MULTILINE)
    assert served_versions == [new]
    assert load.answers and {a.status for a in load.answers} == {200}
    assert {a.model_version for a in load.sent_in("warm-up") + load.within("before")} == {old}
    assert {a.model_version for a in load.within("after")} == {new}
    # Every dataset user's request has one ranking per model version: an answer mixing the two would differ.
    rankings: dict[tuple[str, str | None], set[tuple[tuple[str, float], ...]]] = defaultdict(set)
    for answer in load.answers:
        if not answer.user_id.startswith("load-"):
            rankings[(answer.user_id, answer.model_version)].add(answer.ranking)
    assert {version for _, version in rankings} == {old, new}
    assert all(len(seen) == 1 for seen in rankings.values()), rankings
    assert any(rankings[(u, old)] != rankings[(u, new)] for u, v in rankings if v == old and (u, new) in rankings)


def test_reload_needs_the_key_and_keeps_serving_after_a_bad_checkpoint(
    served: Served, client_for: ClientFactory, tmp_path: Path
) -> None:
    assert client_for().post("/admin/reload", json={}).status_code == 403  # no key configured: closed
    client = client_for(api_key=KEY)
    assert client.post("/admin/reload", json={}).status_code == 401
    request = {"user_id": served.dataset.user_id(1), "candidates": candidates_for(served, 1, 5)}
    before = client.post("/rank", json=request, headers={"X-API-Key": KEY}).json()["model"]["version"]
    bad = client.post("/admin/reload", json={"model_dir": str(tmp_path)}, headers={"X-API-Key": KEY})
    assert bad.status_code == 422 and "kgrank_ranker.json" in bad.json()["error"]
    after = client.post("/rank", json=request, headers={"X-API-Key": KEY})
    assert after.status_code == 200 and after.json()["model"]["version"] == before
