"""A convolutional VAE over small grey-level images (Bernoulli pixels).

Encoder: ``len(channels)`` convolutions (4 × 4 kernels, stride 2, ReLU), each
halving the image side, then a hidden layer and two linear heads giving the mean and
log-variance of the latent code. Decoder: the mirror image, transposed
convolutions back to the input size, ending in one logit per pixel.

With the default configurations about half a million parameters: 64 × 64 sprites
(channels 32, 32, 64, 64, hidden 128, latent 10) have 0.50 M, 28 × 28 digits
(channels 32, 64, 64, hidden 256, latent 16) 0.47 M.

The reconstruction term is the Bernoulli negative log-likelihood (binary cross-
entropy on the logits) *summed* over the pixels of an image and averaged over the
batch, so that β = 1 weighs the KL term as in the evidence lower bound and γ = 10
weighs the AR terms against nats of image likelihood, as in the published image
experiments. Targets may be grey (0 to 1); a pixel counts as right when the logit's
sign matches the target thresholded at 0.5.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class ImageVAEConfig:
    """Architecture of :class:`ImageVAE`; stored in every checkpoint."""

    image_size: int
    latent_dim: int
    channels: tuple[int, ...] = (32, 32, 64, 64)
    hidden_size: int = 128

    def __post_init__(self) -> None:
        if self.image_size < 2 ** len(self.channels):
            raise ValueError(
                f"{self.image_size}-pixel images are too small for "
                f"{len(self.channels)} stride-2 convolutions"
            )
        if self.latent_dim < 1 or self.hidden_size < 1 or not self.channels:
            raise ValueError("latent size, hidden size and channels must be positive")

    @property
    def sides(self) -> list[int]:
        """Image side before each convolution and after the last one."""
        sides = [self.image_size]
        for _ in self.channels:
            sides.append(sides[-1] // 2)
        return sides

    def to_dict(self) -> dict:
        data = asdict(self)
        data["channels"] = list(self.channels)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> ImageVAEConfig:
        data = dict(data)
        data["channels"] = tuple(int(c) for c in data["channels"])
        return cls(**data)


@dataclass
class ImageVAEOutput:
    """What :meth:`ImageVAE.forward` returns (the trainer reads mu, logvar, z)."""

    logits: torch.Tensor  # (B, 1, H, W)
    mu: torch.Tensor  # (B, Z)
    logvar: torch.Tensor  # (B, Z)
    z: torch.Tensor  # (B, Z)


class ImageVAE(nn.Module):
    """Convolutional encoder and decoder of single-channel square images."""

    def __init__(self, config: ImageVAEConfig) -> None:
        super().__init__()
        self.config = config
        sides = config.sides
        widths = (1, *config.channels)
        encoder: list[nn.Module] = []
        for n_in, n_out in zip(widths[:-1], widths[1:], strict=True):
            encoder += [nn.Conv2d(n_in, n_out, 4, stride=2, padding=1), nn.ReLU()]
        self.encoder = nn.Sequential(*encoder)
        n_flat = config.channels[-1] * sides[-1] ** 2
        self.to_hidden = nn.Sequential(nn.Linear(n_flat, config.hidden_size), nn.ReLU())
        self.to_mu = nn.Linear(config.hidden_size, config.latent_dim)
        self.to_logvar = nn.Linear(config.hidden_size, config.latent_dim)

        self.from_latent = nn.Sequential(
            nn.Linear(config.latent_dim, config.hidden_size),
            nn.ReLU(),
            nn.Linear(config.hidden_size, n_flat),
            nn.ReLU(),
        )
        decoder: list[nn.Module] = []
        reversed_widths = widths[::-1]
        reversed_sides = sides[::-1]
        for layer, (n_in, n_out) in enumerate(
            zip(reversed_widths[:-1], reversed_widths[1:], strict=True)
        ):
            # An odd side (7 → 3 in the encoder) needs one extra row back.
            extra = reversed_sides[layer + 1] - 2 * reversed_sides[layer]
            decoder.append(
                nn.ConvTranspose2d(
                    n_in, n_out, 4, stride=2, padding=1, output_padding=extra
                )
            )
            if layer < len(config.channels) - 1:
                decoder.append(nn.ReLU())
        self.decoder = nn.Sequential(*decoder)

    def encode(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance (B, Z) of images (B, 1, H, W)."""
        features = self.encoder(images).flatten(1)  # (B, C·s·s)
        hidden = self.to_hidden(features)
        return self.to_mu(hidden), self.to_logvar(hidden)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel logits (B, 1, H, W) of codes (B, Z)."""
        side = self.config.sides[-1]
        features = self.from_latent(z).view(-1, self.config.channels[-1], side, side)
        return self.decoder(features)

    def forward(
        self, images: torch.Tensor, *, sample_latent: bool = True
    ) -> ImageVAEOutput:
        """Encode, draw z (the mean when ``sample_latent`` is False), decode."""
        mu, logvar = self.encode(images)
        if sample_latent:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        else:
            z = mu
        return ImageVAEOutput(logits=self.decode(z), mu=mu, logvar=logvar, z=z)

    @staticmethod
    def reconstruction_loss(output: ImageVAEOutput, images: torch.Tensor):
        """Binary cross-entropy summed over pixels, averaged over images (nats)."""
        per_pixel = F.binary_cross_entropy_with_logits(
            output.logits, images, reduction="none"
        )
        return per_pixel.flatten(1).sum(dim=1).mean()

    @staticmethod
    def reconstruction_hits(
        output: ImageVAEOutput, images: torch.Tensor
    ) -> torch.Tensor:
        """Per-pixel correctness (B, 1, H, W) bool of the thresholded decoding."""
        return (output.logits > 0) == (images > 0.5)

    def n_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
