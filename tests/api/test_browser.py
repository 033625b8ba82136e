"""The README's Browser walkthrough, for real: an explanation's Cypher drawn by Neo4j Browser in headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from services.core.settings import Settings
from tests.api.conftest import ClientFactory, Served, candidates_for
from tests.conftest import ROOT, unavailable

SCRIPT = ROOT / "deploy" / "browser" / "screenshot.py"


@pytest.mark.neo4j
def test_browser_draws_an_explanation_path(
    served: Served,
    client_for: ClientFactory,
    neo4j_served: dict[str, object],
    neo4j_settings: Settings,
    tmp_path: Path,
) -> None:
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        unavailable("chromium and chromium-driver are needed (apt-get install chromium chromium-driver)")
    body = (
        client_for(**neo4j_served)
        .post("/rank", json={"user_id": served.dataset.user_id(1), "candidates": candidates_for(served, 1)})
        .json()
    )
    explanations = [e for item in body["ranking"] for e in item["explanations"]]
    explanation = max(explanations, key=lambda e: len(e["path"]))
    nodes = [e for e in explanation["path"] if e["kind"] == "node"]
    relationships = [e["type"] for e in explanation["path"] if e["kind"] == "relationship"]

    password = tmp_path / "password"
    password.write_text(neo4j_settings.neo4j_password.get_secret_value())
    out = tmp_path / "browser.png"
    arguments = ["--query", explanation["cypher"], "--out", out, "--nodes", len(nodes), "--password-file", password]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), *map(str, arguments)],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    drawn = json.loads(result.stdout.strip().splitlines()[-1])
    assert drawn["rendered"] is True and len(drawn["nodes"]) == len(nodes)
    assert sorted(drawn["relationships"]) == sorted(relationships)
    for node in nodes:  # captions from browser.grass: items by title, attributes by name (Browser may cut them)
        caption = (node["title"] or node["key"])[:12]
        assert any(caption[:8] in text or text.rstrip("…")[:8] in caption for text in drawn["nodes"]), (caption, drawn)
    assert out.stat().st_size > 20_000
