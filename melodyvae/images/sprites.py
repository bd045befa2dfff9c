"""2-d sprites: the dSprites factor grid, rendered on the fly, and its attributes.

The grid is the one of the dSprites data set (Matthey et al. 2017): 3 shapes
(square, ellipse, heart) × 6 scales (``linspace(0.5, 1, 6)``) × 40 orientations
(``linspace(0, 2π, 40)``: a full turn, the first and last angle the same, as in
the published arrays) × 32 × 32 positions (``linspace(0, 1, 32)`` each way), 737,280
binary 64 × 64 images, numbered as dSprites numbers them (shape slowest, y
fastest). An image is drawn from its factors when a batch asks for it, so the set
is never held in memory; :func:`render_sprites` is a pure function of the factor
indices.

Geometry (pixel units, pixel (row, column) centres at integer coordinates): the
sprite's centre is at column ``16 + 31 x`` and row ``16 + 31 y`` (x grows to the
right, y downwards like image rows), so a position step is one pixel. At scale s a
square has sides of ``16 s`` pixels, an ellipse axes of ``20 s`` × ``10 s``, and the
heart (the curve ``(u² + v² − 1)³ = u² v³``) is about ``17 s`` pixels wide and high;
orientation turns the sprite counter-clockwise as displayed. A pixel is on when
its centre lies inside the shape (no anti-aliasing). Every sprite stays inside the
frame at every position, scale and angle.

The original ``.npz`` (keys ``imgs``, ``latents_values``, ``latents_classes``) is
read by :func:`read_dsprites_npz`; its images are kept as packed bits (46 MB per
100,000 images) and unpacked per batch.

Attributes (:data:`ATTRIBUTE_NAMES`), in the units the metrics see:

- ``shape``: 0 square, 1 ellipse, 2 heart. Categorical: the AR loss only uses the
  sign of differences, so this fixes an order square < ellipse < heart along the
  shape dim (same-shape pairs ask for equal coordinates).
- ``scale``: the size factor, 0.5 to 1.
- ``orientation``: the tilt, how far (in degrees, either way) the sprite is turned
  from the nearest pose in which it looks upright: 0 to 45 for the square (it
  looks the same every quarter turn), 0 to 90 for the ellipse (every half turn),
  0 to 180 for the heart. The raw angle is not a function of the image (a square
  turned by 90° is the same image) and the angle reduced by the symmetry period
  still jumps at its wrap-around (a square at 89° looks like one at 1°); the AR
  loss asks the encoder for an order, and an order on a circle must break
  somewhere. The tilt is continuous in the image everywhere. What it leaves out is
  the direction of the turn (10° and −10° have the same tilt), which the model
  keeps in its free dims. Measured: with the wrapped fraction, 12 epochs left the
  orientation AR term at 0.92 (1 is no order at all) and its interpretability at
  0.001. A regulariser for circular attributes would remove the need to fold.
- ``x``, ``y``: the position, 0 to 1 (y downwards).
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from melodyvae.errors import DataError

logger = logging.getLogger(__name__)

IMAGE_SIZE = 64
SHAPES = ("square", "ellipse", "heart")
SCALES = np.linspace(0.5, 1.0, 6)
ORIENTATIONS = np.linspace(0.0, 2 * np.pi, 40)
POSITIONS = np.linspace(0.0, 1.0, 32)
GRID_SHAPE = (len(SHAPES), len(SCALES), len(ORIENTATIONS), len(POSITIONS), 32)
N_SPRITES = int(np.prod(GRID_SHAPE))  # 737,280
FACTOR_NAMES = ("shape", "scale", "orientation", "x", "y")
ATTRIBUTE_NAMES = FACTOR_NAMES
ATTRIBUTE_UNITS = {
    "shape": "class: 0 square < 1 ellipse < 2 heart",
    "scale": "size factor, 0.5-1",
    "orientation": "tilt from upright, degrees (square 0-45, ellipse 0-90, "
    "heart 0-180)",
    "x": "position, 0 (left) - 1 (right)",
    "y": "position, 0 (top) - 1 (bottom)",
}
# Turns after which each shape looks the same again (radians).
SYMMETRY_PERIODS = np.array([np.pi / 2, np.pi, 2 * np.pi])

# Geometry, in pixels: sprite centres span MARGIN .. IMAGE_SIZE - 1 - MARGIN.
MARGIN_PX = 16.0
UNIT_PX = 10.0  # one unit of the shape frame at scale 1
SQUARE_HALF_SIDE = 0.8
ELLIPSE_AXES = (1.0, 0.5)
HEART_SCALE = 0.75
HEART_CENTRE_OFFSET = 0.118  # the heart curve spans y = -1 .. 1.236
NPZ_KEYS = ("imgs", "latents_values", "latents_classes")
_CHUNK_IMAGES = 8192
# Side of the square drawn around each sprite centre (a scale-1 sprite at any
# angle lies within 12 pixels of it).
WINDOW_PX = 32


def factor_indices(index: np.ndarray) -> np.ndarray:
    """Factor indices (N, 5) of grid images numbered ``index`` (N,), in the order
    of :data:`FACTOR_NAMES`. Raises ValueError for a number outside the grid."""
    index = np.asarray(index, dtype=np.int64)
    return np.stack(np.unravel_index(index, GRID_SHAPE), axis=-1)


def factor_values(factors: np.ndarray) -> np.ndarray:
    """Factor values (N, 5): shape class, scale, angle (radians), x, y."""
    factors = np.asarray(factors, dtype=np.int64)
    return np.stack(
        [
            factors[:, 0].astype(np.float64),
            SCALES[factors[:, 1]],
            ORIENTATIONS[factors[:, 2]],
            POSITIONS[factors[:, 3]],
            POSITIONS[factors[:, 4]],
        ],
        axis=1,
    )


def sprite_attributes(values: np.ndarray) -> np.ndarray:
    """Attributes (N, 5) float32 from factor values (N, 5) (shape class, scale,
    angle in radians, x, y): the orientation as the tilt in degrees from the
    nearest upright pose of the shape (see the module docstring)."""
    values = np.asarray(values, dtype=np.float64)
    shape = values[:, 0].astype(np.int64)
    period = SYMMETRY_PERIODS[shape]
    turned = np.mod(values[:, 2], period)
    tilt = np.minimum(turned, period - turned)
    # Angles a hair off an upright pose (the grid's last angle is 2π) are upright.
    tilt = np.where(np.isclose(tilt, 0.0, atol=1e-9), 0.0, tilt)
    attributes = values.copy()
    attributes[:, 2] = np.degrees(tilt)
    return attributes.astype(np.float32)


def render_values(values: np.ndarray) -> np.ndarray:
    """Binary images (N, 64, 64) uint8 of sprites given by factor values (N, 5):
    shape class (0-2), scale, angle (radians), x and y (0-1). Any values are
    accepted, but only the 32 × 32 pixels around the centre are drawn: a sprite
    larger than scale 1.3 is cut there, one placed beyond the grid's range by the
    frame. An empty input gives an empty (0, 64, 64) array."""
    values = np.asarray(values, dtype=np.float64).reshape(-1, 5)
    n = len(values)
    shape = values[:, 0].astype(np.int64)[:, None, None]
    size = (UNIT_PX * values[:, 1])[:, None, None].astype(np.float32)
    angle = values[:, 2][:, None, None]
    span = IMAGE_SIZE - 1 - 2 * MARGIN_PX
    centre_col = MARGIN_PX + span * values[:, 3]
    centre_row = MARGIN_PX + span * values[:, 4]

    # Only a window around each centre can hold the sprite: draw there (a
    # quarter of the pixels), then paste into the frame.
    first_row = np.clip(
        np.round(centre_row) - WINDOW_PX // 2, 0, IMAGE_SIZE - WINDOW_PX
    )
    first_col = np.clip(
        np.round(centre_col) - WINDOW_PX // 2, 0, IMAGE_SIZE - WINDOW_PX
    )
    offsets = np.arange(WINDOW_PX)
    rows = (first_row[:, None] + offsets).astype(np.int64)[:, :, None]  # (N, W, 1)
    cols = (first_col[:, None] + offsets).astype(np.int64)[:, None, :]  # (N, 1, W)

    # Each pixel centre in the sprite's own frame (v up), undoing the rotation.
    dx = (cols - centre_col[:, None, None]).astype(np.float32)
    dy = (centre_row[:, None, None] - rows).astype(np.float32)
    cos = np.cos(angle).astype(np.float32)
    sin = np.sin(angle).astype(np.float32)
    u = (cos * dx + sin * dy) / size  # (N, W, W)
    v = (cos * dy - sin * dx) / size

    square = (np.abs(u) <= SQUARE_HALF_SIDE) & (np.abs(v) <= SQUARE_HALF_SIDE)
    ellipse = (u / ELLIPSE_AXES[0]) ** 2 + (v / ELLIPSE_AXES[1]) ** 2 <= 1.0
    hu = u / HEART_SCALE
    hv = v / HEART_SCALE + HEART_CENTRE_OFFSET
    heart = (hu**2 + hv**2 - 1.0) ** 3 - hu**2 * hv**3 <= 0.0
    window = np.where(shape == 0, square, np.where(shape == 1, ellipse, heart))
    images = np.zeros((n, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
    images[np.arange(n)[:, None, None], rows, cols] = window
    return images


def render_sprites(factors: np.ndarray) -> np.ndarray:
    """Binary images (N, 64, 64) uint8 of the grid sprites with factor indices
    ``factors`` (N, 5) (see :func:`factor_indices`). Deterministic."""
    return render_values(factor_values(factors))


def split_indices(
    n: int, shares: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0
) -> dict[str, np.ndarray]:
    """A fixed random train/valid/test partition of ``range(n)``, each part sorted.

    The split depends on ``n`` and ``seed`` only (not on the training seed), so a
    model's held-out images are the same whenever its data is rebuilt.
    """
    order = np.random.default_rng(seed).permutation(n)
    n_train = int(round(shares[0] * n))
    n_valid = int(round(shares[1] * n))
    return {
        "train": np.sort(order[:n_train]),
        "valid": np.sort(order[n_train : n_train + n_valid]),
        "test": np.sort(order[n_train + n_valid :]),
    }


@dataclass
class SpriteSet:
    """Sprites with their attributes: the generated grid, or images from a file.

    ``attributes`` (N, 5) float32 (:data:`ATTRIBUTE_NAMES`); ``packed`` (N, 64, 8)
    uint8, the bit-packed images of a file (None for the generated grid, whose
    images are drawn from their numbers).
    """

    attributes: np.ndarray
    identity: dict[str, Any]
    packed: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.attributes)

    def images(self, index: np.ndarray) -> np.ndarray:
        """Binary images (B, 64, 64) uint8 of the examples numbered ``index``."""
        index = np.asarray(index, dtype=np.int64)
        if self.packed is None:
            return render_sprites(factor_indices(index))
        return np.unpackbits(self.packed[index], axis=-1, count=IMAGE_SIZE)


def generated_sprites() -> SpriteSet:
    """The whole dSprites grid (attributes only; images are drawn on demand)."""
    values = factor_values(factor_indices(np.arange(N_SPRITES)))
    identity = {"source": "generated dSprites grid", "n_examples": N_SPRITES}
    return SpriteSet(sprite_attributes(values), identity)


def read_dsprites_npz(path: str | Path) -> SpriteSet:
    """The sprites of a dSprites ``.npz`` (keys ``imgs`` (N, 64, 64) of 0/1,
    ``latents_values`` and ``latents_classes`` (N, 6): colour, shape, scale,
    orientation, x, y).

    Raises :class:`DataError` naming the file for a missing or unreadable file, a
    missing key, or arrays of the wrong shape or values.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: dSprites file not found")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [k for k in NPZ_KEYS if f"{k}.npy" not in names]
            if missing:
                raise DataError(
                    f"{path}: not a dSprites .npz (no {', '.join(missing)}; "
                    f"expected the keys {', '.join(NPZ_KEYS)})"
                )
            values = _read_member(archive, "latents_values", np.float64)
            classes = _read_member(archive, "latents_classes", np.int64)
            packed = _read_packed_images(archive, path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as error:
        raise DataError(f"{path}: not a readable dSprites .npz ({error})") from None
    n = len(packed)
    for name, array in (("latents_values", values), ("latents_classes", classes)):
        if array.shape != (n, 6):
            raise DataError(
                f"{path}: {name} has shape {array.shape}, expected ({n}, 6) "
                "(colour, shape, scale, orientation, x, y)"
            )
    shape_class = classes[:, 1]
    if n == 0 or shape_class.min() < 0 or shape_class.max() >= len(SHAPES):
        raise DataError(f"{path}: shape classes must be 0, 1, 2 ({', '.join(SHAPES)})")
    factors = np.column_stack([shape_class, values[:, 2:6]])
    identity = {
        "source": "dSprites .npz",
        "path": str(path.resolve()),
        "sha1": _file_sha1(path),
        "n_examples": int(n),
    }
    logger.info("%s: %d sprites", path, n)
    return SpriteSet(sprite_attributes(factors), identity, packed)


def _read_member(archive: zipfile.ZipFile, key: str, dtype: type) -> np.ndarray:
    with archive.open(f"{key}.npy") as stream:
        return np.lib.format.read_array(stream, allow_pickle=False).astype(dtype)


def _read_packed_images(archive: zipfile.ZipFile, path: Path) -> np.ndarray:
    """``imgs`` read a chunk at a time and bit-packed, so the 2.9 GB of the full
    set never sit in memory at once."""
    with archive.open("imgs.npy") as stream:
        version = np.lib.format.read_magic(stream)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
        if len(shape) != 3 or shape[1:] != (IMAGE_SIZE, IMAGE_SIZE) or fortran:
            raise DataError(
                f"{path}: imgs has shape {shape}, expected (N, 64, 64) in C order"
            )
        if dtype.hasobject:
            raise DataError(f"{path}: imgs holds Python objects, expected numbers")
        n = shape[0]
        packed = np.empty((n, IMAGE_SIZE, IMAGE_SIZE // 8), dtype=np.uint8)
        row_bytes = IMAGE_SIZE * IMAGE_SIZE * dtype.itemsize
        for start in range(0, n, _CHUNK_IMAGES):
            count = min(_CHUNK_IMAGES, n - start)
            data = stream.read(count * row_bytes)
            if len(data) != count * row_bytes:
                raise DataError(f"{path}: imgs is truncated")
            chunk = np.frombuffer(data, dtype=dtype).reshape(count, 64, 64)
            packed[start : start + count] = np.packbits(chunk > 0.5, axis=-1)
    return packed


def _file_sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
