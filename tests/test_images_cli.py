"""``melodyvae images`` end to end on tiny budgets."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from melodyvae.cli import cli
from melodyvae.images.training import load_image_model

MUSIC_EVALUATE_KEYS = {
    "checkpoint",
    "training_commands",
    "corpus",
    "split",
    "n_measures",
    "recon_accuracy",
    "onset_accuracy",
    "interpretability",
    "interpretability_dims",
    "mig",
    "sap",
    "modularity",
    "scc",
    "spearman",
    "traversal_bars",
    "traversal_values",
    "traversal_spearman",
    "traversal_crosstalk",
}


@pytest.fixture(scope="module")
def sprite_model(tmp_path_factory):
    """One short epoch on 64 generated sprites."""
    work = tmp_path_factory.mktemp("sprites")
    stem = work / "sprites"
    args = ["images", "train", "--dataset", "sprites", "--epochs", "1"]
    args += ["--max-examples", "64", "--batch-size", "32", "-o", str(stem)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return {"stem": stem, "work": work, "output": result.output}


def test_train_writes_a_loadable_checkpoint(sprite_model):
    stem = sprite_model["stem"]
    trained = load_image_model(stem)
    assert trained.dataset == "sprites"
    assert trained.attribute_names == ("shape", "scale", "orientation", "x", "y")
    assert trained.reg_dims == [0, 1, 2, 3, 4]
    assert trained.model.config.latent_dim == 10
    meta = json.loads(stem.with_suffix(".json").read_text())
    assert meta["training"]["loss"] == {"beta": 1.0, "gamma": 10.0, "delta": 1.0}
    assert set(meta["latent_ranges"]) == set(trained.attribute_names)
    assert 0 <= meta["test_metrics"]["recon_accuracy"] <= 1
    assert "wrote" in sprite_model["output"]


def test_train_refuses_to_overwrite(sprite_model):
    args = ["images", "train", "--dataset", "sprites", "-o", str(sprite_model["stem"])]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "exists" in result.output and "--force" in result.output


def test_evaluate_json_has_the_music_keys(sprite_model):
    path = sprite_model["work"] / "metrics.json"
    args = ["images", "evaluate", "-c", str(sprite_model["stem"]), "--json", str(path)]
    args += ["--traversal-examples", "8"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    record = json.loads(path.read_text())
    assert set(record) == MUSIC_EVALUATE_KEYS
    assert record["n_measures"] == 64
    assert set(record["interpretability"]["per_attribute"]) == {
        "shape",
        "scale",
        "orientation",
        "x",
        "y",
    }
    # Only the attributes a decoded sprite shows directly are re-measured.
    assert set(record["traversal_spearman"]["per_attribute"]) <= {"scale", "x", "y"}


def test_traverse_writes_png_and_gif(sprite_model):
    out = sprite_model["work"] / "traversal"
    args = ["images", "traverse", "-c", str(sprite_model["stem"]), "-o", str(out)]
    args += ["--examples", "2", "--steps", "3"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    with Image.open(out / "traversal.png") as picture:
        assert picture.format == "PNG"
    with Image.open(out / "traversal.gif") as animation:
        assert animation.format == "GIF"
        assert animation.n_frames == 4  # up 3 steps and back
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "exists" in again.output


def test_digits_train_on_a_few_real_mnist_digits(tmp_path):
    stem = tmp_path / "digits"
    args = ["images", "train", "--dataset", "digits", "--epochs", "1"]
    args += ["--max-examples", "16", "--batch-size", "16", "-o", str(stem)]
    env = {"MELODYVAE_CACHE_DIR": str(tmp_path / "cache")}
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    trained = load_image_model(stem)
    assert trained.attribute_names == (
        "area",
        "length",
        "thickness",
        "slant",
        "width",
        "height",
    )
    assert trained.model.config.latent_dim == 16
    cached = list((tmp_path / "cache").glob("digits-morphometry-*.npy"))
    assert len(cached) == 1
    attributes = np.load(cached[0])
    assert attributes.shape == (48, 6)
    assert (attributes[:, 0] > 20).all()  # every digit has some ink


def test_a_missing_checkpoint_is_one_line(tmp_path):
    args = ["images", "evaluate", "-c", str(tmp_path / "nothing")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert result.output.strip().startswith("melodyvae: error:")
    assert len(result.output.strip().splitlines()) == 1


def test_a_music_checkpoint_is_not_an_image_model(tmp_path):
    from melodyvae.core.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "m", {}, {"model": "melodyvae.music.MeasureVAE"})
    result = CliRunner().invoke(cli, ["images", "traverse", "-c", str(tmp_path / "m")])
    assert result.exit_code == 1 and "not an image model" in result.output


def test_the_shipped_sprite_models_separate_the_attributes_on_held_out_sprites():
    # A fresh measurement on 2,000 held-out sprites (of the test split's 73,728):
    # the AR-VAE's regularised dims carry their attributes, the γ = 0 baseline's
    # do not.
    from pathlib import Path

    from melodyvae.images.evaluation import evaluate_images
    from melodyvae.images.training import model_dataset

    shipped = Path(__file__).parents[1] / "checkpoints"
    scores = {}
    for name in ("images-sprites", "images-sprites-beta"):
        trained = load_image_model(shipped / name)
        assert trained.attribute_names == ("shape", "scale", "orientation", "x", "y")
        metrics, _ = evaluate_images(
            trained, model_dataset(trained), max_examples=2000, traversal_examples=8
        )
        scores[name] = metrics
    arvae, beta = scores["images-sprites"], scores["images-sprites-beta"]
    assert arvae["interpretability"]["mean"] >= 0.85
    assert arvae["scc"]["mean"] >= 0.9
    assert beta["interpretability"]["mean"] < arvae["interpretability"]["mean"] - 0.2
    assert beta["scc"]["mean"] < arvae["scc"]["mean"] - 0.2
