import torch
from conftest import steps_for, tiny_batch, tiny_net

from eqpop import settle
from eqpop.jacobian import jvp_operator


def jvp(fn, primals, tangents, create_graph=False):
    """One product ``J_fn(primals) tangents``."""
    return jvp_operator(fn, primals, create_graph)(tangents)


def test_double_vjp_matches_forward_mode(arch):
    net = tiny_net(arch)
    x, _ = tiny_batch(arch)
    u = settle(net, x, steps=steps_for(net)).state
    v = tuple(torch.randn_like(t) for t in u)
    _, expected = torch.func.jvp(lambda *a: net.step(a, x), u, v)
    for got, want in zip(jvp(lambda *a: net.step(a, x), u, v), expected):
        torch.testing.assert_close(got, want)


def test_products_stay_differentiable_in_the_parameters():
    net = tiny_net("mlp")
    x, _ = tiny_batch("mlp")
    u = settle(net, x, steps=100).state
    v = tuple(torch.ones_like(t) for t in u)
    out = jvp(lambda *a: net.step(a, x), u, v, create_graph=True)
    (grad,) = torch.autograd.grad(sum(o.pow(2).sum() for o in out), [net.w_f[1]])
    assert grad.abs().sum() > 0
