from __future__ import annotations

import json
from pathlib import Path

from tests.unit.test_cli import kgrank


def test_demo_runs_on_embedded_defaults(ml_raw: Path, tmp_path: Path) -> None:
    # A Neo4j URI in the environment must not pull the demo off its embedded graph.
    result = kgrank(
        "demo", "--raw", ml_raw, "--workdir", tmp_path / "demo", env={"KGRANK_NEO4J_URI": "bolt://127.0.0.1:1"}
    )
    assert result.returncode == 0, result.stderr
    assert f"data: {ml_raw} (local)" in result.stdout
    assert "The user's real next item (held out): (" in result.stdout
    assert "MATCH p = (n0:Item" in result.stdout
    saved = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert saved["source"] == "local"
    assert saved["paths"]["known_user"] is True
    assert len(saved["paths"]["candidates"]) == 10
    assert saved["paths"]["paths"], "the demo user should have relation paths"
