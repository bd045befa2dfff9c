"""Pieces the music and image command lines share: the terminal, output checks,
the device check and the rows of a metrics table."""

from __future__ import annotations

import os
from pathlib import Path

from melodyvae.errors import MelodyVAEError


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
