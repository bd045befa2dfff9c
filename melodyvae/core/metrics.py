"""Metrics of how well latent dims carry attributes (domain-free)."""

from __future__ import annotations

import warnings

import numpy as np
from scipy.stats import ConstantInputWarning, spearmanr


def spearman_per_attribute(
    latents: np.ndarray, attributes: np.ndarray, reg_dims: list[int]
) -> list[float]:
    """Spearman correlation of attribute ``l`` with latent dim ``reg_dims[l]``.

    ``latents`` is (N, Z), ``attributes`` (N, L). A constant attribute or latent
    gives 0 (no evidence of a relation) instead of NaN.
    """
    values = []
    for i, dim in enumerate(reg_dims):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConstantInputWarning)
            rho = spearmanr(latents[:, dim], attributes[:, i]).statistic
        values.append(0.0 if np.isnan(rho) else float(rho))
    return values
