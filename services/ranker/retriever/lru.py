"""LRURec: linear recurrent units for sequential recommendation (Yue et al., WSDM 2024), as docs/method.md §2.

Each LRU layer runs a diagonal complex linear recurrence h_t = λ ⊙ h_{t-1} + γ ⊙ (B x_t) and reads
y_t = Re(C h_t). Complex numbers are kept as (real, imaginary) pairs of real tensors, and the
recurrence is computed for all positions at once by a doubling scan in log2(L) steps.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812 - the usual name
from torch import nn

from services.ranker.retriever.base import SequenceModel


def linear_recurrence(
    real: torch.Tensor, imag: torch.Tensor, nu: torch.Tensor, theta: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """h_t = λ h_{t-1} + u_t for λ = exp(-ν + iθ), u = real + i·imag of shape (B, L, S); h_0 = u_0.

    Hillis–Steele doubling: after the step with offset d every h_t sums λ^j u_{t-j} for j < 2d, so
    log2(L) vectorised steps replace L sequential ones.
    """
    length = real.size(1)
    offset = 1
    while offset < length:
        magnitude = torch.exp(-nu * offset)
        a, b = magnitude * torch.cos(theta * offset), magnitude * torch.sin(theta * offset)  # λ^offset
        previous_real = F.pad(real, (0, 0, offset, 0))[:, :length]
        previous_imag = F.pad(imag, (0, 0, offset, 0))[:, :length]
        real, imag = (
            real + a * previous_real - b * previous_imag,
            imag + a * previous_imag + b * previous_real,
        )
        offset *= 2
    return real, imag


class LRULayer(nn.Module):
    def __init__(self, dim: int, *, dropout: float, r_min: float = 0.8, r_max: float = 0.99) -> None:
        super().__init__()
        state = 2 * dim
        # Eigenvalues start on a ring r_min <= |λ| <= r_max with small phases (the LRU paper's init).
        radius_sq = torch.rand(state) * (r_max**2 - r_min**2) + r_min**2
        nu = -0.5 * torch.log(radius_sq)
        theta = torch.rand(state) * math.pi / 10
        self.nu_log = nn.Parameter(torch.log(nu))
        self.theta_log = nn.Parameter(torch.log(theta))
        # γ = sqrt(1 - |λ|²) keeps the state's scale independent of how slowly it decays.
        self.gamma_log = nn.Parameter(0.5 * torch.log(1.0 - radius_sq))
        self.in_proj = nn.Linear(dim, 2 * state)  # real and imaginary parts of B x
        self.out_proj = nn.Linear(2 * state, dim)  # Re(C h) is linear in [Re h, Im h]
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x: (B, L, D); mask: (B, L), False on left padding, which must not feed the state.
        u = self.in_proj(x) * mask.unsqueeze(-1) * torch.exp(self.gamma_log).repeat(2)
        real, imag = u.chunk(2, dim=-1)
        real, imag = linear_recurrence(real, imag, torch.exp(self.nu_log), torch.exp(self.theta_log))
        y = self.out_proj(torch.cat([real, imag], dim=-1))
        return self.norm(x + self.dropout(y))


class FeedForward(nn.Module):
    def __init__(self, dim: int, *, dropout: float) -> None:
        super().__init__()
        self.up = nn.Linear(dim, 4 * dim)
        self.down = nn.Linear(4 * dim, dim)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x + self.dropout(self.down(self.dropout(F.gelu(self.up(x))))))


class LRUBlock(nn.Module):
    def __init__(self, dim: int, *, dropout: float) -> None:
        super().__init__()
        self.recurrence = LRULayer(dim, dropout=dropout)
        self.feed_forward = FeedForward(dim, dropout=dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return self.feed_forward(self.recurrence(x, mask))


class LRURec(SequenceModel):
    """Item embeddings → LRU blocks → scores against the same (tied) embeddings plus a bias."""

    def __init__(self, num_items: int, *, dim: int = 64, blocks: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        self.embedding = nn.Embedding(num_items + 1, dim, padding_idx=0)
        self.embed_norm = nn.LayerNorm(dim)
        self.embed_dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(LRUBlock(dim, dropout=dropout) for _ in range(blocks))
        self.bias = nn.Parameter(torch.zeros(num_items + 1))
        self.init_weights()

    def forward(self, sequences: torch.Tensor) -> torch.Tensor:
        """(B, L) item ids, 0 = left padding → (B, L, D) states; position t has seen items ≤ t."""
        mask = sequences > 0
        x = self.embed_dropout(self.embed_norm(self.embedding(sequences)))
        for block in self.blocks:
            x = block(x, mask)
        return x
