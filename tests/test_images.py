"""The image domain: sprite grid, morphometry with known answers, readers, model."""

import gzip
import math

import numpy as np
import pytest
import torch

from melodyvae.core.losses import ARConfig
from melodyvae.core.metrics import traversal_control
from melodyvae.core.trainer import Split, TrainConfig, _first_examples, train
from melodyvae.errors import DataError
from melodyvae.images import sprites
from melodyvae.images.digits import idx_digits, read_idx
from melodyvae.images.evaluation import measure_sprites
from melodyvae.images.model import ImageVAE, ImageVAEConfig
from melodyvae.images.morphometry import (
    MORPHOMETRIC_NAMES,
    measure_digit,
    measure_digits,
)

AREA, LENGTH, THICKNESS, SLANT, WIDTH, HEIGHT = range(6)


# -- morphometry: drawn shapes with known answers -----------------------------


def _image(rows: slice, cols: slice) -> np.ndarray:
    image = np.zeros((28, 28))
    image[rows, cols] = 1.0
    return image


def test_filled_square_area_width_height_and_thickness():
    measured = measure_digit(_image(slice(9, 19), slice(9, 19)))  # 10 × 10
    # Linear upsampling clips one fine pixel (1/16 px²) at each corner.
    assert measured[AREA] == pytest.approx(100 - 0.25)
    assert measured[WIDTH] == pytest.approx(10)
    assert measured[HEIGHT] == pytest.approx(10)
    assert measured[THICKNESS] == pytest.approx(10, abs=0.3)
    assert measured[SLANT] == pytest.approx(0, abs=1e-9)


def test_vertical_bar_is_upright_and_as_thick_as_drawn():
    measured = measure_digit(_image(slice(4, 24), slice(12, 15)))  # 20 tall, 3 wide
    assert measured[SLANT] == pytest.approx(0, abs=1e-9)
    assert measured[THICKNESS] == pytest.approx(3, abs=0.1)
    assert measured[WIDTH] == pytest.approx(3)
    assert measured[HEIGHT] == pytest.approx(20)
    # The skeleton stops short of each end by about half the stroke width.
    assert 16 <= measured[LENGTH] <= 20


def _sheared_bar(shear: float) -> np.ndarray:
    """A 3-pixel bar whose top leans right by ``shear`` pixels per row."""
    image = np.zeros((28, 28))
    for row in range(4, 24):
        col = 12 + int(round(shear * (14 - row)))
        image[row, col : col + 3] = 1.0
    return image


@pytest.mark.parametrize("shear", [0.25, -0.25, 0.5])
def test_sheared_bar_slant_is_its_shear_angle(shear):
    measured = measure_digit(_sheared_bar(shear))
    assert measured[SLANT] == pytest.approx(math.atan(shear), abs=0.02)
    # Undoing the shear leaves a bar about as wide as drawn.
    assert measured[WIDTH] < 4.5


def test_blank_image_measures_zero_and_batches_agree():
    assert not measure_digit(np.zeros((28, 28))).any()
    images = np.stack([_image(slice(9, 19), slice(9, 19)), _sheared_bar(0.25)])
    batch = measure_digits((images * 255).astype(np.uint8), n_jobs=1)
    assert batch.shape == (2, len(MORPHOMETRIC_NAMES))
    assert batch[0] == pytest.approx(measure_digit(images[0]), rel=1e-5)


# -- sprites ------------------------------------------------------------------


def test_sprite_grid_size_and_numbering():
    assert sprites.N_SPRITES == 3 * 6 * 40 * 32 * 32 == 737_280
    factors = sprites.factor_indices(np.array([0, 1, 32, 1024, sprites.N_SPRITES - 1]))
    assert factors.tolist() == [
        [0, 0, 0, 0, 0],
        [0, 0, 0, 0, 1],  # y changes fastest
        [0, 0, 0, 1, 0],
        [0, 0, 1, 0, 0],
        [2, 5, 39, 31, 31],
    ]
    values = sprites.factor_values(factors)
    assert values[-1].tolist() == pytest.approx([2, 1.0, 2 * math.pi, 1.0, 1.0])
    assert sprites.SCALES.tolist() == pytest.approx([0.5, 0.6, 0.7, 0.8, 0.9, 1.0])


def test_render_is_binary_deterministic_and_placed():
    index = np.random.default_rng(1).integers(0, sprites.N_SPRITES, 200)
    first = sprites.render_sprites(sprites.factor_indices(index))
    again = sprites.render_sprites(sprites.factor_indices(index))
    assert first.shape == (200, 64, 64) and first.dtype == np.uint8
    assert np.array_equal(first, again)
    assert set(np.unique(first)) <= {0, 1}
    assert first.reshape(200, -1).sum(axis=1).min() > 0  # every sprite visible
    # A scale-1 square at angle 0 in the middle: 17 × 17 pixel centres inside
    # its 16-pixel sides, centred on pixel (32, 32).
    square = sprites.render_sprites(np.array([[0, 5, 0, 16, 16]]))[0]
    assert square.sum() == 17 * 17
    rows, cols = np.nonzero(square)
    assert (rows.mean(), cols.mean()) == (32, 32)
    measured = measure_sprites(square[None].astype(np.float32))[0]
    assert measured[3:] == pytest.approx([16 / 31, 16 / 31])


def test_orientation_attribute_is_the_tilt_from_upright():
    values = np.array(
        [
            [0, 1, math.pi / 2, 0.5, 0.5],  # square, a quarter turn: upright
            [1, 1, math.pi * 1.25, 0.5, 0.5],  # ellipse, 225° = 45° past a half
            [0, 1, math.radians(80), 0.5, 0.5],  # square, 80° = 10° the other way
            [0, 1, math.radians(10), 0.5, 0.5],
            [2, 1, math.radians(200), 0.5, 0.5],  # heart: 160° the other way
            [2, 1, 2 * math.pi, 0.5, 0.5],  # the grid's last angle, a full turn
        ],
        dtype=np.float64,
    )
    attributes = sprites.sprite_attributes(values)
    assert attributes[:, 2].tolist() == pytest.approx([0, 45, 10, 10, 160, 0])
    grid = sprites.generated_sprites().attributes
    for shape, most in enumerate((45, 90, 180)):
        tilts = grid[grid[:, 0] == shape, 2]
        assert tilts.min() == 0 and most - 5 < tilts.max() <= most
    # A square turned a quarter turn is the same image (up to rounding on the
    # pixels its edges pass through).
    turned = values.copy()
    turned[0, 2] = 0.0
    quarter = sprites.render_values(values[:1]).astype(int)
    upright = sprites.render_values(turned[:1]).astype(int)
    assert np.abs(quarter - upright).sum() <= 0.05 * upright.sum()


def test_dsprites_npz_is_read(tmp_path):
    factors = sprites.factor_indices(np.array([5, 70_000, 500_000]))
    values = sprites.factor_values(factors)
    latents_values = np.column_stack([np.ones(3), values])
    latents_values[:, 1] += 1  # the published file numbers shapes 1-3
    classes = np.column_stack([np.zeros(3, int), factors])
    images = sprites.render_sprites(factors)
    path = tmp_path / "dsprites.npz"
    np.savez(path, imgs=images, latents_values=latents_values, latents_classes=classes)
    data = sprites.read_dsprites_npz(path)
    assert len(data) == 3
    assert np.array_equal(data.images(np.arange(3)), images)
    assert data.attributes[:, 0].tolist() == factors[:, 0].tolist()
    np.savez(tmp_path / "bad.npz", imgs=images)
    with pytest.raises(DataError, match="latents_values"):
        sprites.read_dsprites_npz(tmp_path / "bad.npz")


# -- IDX reader ---------------------------------------------------------------


def _write_idx(path, array, compress=False):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape
    )
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(path, "wb") as handle:
            handle.write(data)
    else:
        path.write_bytes(data)


def test_idx_files_are_read_and_split(tmp_path):
    rng = np.random.default_rng(0)
    train_images = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    test_images = rng.integers(0, 256, (10, 28, 28), dtype=np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte", train_images)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", test_images, compress=True)
    assert np.array_equal(read_idx(tmp_path / "train-images-idx3-ubyte"), train_images)
    digits = idx_digits(tmp_path)
    assert len(digits.images) == 50
    assert digits.splits["test"].tolist() == list(range(40, 50))
    assert len(digits.splits["valid"]) == 4 and len(digits.splits["train"]) == 36
    (tmp_path / "short").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 9, 1]))
    with pytest.raises(DataError, match="header promises"):
        read_idx(tmp_path / "short")


# -- model and core pieces ----------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        ImageVAEConfig(28, 6, channels=(4, 8, 8), hidden_size=16),
        ImageVAEConfig(64, 5, channels=(4, 4, 8, 8), hidden_size=16),
    ],
)
def test_image_vae_forward_backward(config):
    torch.manual_seed(0)
    model = ImageVAE(config)
    size = config.image_size
    images = (torch.rand(3, 1, size, size) > 0.7).float()
    output = model(images)
    assert output.logits.shape == images.shape
    assert output.mu.shape == output.z.shape == (3, config.latent_dim)
    loss = model.reconstruction_loss(output, images)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.reconstruction_hits(output, images).shape == images.shape
    assert ImageVAEConfig.from_dict(config.to_dict()) == config


def test_default_networks_have_about_half_a_million_parameters():
    for config in (
        ImageVAEConfig(64, 10, (32, 32, 64, 64), 128),
        ImageVAEConfig(28, 16, (32, 64, 64), 256),
    ):
        assert 400_000 < ImageVAE(config).n_parameters() < 600_000


def test_examples_per_epoch_keeps_leading_whole_batches():
    batches = [np.arange(i, i + 4) for i in range(0, 20, 4)]
    assert len(_first_examples(batches, 6)) == 2
    assert len(_first_examples(batches, 100)) == 5
    config = ImageVAEConfig(28, 4, channels=(4, 4), hidden_size=8)
    model = ImageVAE(config)
    images = np.random.default_rng(0).random((32, 28, 28)).astype(np.float32)
    split = Split(np.arange(32), np.random.default_rng(1).random((32, 2)))

    def make_batch(index, rng):
        return torch.from_numpy(images[index][:, None])

    seen = []
    result = train(
        model,
        split,
        split,
        TrainConfig(
            epochs=1,
            batch_size=8,
            reg_dims=(0, 1),
            loss=ARConfig(1.0, 10.0, 1.0),
            examples_per_epoch=10,
        ),
        make_batch,
        eval_kwargs={"sample_latent": False},
        on_batch=lambda done, total: seen.append(total),
    )
    assert seen == [2, 2]
    assert result["best"]["epoch"] == 1


def test_traversal_control_of_a_perfect_slider():
    rng = np.random.default_rng(0)
    latents = rng.normal(size=(20, 4)).astype(np.float32)

    def measure(codes):
        measured = codes[:, :3].astype(np.float64).copy()
        measured[:, 2] = np.nan  # an attribute that cannot be measured
        return measured

    values = np.linspace(-2, 2, 5)
    result = traversal_control(latents, [0, 1, 2], values, measure, ["a", "b", "c"])
    assert result["traversal_spearman"]["per_attribute"] == {"a": 1.0, "b": 1.0}
    assert result["traversal_crosstalk"]["per_attribute"] == {"a": 0.0, "b": 0.0}
