"""The evaluation report's figures and text, from per-user ranks made up here: the forest plot's rows, the
model whose curves are drawn (chosen on val, not test), the paper's rows only where it has numbers, the
PNGs, and redrawing a saved evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from services.core.errors import ConfigError
from training.evaluation.harness import ModelResult, SeedResult
from training.evaluation.metrics import per_user_metrics
from training.evaluation.paper import paper_rows
from training.evaluation.report import (
    CURVES_PLOT,
    FOREST_PLOT,
    EvaluationReport,
    best_on_val,
    comparisons,
    curve_models,
    forest_rows,
    main,
    markdown,
    model_report,
    render,
    write_report,
)

USERS = 300
RESAMPLES = 200
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def baseline_ranks(seed: int) -> np.ndarray:
    """The retriever's rank of each user's true item, 1 to 40 (above 20: not retrieved)."""
    return np.random.default_rng(seed).integers(1, 41, size=USERS).astype(np.float64)


def moved(ranks: np.ndarray, by: int) -> np.ndarray:
    """Every retrieved true item `by` places higher (lower when negative): a better or worse ranker."""
    retrieved = ranks <= 20
    return np.where(retrieved, np.clip(ranks - by, 1, 20), ranks)


def result(name: str, ranks: np.ndarray) -> ModelResult:
    seed = SeedResult(
        run=Path("no-such-run"),
        seed=0,
        retrieved=ranks <= 20,
        overall=per_user_metrics(ranks, [1, 5, 10]),
        retrieval=per_user_metrics(ranks, [1, 10]),
    )
    return ModelResult(name=name, ranker=name, seeds=[seed])


def evaluation(
    shifts: dict[str, int], *, split: str = "test", seed: int = 0, dataset: str = "ml-latest-small"
) -> EvaluationReport:
    """A report of "baseline" (the retriever's order) and one model per shift of its ranks."""
    ranks = baseline_ranks(seed)
    results = [result("baseline", ranks)] + [result(name, moved(ranks, by)) for name, by in shifts.items()]
    return EvaluationReport(
        dataset=dataset,
        data_hash="hash",
        split=split,
        users=USERS,
        candidates=20,
        ks=[1, 5, 10],
        retrieval_ks=[1, 10],
        resamples=RESAMPLES,
        command=f"kgrank evaluate --split {split}",
        models=[model_report(r, resamples=RESAMPLES) for r in results],
        comparisons=comparisons(results, resamples=RESAMPLES),
        paper=paper_rows(dataset, dataset) if split == "test" else {},
        seconds=1.0,
        peak_rss_mb=1.0,
    )


def test_forest_rows_are_every_model_but_the_baseline_largest_difference_first() -> None:
    report = evaluation({"worse": -3, "a bit better": 1, "much better": 4})
    rows = forest_rows(report)
    assert [row.model for row in rows] == ["much better", "a bit better", "worse"]
    n10 = [row.by_metric["N@10"].mean_difference for row in rows]
    assert n10 == sorted(n10, reverse=True)
    for row in rows:
        assert set(row.by_metric) == {"N@10", "R@10"}
        for comparison in row.by_metric.values():
            assert comparison.baseline == "baseline"
            assert comparison.low <= comparison.mean_difference <= comparison.high


def test_curves_show_the_baseline_and_the_model_best_on_val_not_on_test() -> None:
    test = evaluation({"B": 1, "A": 3}, seed=0)
    val = evaluation({"B": 4, "A": 1}, split="val", seed=1)
    assert forest_rows(test)[0].model == "A"  # A wins on test, B on val
    choice = best_on_val(test, val)
    assert choice is not None and choice.model.name == "B" and choice.metric == "N@10"
    assert choice.val_value == pytest.approx(next(m.overall["N@10"].mean for m in val.models if m.name == "B"))
    assert choice.model is test.models[1]  # drawn with its test figures
    assert [m.name for m in curve_models(test, choice)] == ["baseline", "B"]
    assert ", and B, the model with the best val N@10" in markdown(test, val=val)


def test_the_best_ranker_is_drawn_even_when_the_baseline_beats_them_all_on_val() -> None:
    val = evaluation({"A": -3, "B": -1}, split="val", seed=1)
    choice = best_on_val(evaluation({"A": 1, "B": 2}), val)
    assert choice is not None and choice.model.name == "B"


def test_without_val_only_the_baseline_is_drawn() -> None:
    test = evaluation({"A": 3})
    assert best_on_val(test, None) is None
    assert [m.name for m in curve_models(test, None)] == ["baseline"]
    assert "no val evaluation of these models was given" in markdown(test)


def test_the_model_drawn_is_never_picked_on_another_split_or_dataset() -> None:
    test = evaluation({"A": 3})
    with pytest.raises(ConfigError, match="chosen on val; that evaluation is on test"):
        best_on_val(test, test)
    with pytest.raises(ConfigError, match="val evaluation is of other"):
        best_on_val(test, evaluation({"A": 3}, split="val", dataset="other"))


def test_the_paper_is_cited_only_where_it_reports_the_dataset() -> None:
    reported = markdown(evaluation({"A": 1}))
    assert "## Overall, beside the paper" in reported
    # metrics.json sorts the paper's rows by name; the table keeps the paper's order.
    assert reported.index("*paper: SASRec*") < reported.index("*paper: LRURec (retriever)*")
    unreported = markdown(evaluation({"A": 1}, dataset="steam"))
    assert "beside the paper" not in unreported
    assert "*paper:" not in unreported
    assert "The paper reports no numbers for steam on test." in unreported


def test_render_writes_both_pngs(tmp_path: Path) -> None:
    report = evaluation({"A": 1, "B": -1})
    render(report, tmp_path)
    for name in (FOREST_PLOT, CURVES_PLOT):
        png = (tmp_path / name).read_bytes()
        assert png.startswith(PNG_SIGNATURE) and len(png) > len(PNG_SIGNATURE)
    text = (tmp_path / "metrics.md").read_text(encoding="utf-8")
    assert f"({FOREST_PLOT})" in text and f"({CURVES_PLOT})" in text


def test_one_model_has_no_forest_plot(tmp_path: Path) -> None:
    (tmp_path / FOREST_PLOT).write_bytes(b"left by an earlier run")
    render(evaluation({}), tmp_path)
    assert not (tmp_path / FOREST_PLOT).exists()
    assert (tmp_path / CURVES_PLOT).read_bytes().startswith(PNG_SIGNATURE)
    assert FOREST_PLOT not in (tmp_path / "metrics.md").read_text(encoding="utf-8")


def test_a_saved_evaluation_is_redrawn_from_its_json(tmp_path: Path) -> None:
    write_report(evaluation({"B": 1, "A": 3}), tmp_path / "test")
    write_report(evaluation({"B": 4, "A": 1}, split="val", seed=1), tmp_path / "val")
    saved = (tmp_path / "test" / "metrics.json").read_bytes()
    for name in ("metrics.md", FOREST_PLOT, CURVES_PLOT):
        (tmp_path / "test" / name).unlink()
    main([str(tmp_path / "test"), "--val", str(tmp_path / "val")])
    assert (tmp_path / "test" / "metrics.json").read_bytes() == saved
    assert (tmp_path / "test" / FOREST_PLOT).read_bytes().startswith(PNG_SIGNATURE)
    assert (tmp_path / "test" / CURVES_PLOT).read_bytes().startswith(PNG_SIGNATURE)
    assert ", and B, the model with the best val N@10" in (tmp_path / "test" / "metrics.md").read_text(encoding="utf-8")
