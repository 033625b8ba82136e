from __future__ import annotations

import pytest
from transformers import PreTrainedTokenizerFast

from services.core.errors import ModelError
from services.ranker.llm.tokenizer import answer_token_ids, build_bpe_tokenizer
from services.ranker.prompt import LETTERS, TEMPLATE

CORPUS = [
    TEMPLATE.format(instruction="Given user history", input="User history: (1) Heat (1995)") + letter
    for letter in LETTERS
] * 20


def test_letters_are_single_tokens_after_the_prompt() -> None:
    tokenizer = build_bpe_tokenizer(CORPUS, vocab_size=600)
    ids = answer_token_ids(tokenizer)
    assert len(ids) == 20 == len(set(ids))
    prompt = TEMPLATE.format(instruction="x", input="y")
    for letter, token in zip(LETTERS, ids, strict=True):
        assert tokenizer(prompt + letter)["input_ids"][-1] == token
        assert tokenizer.decode([token]) == letter


def test_bos_is_added_and_text_round_trips() -> None:
    tokenizer = build_bpe_tokenizer(CORPUS, vocab_size=600)
    encoded = tokenizer("Heat (1995) ¡Amigos! café")["input_ids"]
    assert encoded[0] == tokenizer.bos_token_id
    assert tokenizer.decode(encoded, skip_special_tokens=True) == "Heat (1995) ¡Amigos! café"


def test_tokenizers_that_cannot_answer_in_one_token_are_refused() -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers

    prompt = TEMPLATE.format(instruction="x", input="y")
    characters = sorted(set(prompt + LETTERS))
    vocab = {c: i for i, c in enumerate(characters)} | {"\nA": len(characters)}
    # A merge of newline and "A": after the prompt, answer A re-tokenizes the prompt's last token.
    merging = Tokenizer(models.BPE(vocab=vocab, merges=[("\n", "A")]))
    with pytest.raises(ModelError, match="does not encode answer 'A' as one token"):
        answer_token_ids(PreTrainedTokenizerFast(tokenizer_object=merging))
    # Every letter unknown: all answers would be the same token.
    unknown = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    unknown.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    with pytest.raises(ModelError, match="maps two answer letters to the same token"):
        answer_token_ids(PreTrainedTokenizerFast(tokenizer_object=unknown, unk_token="[UNK]"))
