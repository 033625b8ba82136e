"""`--base-model tiny`: a small Llama-architecture model built from scratch, trainable on a CPU."""

from __future__ import annotations

from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerBase

from services.ranker.llm.tiny_config import TinyLlamaConfig


def build_tiny_llama(tokenizer: PreTrainedTokenizerBase, config: TinyLlamaConfig, *, seed: int) -> LlamaForCausalLM:
    import torch

    torch.manual_seed(seed)
    llama = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.hidden_size * 8 // 3,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.heads,
        max_position_embeddings=config.max_positions,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(llama)
