"""What training a SEFL model needs beyond its forward pass: the loss of the paper and the
optimiser's parameter groups (specs/sefl-method.md section 4)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sefl.layers.nonlinearity import _ScaleEqNonlin
from sefl.layers.spectral_conv import _SpectralConv

__all__ = ["multilevel_loss", "param_groups", "spectral_regulariser"]

MONOTONE_WEIGHT = 1e-3
REGULARISER_WEIGHT = 1e-3


def spectral_regulariser(model: nn.Module) -> Tensor:
    """Sum of the regularisers of every localised spectral convolution in ``model``."""
    terms = [m.regulariser() for m in model.modules() if isinstance(m, _SpectralConv)]
    return torch.stack(terms).sum() if terms else torch.zeros(())


def multilevel_loss(
    level_logits: Tensor, target: Tensor, regulariser: Tensor, weight_decay: float
) -> Tensor:
    """Sum over levels of cross-entropy + 1e-3 * sum_j max(0, CE_j - CE_{j-1}) (finer levels
    should not do worse) + 1e-3 * weight_decay * regulariser.

    level_logits: [B, L, classes]; target: [B] long.
    """
    per_level = torch.stack(
        [F.cross_entropy(level_logits[:, j], target) for j in range(level_logits.shape[1])]
    )
    monotone = F.relu(per_level[1:] - per_level[:-1]).sum()
    return (
        per_level.sum()
        + MONOTONE_WEIGHT * monotone
        + REGULARISER_WEIGHT * weight_decay * regulariser
    )


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW groups of the paper: spectral weights undecayed (the regulariser replaces decay),
    each level's norm decayed by (r / max_resolution)^2 * weight_decay, the rest weight_decay."""
    special: dict[int, float] = {}
    groups: dict[float, list] = {}
    for module in model.modules():
        if isinstance(module, _SpectralConv):
            special[id(module.taps)] = 0.0
        if isinstance(module, _ScaleEqNonlin) and module.norm:
            for level, w, b in zip(module.levels, module.norm_weights, module.norm_biases):
                decay = (level / module.max_resolution) ** 2 * weight_decay
                special[id(w)] = special[id(b)] = decay
    for p in model.parameters():
        groups.setdefault(special.get(id(p), weight_decay), []).append(p)
    return [{"params": ps, "weight_decay": wd} for wd, ps in sorted(groups.items())]
