"""Morphometric attributes of handwritten digits, after Morpho-MNIST.

Castro et al. (2019, *Morpho-MNIST*) measure a digit's stroke on a binarised,
upsampled copy of the image. Here every measure starts from that copy: the grey
image (intensities 0 to 1) is upsampled ``UPSAMPLE`` = 4 times by linear
interpolation, each source pixel becoming a 4 × 4 block (``scipy.ndimage.zoom``,
``grid_mode=True``), and thresholded at 0.5. Lengths are then divided by 4 (areas
by 16), so every value is in pixels of the original 28 × 28 image:

- ``area`` (px²): the number of foreground pixels. A filled k × k square gives
  k² − 0.25 (linear interpolation clips one fine pixel at each corner).
- ``length`` (px): the number of pixels of the foreground's skeleton
  (``skimage.morphology.skeletonize``); a diagonal step counts as one pixel, like
  a straight one, so a diagonal stroke's length is its extent along the longer
  axis. A thin straight line of L pixels measures about L − 1 (the skeleton stops
  short of the ends by half the stroke width).
- ``thickness`` (px): twice the mean, over the skeleton's pixels, of the Euclidean
  distance to the nearest background pixel (``scipy.ndimage.distance_transform_edt``):
  the stroke's mean width. A bar k pixels wide measures k (a little less near its
  ends).
- ``slant`` (radians): the angle whose tangent is the horizontal shift per unit of
  height of the foreground's best-fit shear, from the second central moments of the
  foreground pixels: ``atan(-μ11 / μ02)`` with x the column and y the row. Positive
  when the top leans to the right (like italic), 0 for an upright or mirror-
  symmetric shape.
- ``width`` (px): the horizontal extent of the foreground after undoing that
  shear (each pixel moved horizontally in proportion to its height above the
  centroid), so a slanted "1" is narrow; extent = (largest − smallest column) + 1
  fine pixels.
- ``height`` (px): the vertical extent of the foreground, (largest − smallest row)
  + 1 fine pixels.

An image with no pixel above the threshold measures 0 everywhere.
"""

from __future__ import annotations

import logging
import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np
from scipy import ndimage

logger = logging.getLogger(__name__)

MORPHOMETRIC_NAMES = ("area", "length", "thickness", "slant", "width", "height")
MORPHOMETRIC_UNITS = {
    "area": "px²",
    "length": "px",
    "thickness": "px",
    "slant": "radians, + leans right",
    "width": "px",
    "height": "px",
}
UPSAMPLE = 4
THRESHOLD = 0.5
# Bump when a definition above changes: cached measurements are keyed by it.
MORPHOMETRY_VERSION = 1
_PARALLEL_FROM = 2000  # images; fewer are measured in this process


def _as_unit_intensity(image: np.ndarray) -> np.ndarray:
    """A grey image as float64 0 to 1 (uint8 images are divided by 255)."""
    image = np.asarray(image)
    if image.dtype == np.uint8:
        return image.astype(np.float64) / 255.0
    return image.astype(np.float64)


def binarise(image: np.ndarray, upsample: int = UPSAMPLE) -> np.ndarray:
    """The upsampled, thresholded foreground (H·upsample, W·upsample) bool of a
    grey image (H, W) with intensities 0 to 1 (or uint8 0 to 255)."""
    image = _as_unit_intensity(image)
    if image.ndim != 2:
        raise ValueError(f"a digit image is 2-d, got shape {image.shape}")
    if upsample == 1:
        return image > THRESHOLD
    fine = ndimage.zoom(image, upsample, order=1, grid_mode=True, mode="grid-constant")
    return fine > THRESHOLD


def measure_digit(image: np.ndarray) -> np.ndarray:
    """The six morphometric attributes (:data:`MORPHOMETRIC_NAMES`) of one grey
    image (H, W), in pixels of that image (see the module docstring)."""
    from skimage.morphology import skeletonize

    foreground = binarise(image)
    if not foreground.any():
        return np.zeros(len(MORPHOMETRIC_NAMES))
    scale = float(UPSAMPLE)
    rows, cols = np.nonzero(foreground)
    area = len(rows) / scale**2

    # Skeleton and the distance of each of its pixels to the background; the
    # padding makes the frame count as background.
    skeleton = skeletonize(foreground)
    distance = ndimage.distance_transform_edt(np.pad(foreground, 1))[1:-1, 1:-1]
    length = int(skeleton.sum()) / scale
    thickness = 2.0 * float(distance[skeleton].mean()) / scale if length else 0.0

    # Shear from the second central moments (y = row, pointing down).
    dy = rows - rows.mean()
    dx = cols - cols.mean()
    mu02 = float(np.mean(dy * dy))
    mu11 = float(np.mean(dx * dy))
    shear = -mu11 / mu02 if mu02 > 0 else 0.0
    slant = float(np.arctan(shear))
    deslanted = dx + shear * dy
    width = (float(np.ptp(deslanted)) + 1.0) / scale
    height = (float(np.ptp(rows)) + 1.0) / scale
    return np.array([area, length, thickness, slant, width, height])


def _measure_chunk(images: np.ndarray) -> np.ndarray:
    return np.stack([measure_digit(image) for image in images])


def measure_digits(images: np.ndarray, n_jobs: int | None = None) -> np.ndarray:
    """Attributes (N, 6) float32 of grey images (N, H, W) (0 to 1, or uint8).

    Large sets are measured in ``n_jobs`` processes (default: every core); an
    empty set gives an empty (0, 6) array.
    """
    images = np.asarray(images)
    if images.ndim != 3:
        raise ValueError(f"digit images are (N, H, W), got shape {images.shape}")
    if len(images) == 0:
        return np.zeros((0, len(MORPHOMETRIC_NAMES)), dtype=np.float32)
    n_jobs = n_jobs or os.cpu_count() or 1
    if n_jobs == 1 or len(images) < _PARALLEL_FROM:
        return _measure_chunk(images).astype(np.float32)
    chunks = np.array_split(images, 8 * n_jobs)
    with ProcessPoolExecutor(max_workers=n_jobs) as pool:
        parts = list(pool.map(_measure_chunk, chunks))
    return np.concatenate(parts).astype(np.float32)
