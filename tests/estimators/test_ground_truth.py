"""Every estimator against a float64 dense-Jacobian ground truth on tiny nets."""

import pytest
import torch
from conftest import steps_for, tiny_batch, tiny_net
from dense import dense_exact, implicit_delta, implicit_gradient

from eqpop import estimate, settle
from eqpop.dynamics import Status
from eqpop.metrics import grad_cosine, layer_cosines, relative_errors
from eqpop.nets import ClippedMLP


def _setup(arch, symmetric=False):
    net = tiny_net(arch, symmetric=symmetric)
    x, y = tiny_batch(arch)
    steps = steps_for(net)
    return net, x, y, steps, settle(net, x, steps=steps)


def _total_rel(a, b):
    num = sum(float((p - q).norm() ** 2) for p, q in zip(a, b))
    return (num / sum(float(q.norm() ** 2) for q in b)) ** 0.5


@pytest.mark.parametrize("memory", [0, 5], ids=["plain", "anderson"])
def test_rbp_equals_the_implicit_solve(arch, memory):
    """Plain steps, and Anderson acceleration of both the free phase and the adjoint."""
    net, x, y, steps, free = _setup(arch)
    if memory:
        free = settle(net, x, steps=10 * steps, tol=1e-14, memory=memory)
        assert free.steps < steps and int(free.status) == Status.OK
    solver = {"solver": "anderson", "anderson_memory": memory} if memory else {}
    est = estimate(net, x, y, "rbp", t_free=steps, free=free, rtol=1e-13, **solver)
    assert int(est.stats.status) == Status.OK
    _assert_rbp_is_the_implicit_solve(net, x, y, free, est)


def _assert_rbp_is_the_implicit_solve(net, x, y, free, est) -> None:
    """RBP's delta and gradients against the dense implicit-function solve."""
    for got, want in zip(est.error, implicit_delta(net, x, y, free.state)):
        torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-10)
    truth = implicit_gradient(net, x, y, free.state)
    assert set(est.grads) == set(truth)
    for k in truth:
        torch.testing.assert_close(est.grads[k], truth[k], rtol=1e-6, atol=1e-10)


def test_exact_equals_the_dense_forward_solve(arch):
    net, x, y, steps, free = _setup(arch)
    _exact_against_the_dense_solve(net, x, y, free, steps)


def _exact_against_the_dense_solve(net, x, y, free, steps):
    """exact's d_beta against the dense forward solve; returns the estimate."""
    est = estimate(net, x, y, "exact", t_free=steps, free=free, rtol=1e-13)
    for got, want in zip(est.error, dense_exact(net, x, y, free.state)):
        torch.testing.assert_close(got, want, rtol=1e-7, atol=1e-10)
    return est


@pytest.mark.parametrize("beta", [0.05, 0.5])
def test_hep_bias_falls_with_n(arch, beta):
    net, x, y, steps, free = _setup(arch)
    truth = estimate(net, x, y, "exact", t_free=steps, free=free, rtol=1e-13).error
    errs = [
        _total_rel(
            estimate(net, x, y, "hep", beta=beta, n_points=n, t_nudge=steps, free=free).error,
            truth,
        )
        for n in (2, 4, 6)
    ]
    assert errs[0] > errs[1] > errs[2]
    if beta == 0.5 and arch != "pcn":
        assert errs[2] < 1e-3
    # The PCN's squared-error nudge -beta (u_L - y) moves its fixed point so strongly that
    # u*(beta) stops being analytic at |beta| ~ 0.65 (the bias shrinks only ~0.6x per two
    # extra points at |beta| = 0.5): the Cauchy estimate converges, but slowly, as theory says.


def test_imag_ratio_flags_a_circle_that_reaches_the_activations_poles():
    """Small |beta|: the complex states stay in the analytic strip and N = 4 is exact to
    |beta|^4/5!; a |beta| large enough to push Im u past the poles breaks the estimate."""
    net, x, y, steps, free = _setup("mlp")
    truth = estimate(net, x, y, "exact", t_free=steps, free=free, rtol=1e-13).error
    runs = {
        b: estimate(net, x, y, "hep", beta=b, n_points=4, t_nudge=steps, free=free)
        for b in (0.5, 30.0)
    }
    ratio = {b: float(est.stats.imag_ratio) for b, est in runs.items()}
    assert ratio[0.5] < 1 and _total_rel(runs[0.5].error, truth) < 1e-2
    assert ratio[30.0] > 1 and _total_rel(runs[30.0].error, truth) > 0.1
    real = estimate(net, x, y, "hep", beta=30.0, n_points=2, t_nudge=steps, free=free)
    assert float(real.stats.imag_ratio) == 0.0


def test_zeroing_a_blown_up_nudge_makes_the_estimate_finite_and_changes_nothing_else():
    """At |beta| = 10 the predictive-coding net's nudged states overflow: kept, the estimate
    is non-finite; zeroed (the papers' code's nan_to_num), it is finite; where nothing blows
    up (|beta| = 0.5) zeroing changes nothing. The nudged phase reports NON_FINITE either way.
    (The MLP's complex nudges no longer overflow even at |beta| = 1000: PyTorch's complex
    sigmoid gave NaN far left of the real axis, where the function is ~0.)"""
    net, x, y, steps, free = _setup("pcn")

    def runs(beta: float) -> dict:
        return {
            nf: estimate(
                net,
                x,
                y,
                "hep",
                beta=beta,
                n_points=4,
                t_nudge=steps,
                free=free,
                nudge_nonfinite=nf,
            )
            for nf in ("keep", "zero")
        }

    blown = runs(10.0)
    assert not all(bool(torch.isfinite(e).all()) for e in blown["keep"].error)
    assert all(bool(torch.isfinite(e).all()) for e in blown["zero"].error)
    assert all(int(r.stats.status) == Status.NON_FINITE for r in blown.values())
    calm = runs(0.5)
    for k, z in zip(calm["keep"].error, calm["zero"].error):
        assert torch.isfinite(k).all() and torch.equal(k, z)


def test_classic_is_worse_than_hep_n2_at_large_beta(arch):
    net, x, y, steps, free = _setup(arch)
    truth = estimate(net, x, y, "exact", t_free=steps, free=free, rtol=1e-13).error
    # for the PCN, |beta| = 0.5 is close to where u*(beta) stops being analytic (see above)
    kw = dict(beta=0.2 if arch == "pcn" else 0.5, t_nudge=steps, free=free)
    classic = _total_rel(estimate(net, x, y, "classic", **kw).error, truth)
    hep2 = _total_rel(estimate(net, x, y, "hep", n_points=2, **kw).error, truth)
    assert hep2 < 0.5 * classic


def test_hep_continuous_approaches_exact_as_periods_grow():
    """Read at the end of each hold (the paper's code), the states are the settled points and
    the estimate is the N-point Cauchy sum from the first period on; read at every step, the
    transients bias it and only more periods average them away."""
    net, x, y, steps, free = _setup("mlp")
    truth = estimate(net, x, y, "exact", t_free=steps, free=free, rtol=1e-13)

    def errors(sample: str) -> list[float]:
        return [
            _total_rel(
                estimate(
                    net,
                    x,
                    y,
                    "hep_continuous",
                    beta=0.2,
                    n_points=4,
                    periods=p,
                    steps_per_point=40,
                    sample=sample,
                ).error,
                truth.error,
            )
            for p in (1, 4, 16)
        ]

    every, end = errors("every"), errors("end")
    assert every[0] > every[1] > every[2]
    assert every[2] < 0.1
    assert max(end) < 1e-3 < every[2]


def test_symmetric_nets_hep_matches_rbp(arch):
    if arch == "output-feedback":
        pytest.skip("has no tied form")
    net, x, y, steps, free = _setup(arch, symmetric=True)
    rbp = estimate(net, x, y, "rbp", t_free=steps, free=free, rtol=1e-13)
    for n in (4, 6):
        hep = estimate(net, x, y, "hep", beta=0.1, n_points=n, t_nudge=steps, free=free)
        assert min(float(c) for c in layer_cosines(hep.error, rbp.error)) > 0.9999
        assert grad_cosine(hep.grads, rbp.grads) > 0.9999
    exact = estimate(net, x, y, "exact", t_free=steps, free=free, rtol=1e-13)
    assert max(relative_errors(exact.error, rbp.error)) < 1e-8


def test_grads_are_ready_for_an_optimiser():
    net, x, y, steps, free = _setup("mlp")
    est = estimate(net, x, y, "hep", beta=0.1, n_points=4, t_nudge=steps, free=free)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    for name, p in net.named_parameters():
        assert est.grads[name].shape == p.shape and est.grads[name].dtype == p.dtype
        p.grad = est.grads[name]
    before = net.loss(free.state, y).item()
    opt.step()
    after = net.loss(settle(net, x, steps=steps).state, y).item()
    assert after < before


def test_unknown_method_and_hyperparameter():
    net, x, y, steps, free = _setup("mlp")
    with pytest.raises(ValueError, match="unknown method"):
        estimate(net, x, y, "bptt")
    with pytest.raises(ValueError, match="hyperparameter"):
        estimate(net, x, y, "hep", betta=0.1)
    with pytest.raises(ValueError, match="n_points"):
        estimate(net, x, y, "hep", n_points=1, free=free)


def test_signed_classic_nudges_approach_exact_and_average_to_hep_n2(arch):
    """beta > 0 nudges towards the target, beta < 0 away (the papers' code's convention for
    beta > 0): each one-sided estimate is biased at O(beta) with opposite signs, both approach
    the exact derivative as |beta| shrinks, and their mean is the symmetric N = 2 estimate."""
    net, x, y, steps, free = _setup(arch)
    truth = estimate(net, x, y, "exact", t_free=steps, free=free, rtol=1e-13).error
    kw = dict(t_nudge=steps, free=free)
    for sign in (1, -1):
        errs = [
            _total_rel(estimate(net, x, y, "classic", beta=sign * b, **kw).error, truth)
            for b in (0.2, 0.02, 0.002)
        ]
        assert errs[0] > errs[1] > errs[2]
        assert errs[1] / errs[2] > 5  # first order in beta
    for b in (0.02, 0.2):
        up = estimate(net, x, y, "classic", beta=b, **kw).error
        down = estimate(net, x, y, "classic", beta=-b, **kw).error
        n2 = estimate(net, x, y, "hep", beta=b, n_points=2, **kw).error
        for u, d, h in zip(up, down, n2):
            torch.testing.assert_close((u + d) / 2, h, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("symmetric", [True, False], ids=["tied", "untied"])
def test_the_clipped_net_s_estimators_equal_the_dense_truth(symmetric):
    """O'Connor et al.'s net, with units saturated at both ends of [0, 1]: RBP's delta and
    gradient, exact's d_beta and, as beta -> 0, classic EP all equal the dense float64 truth
    through the clip's mask (the dynamics are piecewise linear in beta: a small beta stays on
    the fixed point's linear piece)."""
    torch.manual_seed(0)
    angle = None if symmetric else 60.0
    net = ClippedMLP([12, 9, 7, 10], symmetric=symmetric, asymmetry_angle=angle).double()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(3, 12, generator=g, dtype=torch.float64)
    y = torch.randint(0, 10, (3,), generator=g)
    free = settle(net, x, steps=600)
    s = torch.cat([t.flatten() for t in net.activate(free.state)])
    assert free.residual < 1e-12 and (s == 0).any() and (s == 1).any() and (s > 0).any()
    rbp = estimate(net, x, y, "rbp", t_free=600, free=free, rtol=1e-13)
    _assert_rbp_is_the_implicit_solve(net, x, y, free, rbp)
    exact = _exact_against_the_dense_solve(net, x, y, free, 600)
    classic = estimate(net, x, y, "classic", beta=1e-5, t_free=600, t_nudge=2000, free=free)
    assert _total_rel(classic.error, exact.error) < 1e-3
    if symmetric:  # tied: the exact d_beta s* is RBP's delta
        assert _total_rel(exact.error, rbp.error) < 1e-9
