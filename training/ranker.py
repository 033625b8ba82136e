"""Fine-tune the LLM ranker: one answer letter per prompt, loss on the letter and EOS only.

    kgrank train ranker --data data/ml --retriever runs/lrurec/seed-0 --base-model tiny \
        --paths preference --preference models/preference --out models/ranker

Reads top to bottom: config (RankerConfig in training/config.py) → tokenizer and model (`tiny`: a BPE
trained on the prompts and a small Llama from scratch, trained in full; `smollm2`, `gemma3` or a local
checkpoint: LoRA on q_proj / v_proj) → prompts for the training and validation examples, built by the
serving pipeline (services/ranker/pipeline.py: relation paths chosen by the strategy, fitted to the
token budget) → one loop on the GPU when there is one, validated every `eval_every` steps on val
NDCG@10 through the same pipeline, best state kept → LoRA merged into the base → the fusion weight
with the retriever chosen on val → a standard Hugging Face checkpoint plus kgrank_ranker.json (letter
token ids, prompt format, data hash, fusion), checked by reloading it and comparing scores. Under
torchrun the ranks split each batch (training/distributed.py); rank 0 validates and saves.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812 - the usual name
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from services.core.atomic import atomic_directory, check_replaceable, write_json
from services.core.errors import ModelError
from services.graph_loader.dataset import ProcessedDataset
from services.ranker.llm.device import model_device, model_dtype
from services.ranker.llm.metadata import METADATA_FILE, RankerMetadata
from services.ranker.llm.scorer import ModelLetterScorer, TransformersScorer, left_padded
from services.ranker.llm.tiny import build_tiny_llama
from services.ranker.llm.tokenizer import answer_token_ids, build_bpe_tokenizer
from services.ranker.paths.models import UserPaths
from services.ranker.pipeline import RankingInput, RankingPipeline, prompt_builder
from services.ranker.preference.scorer import PREFERENCE_FILE, PreferenceScorer
from services.ranker.preference.select import selector_for
from services.ranker.prompt import PROMPT_FORMAT_VERSION, Prompt, PromptBuilder
from training.base_models import resolve_base_model
from training.config import TINY, RankerConfig
from training.distributed import SINGLE_PROCESS, Workers
from training.examples import Example
from training.fusion import choose_fusion, val_ndcg10
from training.progress import (
    RunEstimate,
    RunPlan,
    counted,
    in_parts,
    progress_bar,
    warn_unless_better_than_untrained,
)

logger = logging.getLogger(__name__)

# Without a tokenizer yet, the tiny model's BPE is trained on prompts measured in words: a generous
# stand-in budget, so the corpus holds everything a real prompt could show.
CORPUS_BUDGET_WORDS = 100_000
PROMPTS_PER_UPDATE = 32  # prompts built between two updates of the bar


@dataclass
class RankerResult:
    best_step: int
    best_val_ndcg10: float
    untrained_val_ndcg10: float  # step 0: the base model (or the untrained tiny one) before any step
    steps: int
    planned_steps: int  # more than `steps` when --max-minutes stopped the run
    seconds: float
    reload_max_abs_difference: float
    history: list[dict[str, float]]
    fusion_weight: float | None
    fused_val_ndcg10: float | None

    @property
    def beats_untrained(self) -> bool:
        return self.best_val_ndcg10 > self.untrained_val_ndcg10


def word_count(text: str) -> int:
    return len(text.split())


def inputs_of(examples: list[Example], paths: list[UserPaths]) -> list[RankingInput]:
    return [RankingInput(e.task.user, p, e.task.retriever_scores) for e, p in zip(examples, paths, strict=True)]


def build_prompts(pipeline: RankingPipeline, inputs: list[RankingInput], *, what: str, progress: bool) -> list[Prompt]:
    """The prompts serving would build for these inputs (the pipeline's choose and prompt stages). Fitting each
    to the token budget takes the real tokenizer several passes, minutes for a few thousand: a bar shows them.
    Serving builds them one request at a time, so building them in parts changes nothing."""
    bar = progress_bar(len(inputs), what, enabled=progress, unit=" prompts")

    def build(part: slice) -> list[Prompt]:
        return pipeline.prompts(inputs[part], pipeline.choose(inputs[part]))

    return in_parts(len(inputs), PROMPTS_PER_UPDATE, build, bar)


def validations_planned(steps: int, eval_every: int) -> int:
    """Step 0, every `eval_every` steps, and the last step."""
    return 1 + steps // eval_every + (1 if steps % eval_every else 0)


def load_tokenizer_and_model(
    config: RankerConfig, corpus: list[str], device: torch.device
) -> tuple[PreTrainedTokenizerBase, PreTrainedModel]:
    if config.base_model == TINY:
        tokenizer = build_bpe_tokenizer(corpus, vocab_size=config.tiny.vocab_size)
        return tokenizer, build_tiny_llama(tokenizer, config.tiny, seed=config.seed).to(device)
    base = Path(resolve_base_model(config.base_model))
    tokenizer = AutoTokenizer.from_pretrained(base)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    if config.load_in_4bit:
        return tokenizer, AutoModelForCausalLM.from_pretrained(base, **quantization_options(device))
    # LoRA trains in the model's dtype: bf16 on a GPU, fp32 on a CPU (where bf16 is slower).
    return tokenizer, AutoModelForCausalLM.from_pretrained(base, dtype=model_dtype(device)).to(device)


RANKER_MARKERS = (METADATA_FILE, "config.json")  # what every ranker checkpoint holds
LLAMA_STYLE = ("llama", "mistral", "gemma3_text")  # decoders with q/k/v/o_proj, the modules LoRA adapts
_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def check_base_model(base_model: str) -> None:
    """`tiny`, a fetched base model (smollm2, gemma3), or a local Llama-style checkpoint folder."""
    if base_model == TINY:
        return
    base = Path(resolve_base_model(base_model))
    config_file = base / "config.json"
    if not config_file.is_file():
        raise ModelError(
            f"{base}: not a Hugging Face checkpoint folder (no config.json); or use --base-model tiny, smollm2, gemma3"
        )
    try:
        model_type = json.loads(config_file.read_text(encoding="utf-8")).get("model_type")
    except (json.JSONDecodeError, UnicodeDecodeError, AttributeError) as e:
        raise ModelError(f"{config_file}: not a valid Hugging Face config ({e})") from e
    if model_type not in LLAMA_STYLE:
        raise ModelError(f"{base}: model_type {model_type!r} is not a Llama-style decoder ({', '.join(LLAMA_STYLE)})")
    if not any((base / name).is_file() for name in _WEIGHT_FILES):
        raise ModelError(f"{base}: no weights ({' or '.join(_WEIGHT_FILES[::2])})")
    if not any((base / name).is_file() for name in ("tokenizer.json", "tokenizer.model")):
        raise ModelError(f"{base}: no tokenizer (tokenizer.json or tokenizer.model)")


def quantization_options(device: torch.device) -> dict[str, Any]:
    """NF4 4-bit loading (QLoRA, as the paper): only with a GPU and bitsandbytes installed. Spread over
    the GPUs, unless the device names one (each data parallel rank holds a whole copy on its own)."""
    if not torch.cuda.is_available():
        raise ModelError("--load-in-4bit needs a CUDA GPU")
    try:
        from transformers import BitsAndBytesConfig
    except ImportError as e:  # pragma: no cover - depends on the installed extras
        raise ModelError("--load-in-4bit needs bitsandbytes (pip install bitsandbytes)") from e
    quantization = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float16
    )
    return {"quantization_config": quantization, "device_map": "auto" if device.index is None else {"": device.index}}


def with_lora(model: PreTrainedModel, config: RankerConfig) -> PreTrainedModel:
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=list(config.lora_targets),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, lora)


def answer_loss(
    model: torch.nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[str],
    answers: list[int],
    eos_id: int,
) -> torch.Tensor:
    """Cross-entropy of the answer letter after the prompt and of EOS after the letter; nothing else.
    `model` may be wrapped in DDP, which has no `.device`: its parameters tell."""
    device = next(model.parameters()).device
    letters = torch.tensor(answers)
    ids, mask, positions = left_padded(tokenizer, prompts)
    ids = torch.cat([ids, letters.unsqueeze(1), torch.full_like(letters, eos_id).unsqueeze(1)], dim=1)
    mask = torch.cat([mask, torch.ones(len(prompts), 2, dtype=mask.dtype)], dim=1)
    positions = torch.cat([positions, positions[:, -1:] + 1, positions[:, -1:] + 2], dim=1)
    ids, mask, positions = ids.to(device), mask.to(device), positions.to(device)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=3).logits
    letters = letters.to(device)
    return (F.cross_entropy(logits[:, 0].float(), letters) + F.cross_entropy(logits[:, 1].float(), ids[:, -1])) / 2


def train_ranker(
    dataset: ProcessedDataset,
    config: RankerConfig,
    *,
    train: tuple[list[Example], list[UserPaths]],
    val: tuple[list[Example], list[UserPaths]],
    out: Path,
    preference_dir: Path | None = None,
    retriever: str = "",
    progress: bool = True,
    workers: Workers = SINGLE_PROCESS,
) -> RankerResult:
    """`retriever` names the run whose candidates the val examples are (the fusion weight is chosen on them).
    Every rank returns rank 0's result; only rank 0 writes `out`."""
    config = config.resolved(train_examples=len(train[0]))
    workers.check_batch_size(config.batch_size)
    check_replaceable(out, markers=RANKER_MARKERS)  # fail now, not after training
    check_base_model(config.base_model)
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    prompt_config = config.prompt()
    module = PreferenceScorer.load(preference_dir) if preference_dir is not None else None
    selector = selector_for(config.path_strategy, module)
    device = workers.place(model_device())
    show = progress and workers.is_main

    def pipeline(builder: PromptBuilder, scorer: ModelLetterScorer | None = None) -> RankingPipeline:
        return RankingPipeline(
            ranked_by="llm",
            strategy=config.path_strategy,
            selector=selector,
            builder=builder,
            scorer=scorer,
            preference=module,
        )

    train_inputs, val_inputs = inputs_of(*train), inputs_of(*val)
    steps_per_epoch = config.steps_per_epoch(len(train_inputs))
    total = steps_per_epoch * (config.epochs or 1)
    # both set by resolved()
    assert config.eval_every is not None
    assert config.lr is not None
    eval_every = config.eval_every
    if workers.is_main:
        logger.info(
            "ranker: %s, %s; %s of %s, validated at step 0 and every %s",
            counted(len(train_inputs), "training prompt"),
            counted(len(val_inputs), "validation user"),
            counted(config.epochs or 1, "epoch"),
            counted(steps_per_epoch, "step"),
            counted(eval_every, "step"),
        )
    corpus: list[str] = []
    if config.base_model == TINY:
        corpus_builder = PromptBuilder(
            prompt_config.model_copy(update={"budget_tokens": CORPUS_BUDGET_WORDS}),
            count_tokens=word_count,
            truncate_tokens=lambda text, n: " ".join(text.split()[:n]),
        )
        corpus_prompts = build_prompts(pipeline(corpus_builder), train_inputs, what="tokenizer corpus", progress=show)
        corpus = [p.text for p in corpus_prompts]
    tokenizer, model = load_tokenizer_and_model(config, corpus, device)
    letter_ids = answer_token_ids(tokenizer)
    eos_id = tokenizer.eos_token_id
    if eos_id is None:
        raise ModelError("the tokenizer has no EOS token")
    builder = prompt_builder(tokenizer, prompt_config)
    prompts_only = pipeline(builder)
    train_prompts = [p.text for p in build_prompts(prompts_only, train_inputs, what="training prompts", progress=show)]
    val_prompts = build_prompts(prompts_only, val_inputs, what="validation prompts", progress=show)
    answers = [letter_ids[e.target_position] for e in train[0]]
    if config.lora:
        model = with_lora(model, config)
    net = workers.wrap(model)
    workers.seed_dropout(config.seed)
    validating = pipeline(builder, ModelLetterScorer(model, tokenizer, letter_ids, batch_size=config.batch_size))
    estimate = RunEstimate(
        "ranker:",
        RunPlan(
            epochs=config.epochs or 1,
            steps_per_epoch=steps_per_epoch,
            validations=validations_planned(total, eval_every),
            validation_users=len(val_inputs),
            max_minutes=config.max_minutes,
        ),
        enabled=workers.is_main,
    )

    def score_val(part: slice) -> list[np.ndarray]:
        return validating.model_scores(val_inputs[part], val_prompts[part])

    def validate(step: int) -> tuple[float, list[np.ndarray]]:
        model.eval()
        bar = progress_bar(len(val_inputs), f"validating step {step}", enabled=show, unit=" users", leave=False)
        with estimate.validation(len(val_inputs)):
            # one scorer batch per part: the same batches, so the same scores, as scoring them all at once
            scores = in_parts(len(val_inputs), config.batch_size, score_val, bar)
        orders = [
            validating.finish(item, [], p, s).order for item, p, s in zip(val_inputs, val_prompts, scores, strict=True)
        ]
        return val_ndcg10(orders, val[0]), scores

    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=0.0)
    # The paper warms up for 100 steps of a long epoch; a short run must still reach its peak rate.
    warmup = config.warmup_steps if config.warmup_steps is not None else max(1, min(100, total // 10))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: min(1.0, (step + 1) / warmup) * max(0.0, (total - step) / total)
    )

    history: list[dict[str, float]] = []
    best, best_scores, best_step, best_state = -1.0, [], 0, {}
    if workers.is_main:
        best, best_scores = validate(0)
        best_state = _trainable_state(model)
        history.append({"step": 0, "val_N@10": best})
    order = list(range(len(train_prompts)))
    step, losses = 0, []
    bar = progress_bar(total, f"ranker ({config.path_strategy}, {device.type})", enabled=show)
    bar.set_postfix(val_n10=f"{best:.4f}")
    stop = False
    estimate.start_steps()
    for _ in range(config.epochs or 1):
        rng.shuffle(order)
        for start in range(0, len(order), config.batch_size):
            model.train()
            batch = order[start : start + config.batch_size]
            share = workers.share(len(batch))
            mine = batch[share.rows]
            loss = answer_loss(net, tokenizer, [train_prompts[i] for i in mine], [answers[i] for i in mine], eos_id)
            weighted = loss * share.loss_weight(len(mine), len(batch))
            optimizer.zero_grad(set_to_none=True)
            weighted.backward()
            torch.nn.utils.clip_grad_norm_(trainable, 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            losses.append(weighted.item())
            bar.update(1)
            estimate.step_done()
            over_time = config.max_minutes is not None and workers.agree(
                time.perf_counter() - started > config.max_minutes * 60
            )
            if step % eval_every == 0 or step == total or over_time:
                loss_since = workers.mean(float(np.mean(losses)))
                losses = []
                if workers.is_main:
                    score, scores = validate(step)
                    history.append({"step": step, "loss": loss_since, "val_N@10": score})
                    if score > best:
                        best, best_step, best_state, best_scores = score, step, _trainable_state(model), scores
                    bar.set_postfix(val_n10=f"{score:.4f}", best=f"{best:.4f}@{best_step}")
            if over_time:
                stop = True
                break
        if stop:
            break
    bar.close()
    if not workers.is_main:
        return workers.result_from_main(None)
    untrained = history[0]["val_N@10"]
    warn_unless_better_than_untrained(
        "the trained ranker", best, untrained, consequence="no step beat step 0, so its weights are saved"
    )
    model.load_state_dict(best_state, strict=False)
    model.eval()
    fusion = choose_fusion(best_scores, val[0], retriever=retriever) if retriever else None

    check = [p.text for p in val_prompts[:8]]
    before = np.stack(validating.scorer.score(check, [len(letter_ids)] * len(check))) if check else None  # type: ignore[union-attr]
    if config.load_in_4bit:
        final = _merge_into_full_precision(model, config)
    elif config.lora:
        final = model.merge_and_unload()
    else:
        final = model
    with atomic_directory(out, markers=RANKER_MARKERS) as staging:
        save_checkpoint(final, tokenizer, staging)
        if preference_dir is not None:
            shutil.copy2(preference_dir / PREFERENCE_FILE, staging / PREFERENCE_FILE)
        metadata = RankerMetadata(
            prompt_format_version=PROMPT_FORMAT_VERSION,
            letter_token_ids=letter_ids,
            eos_token_id=eos_id,
            dataset=dataset.name,
            data_hash=dataset.manifest.data_hash,
            base_model=config.base_model,
            path_strategy=config.path_strategy,
            prompt=prompt_config,
            kgrank_version=version("kgrank"),
            training={
                "train_examples": len(train_prompts),
                "val_examples": len(val_prompts),
                "steps": step,
                "planned_steps": total,
                "best_step": best_step,
                "best_val_N@10": best,
                "lora": str(config.lora),
                "device": device.type,
                "seconds": round(time.perf_counter() - started, 1),
            },
            fusion=fusion,
            val_curve=[(int(h["step"]), h["val_N@10"]) for h in history],
        )
        metadata.save(staging)
        difference = 0.0
        if before is not None:
            reloaded = TransformersScorer(staging).score(check, [len(letter_ids)] * len(check))
            difference = float(np.max(np.abs(np.stack(reloaded) - before)))
            # bf16 weights round differently once merged; fp32 must agree to rounding error.
            tolerance = 1e-3 if model_dtype(device) == torch.float32 else 5e-2
            if difference > tolerance:
                raise ModelError(f"the saved ranker scores differ from the trained one by {difference:.2e}")
        result = RankerResult(
            best_step=best_step,
            best_val_ndcg10=best,
            untrained_val_ndcg10=untrained,
            steps=step,
            planned_steps=total,
            seconds=round(time.perf_counter() - started, 1),
            reload_max_abs_difference=difference,
            history=history,
            fusion_weight=None if fusion is None else fusion.weight,
            fused_val_ndcg10=None if fusion is None else fusion.val_ndcg10,
        )
        write_training_log(staging, config, result)
    return workers.result_from_main(result)


def _trainable_state(model: PreTrainedModel) -> dict[str, torch.Tensor]:
    """A copy of what training changes (the adapters under LoRA, everything otherwise)."""
    names = {name for name, p in model.named_parameters() if p.requires_grad}
    return {name: tensor.detach().clone() for name, tensor in model.state_dict().items() if name in names}


def _merge_into_full_precision(adapted: PreTrainedModel, config: RankerConfig) -> PreTrainedModel:
    """A 4-bit base cannot hold merged weights: reload it in float16 and merge the trained adapters there."""
    from peft import PeftModel

    with tempfile.TemporaryDirectory() as staging:
        adapted.save_pretrained(staging)
        base = AutoModelForCausalLM.from_pretrained(resolve_base_model(config.base_model), dtype=torch.float16)
        return PeftModel.from_pretrained(base, staging).merge_and_unload()


def save_checkpoint(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, out: Path) -> None:
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)


def write_training_log(out: Path, config: RankerConfig, result: RankerResult) -> None:
    write_json(
        out / "training.json",
        {
            "config": asdict(config) | {"tiny": config.tiny.model_dump()},
            "best_step": result.best_step,
            "best_val_N@10": result.best_val_ndcg10,
            "untrained_val_N@10": result.untrained_val_ndcg10,
            "beats_untrained": result.beats_untrained,
            "history": result.history,
            "reload_max_abs_difference": result.reload_max_abs_difference,
        },
    )
