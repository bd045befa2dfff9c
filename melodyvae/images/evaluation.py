"""Evaluating a trained image model on held-out images.

The metrics and their JSON keys are those of the melody model
(:mod:`melodyvae.music.evaluation`), so one report reads both domains:

- ``interpretability``, ``interpretability_dims``, ``mig``, ``sap``,
  ``modularity``, ``scc`` (:func:`melodyvae.core.metrics.disentanglement`) on the
  posterior means, and ``spearman`` of each attribute with its own dim;
- ``recon_accuracy``: the share of pixels right after thresholding the decoded
  probabilities (of the posterior mean) and the target at 0.5;
  ``onset_accuracy``: the same over the target's foreground pixels only (the
  background dominates the total as ``hold`` tokens dominate a bar);
- ``n_measures``: the number of images scored; ``traversal_bars``: the number of
  images traversed; ``traversal_values``: the values of each regularised dim, from
  the 1st to the 99th percentile of the held-out codes along it (the spread of a
  dim depends on δ, so prior standard deviations would not fit every model);
- ``traversal_spearman``, ``traversal_crosstalk``
  (:func:`melodyvae.core.metrics.traversal_control`): the attributes re-measured on
  the decoded images. Digits are measured as in training (the six morphometric
  attributes of the decoded probabilities). A sprite's position is the centroid
  of its foreground (in the 0-1 position units) and its scale the square root of
  the foreground area; its shape and orientation have no such measure and are left
  out of the traversal keys.

Everything is deterministic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from melodyvae.core.metrics import disentanglement, spearman, traversal_control
from melodyvae.images import sprites as sprite_data
from melodyvae.images.datasets import ImageDataset, evenly_spread
from melodyvae.images.morphometry import measure_digits
from melodyvae.images.training import (
    TrainedImageModel,
    decode_codes,
    encode_images,
)

TRAVERSAL_STEPS = 9
TRAVERSAL_EXAMPLES = 128
METRIC_SEED = 0
# Held-out sprites scored by default (the test split holds 73,728).
SPRITE_TEST_EXAMPLES = 10_000


def measure_sprites(images: np.ndarray) -> np.ndarray:
    """Attributes (N, 5) of (decoded) sprite images (N, 64, 64), 0 to 1:
    shape and orientation NaN, scale the square root of the foreground area
    (pixels), x and y the foreground centroid in position units; all NaN for an
    image with no pixel above 0.5."""
    foreground = np.asarray(images) > 0.5
    area = foreground.sum(axis=(1, 2)).astype(np.float64)
    rows = np.arange(foreground.shape[1], dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        row = (foreground.sum(axis=2) * rows).sum(axis=1) / area
        col = (foreground.sum(axis=1) * rows).sum(axis=1) / area
    span = sprite_data.IMAGE_SIZE - 1 - 2 * sprite_data.MARGIN_PX
    nan = np.full(len(area), np.nan)
    result = np.stack(
        [
            nan,
            np.sqrt(area),
            nan,
            (col - sprite_data.MARGIN_PX) / span,
            (row - sprite_data.MARGIN_PX) / span,
        ],
        axis=1,
    )
    result[area == 0] = np.nan
    return result


def measure_images(dataset_name: str, images: np.ndarray) -> np.ndarray:
    """The attributes of decoded images, as far as they can be measured."""
    if dataset_name == "sprites":
        return measure_sprites(images)
    return measure_digits(images).astype(np.float64)


def reconstruction(
    trained: TrainedImageModel, images: np.ndarray, latents: np.ndarray
) -> dict[str, float | None]:
    """Pixel accuracy of the decoded posterior means, over all pixels and over
    the target's foreground pixels."""
    decoded = decode_codes(trained.model, latents) > 0.5
    target = images > 0.5
    hits = decoded == target
    return {
        "recon_accuracy": float(hits.mean()),
        "onset_accuracy": float(hits[target].mean()) if target.any() else None,
    }


def evaluate_images(
    trained: TrainedImageModel,
    dataset: ImageDataset,
    split: str = "test",
    *,
    max_examples: int | None = None,
    traversal_examples: int = TRAVERSAL_EXAMPLES,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """All held-out metrics of ``trained`` on ``split`` of ``dataset``, and the
    latent means. ``max_examples`` (default: every digit, 10,000 sprites) scores
    an evenly spread subset."""

    def stage(text: str) -> None:
        if progress is not None:
            progress(text)

    part = dataset.splits[split]
    if max_examples is None and dataset.name == "sprites":
        max_examples = SPRITE_TEST_EXAMPLES
    rows = evenly_spread(len(part), max_examples)
    numbers, attributes = part.inputs[rows], part.attributes[rows]
    names = trained.attribute_names
    stage("encoding")
    images = dataset.images(numbers)
    latents = encode_images(trained.model, images)
    metrics: dict[str, Any] = {"n_measures": int(len(numbers))}
    stage("reconstructing")
    metrics.update(reconstruction(trained, images, latents))
    stage("disentanglement metrics")
    metrics.update(disentanglement(latents, attributes, names, seed=METRIC_SEED))
    metrics["spearman"] = {
        name: spearman(latents[:, dim], attributes[:, i])
        for i, (name, dim) in enumerate(zip(names, trained.reg_dims, strict=True))
    }
    stage("traversals")
    subset = evenly_spread(len(latents), traversal_examples)
    values = traversal_values(latents, trained.reg_dims)
    metrics["traversal_bars"] = int(len(subset))
    metrics["traversal_values"] = {
        name: [float(v) for v in row] for name, row in zip(names, values, strict=True)
    }
    metrics.update(
        traversal_control(
            latents[subset],
            trained.reg_dims,
            values,
            lambda codes: measure_images(
                trained.dataset, decode_codes(trained.model, codes)
            ),
            names,
        )
    )
    return metrics, latents


def traversal_values(
    latents: np.ndarray, reg_dims: list[int], steps: int = TRAVERSAL_STEPS
) -> np.ndarray:
    """(L, steps): for each regularised dim, evenly spaced values from the 1st to
    the 99th percentile of ``latents`` along it."""
    return np.stack(
        [
            np.linspace(
                np.percentile(latents[:, d], 1), np.percentile(latents[:, d], 99), steps
            )
            for d in reg_dims
        ]
    ).astype(np.float32)
