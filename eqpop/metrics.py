"""Comparing error vectors and gradients (Fig. 2c-d, 3e-f, 4d)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from eqpop.nets.base import State


def cosine(a: Tensor, b: Tensor, dim: int | None = None) -> Tensor:
    """Cosine similarity over all elements, or along ``dim``; 0 where a vector is zero."""
    a, b = a.double(), b.double()
    if dim is None:
        a, b = a.flatten(), b.flatten()
        dim = 0
    num = (a * b).sum(dim)
    den = a.norm(dim=dim) * b.norm(dim=dim)
    return torch.where(den > 0, num / den.clamp_min(1e-300), torch.zeros_like(num))


def layer_cosines(a: State, b: State, per_sample: bool = False) -> list[Tensor]:
    """Layer-wise cosine between two error vectors: one number per layer over the whole batch,
    or (``per_sample``) one per sample, the distributions of Fig. 2c-d."""
    if per_sample:
        return [cosine(x.flatten(1), y.flatten(1), dim=1) for x, y in zip(a, b)]
    return [cosine(x, y) for x, y in zip(a, b)]


def relative_errors(a: State, reference: State) -> list[float]:
    """Layer-wise ``||a - ref|| / ||ref||``; NaN for a layer whose reference is zero (the
    derivative through T nudged steps of a layer the nudge has not reached within T)."""
    out = []
    for x, r in zip(a, reference):
        r = r.double()
        scale = float(r.norm())
        out.append(float((x.double() - r).norm()) / scale if scale > 0 else math.nan)
    return out


def grad_cosine(a: dict[str, Tensor], b: dict[str, Tensor]) -> float:
    """Cosine between two gradients, all parameters flattened into one vector."""
    keys = sorted(set(a) & set(b))
    return float(
        cosine(torch.cat([a[k].flatten() for k in keys]), torch.cat([b[k].flatten() for k in keys]))
    )
