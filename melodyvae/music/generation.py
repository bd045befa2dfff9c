"""Sampling, interpolating and editing measures with a trained model.

Every function works on token arrays or :class:`Melody` objects and returns new
ones; writing files is the caller's business (see :mod:`melodyvae.music.writing`).
Latent shifts are in prior standard deviations: the prior is N(0, I), so a shift of
+1.5 on the note-density axis moves a measure 1.5 prior sds towards denser bars.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
import torch

from melodyvae.errors import MelodyVAEError, UnsupportedError
from melodyvae.music.attributes import ATTRIBUTE_NAMES, compute_attributes
from melodyvae.music.melody import Melody, Note
from melodyvae.music.tokens import (
    BarSkipped,
    bars_to_melody,
    melody_to_bar_tokens,
    tokens_to_notes,
)
from melodyvae.music.training import TrainedModel

BATCH = 512


def encode_measures(trained: TrainedModel, tokens: np.ndarray) -> np.ndarray:
    """Posterior means (N, Z) of token measures (N, T)."""
    means = []
    with torch.no_grad():
        for start in range(0, len(tokens), BATCH):
            batch = torch.as_tensor(tokens[start : start + BATCH], dtype=torch.long)
            mu, _ = trained.model.encode(batch)
            means.append(mu)
    if not means:
        return np.zeros((0, trained.model.config.latent_dim), dtype=np.float32)
    return torch.cat(means).numpy()


def decode_latents(
    trained: TrainedModel,
    latents: np.ndarray,
    *,
    temperature: float = 0.0,
    seed: int | None = None,
) -> np.ndarray:
    """Token measures (N, T) decoded from latent codes (N, Z).

    ``temperature`` 0 takes the most likely token at every slot; above 0 samples.
    """
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    decoded = []
    with torch.no_grad():
        for start in range(0, len(latents), BATCH):
            z = torch.as_tensor(latents[start : start + BATCH], dtype=torch.float32)
            tokens, _ = trained.model.decode_free(
                z, temperature=temperature, generator=generator
            )
            decoded.append(tokens)
    return torch.cat(decoded).numpy() if decoded else np.zeros((0, 0), dtype=int)


def sample_measures(
    trained: TrainedModel, n: int, *, temperature: float = 0.0, seed: int = 0
) -> np.ndarray:
    """``n`` new measures (n, T): codes drawn from the prior N(0, I), then decoded."""
    if n < 1:
        raise MelodyVAEError(f"number of samples must be at least 1, got {n}")
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn(n, trained.model.config.latent_dim, generator=generator)
    return decode_latents(
        trained, latents.numpy(), temperature=temperature, seed=seed + 1
    )


def measures_to_melody(
    trained: TrainedModel,
    tokens: np.ndarray,
    title: str = "melodyvae",
    like: Melody | None = None,
) -> Melody:
    """One melody of the given measures in sequence.

    The meter is the model's first one; with ``like``, the meter of its first bar
    the model takes (so cut-time reels stay in 2/2), with its key and tempo.
    """
    meter = trained.meters[0]
    key = tempo_qpm = None
    if like is not None:
        meter = next((b.meter for b in like.bars if b.meter in trained.meters), meter)
        key, tempo_qpm = like.key, like.tempo_qpm
    return bars_to_melody(
        list(tokens),
        [meter] * len(tokens),
        trained.vocab,
        title=title,
        tempo_qpm=tempo_qpm,
        key=key,
    )


def interpolate_latents(start: np.ndarray, end: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` codes evenly spaced from ``start`` to ``end``, both included."""
    if steps < 2:
        raise MelodyVAEError(f"interpolation needs at least 2 steps, got {steps}")
    weights = np.linspace(0.0, 1.0, steps, dtype=np.float32)
    shape = (steps,) + (1,) * start.ndim
    return (1 - weights.reshape(shape)) * start[None] + weights.reshape(shape) * end[
        None
    ]


# -- whole tunes ----------------------------------------------------------------------


@dataclass
class EncodableBars:
    """The bars of a melody that the model can take, with the others' reasons."""

    melody: Melody
    tokens: dict[int, np.ndarray] = field(default_factory=dict)  # bar index → tokens
    reasons: dict[int, str] = field(default_factory=dict)  # bar index → why not

    @property
    def indices(self) -> list[int]:
        return sorted(self.tokens)


def encodable_bars(trained: TrainedModel, melody: Melody) -> EncodableBars:
    """Tokenise every bar of ``melody`` that fits the model's meters and window.

    Pickup bars are left as they are (they are mostly rest, and the model was
    trained on complete bars).
    """
    result = EncodableBars(melody)
    for bar, tokens in zip(
        melody.bars, melody_to_bar_tokens(melody, trained.vocab), strict=True
    ):
        if bar.meter not in trained.meters:
            result.reasons[bar.index] = (
                f"meter {bar.meter} (model takes {', '.join(trained.meters)})"
            )
        elif bar.pickup:
            result.reasons[bar.index] = "pickup bar"
        elif isinstance(tokens, BarSkipped):
            result.reasons[bar.index] = str(tokens)
        else:
            result.tokens[bar.index] = tokens
    return result


def _clip_last(notes: list[Note], at: Fraction) -> None:
    """Shorten the last note so it ends by ``at`` (drop it if nothing is left)."""
    if notes and notes[-1].end > at:
        last = notes.pop()
        if last.onset < at:
            notes.append(Note(last.onset, at - last.onset, last.pitch))


def replace_bars(
    melody: Melody, new_tokens: dict[int, np.ndarray], trained: TrainedModel
) -> Melody:
    """``melody`` with the bars in ``new_tokens`` replaced; every other bar identical.

    A note of a kept bar that was tied into a replaced bar is cut at the barline; a
    note tied out of a replaced bar into a kept one is struck again at the barline.
    """
    notes: list[Note] = []
    previous_replaced = False
    for bar in melody.bars:
        if bar.index in new_tokens:
            _clip_last(notes, bar.start)
            bar_notes, leading_hold = tokens_to_notes(
                new_tokens[bar.index], trained.grid, trained.vocab, bar.start
            )
            if leading_hold and notes and notes[-1].end == bar.start:
                held_until = bar_notes[0].onset if bar_notes else bar.end
                last = notes.pop()
                notes.append(Note(last.onset, held_until - last.onset, last.pitch))
            notes.extend(bar_notes)
            previous_replaced = True
            continue
        for note in melody.notes:
            if note.onset >= bar.end:
                break
            starts_here = note.onset >= bar.start
            tied_in = note.onset < bar.start < note.end
            if starts_here:
                notes.append(note)
            elif tied_in and previous_replaced:
                _clip_last(notes, bar.start)
                notes.append(Note(bar.start, note.end - bar.start, note.pitch))
        previous_replaced = False
    return Melody(
        title=melody.title,
        notes=notes,
        bars=list(melody.bars),
        key=melody.key,
        tempo_qpm=melody.tempo_qpm,
        source=melody.source,
        pickup_length=melody.pickup_length,
    )


@dataclass
class BarReport:
    """One bar of an edit: its status and attributes before and after."""

    index: int
    status: str  # "edited" or "kept"
    reason: str | None
    before: dict[str, float] | None
    after: dict[str, float] | None


def edit_melody(
    trained: TrainedModel,
    melody: Melody,
    shifts: dict[str, float],
    *,
    bars: set[int] | None = None,
) -> tuple[Melody, list[BarReport]]:
    """Move the named attributes' latent dims of each bar by the given shifts.

    ``shifts`` maps attribute names to shifts in prior standard deviations. Bars the
    model cannot take (other meters, off-grid rhythms, the pickup) stay as they are
    and are reported. ``bars`` limits the edit to those bar indices. Raises
    :class:`UnsupportedError` when no bar can be edited.
    """
    unknown = sorted(set(shifts) - set(trained.attribute_dims))
    if unknown:
        raise MelodyVAEError(
            f"unknown attribute {', '.join(unknown)} "
            f"(accepted: {', '.join(ATTRIBUTE_NAMES)})"
        )
    name = melody.source or melody.title
    if bars is not None:
        numbers = [bar.index for bar in melody.bars]
        missing = sorted(set(bars) - set(numbers))
        if missing:
            raise MelodyVAEError(
                f"{name}: no bar {', '.join(map(str, missing[:5]))} "
                f"(its bars are numbered {numbers[0]}-{numbers[-1]})"
            )
    encodable = encodable_bars(trained, melody)
    indices = [i for i in encodable.indices if bars is None or i in bars]
    if not indices:
        reasons = sorted(set(encodable.reasons.values()))
        raise UnsupportedError(
            f"{name}: no bar this model can edit"
            + (f" ({'; '.join(reasons[:3])})" if reasons else "")
        )

    tokens = np.stack([encodable.tokens[i] for i in indices])
    latents = encode_measures(trained, tokens)
    for name, shift in shifts.items():
        latents[:, trained.attribute_dims[name]] += shift
    decoded = decode_latents(trained, latents)
    edited = replace_bars(melody, dict(zip(indices, decoded, strict=True)), trained)

    before = compute_attributes(tokens, trained.grid)
    after = compute_attributes(decoded, trained.grid)
    reports = []
    position = {index: row for row, index in enumerate(indices)}
    for bar in melody.bars:
        if bar.index in position:
            row = position[bar.index]
            reports.append(
                BarReport(
                    bar.index,
                    "edited",
                    None,
                    dict(zip(ATTRIBUTE_NAMES, before[row].tolist(), strict=True)),
                    dict(zip(ATTRIBUTE_NAMES, after[row].tolist(), strict=True)),
                )
            )
        else:
            reason = encodable.reasons.get(bar.index, "outside the selected bars")
            reports.append(BarReport(bar.index, "kept", reason, None, None))
    return edited, reports
