"""Where a language model runs: the GPU when there is one (bf16 where it supports it), else the CPU (fp32).

`KGRANK_DEVICE` overrides the choice (`cpu`, `cuda`, `cuda:1`, …), e.g. to keep a shared GPU free.
"""

from __future__ import annotations

import torch

from services.core.errors import ConfigError
from services.core.settings import Settings


def model_device(settings: Settings | None = None) -> torch.device:
    wanted = ((settings or Settings()).device or "").strip()
    if not wanted:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(wanted)
    except RuntimeError as e:
        raise ConfigError(f"KGRANK_DEVICE={wanted!r} is not a torch device ({e})") from e
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"KGRANK_DEVICE={wanted!r} but torch sees no CUDA GPU here")
    return device


def model_dtype(device: torch.device) -> torch.dtype:
    """bf16 on GPUs that compute in it (half the memory, tensor cores); fp32 on CPUs, where bf16 is slower."""
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float32
