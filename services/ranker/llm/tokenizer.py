"""Tokenizers: a byte-level BPE built on a dataset's own text for `--base-model tiny`, and the checks
every ranker tokenizer must pass (each answer letter one token, right after the prompt)."""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

from services.core.errors import ModelError
from services.ranker.prompt import LETTERS, TEMPLATE

SPECIAL_TOKENS = {"pad_token": "<pad>", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}


def build_bpe_tokenizer(texts: Iterable[str], *, vocab_size: int) -> PreTrainedTokenizerFast:
    """Byte-level BPE (no unknown characters) trained on `texts`, with BOS/EOS/PAD special tokens.

    Trained on the prompts themselves, frequent titles and names become single tokens, which keeps
    prompts short for a model that runs on a CPU.
    """
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(texts, trainer)
    bos = SPECIAL_TOKENS["bos_token"]
    # Prompts start with <s>, as Llama's do.
    core.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A", pair=f"{bos} $A $B", special_tokens=[(bos, core.token_to_id(bos))]
    )
    return PreTrainedTokenizerFast(tokenizer_object=core, **SPECIAL_TOKENS)


def answer_token_ids(tokenizer: PreTrainedTokenizerBase) -> list[int]:
    """The id of each letter exactly as it follows a prompt in training targets.

    A letter that is not a single token after "### Response:\\n" cannot be scored in one pass.
    """
    prefix = TEMPLATE.format(instruction="x", input="y")
    base = tokenizer(prefix, add_special_tokens=False)["input_ids"]
    ids = []
    for letter in LETTERS:
        full = tokenizer(prefix + letter, add_special_tokens=False)["input_ids"]
        if full[: len(base)] != base or len(full) != len(base) + 1:
            raise ModelError(f"the tokenizer does not encode answer {letter!r} as one token after the prompt")
        ids.append(full[-1])
    if len(set(ids)) != len(ids):
        raise ModelError("the tokenizer maps two answer letters to the same token")
    return ids
