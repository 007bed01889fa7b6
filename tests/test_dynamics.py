import pytest
import torch
from conftest import steps_for, tiny_batch, tiny_net

from eqpop import settle
from eqpop.dynamics import Status
from eqpop.estimators.base import solve_linear


@pytest.mark.parametrize("beta", [0.0, 0.3, 0.3j, 0.2 - 0.2j])
def test_every_architecture_settles_real_and_complex(arch, beta):
    net = tiny_net(arch)
    x, y = tiny_batch(arch, batch=4)
    out = settle(net, x, y, beta=beta, steps=steps_for(net))
    assert out.state[0].shape[0] == 4
    assert out.state[0].is_complex() == isinstance(beta, complex)
    assert out.residual < 1e-10
    assert out.residuals.shape == (4,)


def test_per_sample_beta_matches_separate_settles():
    net = tiny_net("mlp")
    x, y = tiny_batch("mlp", batch=2)
    betas = torch.tensor([0.5j, -0.5j], dtype=torch.complex128)
    both = settle(net, torch.cat([x[:1], x[:1]]), torch.cat([y[:1], y[:1]]), beta=betas, steps=200)
    one = settle(net, x[:1], y[:1], beta=0.5j, steps=200)
    torch.testing.assert_close(both.state[0][:1], one.state[0])
    # a real net's fixed point at conj(beta) is the conjugate one: what hEP's halving relies on
    torch.testing.assert_close(both.state[0][1:], one.state[0].conj())


def test_tol_stops_early_and_steps_are_validated():
    net = tiny_net("mlp")
    x, _ = tiny_batch("mlp")
    out = settle(net, x, steps=1000, tol=1e-6)
    assert out.steps < 1000 and out.residual < 1e-6
    with pytest.raises(ValueError, match="steps"):
        settle(net, x, steps=0)
    with pytest.raises(ValueError, match="targets"):
        settle(net, x, beta=0.1, steps=5)


def test_a_phase_says_how_it_ended_without_asking_the_host():
    net = tiny_net("mlp")
    x, _ = tiny_batch("mlp")
    reached, cut, fixed = (settle(net, x, steps=s, tol=t) for s, t in [(1000, 1e-6), (3, 1e-6),
                                                                         (3, None)])  # fmt: skip
    assert isinstance(reached.status, torch.Tensor) and reached.status.dim() == 0
    assert [int(s.status) for s in (reached, cut, fixed)] == [
        Status.OK,
        Status.MAX_STEPS,
        Status.OK,
    ]
    broken = settle(net, torch.full_like(x, float("nan")), steps=3)
    assert int(broken.status) == Status.NON_FINITE
    assert broken.phase.steps == 3 and torch.isnan(broken.phase.residual)


def test_a_linear_iteration_that_grows_stops_before_it_grew():
    contracting = torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    source = (torch.tensor([[1.0, 1e-6]], dtype=torch.float64),)
    converged, phase = solve_linear(lambda w: (contracting * w[0],), source, 500, rtol=1e-12)
    assert int(phase.status) == Status.OK and phase.steps < 500
    torch.testing.assert_close(converged[0], 2 * source[0])
    _, capped = solve_linear(lambda w: (contracting * w[0],), source, 20, rtol=0.0)
    assert int(capped.status) == Status.MAX_STEPS and capped.steps == 20
    # one direction contracts (0.9), one expands (-1.1) from a tiny start: the change first
    # shrinks, then grows once the expanding part dominates; the iteration stops there
    mixed = torch.tensor([[0.9, -1.1]], dtype=torch.float64)
    grown, phase = solve_linear(lambda w: (mixed * w[0],), source, 1000, rtol=1e-12)
    assert int(phase.status) == Status.GREW and 40 < phase.steps < 200
    assert abs(float(grown[0][0, 0]) - 10) < 0.1 and abs(float(grown[0][0, 1])) < 1e-3


def test_anderson_reaches_the_plain_fixed_point_in_fewer_steps(arch):
    net = tiny_net(arch)
    x, _ = tiny_batch(arch)
    plain = settle(net, x, steps=2000, tol=1e-12)
    fast = settle(net, x, steps=2000, tol=1e-12, memory=5)
    assert int(fast.status) == Status.OK and fast.residual < 1e-12
    assert fast.steps < plain.steps
    for a, b in zip(fast.state, plain.state):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_anderson_that_does_not_converge_says_so_and_needs_a_tolerance():
    net = tiny_net("pcn")
    x, _ = tiny_batch("pcn")
    short = settle(net, x, steps=6, tol=1e-14, memory=3)
    assert short.steps == 6 and int(short.status) == Status.MAX_STEPS
    with pytest.raises(ValueError, match="needs a tolerance"):
        settle(net, x, steps=6, memory=3)
