"""Checks every baseline's tests share (imported by the test modules of this folder)."""

import torch
import torch.nn.functional as F


def assert_every_parameter_learns(model: torch.nn.Module, x: torch.Tensor, classes: int = 10):
    """One training forward/backward: finite logits [B, classes], and every parameter gets a
    finite, non-zero gradient."""
    model.train()
    logits = model(x)
    assert logits.shape == (x.shape[0], classes)
    assert torch.isfinite(logits).all()
    F.cross_entropy(logits, torch.arange(x.shape[0]) % classes).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def adam_losses(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int = 8):
    """Cross-entropy after each of ``steps`` Adam steps (lr 1e-2) on one fixed batch."""
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
