"""Evaluating a trained measure model on held-out bars.

Everything here is deterministic: bars are encoded to their posterior means, decoded
by argmax, and the k-nearest-neighbour mutual-information estimate uses a fixed seed.

Traversal control asks whether each regularised latent coordinate works as a
slider. A fixed, evenly spread subset of the held-out bars is encoded; for every
regularised dim the coordinate is set to each of ``TRAVERSAL_VALUES`` (−4 … +4 prior
sds) with the rest of the code kept, the codes are decoded and the four attributes
re-measured. ``traversal_spearman`` is the Spearman ρ between the coordinate value
and its attribute over all (bar, value) pairs. ``traversal_crosstalk`` is how far
the *other* attributes moved: the mean absolute difference from the same bar decoded
at its own code, in units of each attribute's standard deviation on the held-out
bars, averaged over the other attributes (0 = untouched, 1 = a typical bar-to-bar
difference).

A meter-aware model is evaluated here on whatever bars the split holds, each
decoded in its own meter; the command line gives it the 4/4 and 2/2 bars, so that
its numbers compare with those of a 4-beat model (see
:func:`melodyvae.music.training.evaluation_meters`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from melodyvae.core.metrics import disentanglement, spearman
from melodyvae.core.trainer import Split
from melodyvae.music.attributes import ATTRIBUTE_NAMES, compute_attributes
from melodyvae.music.calibration import Calibration
from melodyvae.music.generation import decode_latents, encode_measures
from melodyvae.music.training import TrainedModel, split_meters

TRAVERSAL_VALUES = np.linspace(-4.0, 4.0, 9)
TRAVERSAL_BARS = 256
METRIC_SEED = 0


def evenly_spread(n: int, k: int) -> np.ndarray:
    """``min(n, k)`` indices spread evenly over ``range(n)`` (deterministic)."""
    if n <= k:
        return np.arange(n)
    return np.linspace(0, n - 1, k).round().astype(np.int64)


def reconstruction(
    trained: TrainedModel,
    tokens: np.ndarray,
    latents: np.ndarray,
    meters: np.ndarray | None = None,
) -> dict[str, float | None]:
    """Free-running argmax token accuracy, over all slots and over onset slots.

    ``meters`` gives each bar's meter (tokens padded with -1 are not scored there).
    """
    decoded = decode_latents(trained, latents, meters, width=tokens.shape[1])
    hits = decoded == tokens
    onsets = trained.vocab.is_onset(tokens)
    return {
        "recon_accuracy": float(hits[tokens >= 0].mean()),
        "onset_accuracy": float(hits[onsets].mean()) if onsets.any() else None,
    }


def traversal(
    trained: TrainedModel,
    latents: np.ndarray,
    attribute_sd: np.ndarray,
    values: np.ndarray = TRAVERSAL_VALUES,
    meters: np.ndarray | None = None,
) -> dict[str, dict]:
    """Traversal control of every regularised dim over the codes ``latents``
    (decoded in ``meters``, one per code; None: the model's default meter)."""
    n_bars = len(latents)
    grid = trained.grid if meters is None else meters
    repeated = None if meters is None else np.tile(meters, len(values))
    own = compute_attributes(decode_latents(trained, latents, meters), grid)
    rho, crosstalk = {}, {}
    for index, (name, dim) in enumerate(
        zip(ATTRIBUTE_NAMES, trained.reg_dims, strict=True)
    ):
        codes = np.repeat(latents[None], len(values), axis=0)  # (V, N, Z)
        codes[:, :, dim] = values[:, None]
        decoded = decode_latents(
            trained, codes.reshape(len(values) * n_bars, -1), repeated
        )
        moved = compute_attributes(
            decoded, trained.grid if repeated is None else repeated
        ).reshape(len(values), n_bars, -1)
        coordinate = np.repeat(values, n_bars)
        rho[name] = spearman(coordinate, moved[:, :, index].reshape(-1))
        others = [i for i in range(len(ATTRIBUTE_NAMES)) if i != index]
        change = np.abs(moved[:, :, others] - own[None][:, :, others])
        scale = np.where(attribute_sd[others] > 0, attribute_sd[others], 1.0)
        crosstalk[name] = float((change / scale).mean())
    return {
        "traversal_spearman": _score(rho),
        "traversal_crosstalk": _score(crosstalk),
    }


def _score(per_attribute: dict[str, float]) -> dict:
    return {
        "mean": float(np.mean(list(per_attribute.values()))),
        "per_attribute": per_attribute,
    }


def evaluate_split(
    trained: TrainedModel,
    split: Split,
    *,
    traversal_bars: int = TRAVERSAL_BARS,
    progress=None,
) -> tuple[dict[str, Any], np.ndarray]:
    """All held-out metrics of ``trained`` on ``split``, and the latent means.

    ``progress``, if given, is called with a short description before each stage.
    The metrics dict is JSON-ready; see the module docstring for the traversal keys.
    """

    def stage(text: str) -> None:
        if progress is not None:
            progress(text)

    tokens, attributes = split.inputs, split.attributes
    meters = split_meters(split, trained)
    stage("encoding")
    latents = encode_measures(trained, tokens, meters)
    stage("reconstructing")
    metrics: dict[str, Any] = {"n_measures": int(len(tokens))}
    if meters is not None:
        metrics["meters"] = sorted(set(meters.tolist()))
    metrics.update(reconstruction(trained, tokens, latents, meters))
    stage("disentanglement metrics")
    metrics.update(
        disentanglement(latents, attributes, ATTRIBUTE_NAMES, seed=METRIC_SEED)
    )
    metrics["spearman"] = {
        name: spearman(latents[:, dim], attributes[:, i])
        for i, (name, dim) in enumerate(
            zip(ATTRIBUTE_NAMES, trained.reg_dims, strict=True)
        )
    }
    stage("traversals")
    subset = evenly_spread(len(tokens), traversal_bars)
    metrics["traversal_bars"] = int(len(subset))
    metrics["traversal_values"] = [float(v) for v in TRAVERSAL_VALUES]
    metrics.update(
        traversal(
            trained,
            latents[subset],
            attributes.std(axis=0),
            meters=None if meters is None else meters[subset],
        )
    )
    return metrics, latents


# -- edit benchmark -----------------------------------------------------------------

EDIT_CHANGES = (-2.0, -1.0, 1.0, 2.0)
EDIT_TRIES = (1, 8)
EDIT_BARS = 256


def edit_benchmark(
    trained: TrainedModel,
    calibration: Calibration,
    tokens: np.ndarray,
    meters: np.ndarray | None = None,
    *,
    changes: tuple[float, ...] = EDIT_CHANGES,
    tries: tuple[int, ...] = EDIT_TRIES,
    progress=None,
) -> dict[str, Any]:
    """How well edits in musical units work on the bars ``tokens``.

    For every attribute and every change in ``changes`` (in the attribute's own
    unit: notes, semitones, or 0-1 complexity scaled by 0.1 so that ±1 and ±2 are
    ±0.1 and ±0.2) each bar is edited with ``--set NAME=±K`` at each number of
    ``tries``. A bar counts where its target lies inside the training range of
    its grid. ``success`` is the share of those bars whose value moved the way
    asked and ended within the tolerance of the target
    (:data:`~melodyvae.music.control.TOLERANCES`); ``mean_abs_error`` is in the
    attribute's unit; ``crosstalk`` the mean absolute change of each other
    attribute, in its unit.

    ``direction_at_1sd``: latent shifts of −1 and +1 prior sd (``--attr NAME
    ±1``) at each number of ``tries``, the share of bars whose attribute moved
    the way asked, over the bars whose value can move that way (not already at
    the training minimum, or maximum). With more than one try a shift that left
    its attribute unmoved searches further the same way.
    """
    from melodyvae.music.control import TOLERANCES, Request, control

    bar_meters = (
        [trained.meters[0]] * len(tokens) if meters is None else list(meters.tolist())
    )
    latents = encode_measures(trained, tokens, meters)
    before = compute_attributes(tokens, bar_meters)
    per_request = []
    success: dict[int, dict[str, list[float]]] = {t: {} for t in tries}
    direction: dict[int, dict[str, float]] = {t: {} for t in tries}
    for index, name in enumerate(ATTRIBUTE_NAMES):
        unit = 0.1 if name == "rhythmic_complexity" else 1.0
        fitted = [calibration.for_meter(m)[name] for m in bar_meters]
        low = np.array([f.low for f in fitted])
        high = np.array([f.high for f in fitted])
        if progress is not None:
            progress(f"edit benchmark: {name}")
        for n_tries in tries:
            rates = []
            for sign in (-1.0, 1.0):
                result = control(
                    trained,
                    calibration,
                    latents,
                    bar_meters,
                    [Request(name, "shift", sign)],
                    originals=tokens,
                    tries=n_tries,
                )
                can_move = (
                    before[:, index] > low if sign < 0 else before[:, index] < high
                )
                met = np.array([o.met[name] for o in result.outcomes])
                if can_move.any():
                    rates.append(float(met[can_move].mean()))
            direction[n_tries][name] = float(np.mean(rates)) if rates else 0.0
        for change in changes:
            amount = change * unit
            target = before[:, index] + amount
            inside = (target >= low) & (target <= high)
            for n_tries in tries:
                result = control(
                    trained,
                    calibration,
                    latents,
                    bar_meters,
                    [Request(name, "change", amount)],
                    originals=tokens,
                    tries=n_tries,
                )
                outcomes = [
                    o for o, keep in zip(result.outcomes, inside, strict=True) if keep
                ]
                met = [o.met[name] for o in outcomes]
                errors = [abs(o.errors()[name]) for o in outcomes]
                others = {
                    other: float(np.mean([abs(o.crosstalk()[other]) for o in outcomes]))
                    for other in ATTRIBUTE_NAMES
                    if other != name and outcomes
                }
                rate = float(np.mean(met)) if met else None
                if rate is not None:
                    success[n_tries].setdefault(name, []).append(rate)
                per_request.append(
                    {
                        "attribute": name,
                        "change": amount,
                        "tries": n_tries,
                        "n_bars": len(outcomes),
                        "success": rate,
                        "mean_abs_error": float(np.mean(errors)) if errors else None,
                        "crosstalk": others,
                    }
                )
    return {
        "n_bars": int(len(tokens)),
        "tolerances": dict(TOLERANCES),
        "changes": {
            name: [c * (0.1 if name == "rhythmic_complexity" else 1.0) for c in changes]
            for name in ATTRIBUTE_NAMES
        },
        "direction_at_1sd": {f"tries_{n}": _score(per) for n, per in direction.items()},
        "success": {
            f"tries_{n}": _score({k: float(np.mean(v)) for k, v in per.items()})
            for n, per in success.items()
        },
        "per_request": per_request,
    }
