"""Checkpoints: safetensors weights plus a JSON description, never pickled code.

A checkpoint named ``STEM`` is two files: ``STEM.safetensors`` (the weights) and
``STEM.json`` (the model config, vocabulary, attributes, corpus, training command
and metrics — everything needed to rebuild the model on its own). ``STEM`` may be
given with or without either suffix.

Resuming an interrupted run uses a third file, ``STEM.resume.pt``: the last epoch's
weights and optimiser state, read back with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from melodyvae.errors import CheckpointError

FORMAT_VERSION = 1
SUFFIXES = (".safetensors", ".json", ".resume.pt")


def checkpoint_stem(path: str | Path) -> Path:
    """``path`` without any checkpoint suffix."""
    text = str(path)
    for suffix in SUFFIXES:
        if text.endswith(suffix):
            return Path(text[: -len(suffix)])
    return Path(text)


def _atomic_write(path: Path, write: Any) -> None:
    """Write through a temporary file in the same folder, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    try:
        write(temporary)
        # mkstemp creates the file private; give it the usual permissions.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def save_checkpoint(
    stem: str | Path, state_dict: dict[str, torch.Tensor], meta: dict[str, Any]
) -> Path:
    """Write ``stem.safetensors`` and ``stem.json``; returns the stem."""
    stem = checkpoint_stem(stem)
    tensors = {k: v.detach().cpu().contiguous() for k, v in state_dict.items()}
    meta = {"format_version": FORMAT_VERSION, **meta}
    _atomic_write(
        stem.with_name(stem.name + ".safetensors"), lambda p: save_file(tensors, p)
    )
    text = json.dumps(meta, indent=2, sort_keys=False) + "\n"
    _atomic_write(
        stem.with_name(stem.name + ".json"), lambda p: Path(p).write_text(text)
    )
    return stem


def weights_fingerprint(state_dict: dict[str, torch.Tensor]) -> str:
    """A SHA-256 of the weights: every tensor's name, dtype, shape and values, in
    name order. What is fitted to one set of weights (a calibration) records it,
    so that weights swapped under it are noticed."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_description(stem: str | Path, meta: dict[str, Any]) -> Path:
    """Rewrite ``stem.json`` alone (the weights stay as they are), atomically."""
    stem = checkpoint_stem(stem)
    text = json.dumps({"format_version": FORMAT_VERSION, **meta}, indent=2) + "\n"
    path = stem.with_name(stem.name + ".json")
    _atomic_write(path, lambda p: Path(p).write_text(text))
    return path


def load_checkpoint(stem: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Weights and description of a checkpoint.

    Raises :class:`CheckpointError` naming the file when either part is missing,
    unreadable or of another format version.
    """
    stem = checkpoint_stem(stem)
    weights_path = stem.with_name(stem.name + ".safetensors")
    meta_path = stem.with_name(stem.name + ".json")
    for path in (weights_path, meta_path):
        if not path.is_file():
            raise CheckpointError(f"{path}: checkpoint file not found")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise CheckpointError(
            f"{meta_path}: not a checkpoint description ({error})"
        ) from None
    if not isinstance(meta, dict):
        raise CheckpointError(f"{meta_path}: not a checkpoint description")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(
            f"{meta_path}: checkpoint format {meta.get('format_version')!r}, "
            f"this version of melodyvae reads format {FORMAT_VERSION}"
        )
    try:
        state = load_file(str(weights_path))
    except (OSError, SafetensorError) as error:
        raise CheckpointError(f"{weights_path}: unreadable weights ({error})") from None
    bad = [name for name, tensor in state.items() if not tensor.isfinite().all()]
    if bad:
        raise CheckpointError(f"{weights_path}: weights {bad[0]} hold NaN or infinity")
    return state, meta


def resume_path(stem: str | Path) -> Path:
    stem = checkpoint_stem(stem)
    return stem.with_name(stem.name + ".resume.pt")


def save_resume_state(stem: str | Path, state: dict[str, Any]) -> None:
    """Write the state needed to resume training (tensors and plain values only)."""
    _atomic_write(resume_path(stem), lambda p: torch.save(state, p))


def load_resume_state(stem: str | Path) -> dict[str, Any]:
    path = resume_path(stem)
    if not path.is_file():
        raise CheckpointError(f"{path}: no saved training state to resume from")
    try:
        return torch.load(path, weights_only=True, map_location="cpu")
    except (OSError, RuntimeError) as error:
        raise CheckpointError(f"{path}: unreadable training state ({error})") from None
