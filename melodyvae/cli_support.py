"""Pieces the music and image command lines share: their common options, the
terminal, output checks, the device check and the rows of a metrics table."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from melodyvae.errors import MelodyVAEError

force_option = click.option(
    "--force", is_flag=True, help="Overwrite existing output files."
)
resume_option = click.option(
    "--resume", is_flag=True, help="Continue an interrupted run of the same --out."
)
device_option = click.option(
    "--device",
    default="cpu",
    show_default=True,
    help="torch device: cpu, cuda, cuda:1 ...",
)
json_option = click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the metrics as JSON.",
)
split_option = click.option(
    "--split",
    type=click.Choice(["train", "valid", "test"]),
    default="test",
    show_default=True,
)


def seed_option(same_seed_gives: str):
    return click.option(
        "--seed",
        default=0,
        show_default=True,
        type=click.IntRange(0, 2**32 - 1),
        help=f"Random seed; the same seed gives the same {same_seed_gives}.",
    )


def loss_options(*, beta: float, gamma: float, delta: float):
    """--batch-size, --lr and the loss weights, with a domain's defaults."""
    options = [
        click.option(
            "--batch-size", default=64, show_default=True, type=click.IntRange(2)
        ),
        click.option(
            "--lr",
            "learning_rate",
            default=1e-3,
            show_default=True,
            type=click.FloatRange(min=0, min_open=True),
            help="Adam learning rate.",
        ),
        click.option(
            "--beta", default=beta, show_default=True, type=float, help="KL weight."
        ),
        click.option(
            "--gamma",
            default=gamma,
            show_default=True,
            type=float,
            help="AR weight (0 gives the beta-VAE baseline).",
        ),
        click.option(
            "--delta", default=delta, show_default=True, type=float, help="AR spread."
        ),
    ]

    def decorate(command):
        for option in reversed(options):
            command = option(command)
        return command

    return decorate


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False)


def refuse_overwrite(paths: list[Path], force: bool) -> None:
    """Check outputs before any work: no overwriting without ``force``, only
    regular files replaced, and a folder that can be written."""
    for path in paths:
        if path.exists() and not path.is_file():
            raise MelodyVAEError(f"{path}: exists and is not a regular file")
    for folder in {path.parent for path in paths}:
        existing_folder = folder
        while (
            not existing_folder.exists() and existing_folder != existing_folder.parent
        ):
            existing_folder = existing_folder.parent
        if not existing_folder.is_dir() or not os.access(existing_folder, os.W_OK):
            raise MelodyVAEError(f"{folder}: cannot write output there")
    existing = [p for p in paths if p.exists()]
    if existing and not force:
        more = (
            f" (and {len(existing) - 1} more output files)" if len(existing) > 1 else ""
        )
        raise MelodyVAEError(
            f"{existing[0]} already exists{more}; use --force to overwrite"
        )


class TrainingProgress:
    """Progress bars for a training run on stderr: one per stage (reading a
    corpus, building data) and one over the batches of the current epoch.
    Its methods are the trainers' callbacks."""

    def __init__(self, progress, epochs: int) -> None:
        self.progress = progress
        self.epochs = epochs
        self.tasks: dict[str, Any] = {}

    def on_stage(self, text: str, total: int | None = None) -> None:
        """Start (or rename) the stage bar; ``total`` steps, or unknown."""
        if "stage" not in self.tasks:
            self.tasks["stage"] = self.progress.add_task(text, total=total)
        self.progress.update(self.tasks["stage"], description=text, total=total)

    def advance_stage(self) -> None:
        self.progress.advance(self.tasks["stage"])

    def on_batch(self, done: int, total: int) -> None:
        if "epoch" not in self.tasks:
            self.tasks["epoch"] = self.progress.add_task(
                f"epoch 1/{self.epochs}", total=total
            )
        self.progress.update(self.tasks["epoch"], completed=done, total=total)

    def on_epoch(self, metrics: dict[str, Any]) -> None:
        # After the last epoch the trainer reports once more (the test split).
        epoch = min(metrics["epoch"] + 1, self.epochs)
        self.progress.update(
            self.tasks["epoch"], completed=0, description=f"epoch {epoch}/{self.epochs}"
        )


@contextmanager
def training_progress(epochs: int):
    """A :class:`TrainingProgress` shown while the block runs, gone after it."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console(stderr=True), transient=True) as progress:
        yield TrainingProgress(progress, epochs)


def check_device(device: str) -> None:
    import torch

    try:
        torch.zeros(1, device=device).sum().item()
    except (RuntimeError, AssertionError, NotImplementedError) as error:
        raise MelodyVAEError(
            f"device {device!r} is not usable here ({error})"
        ) from None


METRIC_ROWS = (
    ("interpretability", "interpretability"),
    ("mig", "MIG"),
    ("sap", "SAP"),
    ("modularity", "modularity"),
    ("scc", "SCC"),
    ("spearman", "Spearman, own dim"),
    ("traversal_spearman", "traversal Spearman"),
    ("traversal_crosstalk", "traversal crosstalk (sd)"),
)
