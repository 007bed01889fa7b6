import pytest
import torch
from conftest import steps_for, tiny_batch, tiny_net
from dense import drive_jacobian

from eqpop import homeostasis, settle


def _per_sample_dense(net, x, state):
    """Mean over samples of (2 ||A||^2, ||S||^2, ||A||^2) from the dense J_F of each sample."""
    two_a, s_sq, a_sq = [], [], []
    s = net.activate(state)
    for b in range(x.shape[0]):
        j = drive_jacobian(net, x[b : b + 1], tuple(t[b : b + 1] for t in s))
        a = (j - j.T) / 2
        sym = (j + j.T) / 2
        two_a.append(2 * a.pow(2).sum())
        s_sq.append(sym.pow(2).sum())
        a_sq.append(a.pow(2).sum())
    return (torch.stack(v).mean() for v in (two_a, s_sq, a_sq))


def test_loss_averages_to_twice_the_skew_norm_per_unit(arch):
    net = tiny_net(arch)
    x, _ = tiny_batch(arch)
    state = settle(net, x, steps=steps_for(net)).state
    two_a, _, _ = _per_sample_dense(net, x, state)
    expected = two_a / sum(t[0].numel() for t in state)
    g = torch.Generator().manual_seed(0)
    got = homeostasis.loss(net, x, state, n_samples=4000, generator=g)
    assert float(got) == pytest.approx(float(expected), rel=0.05)


def test_symmetry_ratio_matches_dense(arch):
    net = tiny_net(arch)
    x, _ = tiny_batch(arch)
    state = settle(net, x, steps=steps_for(net)).state
    _, s_sq, a_sq = _per_sample_dense(net, x, state)
    expected = float(s_sq.sqrt() / (s_sq.sqrt() + a_sq.sqrt()))
    g = torch.Generator().manual_seed(0)
    got = homeostasis.symmetry_ratio(net, x, state, n_samples=4000, generator=g)
    assert got == pytest.approx(expected, abs=0.01)


def test_symmetric_net_has_ratio_one_and_zero_loss():
    net = tiny_net("mlp", symmetric=True)
    x, _ = tiny_batch("mlp")
    state = settle(net, x, steps=300).state
    assert homeostasis.symmetry_ratio(net, x, state) == pytest.approx(1.0, abs=1e-9)
    assert abs(float(homeostasis.loss(net, x, state))) < 1e-9


def test_loss_gradient_matches_finite_differences():
    """Reverse over forward mode gives the true parameter gradient of the Hutchinson loss."""
    net = tiny_net("mlp")
    x, _ = tiny_batch("mlp")
    state = settle(net, x, steps=300).state

    def value():
        g = torch.Generator().manual_seed(7)
        return homeostasis.loss(net, x, state, n_samples=3, generator=g)

    w = net.w_b[0]
    (grad,) = torch.autograd.grad(value(), w)
    direction = torch.randn_like(w)
    h = 1e-6
    with torch.no_grad():
        w += h * direction
        up = value()
        w -= 2 * h * direction
        down = value()
        w += h * direction
    assert float((grad * direction).sum()) == pytest.approx(float((up - down) / (2 * h)), rel=1e-5)


def test_lower_loss_means_higher_symmetry():
    """Training on the homeostatic loss alone raises the symmetry ratio (Fig. 4c's mechanism)."""
    net = tiny_net("mlp", angle=90.0)
    x, _ = tiny_batch("mlp", batch=8)
    state = settle(net, x, steps=300).state
    before = homeostasis.symmetry_ratio(net, x, state, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    for _ in range(100):
        opt.zero_grad()
        homeostasis.loss(net, x, state).backward()
        opt.step()
    after = homeostasis.symmetry_ratio(net, x, state, generator=torch.Generator().manual_seed(0))
    assert after > before + 0.05
