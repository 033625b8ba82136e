"""One forward pass per prompt: the log-probabilities of the answer letters at the last position.

Every scorer reads the letter ids from the checkpoint's metadata, i.e. exactly the ids the model was
trained to produce. `ModelLetterScorer` scores with a model in memory (training validates through it);
`TransformersScorer` loads a checkpoint onto the GPU when there is one, else the CPU;
`services.ranker.llm.vllm` asks a vLLM server and returns the same numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from services.core.errors import ModelError
from services.ranker.llm.device import model_device, model_dtype
from services.ranker.llm.metadata import RankerMetadata


class LetterScorer(Protocol):
    def score(self, prompts: Sequence[str], counts: Sequence[int]) -> list[np.ndarray]:
        """For each prompt, log-probabilities of the letters A… of its `count` candidates."""
        ...


def left_padded(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """input ids, attention mask and position ids, padded on the left so every text ends at the last position.

    Positions count real tokens only; the model would otherwise see padding shift every position.
    """
    encoded = [tokenizer(text)["input_ids"] for text in texts]
    width = max(len(ids) for ids in encoded)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    input_ids = torch.full((len(texts), width), pad, dtype=torch.long)
    mask = torch.zeros((len(texts), width), dtype=torch.long)
    for row, ids in enumerate(encoded):
        input_ids[row, width - len(ids) :] = torch.as_tensor(ids)
        mask[row, width - len(ids) :] = 1
    positions = (mask.cumsum(dim=1) - 1).clamp(min=0)
    return input_ids, mask, positions


def letter_logprobs(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: Sequence[str],
    letter_ids: Sequence[int],
) -> torch.Tensor:
    """(B, len(letter_ids)) log-softmax over the whole vocabulary, read at the letters' ids (on the CPU)."""
    input_ids, mask, positions = (t.to(model.device) for t in left_padded(tokenizer, prompts))
    logits = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, logits_to_keep=1).logits[:, -1]
    return torch.log_softmax(logits.float(), dim=-1)[:, list(letter_ids)].cpu()


def load_tokenizer(model_dir: Path) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(model_dir)
    except (OSError, ValueError) as e:
        raise ModelError(f"{model_dir}: cannot load the ranker's tokenizer: {e}") from e


class ModelLetterScorer:
    """Letter scores from a model in memory, `batch_size` prompts per forward pass."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        letter_ids: Sequence[int],
        *,
        batch_size: int = 8,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.letter_ids = list(letter_ids)
        self.batch_size = batch_size

    @torch.inference_mode()
    def score(self, prompts: Sequence[str], counts: Sequence[int]) -> list[np.ndarray]:
        results: list[np.ndarray] = []
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start : start + self.batch_size]
            table = letter_logprobs(self.model, self.tokenizer, chunk, self.letter_ids).numpy()
            results.extend(table[row, : counts[start + row]] for row in range(len(chunk)))
        return results


class TransformersScorer(ModelLetterScorer):
    """A saved ranker checkpoint, in-process: on the GPU in bf16 when there is one, else on the CPU in fp32."""

    def __init__(self, model_dir: Path, *, batch_size: int = 8) -> None:
        self.metadata = RankerMetadata.load(model_dir)
        device = model_device()
        try:
            model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=model_dtype(device)).to(device).eval()
        except (OSError, ValueError) as e:
            raise ModelError(f"{model_dir}: cannot load the ranker checkpoint: {e}") from e
        super().__init__(model, load_tokenizer(model_dir), self.metadata.letter_token_ids, batch_size=batch_size)


class MemoizedScorer:
    """Scores each distinct (prompt, count) once: rankers that build the same prompts share the passes
    (`kgrank evaluate` with `llm:DIR` and `llm+fusion:DIR` side by side)."""

    def __init__(self, scorer: LetterScorer) -> None:
        self._scorer = scorer
        self._scores: dict[tuple[str, int], np.ndarray] = {}

    def score(self, prompts: Sequence[str], counts: Sequence[int]) -> list[np.ndarray]:
        missing = list(dict.fromkeys(key for key in zip(prompts, counts, strict=True) if key not in self._scores))
        if missing:
            fresh = self._scorer.score([p for p, _ in missing], [c for _, c in missing])
            self._scores.update(zip(missing, fresh, strict=True))
        return [self._scores[key] for key in zip(prompts, counts, strict=True)]
