"""Which resolutions a scale-equivariant nonlinearity visits, and which of its norms each uses.

The resolution set of a layer is ``S = {max, max - step, max - 2 step, ...} (>= base) plus base``:
anchored at the top, so that the sizes the model is evaluated at (the top resolution and every
``step`` below it) are all exact. Every output
frequency comes from the coarsest resolution in S that can represent it, so of several members
with the same output band only the smallest matters: those are the layer's *levels*, each with
its own per-resolution norm. For an input of size n the layer visits the levels below n, and n
itself when n adds frequencies (using the norm of the next level up).

``pooled=True`` is the max-pool variant: a level r yields a ceil(r / 2) grid, so bands are
compared at the pooled size.
"""

from __future__ import annotations

from dataclasses import dataclass

from sefl.spectral import band

__all__ = ["LevelPlan", "level_sizes", "output_size", "plan_levels", "resolution_set"]


def resolution_set(base: int, max_resolution: int, step: int) -> list[int]:
    """S = max_resolution, max_resolution - step, ... down to base, with base always included
    (ascending)."""
    if base < 1:
        raise ValueError(f"base resolution must be >= 1, got {base}")
    if step < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    if max_resolution < base:
        raise ValueError(f"max_resolution ({max_resolution}) must be >= base ({base})")
    sizes = list(range(max_resolution, base - 1, -step))[::-1]
    if sizes[0] != base:
        sizes.insert(0, base)
    return sizes


def output_size(n: int, pooled: bool) -> int:
    """Output grid of an n-point input: n, or ceil(n / 2) for the pooling variant."""
    return (n + 1) // 2 if pooled else n


def _out_band(r: int, pooled: bool) -> int:
    return band(output_size(r, pooled))


def level_sizes(resolutions: list[int], pooled: bool) -> list[int]:
    """The members of S that add output frequencies over the smaller ones (the layer's levels)."""
    levels: list[int] = []
    for r in resolutions:
        if not levels or _out_band(r, pooled) > _out_band(levels[-1], pooled):
            levels.append(r)
    return levels


@dataclass(frozen=True)
class LevelPlan:
    """The levels visited for one input size n.

    sizes: the grid size of each visited level, ascending; norm_index: which level's norm each
    uses; inner: the size whose band each level's ring starts above (0 for the first level).
    """

    n: int
    sizes: tuple[int, ...]
    norm_index: tuple[int, ...]
    inner: tuple[int, ...]


def norm_index_for(r: int, resolutions: list[int], levels: list[int], pooled: bool) -> int:
    """Index of the norm that resolution r uses: that of the level with the output band of the
    smallest member of S that is >= r."""
    upper = next(s for s in resolutions if s >= r)
    target = _out_band(upper, pooled)
    return next(i for i, s in enumerate(levels) if _out_band(s, pooled) == target)


def plan_levels(n: int, resolutions: list[int], pooled: bool = False) -> LevelPlan:
    """The levels an n-point input visits (ValueError when n is outside [base, max])."""
    base, top = resolutions[0], resolutions[-1]
    if not base <= n <= top:
        raise ValueError(f"input size {n} is outside this layer's resolutions [{base}, {top}]")
    levels = level_sizes(resolutions, pooled)
    sizes = [r for r in levels if r < n]
    if not sizes or _out_band(n, pooled) > _out_band(sizes[-1], pooled):
        sizes.append(n)
    norm_index = tuple(norm_index_for(r, resolutions, levels, pooled) for r in sizes)
    inner = (0,) + tuple(output_size(r, pooled) for r in sizes[:-1])
    return LevelPlan(n=n, sizes=tuple(sizes), norm_index=norm_index, inner=inner)
