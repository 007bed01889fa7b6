import pytest
import torch
from conftest import steps_for, tiny_batch, tiny_net

from eqpop import settle


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
