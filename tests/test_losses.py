"""The AR loss and KL term on small batches checked by hand."""

import math

import pytest
import torch

from melodyvae.core.losses import attribute_regularisation, kl_divergence, total_ar_loss


def test_ar_loss_two_measures_by_hand():
    latent = torch.tensor([0.0, 0.1])
    attribute = torch.tensor([1.0, 2.0])
    # Off-diagonal pairs each give |tanh(±1) - (±1)| = 1 - tanh(1); diagonal 0.
    expected = 2 * (1 - math.tanh(1.0)) / 4
    assert float(attribute_regularisation(latent, attribute, 10.0)) == pytest.approx(
        expected
    )


def test_ar_loss_ties_and_wrong_order():
    latent = torch.tensor([1.0, 0.0, 0.0])
    attribute = torch.tensor([0.0, 5.0, 5.0])
    # Pairs (0,1),(0,2): tanh(10)-(-1); (1,0),(2,0): tanh(-10)-1; (1,2),(2,1): 0.
    expected = 4 * (1 + math.tanh(10.0)) / 9
    value = float(attribute_regularisation(latent, attribute, 10.0))
    assert value == pytest.approx(expected)


def test_ar_loss_is_small_when_latent_is_ordered_like_attribute():
    attribute = torch.arange(8.0)
    ordered = attribute_regularisation(attribute, attribute, 10.0)
    reversed_ = attribute_regularisation(-attribute, attribute, 10.0)
    assert float(ordered) < 1e-3
    assert float(reversed_) == pytest.approx(2 * 56 / 64, rel=1e-3)


def test_total_ar_loss_uses_the_named_dims():
    z = torch.tensor([[0.0, 9.0, 0.0], [0.1, 9.0, -0.1]])
    attributes = torch.tensor([[1.0, 1.0], [2.0, 2.0]])
    total, terms = total_ar_loss(z, attributes, [0, 2], 10.0)
    assert float(terms[0]) == pytest.approx(2 * (1 - math.tanh(1.0)) / 4)
    assert float(terms[1]) == pytest.approx(2 * (1 + math.tanh(1.0)) / 4)
    assert float(total) == pytest.approx(float(terms[0] + terms[1]))


def test_kl_is_zero_at_the_prior_and_known_elsewhere():
    zeros = torch.zeros(4, 3)
    assert float(kl_divergence(zeros, zeros)) == 0.0
    mu = torch.ones(2, 3)
    # 0.5 * mu² per dim, summed over 3 dims.
    assert float(kl_divergence(mu, torch.zeros(2, 3))) == pytest.approx(1.5)
