"""Independent, reproducible random streams derived from a seed and a purpose.

Every random choice a task makes (its split, its resolutions, a batch order, one batch's
augmentation) draws from its own stream, so changing one (say the batch size) never changes the
others.
"""

from __future__ import annotations

import hashlib
import json

import torch

__all__ = ["seeded_generator"]


def seeded_generator(seed: int, *purpose: str | int) -> torch.Generator:
    """A CPU generator seeded by ``seed`` and a purpose, e.g. ``(seed, "split")``."""
    text = json.dumps([seed, *purpose])
    digest = hashlib.sha256(text.encode()).digest()
    generator = torch.Generator()
    # 63 bits: manual_seed takes a non-negative int64.
    generator.manual_seed(int.from_bytes(digest[:8], "little") >> 1)
    return generator
