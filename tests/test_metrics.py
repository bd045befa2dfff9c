"""Disentanglement metrics on small cases with known answers."""

import numpy as np
import pytest

from melodyvae.core.metrics import (
    Score,
    disentanglement,
    interpretability,
    mig,
    modularity,
    sap,
    scc,
    spearman_per_attribute,
)


@pytest.fixture(scope="module")
def factors():
    """Two independent attributes of 2,000 items and three noise dims."""
    rng = np.random.default_rng(0)
    attributes = rng.uniform(0, 10, size=(2000, 2))
    noise = rng.normal(size=(2000, 3))
    return attributes, noise


def test_latents_equal_to_the_attributes_score_perfectly(factors):
    attributes, noise = factors
    latents = np.column_stack([attributes[:, 1], noise[:, 0], attributes[:, 0]])
    score, dims = interpretability(latents, attributes)
    assert dims == (2, 0)
    assert score.per_attribute == pytest.approx((1.0, 1.0))
    assert scc(latents, attributes).mean == pytest.approx(1.0)
    # The best fit is perfect and the runner-up (noise or the other factor) is ~0.
    assert sap(latents, attributes).mean == pytest.approx(1.0, abs=0.01)
    assert mig(latents, attributes).mean > 0.9
    # Modularity is judged per latent dim; the two that carry one factor each are
    # (almost) perfectly modular. A noise dim shares a little spurious information
    # with every factor, which the definition counts against it.
    per_dim = modularity(latents[:, [0, 2]], attributes)
    assert per_dim.mean > 0.95


def test_independent_latents_score_about_zero(factors):
    attributes, noise = factors
    score, _ = interpretability(noise, attributes)
    assert score.mean < 0.01
    assert scc(noise, attributes).mean < 0.1
    assert sap(noise, attributes).mean < 0.01
    assert mig(noise, attributes).mean < 0.05


def test_sap_of_a_hand_computed_case():
    # y = 0 1 2 3: the dim equal to y has R² 1, the dim 0 1 0 1 has
    # r = cov / sqrt(var var) = 1 / sqrt(1 * 5), so R² = 0.2 and SAP = 0.8.
    y = np.array([[0.0], [1.0], [2.0], [3.0]])
    latents = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.0], [3.0, 1.0]])
    assert sap(latents, y).per_attribute == pytest.approx((0.8,))


def test_scc_sees_monotone_relations_that_interpretability_does_not(factors):
    attributes, _ = factors
    latents = np.column_stack([np.exp(attributes[:, 0]), attributes[:, 1]])
    assert scc(latents, attributes).per_attribute == pytest.approx((1.0, 1.0))
    score, _ = interpretability(latents, attributes)
    assert score.per_attribute[0] < 0.7  # a straight line fits exp() badly
    assert score.per_attribute[1] == pytest.approx(1.0)


def test_a_dim_mixing_two_attributes_lowers_modularity(factors):
    attributes, _ = factors
    separate = attributes.copy()
    mixed = np.column_stack([attributes.sum(axis=1), attributes[:, 1]])
    assert modularity(mixed, attributes).mean < modularity(separate, attributes).mean
    assert modularity(mixed, attributes).mean < 0.8


def test_a_constant_latent_or_attribute_scores_zero_not_nan(factors):
    attributes, noise = factors
    latents = np.column_stack([np.zeros(len(noise)), attributes[:, 0]])
    constant_attribute = np.column_stack([attributes[:, 0], np.ones(len(noise))])
    result = disentanglement(latents, constant_attribute, ["a", "b"])
    for key in ("interpretability", "mig", "sap", "scc"):
        assert result[key]["per_attribute"]["b"] == 0.0, key
        assert not np.isnan(result[key]["mean"]), key
    assert spearman_per_attribute(latents, attributes, [0, 1])[0] == 0.0


def test_disentanglement_is_json_ready_and_deterministic(factors):
    attributes, noise = factors
    latents = np.column_stack([attributes[:, 0] + noise[:, 0], noise[:, 1:]])
    first = disentanglement(latents, attributes, ["x", "y"])
    assert first == disentanglement(latents, attributes, ["x", "y"])
    assert set(first) == {
        "interpretability",
        "interpretability_dims",
        "mig",
        "sap",
        "modularity",
        "scc",
    }
    assert set(first["mig"]) == {"mean", "per_attribute"}
    assert list(first["mig"]["per_attribute"]) == ["x", "y"]


def test_mismatched_shapes_are_refused():
    with pytest.raises(ValueError, match="3 latent codes but 2"):
        scc(np.zeros((3, 2)), np.zeros((2, 2)))
    assert Score.of([1.0, 0.0]).mean == 0.5
