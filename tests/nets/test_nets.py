import math

import pytest
import torch
from conftest import steps_for, tiny_batch, tiny_net
from dense import drive_jacobian, flatten, unflatten

from eqpop import get_net, settle
from eqpop.homeostasis import weight_angle
from eqpop.nets import ConvNet
from eqpop.nets.activations import sigmoid
from eqpop.nets.conv import softmax_pool, softmax_pool_vjp


def test_step_is_holomorphic_in_the_state(arch):
    """Cauchy-Riemann: a complex direction's derivative equals i times the real one's."""
    net = tiny_net(arch)
    x, y = tiny_batch(arch)
    u = settle(net, x, steps=steps_for(net)).state
    uc = tuple(t.to(torch.complex128) for t in u)
    v = tuple(torch.randn_like(t) for t in u)
    vc = tuple(t.to(torch.complex128) for t in v)
    _, d_real = torch.func.jvp(lambda *a: net.step(a, x, 0.1j, y), uc, vc)
    _, d_imag = torch.func.jvp(lambda *a: net.step(a, x, 0.1j, y), uc, tuple(1j * t for t in vc))
    for a, b in zip(d_real, d_imag):
        torch.testing.assert_close(1j * a, b)


@pytest.mark.parametrize("dt", [1.0, 0.5])
@pytest.mark.parametrize("beta", ["zero", "scalar", "per-sample", "complex"])
def test_a_stepper_steps_as_step_does(arch, beta, dt):
    """``settle``'s fused step (hoisted weights and targets, ``addmm``, ``lerp``) is ``step``,
    for a free, a nudged (one beta, one per sample) and a complex-nudged phase."""
    net = tiny_net(arch)
    net.dt = dt
    x, y = tiny_batch(arch)
    betas = {
        "zero": 0.0,
        "scalar": 0.3,
        "per-sample": torch.tensor([0.3, -0.2, 0.5], dtype=torch.float64),
        "complex": torch.tensor([0.3j, -0.2, 0.1 + 0.4j], dtype=torch.complex128),
    }
    b = betas[beta]
    u = settle(net, x, steps=3).state
    if beta == "complex":
        u = tuple(t.to(torch.complex128) for t in u)
    inputs = net.inputs(x)
    with torch.no_grad():
        fused = net.stepper(inputs, b, y, u[0])
        for _ in range(2):  # twice: nothing the first step did may change the second
            expected, got = net.step(u, inputs, b, y), fused(u)
            for e, g in zip(expected, got):
                torch.testing.assert_close(g, e, rtol=1e-12, atol=1e-12)
            u = expected
    assert inputs.first.equal(net.inputs(x).first)  # the batch's drive left as it was


@pytest.mark.parametrize("arch", ["mlp", "output-feedback"])
def test_an_affine_drive_s_linear_part_is_its_jacobian_product(arch):
    """What homeostasis multiplies with instead of Jacobian-vector products (the MLPs)."""
    net = tiny_net(arch)
    assert net.affine_drive
    x, _ = tiny_batch(arch)
    s = net.activate(settle(net, x, steps=steps_for(net)).state)
    v = tuple(torch.randn_like(t) for t in s)
    _, expected = torch.func.jvp(lambda *a: net.drive(a, x), s, v)
    for e, got in zip(expected, net.linear_drive(v)):
        torch.testing.assert_close(got, e)


@pytest.mark.parametrize("dtype, left", [(torch.complex64, -100.0), (torch.complex128, -800.0)])
def test_the_complex_sigmoid_is_the_function_also_where_pytorchs_overflows(dtype, left):
    """Computed from real parts (3x faster on the CPU): equal to PyTorch's where that is finite,
    and ~0 far left of the real axis, where PyTorch's is NaN (JAX's gives 0 too)."""
    g = torch.Generator().manual_seed(0)
    z = torch.complex(8 * torch.randn(4000, generator=g), 3 * torch.randn(4000, generator=g))
    z = z.to(dtype)
    ours, theirs = sigmoid(z), torch.sigmoid(z)
    ok = torch.isfinite(theirs)
    assert ok.float().mean() > 0.99
    torch.testing.assert_close(ours[ok], theirs[ok])
    far = torch.tensor([left + 0.3j, left + 0j, -3000 - 2j], dtype=dtype)
    assert torch.isfinite(sigmoid(far)).all() and sigmoid(far).abs().max() < 1e-30
    assert not torch.isfinite(torch.sigmoid(far[:1])).all()  # what it replaced


def test_tied_nets_have_a_symmetric_jacobian(arch):
    if arch == "output-feedback":
        pytest.skip("no adjacent feedback to tie")
    net = tiny_net(arch, symmetric=True)
    x, _ = tiny_batch(arch, batch=1)
    s = net.activate(settle(net, x, steps=steps_for(net)).state)
    j = drive_jacobian(net, x, s)
    torch.testing.assert_close(j, j.T)
    assert not net.feedback_pairs()


def test_untied_jacobian_is_not_symmetric(arch):
    net = tiny_net(arch, angle=None)
    x, _ = tiny_batch(arch, batch=1)
    j = drive_jacobian(net, x, net.activate(settle(net, x, steps=steps_for(net)).state))
    assert (j - j.T).norm() > 0.1 * j.norm() * 0.1


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0])
def test_asymmetry_angle_sets_the_initial_weight_angle(angle):
    torch.manual_seed(0)
    net = get_net("mlp", sizes=[200, 300, 200, 10], asymmetry_angle=angle)
    for measured in weight_angle(net).values():
        # independent random weights are close to orthogonal in high dimension
        assert measured == pytest.approx(angle, abs=3.0)


@pytest.mark.parametrize("angle", [45.0, 90.0])
def test_feedback_scale_matched_keeps_the_forward_norm_and_own_the_draws(angle):
    """The papers' Fig. 4 start (own): sin(a) own + cos(a) w_f^T with the own draw as drawn
    (fan-in of the backward layer: 10 for the output's feedback, so its norm is
    sqrt(256 / 10) times the forward weight's at 90 degrees); matched rescales the draw."""
    sizes, a = [784, 256, 256, 10], math.radians(angle)
    nets = {}
    for scale in ("matched", "own"):
        torch.manual_seed(0)
        nets[scale] = get_net(
            "mlp", sizes=sizes, init="lecun_normal", asymmetry_angle=angle, feedback_scale=scale
        )
    for k, (w_f, w_own, w_matched) in enumerate(
        zip(nets["own"].w_f[1:], nets["own"].w_b, nets["matched"].w_b)
    ):
        target = w_f.detach().T
        torch.testing.assert_close(w_f, nets["matched"].w_f[k + 1])  # the same forward draw
        raw = (w_own.detach() - math.cos(a) * target) / math.sin(a)
        n_in = target.shape[0]  # w_b maps layer k+1 to layer k (n_in units)
        assert raw.norm() == pytest.approx(math.sqrt(n_in), rel=0.05)  # numel / fan-in
        expected = math.sin(a) * raw * (target.norm() / raw.norm()) + math.cos(a) * target
        torch.testing.assert_close(w_matched.detach(), expected)
    top = (nets["own"].w_b[-1], nets["matched"].w_b[-1])
    if angle == 90.0:
        ratio = top[0].norm() / top[1].norm()
        assert ratio.item() == pytest.approx(math.sqrt(256 / 10), rel=0.1)


def test_softmax_pool_and_its_explicit_vjp():
    z = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    out = softmax_pool(z)
    assert out.shape == (2, 3, 2, 2)
    c = torch.randn_like(out)
    (expected,) = torch.autograd.grad(out, z, c)
    torch.testing.assert_close(softmax_pool_vjp(z.detach(), c), expected)


def test_paper_conv_shapes_and_bad_sizes():
    net = ConvNet()
    x = torch.zeros(2, 3, 32, 32)
    assert [tuple(t.shape[1:]) for t in net.initial_state(x)] == [
        (128, 16, 16),
        (256, 8, 8),
        (512, 4, 4),
        (512, 1, 1),
    ]
    with pytest.raises(ValueError, match="input_size"):
        ConvNet(input_size=30)
    with pytest.raises(ValueError, match="unknown net"):
        get_net("resnet")


def test_readout_names_and_state_roundtrip(arch):
    net = tiny_net(arch)
    x, _ = tiny_batch(arch)
    u = net.initial_state(x)
    assert all(torch.equal(a, b) for a, b in zip(unflatten(flatten(u), u), u))
    names = dict(net.named_parameters())
    assert all(k in names for k in net.readout_names)


@pytest.mark.parametrize("arch", ["mlp", "output-feedback", "conv", "pcn"])
def test_lecun_normal_init_draws_as_flax_does(arch):
    """Every weight matrix or kernel, readout included: std 1/sqrt(fan_in), nothing past two of
    the untruncated normal's standard deviations, sqrt(3) times the uniform draw's std (the
    conv net's uniform kernels already have the gain sqrt(3) that matches them)."""
    kw = {"channels": (64, 64)} if arch == "conv" else {"sizes": [400, 300, 300, 50]}
    with torch.random.fork_rng():
        torch.manual_seed(0)
        nets = {init: get_net(arch, init=init, **kw) for init in ("uniform", "lecun_normal")}
    uniform = dict(nets["uniform"].named_parameters())
    for name, w in nets["lecun_normal"].named_parameters():
        if w.ndim < 2:
            continue
        std = 1 / math.sqrt(w[0].numel())  # fan-in: one output unit's inputs
        assert float(w.std()) == pytest.approx(std, rel=0.05), name
        assert float(w.abs().max()) <= 2 * std / 0.87962566103423978 + 1e-7, name
        ratio = 1.0 if arch == "conv" and name != "w_ro" else math.sqrt(3.0)
        assert float(w.std()) == pytest.approx(ratio * float(uniform[name].std()), rel=0.05)


def test_unknown_init_is_refused():
    with pytest.raises(ValueError, match="init: unknown 'xavier'"):
        get_net("mlp", sizes=[4, 3, 2], init="xavier")
