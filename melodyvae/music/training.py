"""Training the measure AR-VAE on a corpus, and loading trained models.

A trained model is a checkpoint (see :mod:`melodyvae.core.checkpoint`) whose JSON
holds the model config, the vocabulary, the meters it serves, the attribute names
with their latent dims, the corpus and split identity, the training settings and
command, and its held-out metrics.

By default a model is trained on the bars of every meter with a grid that the
corpus has. Bars of more than one grid make a meter-aware model (see
:mod:`melodyvae.music.model`) whose batches each hold bars of one grid: the AR loss
then compares only bars of one meter, so every regularised axis orders the bars of
each meter among themselves (a 6/8 bar with +1.5 on the density axis is dense *for a
jig*), and a code drawn from the prior suits any meter. Bars of a single grid
(``meters=("4/4", "2/2")``) make the single-grid model, exactly as before meters
were modelled.
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
from melodyvae.music.model import MeasureBatch, MeasureVAE, MeasureVAEConfig
from melodyvae.music.tokens import (
    MAX_SLOTS,
    SUPPORTED_METERS,
    Grid,
    Vocabulary,
    canonical_meter,
    grid_for_meter,
    transpose_tokens,
    transposition_bounds,
)

logger = logging.getLogger(__name__)

MODEL_KIND = "melodyvae.music.MeasureVAE"
FOUR_BEAT_METERS = ("4/4", "2/2")
# Every meter with a grid, 4/4 first: a model's first meter is its default one.
ALL_METERS = ("4/4", "2/2", "2/4", "3/4", "6/8", "9/8", "12/8")
# Group labels of grouped splits: the index of a bar's grid in this tuple.
GRID_METERS = tuple(dict.fromkeys(canonical_meter(m) for m in SUPPORTED_METERS))
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CHECKPOINT = REPO_ROOT / "checkpoints" / "folk"
SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class MusicTrainOptions:
    """Music-specific training options.

    ``max_transpose`` bounds the random per-measure transposition (semitones, both
    ways, only where the measure stays inside the vocabulary). ``meters`` are the
    meters to train on (None: every meter with a grid); those whose grid has no
    bar in the training split are left out. Teacher forcing falls linearly from
    ``teacher_forcing_start`` in the first epoch to ``teacher_forcing_end`` in the
    last; below 1 the decoder feeds back its own argmax with that probability
    (scheduled sampling).
    """

    max_transpose: int = 6
    teacher_forcing_start: float = 1.0
    teacher_forcing_end: float = 0.5
    meters: tuple[str, ...] | None = None


@dataclass
class TrainedModel:
    """A model rebuilt from a checkpoint, with what it needs to encode and decode.

    ``meters`` are the meters it serves, the first being its default; ``grid`` is
    that default meter's grid.
    """

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

    @property
    def meter_aware(self) -> bool:
        return self.model is not None and self.model.config.meter_aware

    def meter_index(self, meter: str) -> int | None:
        """Index of ``meter``'s grid in a meter-aware model (None otherwise)."""
        if not self.meter_aware:
            return None
        return self.model.config.meters.index(canonical_meter(meter))


def _teacher_forcing(options: MusicTrainOptions, epochs: int) -> Callable[[int], dict]:
    def schedule(epoch: int) -> dict[str, float]:
        progress = (epoch - 1) / max(epochs - 1, 1)
        start, end = options.teacher_forcing_start, options.teacher_forcing_end
        return {"teacher_forcing": start + (end - start) * progress}

    return schedule


def make_batch_maker(
    vocab: Vocabulary, max_transpose: int, model_meters: tuple[str, ...] = ()
):
    """Token batches as tensors; with an rng, each measure randomly transposed.

    With ``model_meters`` (a meter-aware model's grids) batches come from grouped
    splits: ``group`` indexes :data:`GRID_METERS`, the padded tokens are cut to
    that grid's length and the batch is a :class:`MeasureBatch`.
    """

    def make_batch(
        tokens: np.ndarray, rng: np.random.Generator | None, group: int | None = None
    ) -> torch.Tensor | MeasureBatch:
        meter = None
        if group is not None:
            meter = GRID_METERS[group]
            tokens = tokens[:, : grid_for_meter(meter).n_slots]
        tokens = tokens.astype(np.int64)
        if rng is not None and max_transpose > 0:
            down, up = transposition_bounds(tokens, vocab)
            low = np.maximum(down, -max_transpose)
            high = np.minimum(up, max_transpose)
            shifts = low + np.floor(rng.random(len(tokens)) * (high - low + 1))
            tokens = transpose_tokens(tokens, shifts.astype(np.int64), vocab)
        if meter is None:
            return torch.from_numpy(tokens)
        index = model_meters.index(meter)
        return MeasureBatch(torch.from_numpy(tokens), torch.full((len(tokens),), index))

    return make_batch


def corpus_split(
    corpus: Corpus, split: str, meters: tuple[str, ...], *, grouped: bool = False
) -> Split:
    """Tokens and attributes (N, 4) of one split's bars of ``meters`` (no pickups).

    Without ``grouped`` the meters must share one grid and tokens are (N, T) of it.
    With ``grouped`` tokens are (N, 24) padded with -1 and ``groups`` holds each
    bar's grid as an index into :data:`GRID_METERS` (see :func:`split_meters`).
    """
    rows = corpus.select(meters, split)
    if not grouped:
        grids = {canonical_meter(m) for m in meters}
        if len(grids) != 1:
            raise MelodyVAEError(f"meters {', '.join(meters)} have different grids")
        grid = grid_for_meter(meters[0])
        tokens = corpus.tokens[rows, : grid.n_slots].astype(np.int64)
        return Split(tokens, compute_attributes(tokens, grid))
    tokens = corpus.tokens[rows, :MAX_SLOTS].astype(np.int64)
    bar_meters = corpus.meters[rows]
    groups = np.array(
        [GRID_METERS.index(canonical_meter(m)) for m in bar_meters], dtype=np.int64
    ).reshape(-1)
    return Split(tokens, compute_attributes(tokens, bar_meters), groups)


def split_meters(split: Split, trained: TrainedModel) -> np.ndarray | None:
    """The grid (canonical meter) of every bar of a grouped split; None for a
    split of one grid (whose bars have the model's default grid)."""
    if split.groups is None:
        return None
    return np.array(GRID_METERS)[split.groups]


def evaluation_meters(trained: TrainedModel) -> tuple[str, ...]:
    """The meters ``melodyvae evaluate`` scores a model on: for a meter-aware model
    its 4/4 and 2/2 bars, comparable with a 4-beat model's numbers (all its meters
    if it serves neither); for a single-grid model every meter it serves."""
    if not trained.meter_aware:
        return trained.meters
    four_beat = tuple(m for m in trained.meters if m in FOUR_BEAT_METERS)
    return four_beat or trained.meters


def model_split(corpus: Corpus, split: str, trained: TrainedModel) -> Split:
    """One split's bars of the meters :func:`evaluation_meters` gives, grouped
    by meter for a meter-aware model."""
    meters = evaluation_meters(trained)
    return corpus_split(corpus, split, meters, grouped=trained.meter_aware)


def held_out_metrics(trained: TrainedModel, split: Split) -> dict[str, Any]:
    """Free-running argmax reconstruction on posterior means, and latent Spearman.

    ``recon_accuracy`` counts every slot; ``onset_accuracy`` only slots where the
    true token is a pitch onset (the hold-dominated total flatters a model). A
    grouped split (meter-aware model) also gives these per meter in ``per_meter``.
    """
    from melodyvae.music.generation import decode_latents, encode_measures

    meters = split_meters(split, trained)
    latent_means = encode_measures(trained, split.inputs, meters)
    decoded = decode_latents(trained, latent_means, meters, width=split.inputs.shape[1])
    metrics = _reconstruction(trained, split, latent_means, decoded, split.inputs)
    if meters is not None:
        metrics["per_meter"] = {}
        for meter in dict.fromkeys(meters.tolist()):
            rows = np.flatnonzero(meters == meter)
            part = Split(split.inputs[rows], split.attributes[rows])
            metrics["per_meter"][meter] = _reconstruction(
                trained, part, latent_means[rows], decoded[rows], part.inputs
            )
    return metrics


def _reconstruction(
    trained: TrainedModel,
    split: Split,
    latents: np.ndarray,
    decoded: np.ndarray,
    tokens: np.ndarray,
) -> dict[str, Any]:
    real = tokens >= 0  # padding of measures shorter than the widest is not scored
    hits = (decoded == tokens)[real]
    onsets = trained.vocab.is_onset(tokens)
    onset_hits = (decoded == tokens)[onsets]
    rho = spearman_per_attribute(latents, split.attributes, trained.reg_dims)
    return {
        "n_measures": int(len(tokens)),
        "recon_accuracy": float(hits.mean()),
        "onset_accuracy": float(onset_hits.mean()) if onsets.any() else None,
        "spearman": dict(zip(ATTRIBUTE_NAMES, rho, strict=True)),
    }


def _served_meters(
    corpus: Corpus, corpus_name: str, requested: tuple[str, ...] | None
) -> tuple[str, ...]:
    """The requested meters (default: all) whose grid has bars in the training
    split (2/2 bars alone serve 4/4 too: the two share a grid)."""
    wanted = requested or ALL_METERS
    for meter in wanted:
        grid_for_meter(meter)
    present = {canonical_meter(m) for m in wanted if len(corpus.select((m,), "train"))}
    served = tuple(m for m in wanted if canonical_meter(m) in present)
    missing = [m for m in wanted if m not in served]
    if not served:
        raise MelodyVAEError(
            f"corpus {corpus_name} has no {' or '.join(wanted)} bars in its train split"
        )
    if missing:
        logger.log(
            logging.WARNING if requested else logging.INFO,
            "corpus %s has no training bars of %s: the model serves %s",
            corpus_name,
            ", ".join(missing),
            ", ".join(served),
        )
    return served


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
    if options.meters is not None:
        for meter in options.meters:
            grid_for_meter(meter)
    if latent_dim < len(ATTRIBUTE_NAMES):
        raise MelodyVAEError(
            f"latent size {latent_dim} is below the {len(ATTRIBUTE_NAMES)} "
            "regularised attributes"
        )

    corpus = load_corpus(
        corpus_name, vocab=vocab, on_start=on_corpus_start, on_file=on_corpus_file
    )
    meters = _served_meters(corpus, corpus_name, options.meters)
    grids = tuple(dict.fromkeys(canonical_meter(m) for m in meters))
    meter_aware = len(grids) > 1
    splits = {s: corpus_split(corpus, s, meters, grouped=meter_aware) for s in SPLITS}
    for name, split in splits.items():
        if len(split) == 0:
            raise MelodyVAEError(
                f"corpus {corpus_name} has no {' or '.join(meters)} bars "
                f"in its {name} split"
            )
    logger.info(
        "measures: %s",
        " ".join(f"{name}={len(split)}" for name, split in splits.items()),
    )

    torch.manual_seed(config.seed)
    model_config = MeasureVAEConfig(
        vocab_size=vocab.size,
        n_beats=max(grid_for_meter(m).n_beats for m in grids),
        latent_dim=latent_dim,
        meters=grids if meter_aware else (),
    )
    model = MeasureVAE(model_config)
    init_record = None
    if init_from is not None:
        start = load_trained_model(init_from)
        if start.model.config != model_config or start.vocab != vocab:
            raise MelodyVAEError(
                f"{start.path}: its model ({start.model.config.latent_dim}-d latent, "
                f"meters {', '.join(start.meters)}) differs from the one asked for "
                f"({latent_dim}-d latent, meters {', '.join(meters)})"
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
        "meters": list(meters),
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
        make_batch_maker(vocab, options.max_transpose, model_config.meters),
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

    # Held-out metrics and the calibration of the best checkpoint, stored with it.
    from melodyvae.music.calibration import calibrate_model

    trained = load_trained_model(stem)
    metrics = held_out_metrics(trained, splits["test"])
    final_meta = {
        **trained.meta,
        "test_metrics": metrics,
        "calibration": calibrate_model(trained, corpus).to_dict(),
        "history": result["history"],
    }
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
        meters = tuple(meta["meters"])
        if not meters:
            raise ValueError("it serves no meter")
        for meter in meters:
            grid = grid_for_meter(meter)
            if config.meter_aware and canonical_meter(meter) not in config.meters:
                raise ValueError(f"meter {meter} has no embedding in the model")
            if not config.meter_aware and grid.n_beats != config.n_beats:
                raise ValueError(f"meter {meter} is not a {config.n_beats}-beat meter")
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
