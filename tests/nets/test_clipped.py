"""O'Connor et al.'s net (``ClippedMLP``): its step is their clipped gradient step on the
energy, written out here independently; its output, cost, draws and refusals."""

import math

import pytest
import torch

from eqpop import settle
from eqpop.estimators.init_ep import Anchored, Initializer
from eqpop.nets import ClippedMLP, get_net
from eqpop.nets.base import WeightInit

SIZES = [12, 9, 7, 10]


def _net(symmetric: bool = True, dt: float = 0.5) -> ClippedMLP:
    torch.manual_seed(0)
    angle = None if symmetric else 60.0
    return ClippedMLP(SIZES, symmetric=symmetric, asymmetry_angle=angle, dt=dt).double()


def _batch():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, SIZES[0], generator=g, dtype=torch.float64)
    return x, torch.tensor([2, 7, 0])


def _energy_step(net, s, x, beta, y, eps, guess=None, lam=0.0):
    """O'Connor et al.'s step ``clip(s - eps dE/ds, 0, 1)`` on their energy (tied weights):
    ``sum_l (s_l^2 / 2 + lam/2 (s_l - s_l^f)^2 - b_l rho(s_l)) - sum_l rho(s_{l-1}) W_l
    rho(s_l) + beta ||s_L - y||^2``, with rho the hard sigmoid and s_0 the input."""
    s = tuple(t.detach().clone().requires_grad_() for t in s)
    rho = [x, *(t.clamp(0, 1) for t in s)]
    energy = sum((t**2).sum() / 2 for t in s)
    for k, t in enumerate(s):
        energy = energy - (rho[k + 1] @ net.b[k]).sum()
        energy = energy - (rho[k] @ net.w_f[k].T * rho[k + 1]).sum()
        if guess is not None:
            energy = energy + lam / 2 * ((t - guess[k]) ** 2).sum()
    onehot = torch.nn.functional.one_hot(y, 10).double()
    energy = energy + beta * ((s[-1] - onehot) ** 2).sum()
    grads = torch.autograd.grad(energy, s)
    return tuple((t - eps * g).clamp(0, 1).detach() for t, g in zip(s, grads))


@pytest.mark.parametrize("beta", [0.0, 0.5, -0.5])
@pytest.mark.parametrize("dt", [0.5, 1.0])
def test_the_clipped_state_follows_o_connor_s_energy_step(beta, dt):
    """``activate(step(u))`` is their step from ``activate(u)``, free and nudged, for several
    steps from a random start (so units saturate at both ends and come back), and the fused
    stepper steps as ``step`` does."""
    net, (x, y) = _net(dt=dt), _batch()
    u = tuple(torch.randn(3, n, dtype=torch.float64) for n in SIZES[1:])
    stepper = net.stepper(net.inputs(x), beta, y, u[0])
    for _ in range(6):
        want = _energy_step(net, net.activate(u), x, beta, y, dt)
        new = net.step(u, x, beta, y)
        for a, b in zip(stepper(u), new):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        for a, b in zip(net.activate(new), want):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
        u = new
    ends = torch.cat([t.flatten() for t in net.activate(u)])
    assert (ends == 0).any() and (ends == 1).any() and ((ends > 0) & (ends < 1)).any()


def test_anchored_it_steps_as_o_connor_s_energy_with_the_forward_pull():
    """Eq. (10) with their code's lambda/2 ||s - s^f||^2: the pull is not rescaled."""
    net, (x, y) = _net(), _batch()
    initializer = Initializer(net, WeightInit("xavier_uniform"))
    anchored = Anchored(net, initializer, 0.1)
    guess = initializer(x)
    u = anchored.initial_state(x)
    for _ in range(4):
        want = _energy_step(net, net.activate(u), x, 0.5, y, net.dt, guess, 0.1)
        u = anchored.step(u, x, 0.5, y)
        for a, b in zip(net.activate(u), want):
            torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)


def test_the_output_layer_is_the_prediction_with_a_squared_error_cost():
    net, (x, y) = _net(), _batch()
    assert net.readout_names == () and "w_ro" not in net.state_dict()
    u = settle(net, x, steps=50).state
    out = u[-1].clamp(0, 1)
    torch.testing.assert_close(net.readout(u), out)
    onehot = torch.nn.functional.one_hot(y, 10).double()
    torch.testing.assert_close(net.sample_loss(u, y), ((out - onehot) ** 2).sum(1))
    with pytest.raises(ValueError, match="one unit per class"):
        ClippedMLP([12, 9, 7], n_classes=10)


def test_complex_nudges_are_refused():
    net, (x, y) = _net(), _batch()
    assert not net.holomorphic and _net().analytic_strip == 0
    u = tuple(t.to(torch.complex128) for t in net.initial_state(x))
    with pytest.raises(ValueError, match="not holomorphic"):
        net.stepper(net.inputs(x), 0.1j, y, u[0])
    with pytest.raises(ValueError, match="not holomorphic"):
        net.activate(u)


def test_xavier_uniform_draws_glorot_s_bound():
    """U(-b, b), b = sqrt(6 / (fan_in + fan_out)), for every weight of a net (feedback too)."""
    torch.manual_seed(0)
    net = get_net("clipped", sizes=[400, 300, 50], init="xavier_uniform")
    for name, w in net.state_dict().items():
        if w.ndim < 2:
            continue
        bound = math.sqrt(6 / sum(w.shape))
        assert float(w.abs().max()) <= bound, name
        assert float(w.std()) == pytest.approx(bound / math.sqrt(3), rel=0.05), name


def test_the_initializer_predicts_and_regresses_the_clipped_state():
    """O'Connor et al.'s forward network: leaky hard-sigmoid layers feeding each other as they
    are, regressing the settled clipped state (not the step's unclipped value)."""
    net, (x, _) = _net(), _batch()
    init = Initializer(net, WeightInit("xavier_uniform"))
    assert all(float(layer.bias.abs().max()) == 0 for layer in init.layers)
    with torch.no_grad():
        pred, inp = init(x), x
        for layer, p in zip(init.layers, pred):
            a = layer(inp)
            torch.testing.assert_close(p, a.clamp(0, 1) + 0.01 * a)
            inp = p
    settled = settle(net, x, steps=50).state
    assert any(float(t.abs().max()) > 1 for t in settled)  # unclipped values exist
    want = sum(((p - t.clamp(0, 1)) ** 2).sum() / 2 for p, t in zip(pred, settled)) / len(x)
    torch.testing.assert_close(init.local_loss(x, settled).detach(), want)
