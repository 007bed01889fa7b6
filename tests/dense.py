"""Dense-Jacobian ground truth: only ever used by tests, on tiny nets in float64."""

from __future__ import annotations

import torch
from torch.autograd.functional import jacobian


def flatten(state) -> torch.Tensor:
    return torch.cat([t.reshape(-1) for t in state])


def unflatten(flat: torch.Tensor, like) -> tuple:
    out, i = [], 0
    for t in like:
        out.append(flat[i : i + t.numel()].reshape(t.shape))
        i += t.numel()
    return tuple(out)


def step_jacobian(net, x, u):
    """d step / du over the whole batch (block diagonal), as one dense matrix."""
    return jacobian(lambda v: flatten(net.step(unflatten(v, u), x)), flatten(u))


def drive_jacobian(net, x, s):
    """J_F = d drive / ds - I, dense."""
    jac = jacobian(lambda v: flatten(net.drive(unflatten(v, s), x)), flatten(s))
    return jac - torch.eye(jac.shape[0], dtype=jac.dtype)


def implicit_delta(net, x, y, u):
    """delta = (I - J_f^T)^{-1} dt dloss/du (sum over the batch): RBP's answer, by a solve."""
    flat = flatten(u).requires_grad_()
    loss = net.sample_loss(unflatten(flat, u), y).sum()
    (dl,) = torch.autograd.grad(loss, flat)
    j = step_jacobian(net, x, u)
    eye = torch.eye(j.shape[0], dtype=j.dtype)
    return unflatten(torch.linalg.solve(eye - j.T, net.dt * dl), u)


def implicit_gradient(net, x, y, u):
    """dL/dtheta by the implicit function theorem through the fixed point, L the batch mean."""
    flat_u = flatten(u).requires_grad_()
    loss = net.loss(unflatten(flat_u, u), y)
    (dl,) = torch.autograd.grad(loss, flat_u)
    j = step_jacobian(net, x, u)
    eye = torch.eye(j.shape[0], dtype=j.dtype)
    adj = torch.linalg.solve(eye - j.T, dl)
    grads = {}
    for name, p in net.named_parameters():
        jp = jacobian(lambda q, name=name: _step_with(net, name, q, x, u), p.detach())
        grads[name] = (adj @ jp.reshape(adj.numel(), -1)).reshape(p.shape)
        if name in net.readout_names:
            grads[name] = grads[name] + torch.autograd.grad(net.loss(u, y), p)[0]
    return grads


def _step_with(net, name, value, x, u):
    return flatten(torch.func.functional_call(net, {name: value}, (u, x), strict=False))


def dense_exact(net, x, y, u):
    """-d_beta activate(u*) with d_beta u* = (I - J_f)^{-1} df/dbeta, all dense."""
    fb = jacobian(lambda b: flatten(net.step(u, x, b, y)), torch.zeros((), dtype=x.dtype))
    j = step_jacobian(net, x, u)
    eye = torch.eye(j.shape[0], dtype=j.dtype)
    v = torch.linalg.solve(eye - j, fb)
    d_act = jacobian(lambda w: flatten(net.activate(unflatten(w, u))), flatten(u))
    return unflatten(-(d_act @ v), u)
