"""Jacobian homeostasis (Eq. 12), functional symmetry and weight alignment.

J_F is the Jacobian of the vector field with respect to the activated state:
``J_F = d drive(s)/ds - I`` at the free fixed point (per sample; samples do not interact).
Its skew part A = (J_F - J_F^T)/2 is what biases EP's error vector (Eq. 11); a tied net has
A = 0. All products with J_F are Jacobian-vector products (``eqpop.jacobian``), never a dense
Jacobian.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from eqpop.dynamics import flat
from eqpop.jacobian import jvp_operator
from eqpop.nets.base import EquilibriumNet, Inputs, State, batch_of, tile


def _field_jacobian(
    net: EquilibriumNet, x: Tensor | Inputs, s: State, n_samples: int, differentiable: bool
):
    """``v -> J_F v`` at activated state s (``J_F = d drive/ds - I``): the drive's linear part
    where it is affine (two products per connection and term, none to build a graph), else
    Jacobian-vector products through the drive on the batch tiled ``n_samples`` times."""
    if net.affine_drive:
        drive_jv = net.linear_drive
    else:
        with torch.no_grad():  # J_F does not depend on the input's drive: no gradient through it
            xs = net.inputs(x).repeat(n_samples)
        drive_jv = jvp_operator(lambda *a: net.drive(a, xs), s, create_graph=differentiable)
    return lambda v: tuple(a - b for a, b in zip(drive_jv(v), v))


def _probe(like: State, generator: torch.Generator | None, rademacher: bool) -> State:
    """Noise vectors shaped like ``like`` (Gaussian, or Rademacher signs)."""
    out = []
    for t in like:
        eps = torch.randn(t.shape, generator=generator, dtype=t.dtype, device=t.device)
        out.append(eps.sign() if rademacher else eps)
    return tuple(out)


def _quadratic_forms(
    net: EquilibriumNet,
    x: Tensor | Inputs,
    state: State,
    n_samples: int,
    generator: torch.Generator | None,
    rademacher: bool,
) -> tuple[Tensor, Tensor]:
    """Per-sample Hutchinson estimates of ``tr(J^T J)`` and ``tr(J^2)``, each shape (B,)."""
    s = tuple(tile(t.detach(), n_samples) for t in net.activate(state))
    eps = _probe(s, generator, rademacher)
    jac = _field_jacobian(net, x, s, n_samples, differentiable=torch.is_grad_enabled())
    j_eps = jac(eps)
    jj_eps = jac(j_eps)
    norm = flat(j_eps).pow(2).sum(1)
    square = (flat(eps) * flat(jj_eps)).sum(1)
    batch = batch_of(x).shape[0]
    return norm.reshape(n_samples, batch).mean(0), square.reshape(n_samples, batch).mean(0)


def loss(
    net: EquilibriumNet,
    x: Tensor | Inputs,
    state: State,
    n_samples: int = 5,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Eq. (12): ``E_eps[||J eps||^2 - eps^T J^2 eps] / n_units``, averaged over the batch.

    Its expectation is ``2 ||A||_F^2 / n_units`` per sample: normalised by the number of units,
    as the reference implementation does, so that one ``lambda_homeo`` means the same on a
    100-unit MLP and a 30 000-unit conv net (the paper's 0.1-15). Gaussian noise, ``n_samples``
    per sample; differentiable in the parameters, with the fixed point held constant, so a
    trainer adds ``lambda_homeo * loss`` to its objective.
    """
    norm, square = _quadratic_forms(net, x, state, n_samples, generator, rademacher=False)
    units = sum(t[0].numel() for t in state)
    return (norm - square).mean() / units


def symmetry_ratio(
    net: EquilibriumNet,
    x: Tensor | Inputs,
    state: State,
    n_samples: int = 64,
    generator: torch.Generator | None = None,
) -> float:
    """``||S|| / (||S|| + ||A||)`` of J_F (Frobenius norms, batch-averaged squares): 1 for a
    symmetric Jacobian, 1/2 when the skew part is as large as the symmetric one.

    ``||S||^2 = (tr J^T J + tr J^2)/2`` and ``||A||^2 = (tr J^T J - tr J^2)/2`` are Hutchinson
    estimates with Rademacher noise (lower variance than Gaussian); exact in expectation.
    """
    with torch.no_grad():
        norm, square = _quadratic_forms(net, x, state, n_samples, generator, rademacher=True)
    sym = math.sqrt(max(float((norm + square).mean()) / 2, 0.0))
    skew = math.sqrt(max(float((norm - square).mean()) / 2, 0.0))
    return sym / (sym + skew) if sym + skew > 0 else 1.0


def weight_angle(net: EquilibriumNet) -> dict[str, float]:
    """Per-layer angle in degrees between each backward weight and its mirrored forward weight
    (Fig. 3a-b, 4k): 0 for tied weights, about 90 for independent random ones."""
    angles = {}
    for name, forward, backward in net.feedback_pairs():
        a, b = forward.detach().flatten(), backward.detach().flatten()
        cos = float((a @ b) / (a.norm() * b.norm()).clamp_min(1e-30))
        angles[name] = math.degrees(math.acos(max(-1.0, min(1.0, cos))))
    return angles
