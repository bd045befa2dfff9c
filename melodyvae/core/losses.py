"""Loss terms of the attribute-regularised VAE, independent of the data domain."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class ARConfig:
    """Weights of the AR-VAE loss ``recon + beta * KL + gamma * sum_l AR_l``.

    ``delta`` sets how spread out the posterior is along each regularised axis.
    ``gamma = 0`` gives the plain beta-VAE baseline.
    """

    beta: float = 0.001
    gamma: float = 1.0
    delta: float = 10.0


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) summed over latent dims, averaged over the batch."""
    per_dim = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)  # (B, Z)
    return per_dim.sum(dim=1).mean()


def attribute_regularisation(
    latent: torch.Tensor, attribute: torch.Tensor, delta: float
) -> torch.Tensor:
    """AR loss tying one latent coordinate to one attribute.

    ``latent`` and ``attribute`` are (B,) tensors. Over all B² ordered pairs, the
    mean absolute difference between ``tanh(delta * (z_i - z_j))`` and
    ``sign(a_i - a_j)``. Only the sign of attribute differences matters, so the
    attribute may be in any unit. A batch of one gives 0.
    """
    latent_diff = latent[:, None] - latent[None, :]  # (B, B)
    attribute_diff = attribute[:, None] - attribute[None, :]  # (B, B)
    return (torch.tanh(delta * latent_diff) - torch.sign(attribute_diff)).abs().mean()


def total_ar_loss(
    z: torch.Tensor, attributes: torch.Tensor, reg_dims: list[int], delta: float
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Sum of the AR losses of attribute ``l`` on latent dim ``reg_dims[l]``.

    ``z`` is (B, Z), ``attributes`` (B, L) with L = len(reg_dims). Returns the sum
    and the per-attribute terms.
    """
    terms = [
        attribute_regularisation(z[:, dim], attributes[:, i], delta)
        for i, dim in enumerate(reg_dims)
    ]
    return torch.stack(terms).sum(), terms
