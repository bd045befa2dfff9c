"""Training the measure AR-VAE on a corpus, and loading trained models.

A trained model is a checkpoint (see :mod:`melodyvae.core.checkpoint`) whose JSON
holds the model config, the vocabulary, the meters it serves, the attribute names
with their latent dims, the corpus and split identity, the training settings and
command, and its held-out metrics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from melodyvae.core.checkpoint import (
    checkpoint_stem,
    load_checkpoint,
    save_checkpoint,
)
from melodyvae.core.metrics import spearman_per_attribute
from melodyvae.core.trainer import Split, TrainConfig, train
from melodyvae.errors import CheckpointError, MelodyVAEError
from melodyvae.music.attributes import ATTRIBUTE_NAMES, compute_attributes
from melodyvae.music.corpora import Corpus, load_corpus
from melodyvae.music.model import MeasureVAE, MeasureVAEConfig
from melodyvae.music.tokens import (
    Grid,
    Vocabulary,
    grid_for_meter,
    transpose_tokens,
    transposition_bounds,
)

logger = logging.getLogger(__name__)

MODEL_KIND = "melodyvae.music.MeasureVAE"
DEFAULT_METERS = ("4/4", "2/2")
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "folk"
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class MusicTrainOptions:
    """Music-specific training options.

    ``max_transpose`` bounds the random per-measure transposition (semitones, both
    ways, only where the measure stays inside the vocabulary). Teacher forcing falls
    linearly from ``teacher_forcing_start`` in the first epoch to
    ``teacher_forcing_end`` in the last; below 1 the decoder feeds back its own
    argmax with that probability (scheduled sampling).
    """

    max_transpose: int = 6
    teacher_forcing_start: float = 1.0
    teacher_forcing_end: float = 0.5
    meters: tuple[str, ...] = DEFAULT_METERS


@dataclass
class TrainedModel:
    """A model rebuilt from a checkpoint, with what it needs to encode and decode."""

    model: MeasureVAE
    vocab: Vocabulary
    grid: Grid
    meters: tuple[str, ...]
    attribute_dims: dict[str, int]
    meta: dict[str, Any]
    path: Path

    @property
    def reg_dims(self) -> list[int]:
        return [self.attribute_dims[name] for name in ATTRIBUTE_NAMES]


def _teacher_forcing(options: MusicTrainOptions, epochs: int) -> Callable[[int], dict]:
    def schedule(epoch: int) -> dict[str, float]:
        progress = (epoch - 1) / max(epochs - 1, 1)
        start, end = options.teacher_forcing_start, options.teacher_forcing_end
        return {"teacher_forcing": start + (end - start) * progress}

    return schedule


def make_batch_maker(vocab: Vocabulary, max_transpose: int):
    """Token batches as tensors; with an rng, each measure randomly transposed."""

    def make_batch(tokens: np.ndarray, rng: np.random.Generator | None) -> torch.Tensor:
        tokens = tokens.astype(np.int64)
        if rng is not None and max_transpose > 0:
            down, up = transposition_bounds(tokens, vocab)
            low = np.maximum(down, -max_transpose)
            high = np.minimum(up, max_transpose)
            shifts = low + np.floor(rng.random(len(tokens)) * (high - low + 1))
            tokens = transpose_tokens(tokens, shifts.astype(np.int64), vocab)
        return torch.from_numpy(tokens)

    return make_batch


def corpus_split(corpus: Corpus, split: str, grid: Grid, meters: tuple[str, ...]):
    """Tokens (N, T) and attributes (N, 4) of one split's bars of ``meters``."""
    rows = corpus.select(meters, split)
    tokens = corpus.tokens[rows, : grid.n_slots].astype(np.int64)
    return Split(tokens, compute_attributes(tokens, grid))


def held_out_metrics(
    trained: MeasureVAE, split: Split, vocab: Vocabulary, reg_dims: list[int]
) -> dict[str, Any]:
    """Free-running argmax reconstruction on posterior means, and latent Spearman.

    ``recon_accuracy`` counts every slot; ``onset_accuracy`` only slots where the
    true token is a pitch onset (the hold-dominated total flatters a model).
    """
    tokens = torch.from_numpy(split.inputs)
    trained.eval()
    decoded, latents = [], []
    with torch.no_grad():
        for start in range(0, len(tokens), 512):
            batch = tokens[start : start + 512]
            mu, _ = trained.encode(batch)
            out, _ = trained.decode_free(mu)
            decoded.append(out)
            latents.append(mu)
    decoded_tokens = torch.cat(decoded).numpy()
    latent_means = torch.cat(latents).numpy()
    hits = decoded_tokens == split.inputs
    onsets = vocab.is_onset(split.inputs)
    rho = spearman_per_attribute(latent_means, split.attributes, reg_dims)
    return {
        "n_measures": int(len(tokens)),
        "recon_accuracy": float(hits.mean()),
        "onset_accuracy": float(hits[onsets].mean()) if onsets.any() else None,
        "spearman": dict(zip(ATTRIBUTE_NAMES, rho, strict=True)),
    }


def train_music_model(
    corpus_name: str,
    out: str | Path,
    config: TrainConfig,
    *,
    options: MusicTrainOptions | None = None,
    latent_dim: int = 32,
    init_from: str | Path | None = None,
    resume: bool = False,
    command: str = "",
    on_corpus_start: Callable[[int], None] | None = None,
    on_corpus_file: Callable[[str, int], None] | None = None,
    on_batch: Callable[[int, int], None] | None = None,
    on_epoch: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Train on ``corpus_name`` and write the best checkpoint to ``out``.

    Returns the training history, the best epoch and the held-out (test split)
    metrics of the best checkpoint, which are also stored in its JSON.
    ``init_from`` starts from a trained checkpoint's weights (fine-tuning, or a
    longer schedule); its own training record is kept in the new JSON.
    """
    options = options or MusicTrainOptions()
    vocab = Vocabulary()
    grids = {grid_for_meter(m) for m in options.meters}
    if len({(g.n_beats, g.beat_length, g.compound) for g in grids}) != 1:
        raise MelodyVAEError(
            f"meters {', '.join(options.meters)} do not share one grid; "
            "this model takes measures of one grid"
        )
    grid = grid_for_meter(options.meters[0])
    if latent_dim < len(ATTRIBUTE_NAMES):
        raise MelodyVAEError(
            f"latent size {latent_dim} is below the {len(ATTRIBUTE_NAMES)} "
            "regularised attributes"
        )

    corpus = load_corpus(
        corpus_name, vocab=vocab, on_start=on_corpus_start, on_file=on_corpus_file
    )
    splits = {s: corpus_split(corpus, s, grid, options.meters) for s in SPLITS}
    for name, split in splits.items():
        if len(split) == 0:
            raise MelodyVAEError(
                f"corpus {corpus_name} has no {' or '.join(options.meters)} bars "
                f"in its {name} split"
            )
    logger.info(
        "measures: %s",
        " ".join(f"{name}={len(split)}" for name, split in splits.items()),
    )

    torch.manual_seed(config.seed)
    model_config = MeasureVAEConfig(
        vocab_size=vocab.size, n_beats=grid.n_beats, latent_dim=latent_dim
    )
    model = MeasureVAE(model_config)
    init_record = None
    if init_from is not None:
        start = load_trained_model(init_from)
        if start.model.config != model_config or start.vocab != vocab:
            raise MelodyVAEError(
                f"{start.path}: its model ({start.model.config.latent_dim}-d latent, "
                f"{start.meters}) differs from the one asked for"
            )
        model.load_state_dict(start.model.state_dict())
        init_record = {
            "checkpoint": str(start.path),
            "training": start.meta.get("training"),
            "best_epoch": start.meta.get("best_epoch", {}).get("epoch"),
        }
    stem = checkpoint_stem(out)
    attribute_dims = dict(zip(ATTRIBUTE_NAMES, config.reg_dims, strict=True))
    meta = {
        "model": MODEL_KIND,
        "model_config": model_config.to_dict(),
        "vocabulary": vocab.to_dict(),
        "meters": list(options.meters),
        "attributes": [{"name": n, "dim": d} for n, d in attribute_dims.items()],
        "corpus": {
            **corpus.identity(),
            "split": "by tune hash, train/valid/test = 80/10/10 %",
            "n_measures": {name: len(split) for name, split in splits.items()},
        },
        "training": {
            **config.to_dict(),
            "max_transpose": options.max_transpose,
            "teacher_forcing_start": options.teacher_forcing_start,
            "teacher_forcing_end": options.teacher_forcing_end,
            "command": command,
            "init_from": init_record,
        },
    }

    def save_best(current: torch.nn.Module, best: dict[str, Any]) -> None:
        save_checkpoint(stem, current.state_dict(), {**meta, "best_epoch": best})

    result = train(
        model,
        splits["train"],
        splits["valid"],
        config,
        make_batch_maker(vocab, options.max_transpose),
        train_kwargs=_teacher_forcing(options, config.epochs),
        eval_kwargs={"teacher_forcing": 0.0, "sample_latent": False},
        save_best=save_best,
        resume_stem=str(stem),
        resume=resume,
        run_identity={
            "corpus": corpus.identity(),
            "model": model_config.to_dict(),
            "settings": {
                key: value
                for key, value in meta["training"].items()
                if key not in ("epochs", "command", "device")
            },
        },
        on_batch=on_batch,
        on_epoch=on_epoch,
    )

    # Held-out metrics of the best checkpoint, stored with it.
    trained = load_trained_model(stem)
    metrics = held_out_metrics(trained.model, splits["test"], vocab, trained.reg_dims)
    final_meta = {**trained.meta, "test_metrics": metrics, "history": result["history"]}
    final_meta.pop("format_version", None)
    save_checkpoint(stem, trained.model.state_dict(), final_meta)
    return {**result, "test_metrics": metrics, "checkpoint": str(stem)}


def load_trained_model(path: str | Path | None = None) -> TrainedModel:
    """Rebuild a model from a checkpoint (default: the shipped folk model)."""
    stem = checkpoint_stem(path) if path is not None else DEFAULT_CHECKPOINT
    state, meta = load_checkpoint(stem)
    if meta.get("model") != MODEL_KIND:
        raise CheckpointError(f"{stem}.json: not a melody model ({meta.get('model')})")
    try:
        config = MeasureVAEConfig.from_dict(meta["model_config"])
        vocab = Vocabulary.from_dict(meta["vocabulary"])
        if not 0 <= vocab.pitch_min <= vocab.pitch_max <= 127:
            raise ValueError(f"vocabulary pitches {vocab.pitch_min}-{vocab.pitch_max}")
        if vocab.size != config.vocab_size:
            raise ValueError("vocabulary and model disagree on the number of tokens")
        for meter in meta["meters"]:
            grid_for_meter(meter)
        meters = tuple(meta["meters"])
        attribute_dims = {a["name"]: int(a["dim"]) for a in meta["attributes"]}
        model = MeasureVAE(config)
        model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, RuntimeError, MelodyVAEError) as error:
        raise CheckpointError(f"{stem}: inconsistent checkpoint ({error})") from None
    model.eval()
    return TrainedModel(
        model=model,
        vocab=vocab,
        grid=grid_for_meter(meters[0]),
        meters=meters,
        attribute_dims=attribute_dims,
        meta=meta,
        path=stem,
    )
