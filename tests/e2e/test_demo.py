from __future__ import annotations

import json
from pathlib import Path

from tests.unit.test_cli import kgrank


def test_demo_trains_serves_and_ranks_on_embedded_defaults(ml_raw: Path, tmp_path: Path) -> None:
    # Servers named in the environment must not pull the demo off its embedded defaults.
    env = {"KGRANK_NEO4J_URI": "bolt://127.0.0.1:1", "KGRANK_REDIS_URL": "redis://127.0.0.1:1/0"}
    workdir = tmp_path / "demo"
    result = kgrank("demo", "--raw", ml_raw, "--workdir", workdir, "--train-examples", "120", env=env, timeout=900)
    assert result.returncode == 0, result.stderr
    assert f"data: {ml_raw} (local)" in result.stdout
    assert "training the retriever, the preference module and a tiny LLM ranker" in result.stdout
    assert "POST /rank" in result.stdout and "ranked by the llm (tiny" in result.stdout
    saved = json.loads((workdir / "demo.json").read_text())
    response = saved["response"]
    assert saved["source"] == "local" and response["degraded"] == [] and response["cached"] is False
    assert len(response["ranking"]) == 10 and response["known_user"] is True
    assert any(item["explanations"] for item in response["ranking"]), "the demo user should have relation paths"
    assert saved["after"]["cached"] is False  # the interaction made the cached ranking stale

    again = kgrank("demo", "--raw", ml_raw, "--workdir", workdir, env=env, timeout=900)
    assert again.returncode == 0, again.stderr
    assert "trained earlier on this data" in again.stdout
    assert json.loads((workdir / "demo.json").read_text())["response"]["ranking"] == response["ranking"]
