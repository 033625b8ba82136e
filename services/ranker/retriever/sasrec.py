"""SASRec (Kang & McAuley, 2018): causal self-attention over the item sequence, the standard baseline."""

from __future__ import annotations

import torch
from torch import nn

from services.ranker.retriever.base import SequenceModel


class SASRec(SequenceModel):
    def __init__(
        self,
        num_items: int,
        *,
        max_len: int,
        dim: int = 64,
        blocks: int = 2,
        heads: int = 2,
        dropout: float = 0.2,
    ) -> None:
        super().__init__()
        self.heads = heads
        self.embedding = nn.Embedding(num_items + 1, dim, padding_idx=0)
        self.positions = nn.Embedding(max_len, dim)
        self.embed_dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            dim,
            heads,
            dim_feedforward=4 * dim,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, blocks, enable_nested_tensor=False)
        self.final_norm = nn.LayerNorm(dim)
        self.bias = nn.Parameter(torch.zeros(num_items + 1))
        self.init_weights()

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        length = sequences.size(1)
        positions = torch.arange(length, device=sequences.device)
        x = self.embed_dropout(
            self.embedding(sequences) * self.embedding.embedding_dim**0.5 + self.positions(positions)
        )
        real = sequences > 0
        # Attend to earlier real items and always to oneself (a fully masked row would give NaN).
        causal = torch.tril(torch.ones(length, length, dtype=torch.bool, device=sequences.device))
        allowed = (causal & real.unsqueeze(1)) | torch.eye(length, dtype=torch.bool, device=sequences.device)
        blocked = (~allowed).repeat_interleave(self.heads, dim=0)
        return self.final_norm(self.encoder(x, mask=blocked))
