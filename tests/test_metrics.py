import math

import pytest
import torch

from eqpop.metrics import cosine, grad_cosine, layer_cosines, relative_errors


def test_cosine_cases():
    a = torch.tensor([1.0, 0.0])
    assert float(cosine(a, a)) == pytest.approx(1.0)
    assert float(cosine(a, -a)) == pytest.approx(-1.0)
    assert float(cosine(a, torch.tensor([0.0, 2.0]))) == pytest.approx(0.0)
    assert float(cosine(a, torch.zeros(2))) == 0.0


def test_layer_cosines_per_sample_and_relative_errors():
    a = (torch.tensor([[1.0, 0.0], [0.0, 1.0]]),)
    b = (torch.tensor([[1.0, 0.0], [0.0, -1.0]]),)
    assert layer_cosines(a, b, per_sample=True)[0].tolist() == [1.0, -1.0]
    assert float(layer_cosines(a, b)[0]) == pytest.approx(0.0)
    assert relative_errors(a, a) == [0.0]
    assert grad_cosine({"w": a[0]}, {"w": 2 * a[0]}) == pytest.approx(1.0)


def test_a_relative_error_against_a_zero_reference_is_nan():
    """Before: ~1e269 (divided by 1e-300), read as a huge error where there is no scale."""
    a = (torch.ones(2, 3), torch.ones(2, 3))
    errors = relative_errors(a, (torch.zeros(2, 3), 2 * torch.ones(2, 3)))
    assert math.isnan(errors[0]) and errors[1] == pytest.approx(0.5)
