"""Calibration: each regularised latent coordinate in the attribute's own units.

The AR loss only orders bars along each regularised axis; it says nothing about
*how far* to move for one more note. A calibration measures that on the training
bars: for every attribute, an isotonic (monotone non-decreasing) regression from
the attribute's latent coordinate (the posterior mean) to its value, fitted with
scikit-learn's :class:`~sklearn.isotonic.IsotonicRegression`. Its knots are a
piecewise-linear, non-decreasing map ``coordinate → expected value``; the other
direction, ``value → coordinate``, is its inverse by interpolation: the middle of
the coordinates whose expected value is exactly the value asked for (a plateau,
for a whole number of notes, has a whole interval of them). The two maps round
trip: ``coordinate_to_value(value_to_coordinate(v)) == v`` for every ``v`` between
the lowest and highest expected value.

A meter-aware model is calibrated once per grid (its AR loss ranks bars only
against bars of the same grid: 2-beat bars run 0-12 notes, 4-beat bars 0-24), a
single-grid model once. The calibration lives in the checkpoint's JSON under
``"calibration"``::

    {"version": 1, "split": "train", "corpus": {...}, "weights": "<sha256>", "grids": {
        "4/4": {"meters": ["4/4", "2/2"], "n_bars": 20903, "attributes": {
            "note_density": {"dim": 2, "coordinates": [...], "values": [...],
                             "min": 0.0, "max": 16.0,
                             "percentiles": {"1": 2.0, "5": 4.0, ...}}, ...}}}}

``min``/``max`` are the attribute's range over the training bars of that grid: a
target outside them asks for something the model never saw. ``weights`` is the
fingerprint of the weights the calibration was fitted to; a calibration read with
other weights beside it is refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from melodyvae.core.checkpoint import weights_fingerprint
from melodyvae.core.trainer import Split
from melodyvae.errors import CheckpointError, MelodyVAEError
from melodyvae.music.attributes import ATTRIBUTE_NAMES
from melodyvae.music.tokens import canonical_meter

logger = logging.getLogger(__name__)

CALIBRATION_VERSION = 1
PERCENTILES = (1, 5, 25, 50, 75, 95, 99)
# Knots are stored rounded: coordinates to 1e-5 prior sds, values to 1e-6.
COORDINATE_DECIMALS = 5
VALUE_DECIMALS = 6


class CalibrationMissing(MelodyVAEError):
    """A checkpoint holds no calibration (it predates ``melodyvae calibrate``)."""


@dataclass(frozen=True)
class AttributeCalibration:
    """The monotone map between one attribute and its latent coordinate, for the
    bars of one grid.

    ``coordinates`` (increasing, prior sds) and ``values`` (non-decreasing,
    natural units) are the knots of the piecewise-linear map; beyond the first
    and last knot the map is flat. ``low``/``high`` are the attribute's training
    range and ``percentiles`` its training percentiles (keys "1" ... "99").
    ``direction`` (when fitted) is the unit vector of the whole latent space along
    which a least-squares linear fit of the attribute on the code rises fastest:
    the way to push when the attribute's own coordinate no longer moves it.
    """

    name: str
    dim: int
    coordinates: np.ndarray
    values: np.ndarray
    low: float
    high: float
    percentiles: dict[str, float]
    direction: np.ndarray | None = None

    def coordinate_to_value(self, coordinate: np.ndarray | float) -> np.ndarray:
        """Expected attribute value at latent ``coordinate`` (clipped to the ends)."""
        return np.interp(coordinate, self.coordinates, self.values)

    def value_to_coordinate(self, value: np.ndarray | float) -> np.ndarray:
        """The latent coordinate whose expected value is ``value``.

        The middle of the coordinates whose expected value equals ``value``; a
        value below the lowest (above the highest) expected value gives the first
        (last) knot's coordinate, the most extreme code the calibration saw.
        Monotone non-decreasing in ``value``.
        """
        value = np.asarray(value, dtype=np.float64)
        xs, ys = self.coordinates, self.values
        flat = value.reshape(-1)
        clipped = np.clip(flat, ys[0], ys[-1])
        lower = _crossing(xs, ys, clipped, first=True)
        upper = _crossing(xs, ys, clipped, first=False)
        return ((lower + upper) / 2).reshape(value.shape)

    def in_range(self, value: float) -> bool:
        """Whether ``value`` lies inside the training range ``low``-``high``."""
        return self.low <= value <= self.high

    def to_dict(self) -> dict[str, Any]:
        return {
            "dim": self.dim,
            "coordinates": np.round(self.coordinates, COORDINATE_DECIMALS).tolist(),
            "values": np.round(self.values, VALUE_DECIMALS).tolist(),
            "min": float(self.low),
            "max": float(self.high),
            "percentiles": {k: float(v) for k, v in self.percentiles.items()},
            **(
                {}
                if self.direction is None
                else {"direction": np.round(self.direction, 6).tolist()}
            ),
        }

    @classmethod
    def from_dict(cls, name: str, data: dict[str, Any]) -> AttributeCalibration:
        coordinates = np.asarray(data["coordinates"], dtype=np.float64)
        values = np.asarray(data["values"], dtype=np.float64)
        if (
            coordinates.ndim != 1
            or coordinates.shape != values.shape
            or len(coordinates) < 1
            or not np.isfinite(coordinates).all()
            or not np.isfinite(values).all()
            or (np.diff(coordinates) <= 0).any()
            or (np.diff(values) < 0).any()
        ):
            raise ValueError(f"calibration of {name}: knots are not a monotone map")
        direction = None
        if data.get("direction") is not None:
            direction = np.asarray(data["direction"], dtype=np.float64)
            if direction.ndim != 1 or not np.isfinite(direction).all():
                raise ValueError(f"calibration of {name}: malformed direction")
        return cls(
            name=name,
            dim=int(data["dim"]),
            coordinates=coordinates,
            values=values,
            low=float(data["min"]),
            high=float(data["max"]),
            percentiles={str(k): float(v) for k, v in data["percentiles"].items()},
            direction=direction,
        )


def _crossing(
    xs: np.ndarray, ys: np.ndarray, targets: np.ndarray, *, first: bool
) -> np.ndarray:
    """The smallest (``first``) or largest coordinate where the piecewise-linear
    map through (xs, ys) takes each target value (targets inside ys' range)."""
    if len(xs) == 1:
        return np.full(len(targets), xs[0])
    x0, x1, y0, y1 = xs[:-1], xs[1:], ys[:-1], ys[1:]
    t = targets[:, None]  # (N, 1) against segments (S,)
    inside = (y0 <= t) & (t <= y1)
    rising = y1 > y0
    share = np.where(rising, (t - y0) / np.where(rising, y1 - y0, 1.0), 0.0)
    # On a plateau the segment's ends are both crossings.
    at = x0 + share * (x1 - x0)
    if not first:
        at = np.where(rising, at, x1)
    candidates = np.where(inside, at, np.inf if first else -np.inf)
    return candidates.min(axis=1) if first else candidates.max(axis=1)


def fit_attribute(
    name: str,
    dim: int,
    coordinates: np.ndarray,
    values: np.ndarray,
    codes: np.ndarray | None = None,
) -> AttributeCalibration:
    """Fit the isotonic map of one attribute from bars' latent ``coordinates``
    (N,) to their ``values`` (N,), and, given the whole ``codes`` (N, Z), the
    attribute's steepest linear direction. Needs at least one bar."""
    from sklearn.isotonic import IsotonicRegression
    from sklearn.linear_model import LinearRegression

    coordinates = np.asarray(coordinates, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if len(coordinates) == 0:
        raise MelodyVAEError(f"cannot calibrate {name} on no bars")
    regression = IsotonicRegression(increasing=True, out_of_bounds="clip")
    regression.fit(coordinates, values)
    knots_x = np.round(regression.X_thresholds_, COORDINATE_DECIMALS)
    knots_y = np.round(regression.y_thresholds_, VALUE_DECIMALS)
    # Rounding may merge neighbouring knots; keep one per coordinate.
    keep = np.concatenate([[True], np.diff(knots_x) > 0])
    knots_x, knots_y = knots_x[keep], np.maximum.accumulate(knots_y[keep])
    percentiles = np.percentile(values, PERCENTILES)
    direction = None
    if codes is not None and len(codes) > 1:
        slope = LinearRegression().fit(codes, values).coef_
        norm = float(np.linalg.norm(slope))
        if np.isfinite(norm) and norm > 0:
            direction = slope / norm
    return AttributeCalibration(
        name=name,
        dim=dim,
        coordinates=knots_x,
        values=knots_y,
        low=float(values.min()),
        high=float(values.max()),
        percentiles={
            str(p): float(v) for p, v in zip(PERCENTILES, percentiles, strict=True)
        },
        direction=direction,
    )


@dataclass(frozen=True)
class Calibration:
    """Per grid (canonical meter, e.g. "4/4" for 4/4 and 2/2 bars) and attribute,
    the monotone map between latent coordinate and value; see the module
    docstring. ``meters`` lists, per grid, the meters of the bars it was fitted
    on; ``n_bars`` how many there were."""

    grids: dict[str, dict[str, AttributeCalibration]]
    meters: dict[str, list[str]]
    n_bars: dict[str, int]
    split: str = "train"
    corpus: dict[str, Any] | None = None
    # The fingerprint of the weights it was fitted to
    # (:func:`~melodyvae.core.checkpoint.weights_fingerprint`); None in a
    # calibration written before fingerprints were recorded.
    weights: str | None = None

    def for_meter(self, meter: str) -> dict[str, AttributeCalibration]:
        """The attribute maps for bars of ``meter``. Raises
        :class:`MelodyVAEError` for a meter of a grid it was not fitted on."""
        grid = canonical_meter(meter)
        if grid not in self.grids:
            raise MelodyVAEError(
                f"the calibration has no bars of {meter} "
                f"(it covers {', '.join(self.grids)})"
            )
        return self.grids[grid]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": CALIBRATION_VERSION,
            "method": "sklearn IsotonicRegression, posterior mean -> value",
            "split": self.split,
            "corpus": self.corpus,
            "weights": self.weights,
            "grids": {
                grid: {
                    "meters": self.meters[grid],
                    "n_bars": self.n_bars[grid],
                    "attributes": {n: a.to_dict() for n, a in attributes.items()},
                }
                for grid, attributes in self.grids.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        if data.get("version") != CALIBRATION_VERSION:
            raise ValueError(f"calibration version {data.get('version')!r}")
        grids, meters, n_bars = {}, {}, {}
        for grid, entry in data["grids"].items():
            grids[grid] = {
                name: AttributeCalibration.from_dict(name, entry["attributes"][name])
                for name in ATTRIBUTE_NAMES
            }
            meters[grid] = list(entry["meters"])
            n_bars[grid] = int(entry["n_bars"])
        weights = data.get("weights")
        if weights is not None and not isinstance(weights, str):
            raise ValueError("the weights fingerprint is not a string")
        return cls(
            grids,
            meters,
            n_bars,
            data.get("split", "train"),
            data.get("corpus"),
            weights,
        )


def fit_calibration(
    latents: np.ndarray,
    split: Split,
    bar_meters: np.ndarray | list[str],
    attribute_dims: dict[str, int],
    corpus: dict[str, Any] | None = None,
) -> Calibration:
    """Calibrate every attribute on the bars of ``split`` (its ``attributes``,
    (N, 4) in :data:`ATTRIBUTE_NAMES` order) whose posterior means are
    ``latents`` (N, Z), one calibration per grid among ``bar_meters`` (N,).

    A grid with no bar is left out; no bar at all raises :class:`MelodyVAEError`.
    """
    bar_meters = np.asarray(bar_meters)
    if len(bar_meters) == 0:
        raise MelodyVAEError("cannot calibrate on no bars")
    grids_of_bars = np.array([canonical_meter(m) for m in bar_meters.tolist()])
    grids, meters, n_bars = {}, {}, {}
    for grid in dict.fromkeys(grids_of_bars.tolist()):
        rows = np.flatnonzero(grids_of_bars == grid)
        grids[grid] = {
            name: fit_attribute(
                name,
                attribute_dims[name],
                latents[rows, attribute_dims[name]],
                split.attributes[rows, index],
                latents[rows],
            )
            for index, name in enumerate(ATTRIBUTE_NAMES)
        }
        meters[grid] = sorted(set(bar_meters[rows].tolist()))
        n_bars[grid] = int(len(rows))
    return Calibration(grids, meters, n_bars, "train", corpus)


def calibration_of(
    meta: dict[str, Any], where: str = "", weights: str | None = None
) -> Calibration:
    """The calibration stored in a checkpoint's JSON ``meta``.

    Raises :class:`CalibrationMissing` when there is none (the message says to
    run ``melodyvae calibrate``) and :class:`CheckpointError` when it is malformed
    or, given the fingerprint ``weights`` of the checkpoint's weights, was fitted
    to other weights (a calibration without a fingerprint is taken as it is).
    """
    data = meta.get("calibration")
    label = f"{where}: " if where else ""
    if data is None:
        command = f"melodyvae calibrate -c {where}" if where else "melodyvae calibrate"
        raise CalibrationMissing(
            f"{label}this checkpoint has no calibration of its attributes; "
            f"run `{command}` once to add it"
        )
    fix = (
        f"; run `melodyvae calibrate --force -c {where}` to fit it again"
        if where
        else ""
    )
    if not isinstance(data, dict):
        raise CheckpointError(f"{label}malformed calibration (not an object){fix}")
    try:
        calibration = Calibration.from_dict(data)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise CheckpointError(f"{label}malformed calibration ({error}){fix}") from None
    if weights is not None and calibration.weights not in (None, weights):
        raise CheckpointError(
            f"{label}the calibration was fitted to other weights than these{fix}"
        )
    return calibration


def calibrate_model(trained, corpus) -> Calibration:
    """Fit the calibration of ``trained`` (a
    :class:`~melodyvae.music.training.TrainedModel`) on the training split of
    ``corpus``: every bar of every meter it serves, encoded to its posterior mean."""
    from melodyvae.music.generation import encode_measures
    from melodyvae.music.training import GRID_METERS, corpus_split

    split = corpus_split(corpus, "train", trained.meters, grouped=trained.meter_aware)
    if trained.meter_aware:
        bar_meters = np.array(GRID_METERS)[split.groups]
    else:
        bar_meters = np.array([trained.meters[0]] * len(split.inputs))
    latents = encode_measures(
        trained, split.inputs, bar_meters if trained.meter_aware else None
    )
    calibration = fit_calibration(
        latents,
        split,
        bar_meters,
        trained.attribute_dims,
        corpus=corpus.identity(),
    )
    # The grids list the meters the model serves, not the bars' canonical grids.
    served = {}
    for grid in calibration.grids:
        served[grid] = [m for m in trained.meters if canonical_meter(m) == grid]
    return Calibration(
        calibration.grids,
        served,
        calibration.n_bars,
        calibration.split,
        calibration.corpus,
        weights_fingerprint(trained.model.state_dict()),
    )
