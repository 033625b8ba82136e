"""The CLI end to end in a subprocess: real exit codes, one `error:` line, never a traceback."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest


def cli_environment(env: dict[str, str] | None) -> dict[str, str]:
    """This process's environment without KGRANK_* settings and without a config file, plus `env`."""
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("KGRANK_")} | {"KGRANK_CONFIG": ""} | (env or {})


def kgrank(
    *args: str | Path, env: dict[str, str] | None = None, timeout: float = 120, umask: int = -1
) -> subprocess.CompletedProcess[str]:
    """`kgrank ARGS` in a subprocess (`umask`: its umask; -1 keeps this process's)."""

    environment = cli_environment(env)
    return subprocess.run(
        [sys.executable, "-m", "kgrank", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=environment,
        check=False,
        umask=umask,
    )


def assert_one_error(result: subprocess.CompletedProcess[str], pattern: str) -> None:
    import re

    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    assert re.search(pattern, errors[0]), errors[0]
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory, ml_raw: Path) -> Path:
    out = tmp_path_factory.mktemp("cli") / "data"
    result = kgrank("data", "prepare", "--dataset", "ml-latest-small", "--raw", ml_raw, "--out", out)
    assert result.returncode == 0, result.stderr
    return out


def test_prepare_reports_and_writes_stats(prepared: Path) -> None:
    stats = json.loads((prepared / "stats.json").read_text())
    assert stats["users"] > 0 and stats["items"] > 0 and stats["interactions"] > 0
    assert (prepared / "manifest.json").is_file()


def test_prepared_files_and_folders_get_ordinary_permissions(ml_raw: Path, tmp_path: Path) -> None:
    """What `open` and `mkdir` would give under the umask, not a temp file's 0600 or a temp folder's 0700."""
    import stat

    out = tmp_path / "data"
    result = kgrank("data", "prepare", "--dataset", "ml-latest-small", "--raw", ml_raw, "--out", out, umask=0o027)
    assert result.returncode == 0, result.stderr
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in [out, *out.iterdir()]}
    expected = {path.name: 0o750 if path.is_dir() else 0o640 for path in [out, *out.iterdir()]}
    assert {"stats.json", "manifest.json", "schema.json", "interactions.csv"} <= set(modes)
    assert modes == expected


def test_load_then_paths(prepared: Path) -> None:
    load = kgrank("graph", "load", "--data", prepared)
    assert load.returncode == 0, load.stderr
    assert "loaded ml-latest-small (all) into embedded" in load.stdout
    report = json.loads((prepared / "graph-load-embedded.json").read_text())
    assert report["counts"]["nodes"]["User"] == json.loads((prepared / "stats.json").read_text())["users"]

    items = [json.loads(line)["id"] for line in (prepared / "items.jsonl").read_text().splitlines()]
    users = (prepared / "users.csv").read_text().splitlines()[1:]
    user = users[0].split(",")[1]
    shown = kgrank(
        "graph", "paths", "--data", prepared, "--user", user, "--candidates", ",".join(items[:5]), "--cypher"
    )
    assert shown.returncode == 0, shown.stderr
    assert f"user {user}: " in shown.stdout
    assert "(A) " in shown.stdout and "MATCH p = " in shown.stdout

    as_json = kgrank("graph", "paths", "--data", prepared, "--user", user, "--candidates", items[0], "--json")
    assert json.loads(as_json.stdout)["candidates"][0]["item_id"] == items[0]

    unknown = kgrank("graph", "paths", "--data", prepared, "--user", user, "--candidates", f"{items[0]},nope")
    assert_one_error(unknown, r"unknown item ids: \['nope'\]")
    duplicate = kgrank("graph", "paths", "--data", prepared, "--user", user, "--candidates", f"{items[0]},{items[0]}")
    assert_one_error(duplicate, "duplicate candidate ids")


@pytest.mark.parametrize(
    ("args", "pattern"),
    [
        (
            ["data", "prepare", "--dataset", "ml-latest-small", "--raw", "/nonexistent", "--out", "/tmp/x"],
            r"/nonexistent/ratings\.csv: file not found",
        ),
        (["graph", "load", "--data", "/nonexistent"], "not a processed dataset"),
    ],
)
def test_bad_paths(args: list[str], pattern: str) -> None:
    assert_one_error(kgrank(*args), pattern)


def test_paths_before_load(prepared: Path, tmp_path: Path) -> None:
    result = kgrank(
        "graph", "paths", "--data", prepared, "--embedded", tmp_path / "none.sqlite", "--user", "1", "--candidates", "1"
    )
    assert_one_error(result, "no embedded graph at .*run `kgrank graph load` first")


def test_a_failed_command_removes_the_folders_it_made_and_keeps_those_it_found(prepared: Path, tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.mkdir()
    evaluate = ["evaluate", "--data", prepared, "--model", f"x={tmp_path / 'none'}", "--out"]
    for out in (existing, tmp_path / "new" / "deeper"):
        assert_one_error(kgrank(*evaluate, out), "is not a retriever run")
    events = ["graph", "events", "--data", prepared, "--embedded", tmp_path / "none.sqlite"]
    assert_one_error(kgrank(*events, "--out", tmp_path / "new" / "events.csv"), "no embedded graph at")
    assert [path.name for path in tmp_path.iterdir()] == ["existing"]
    assert not any(existing.iterdir())


def test_unreachable_and_invalid_neo4j(prepared: Path) -> None:
    assert_one_error(
        kgrank("graph", "load", "--data", prepared, "--neo4j-uri", "bolt://127.0.0.1:1"),
        r"cannot reach Neo4j at bolt://127\.0\.0\.1:1 \(KGRANK_NEO4J_URI\)",
    )
    assert_one_error(
        kgrank("graph", "load", "--data", prepared, "--neo4j-uri", "http://127.0.0.1:7474"),
        r"invalid Neo4j URI 'http://127\.0\.0\.1:7474'",
    )


def test_train_and_evaluate(prepared: Path, tmp_path: Path) -> None:
    tiny = ["--dim", "16", "--max-len", "16", "--batch-size", "8", "--max-epochs", "2"]
    trained = kgrank(
        "train", "retriever", "--data", prepared, "--out", tmp_path / "lru", "--seeds", "0,1", "--threads", "1", *tiny
    )
    assert trained.returncode == 0, trained.stderr
    assert "lrurec seed 1: best val R@10" in trained.stdout
    assert (tmp_path / "lru" / "seed-1" / "candidates-test.npz").is_file()
    pop = kgrank("train", "retriever", "--data", prepared, "--out", tmp_path / "pop", "--model", "pop")
    assert pop.returncode == 0, pop.stderr
    out = tmp_path / "eval"
    evaluated = kgrank(
        "evaluate",
        "--data",
        prepared,
        "--model",
        f"pop={tmp_path / 'pop'}",
        "--model",
        f"lrurec={tmp_path / 'lru'}",
        "--out",
        out,
        "--resamples",
        "200",
        "--threads",
        "2",
    )
    assert evaluated.returncode == 0, evaluated.stderr
    assert "lrurec: N@10 " in evaluated.stdout and "over 2 seed(s)" in evaluated.stdout
    report = json.loads((out / "metrics.json").read_text())
    assert [m["name"] for m in report["models"]] == ["pop", "lrurec"]
    assert report["command"].startswith("kgrank evaluate --data ")

    assert_one_error(
        kgrank("evaluate", "--data", prepared, "--model", f"x={tmp_path / 'nothing'}", "--out", out),
        r"nothing is not a retriever run \(no training\.json and checkpoint\.pt and candidates-test\.npz\); "
        r"make one with `kgrank train retriever --out .*nothing`",
    )
    assert_one_error(
        kgrank("evaluate", "--data", prepared, "--model", f"pop={tmp_path / 'pop'}", "--out", out, "--ks", "1,30"),
        "k = 30 is larger than the 20 candidates",
    )
    assert_one_error(kgrank("evaluate", "--data", prepared, "--model", "nonsense", "--out", out), "NAME=RUN")
    assert_one_error(
        kgrank("train", "retriever", "--data", prepared, "--out", tmp_path / "x", "--seeds", "a,b"),
        "--seeds needs comma-separated integers",
    )

    # The run folder a newcomer guesses wrong: a one-seed run has no seed-0/, a multi-seed one is not one run.
    pop, lru, guessed = tmp_path / "pop", tmp_path / "lru", tmp_path / "pop" / "seed-0"
    preference = ["train", "preference", "--data", prepared, "--out", tmp_path / "new" / "preference"]
    assert_one_error(
        kgrank(*preference, "--retriever", guessed),
        rf"{re.escape(str(guessed))} is not a retriever run, but {re.escape(str(pop))} is \(a one-seed `kgrank train "
        rf"retriever` writes its run into --out itself\): pass --retriever {re.escape(str(pop))}$",
    )
    assert_one_error(
        kgrank(*preference, "--retriever", lru),
        rf"{re.escape(str(lru))} holds one retriever run per seed \(seed-0, seed-1\), not one run: pass one of them, "
        rf"e\.g\. --retriever {re.escape(str(lru / 'seed-0'))} ",
    )
    assert_one_error(
        kgrank("evaluate", "--data", prepared, "--model", f"pop={guessed}", "--out", tmp_path / "new" / "eval"),
        rf"pass --model pop={re.escape(str(pop))}$",
    )
    assert_one_error(
        kgrank("evaluate", "--data", prepared, "--model", f"lru={lru / 'seed-7'}", "--out", out),
        rf"{re.escape(str(lru))} holds the runs seed-0, seed-1: pass e\.g\. --model lru={re.escape(str(lru / 'seed-0'))}$",
    )
    assert not (tmp_path / "new").exists(), "a failed command left the --out folder it made"


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Paths a user might pass by mistake: a file, someone's folder, Hugging Face folders that are not usable."""
    root = tmp_path_factory.mktemp("foreign")
    (root / "a-file").write_text("someone's file")
    (root / "their-folder").mkdir()
    (root / "their-folder" / "notes.txt").write_text("someone's notes")
    (root / "bert").mkdir()
    (root / "bert" / "config.json").write_text('{"model_type": "bert"}')
    (root / "llama-no-weights").mkdir()
    (root / "llama-no-weights" / "config.json").write_text('{"model_type": "llama"}')
    (root / "a-ranker").mkdir()  # what a ranker checkpoint holds, training.json included
    for name in ("training.json", "kgrank_ranker.json", "config.json", "model.safetensors"):
        (root / "a-ranker" / name).write_text("{}")
    (root / "a-run").mkdir()  # what a retriever run holds, by name
    for name in ("training.json", "checkpoint.pt", "candidates-test.npz"):
        (root / "a-run" / name).write_text("")
    (root / "broken-config").mkdir()
    (root / "broken-config" / "config.json").write_text("{not json")
    return root


# Every command's foreseeable mistakes: each must end as one `error:` line naming the problem, exit 2.
# `kgrank serve`'s are in tests/api/test_bad_input.py, Neo4j's credentials in test_wrong_neo4j_password.
SWEEP = [
    (["data", "prepare", "--dataset", "ml-latest-small", "--raw", "{raw}", "--out", "{foreign}/a-file"],
     "a-file exists and is not a folder"),
    (["data", "prepare", "--dataset", "ml-latest-small", "--raw", "{raw}", "--out", "{foreign}/their-folder"],
     "their-folder is not empty and is not an earlier output of this command"),
    (["data", "prepare", "--dataset", "amazon", "--raw", "{foreign}/their-folder", "--out", "{tmp}/x"],
     "expected exactly one ratings_<Category>.csv, found none; pass --category"),
    (["data", "prepare", "--dataset", "generic", "--raw", "{foreign}/their-folder", "--out", "{tmp}/x"],
     r"mapping\.json: file not found"),
    (["graph", "load", "--data", "{data}", "--report", "{foreign}/their-folder"], "their-folder is a folder"),
    (["graph", "paths", "--data", "{data}", "--user", "1", "--candidates", ","], "--candidates needs at least one"),
    (["train", "retriever", "--data", "{data}", "--out", "{foreign}/a-file"], "a-file exists and is not a folder"),
    (["train", "retriever", "--data", "{data}", "--out", "{foreign}/their-folder"],
     "their-folder is not empty and is not an earlier output of this command"),
    (["train", "retriever", "--data", "{data}", "--out", "{foreign}/a-ranker"],
     r"a-ranker is not empty and is not an earlier output of this command \(no training\.json and checkpoint"),
    (["train", "candidates", "--data", "{data}", "--run", "{tmp}/none"],
     r"none is not a retriever run \(no training\.json and checkpoint\.pt and candidates-test\.npz\)"),
    (["train", "preference", "--data", "{data}", "--retriever", "{tmp}/none", "--out", "{tmp}/p"],
     r"none is not a retriever run .*; make one with `kgrank train retriever --out .*/none`"),
    (["train", "ensemble", "--data", "{data}", "--runs", "{foreign}/a-run,{tmp}/none", "--out", "{tmp}/e"],
     "none is not a retriever run"),
    (["train", "ranker", "--data", "{data}", "--retriever", "{tmp}/none", "--out", "{tmp}/r"],
     "--paths preference needs --preference DIR"),
    (["train", "ranker", "--data", "{data}", "--retriever", "{tmp}/none", "--out", "{tmp}/r", "--paths", "none",
      "--base-model", "{tmp}/none"], r"not a Hugging Face checkpoint folder \(no config\.json\)"),
    (["train", "ranker", "--data", "{data}", "--retriever", "{tmp}/none", "--out", "{tmp}/r", "--paths", "none",
      "--base-model", "{foreign}/bert"], "model_type 'bert' is not a Llama-style decoder"),
    (["train", "ranker", "--data", "{data}", "--retriever", "{tmp}/none", "--out", "{tmp}/r", "--paths", "none",
      "--base-model", "{foreign}/broken-config"], "not a valid Hugging Face config"),
    (["train", "ranker", "--data", "{data}", "--retriever", "{tmp}/none", "--out", "{tmp}/r", "--paths", "none",
      "--base-model", "{foreign}/llama-no-weights"], r"no weights \(model\.safetensors or pytorch_model\.bin\)"),
    (["train", "ranker", "--data", "{data}", "--retriever", "{tmp}/none", "--out", "{tmp}/r", "--paths",
      "preference", "--preference", "{tmp}/none"], "preference module not found"),
    (["train", "bundle", "--data", "{tmp}/none", "--out", "{tmp}/b"], "not a processed dataset"),
    (["train", "bundle", "--data", "{data}", "--out", "{foreign}/their-folder"],
     "their-folder is not empty and is not an earlier output of this command"),
    (["evaluate", "--data", "{data}", "--model", "x={tmp}/none", "--out", "{foreign}/a-file"],
     "a-file exists and is not a folder"),
    (["evaluate", "--data", "{data}", "--model", "x={tmp}/none@bogus", "--out", "{tmp}/e"], "unknown ranker 'bogus'"),
    (["evaluate", "--data", "{data}", "--model", "x={foreign}/a-run@llm:{tmp}/none", "--out", "{tmp}/e"],
     r"no kgrank_ranker\.json; not a ranker trained by `kgrank train ranker`"),
    (["evaluate", "--data", "{data}", "--model", "x={tmp}/none", "--model", "x={tmp}/none", "--out", "{tmp}/e"],
     "model names must be unique"),
    (["demo", "--raw", "{foreign}/their-folder", "--workdir", "{tmp}/demo"],
     r"no ml-latest-small here \(needs ratings\.csv and movies\.csv\)"),
]  # fmt: skip


@pytest.fixture(scope="module")
def loaded(prepared: Path) -> Path:
    """`prepared` with its embedded graph, so each case reaches the mistake it is about."""
    if not (prepared / "graph.sqlite").is_file():
        assert kgrank("graph", "load", "--data", prepared).returncode == 0
    return prepared


@pytest.mark.parametrize(("args", "pattern"), SWEEP, ids=[" ".join(a[:2]) + f" #{n}" for n, (a, _) in enumerate(SWEEP)])
def test_every_command_fails_in_one_line(
    args: list[str], pattern: str, loaded: Path, foreign: Path, ml_raw: Path, tmp_path: Path
) -> None:
    before = sorted(str(p) for p in foreign.rglob("*"))
    filled = [a.format(data=loaded, foreign=foreign, raw=ml_raw, tmp=tmp_path) for a in args]
    assert_one_error(kgrank(*filled), pattern)
    assert sorted(str(p) for p in foreign.rglob("*")) == before, "a failed command changed a user's files"
    assert list(tmp_path.iterdir()) == [], "a failed command left what it made behind"


def kill_when(
    args: list[str | Path],
    ready: Callable[[], bool],
    *,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    timeout: float = 600,
) -> None:
    """Start `kgrank ARGS` (its output into LOG), SIGKILL it as soon as `ready()` holds."""
    import os
    import time

    environment = cli_environment(env)
    with log.open("w") if log else open(os.devnull, "w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "kgrank", *map(str, args)], stdout=sink, stderr=sink, env=environment
        )
        deadline = time.monotonic() + timeout
        while not ready():
            assert process.poll() is None, (
                f"finished before it could be killed: {log.read_text()[-2000:] if log else ''}"
            )
            assert time.monotonic() < deadline, f"not ready to be killed in {timeout} s"
            time.sleep(0.02)
        process.kill()
        process.wait(timeout=30)


def shows(log: Path, marker: str) -> Callable[[], bool]:
    return lambda: log.is_file() and marker in log.read_text(errors="replace")


def run_contents(run: Path) -> dict[str, object]:
    import numpy as np

    contents: dict[str, object] = {}
    for name in ("candidates-val.npz", "candidates-test.npz"):
        with np.load(run / name) as arrays:
            contents |= {f"{name}:{key}": arrays[key].tolist() for key in arrays.files}
    training = json.loads((run / "training.json").read_text())
    contents["training"] = {k: v for k, v in training.items() if k not in ("seconds", "history")}
    return contents


def test_retriever_training_killed_mid_way_keeps_the_previous_run_and_reruns_cleanly(
    loaded: Path, tmp_path: Path
) -> None:
    """Killed mid-training: nothing of the run is written before its end (no epoch files into the previous
    run). The swap at the end is killed in tests/unit/test_atomic.py and in the bundle test below."""
    tiny = ["--data", loaded, "--dim", "16", "--max-len", "16", "--batch-size", "8"]
    assert kgrank("train", "retriever", *tiny, "--out", tmp_path / "clean", "--max-epochs", "3").returncode == 0
    run = tmp_path / "run"
    assert kgrank("train", "retriever", *tiny, "--out", run, "--max-epochs", "1").returncode == 0
    previous = {p.name: p.read_bytes() for p in run.iterdir()}

    forever = ["--max-epochs", "100000", "--patience", "100000"]
    log = tmp_path / "log"
    kill_when(["train", "retriever", *tiny, "--out", run, *forever], shows(log, "lrurec seed 0:"), log=log)
    assert {p.name: p.read_bytes() for p in run.iterdir()} == previous, "the killed run touched the previous one"

    rerun = kgrank("train", "retriever", *tiny, "--out", run, "--max-epochs", "3")
    assert rerun.returncode == 0, rerun.stderr
    assert run_contents(run) == run_contents(tmp_path / "clean")
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_bundle_killed_while_training_the_ranker_leaves_nothing_half_made(loaded: Path, tmp_path: Path) -> None:
    out = tmp_path / "models"
    bundle = ["train", "bundle", "--data", loaded, "--out", out, "--train-examples", "60"]
    log = tmp_path / "log"
    kill_when(bundle, shows(log, "ranker (preference, "), log=log)
    assert not out.exists(), "a killed bundle left a models folder"
    (staging,) = tmp_path.glob(".models.*.partial")
    assert (staging / "retriever" / "training.json").is_file()  # killed after the retriever: really mid-way

    rerun = kgrank(*bundle)
    assert rerun.returncode == 0, rerun.stderr
    assert "serve it: kgrank serve" in rerun.stdout
    assert (out / "ranker" / "kgrank_ranker.json").is_file() and (out / "preference" / "preference.pt").is_file()
    assert not staging.exists(), "the dead run's staging folder was not cleared"


def test_live_events_export_and_feed_the_next_prepare(prepared: Path, ml_raw: Path, tmp_path: Path) -> None:
    from services.graph_loader.catalog import CatalogItem
    from services.graph_loader.dataset import ProcessedDataset
    from services.graph_loader.embedded import EmbeddedGraph
    from services.graph_loader.events import LiveEvent

    assert kgrank("graph", "load", "--data", prepared).returncode == 0
    dataset = ProcessedDataset.load(prepared)
    frame = dataset.interactions
    seen = set(frame.loc[frame["user"] == 1, "item"].tolist())
    new_item = next(item.id for item in dataset.items if item.idx not in seen)
    user = dataset.user_id(1)
    graph = EmbeddedGraph(prepared / "graph.sqlite")
    live = CatalogItem(item_id="live-1", title="A Live Film (2026)", attributes={"Genre": ["Drama"]}, recorded_at=1)
    try:
        assert graph.put_catalog_item(dataset.name, live, dataset.schema) is True
        for n, item in enumerate([new_item, "no-such-item-in-raw"]):
            event = LiveEvent(
                event_id=f"x{n}", user_id=user, item_id=item, rating=5.0, timestamp=2_000_000_000 + n, recorded_at=n
            )
            if item == new_item:
                assert graph.record_event(dataset.name, event) is not None
            else:
                assert graph.record_event(dataset.name, event) is None  # not in the graph: not recorded
    finally:
        graph.close()
    items = kgrank("graph", "catalog", "--data", prepared, "--out", tmp_path / "items.jsonl")
    assert items.returncode == 0 and "wrote 1 catalogue items" in items.stdout, items.stderr
    exported = kgrank("graph", "events", "--data", prepared, "--out", tmp_path / "events.csv")
    assert exported.returncode == 0, exported.stderr
    assert "wrote 1 live events of 1 users" in exported.stdout
    assert (tmp_path / "events.csv").read_text().splitlines()[1].startswith(f"x0,{user},{new_item},5.0,2000000000,")

    out = tmp_path / "next"
    result = kgrank(
        "data",
        "prepare",
        "--dataset",
        "ml-latest-small",
        "--raw",
        ml_raw,
        "--out",
        out,
        "--events",
        tmp_path / "events.csv",
        "--catalog",
        tmp_path / "items.jsonl",
    )
    assert result.returncode == 0, result.stderr
    after = ProcessedDataset.load(out)
    assert len(after.interactions) == len(dataset.interactions) + 1
    assert after.manifest.data_hash != dataset.manifest.data_hash
    assert {"events.csv", "items.jsonl"} <= {source.name for source in after.manifest.sources}
    last = after.interactions[after.interactions["user"] == 1].iloc[-1]
    assert (after.item(int(last["item"])).id, int(last["timestamp"])) == (new_item, 2_000_000_000)
