"""No credential is committed: no private keys or cloud/hub tokens in tracked files, never the Neo4j
password the local server was given, and the files that hold credentials are ignored by git."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TOKEN_SHAPES = [
    re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(rb"\bAKIA[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(rb"\bgh[pousr]_[A-Za-z0-9]{36}\b"),  # GitHub token
    re.compile(rb"\bhf_[A-Za-z0-9]{34}\b"),  # Hugging Face token
    re.compile(rb"\bsk-[A-Za-z0-9]{32,}\b"),  # OpenAI-style key
]


def tracked_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    return [ROOT / name for name in listed.decode().split("\0") if name and (ROOT / name).is_file()]


def test_no_token_or_local_password_is_tracked() -> None:
    password_file = ROOT / ".neo4j" / "password"
    password = password_file.read_bytes().strip() if password_file.is_file() else None
    files = tracked_files()
    assert len(files) > 50
    found = [
        (str(path.relative_to(ROOT)), shape.pattern)
        for path in files
        for shape in TOKEN_SHAPES
        if shape.search(path.read_bytes())
    ]
    assert found == []
    if password:
        assert [str(p.relative_to(ROOT)) for p in files if password in p.read_bytes()] == []


def test_credential_files_are_ignored() -> None:
    for path in (".neo4j/password", ".env", "kgrank.toml"):
        assert subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False).returncode == 0, path
