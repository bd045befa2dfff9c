"""Attribute requests in musical units, verified on the decoded bars.

A request names an attribute and what to do with it:

- ``shift``: move its latent coordinate by a number of prior standard deviations
  (``--attr note_density 1.5``); verified by the direction of the change;
- ``target``: reach a value in the attribute's own unit (``--set note_density=8``:
  eight notes; ``--set contour==-5``: a fall of five semitones);
- ``change``: move each bar's value by that much (``--set pitch_range=+2``: two
  semitones wider than the bar is now).

Targets and changes go through the checkpoint's calibration
(:mod:`melodyvae.music.calibration`): the value is turned into the latent coordinate
whose expected value it is, and that coordinate replaces the bar's own. A target
outside the range of the training bars (of the bar's grid) is aimed at the nearest
value the model learned and flagged, never silently clipped.

Every decoded bar is measured again. With ``tries`` above 1 each bar gets several
candidates and keeps the best (:func:`candidate_key`): the first is the most likely
decoding of the target code; then a search along each target coordinate (a
bracketing search that steps past the coordinate where a decoding fell short or
overshot, then halves the bracket; see :class:`_Search`), with every eighth try a
sample at ``temperature`` from the best code found so far.

:data:`TOLERANCES` are the stated tolerances of a target: a bar is *met* when every
requested value is reached within them (for a shift: when the attribute moved the
way asked; for a change: both).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from melodyvae.errors import MelodyVAEError
from melodyvae.music.attributes import (
    ATTRIBUTE_NAMES,
    DEFINED_RANGES,
    compute_attributes,
)
from melodyvae.music.calibration import Calibration
from melodyvae.music.tokens import PAD
from melodyvae.music.training import TrainedModel

# How close an achieved value must come to its target, in the attribute's unit.
TOLERANCES = {
    "rhythmic_complexity": 0.04,  # about half the spread of 4/4 folk bars (sd 0.077)
    "pitch_range": 2.0,  # semitones
    "note_density": 1.0,  # notes
    "contour": 2.0,  # semitones
}
UNITS = {
    "rhythmic_complexity": "",
    "pitch_range": " st",
    "note_density": " notes",
    "contour": " st",
}
DEFAULT_TRY_TEMPERATURE = 0.5
MODES = ("shift", "target", "change")

_NUMBER = r"[0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?"
_REQUEST = re.compile(rf"^\s*([a-z_]+)\s*(==|=)\s*([+-]?)({_NUMBER})\s*$")


# With a search under way, every SAMPLE_EVERY-th try is a sampled candidate.
SAMPLE_EVERY = 8


def tries_for_a_sample(requests: list[Request], *, editing: bool = True) -> int:
    """The ``tries`` from which the candidates of a bar include a sampled one (the
    only kind the try temperature acts on), as :func:`control` decodes them for
    ``requests`` on bars with originals (``editing``) or on new bars. The first
    candidate is the most likely decoding; then, while a request searches along
    its coordinate (a target or change always; a shift only when editing, and not
    a zero one), every :data:`SAMPLE_EVERY`-th try is sampled; without a search,
    every try after the first."""
    searching = any(r.mode != "shift" or (editing and r.amount != 0) for r in requests)
    return SAMPLE_EVERY if searching else 2


@dataclass(frozen=True)
class Request:
    """One attribute request; see the module docstring for the three modes."""

    name: str
    mode: str
    amount: float

    def __post_init__(self) -> None:
        if self.name not in ATTRIBUTE_NAMES:
            raise MelodyVAEError(
                f"unknown attribute {self.name} "
                f"(accepted: {', '.join(ATTRIBUTE_NAMES)})"
            )
        if self.mode not in MODES:
            raise ValueError(f"request mode {self.mode!r}")
        if not np.isfinite(self.amount):
            raise MelodyVAEError(f"{self.name}: {self.amount} is not a number")

    def describe(self) -> str:
        if self.mode == "shift":
            return f"{self.name} {self.amount:+g} sd"
        if self.mode == "change":
            return f"{self.name} {self.amount:+g}{UNITS[self.name]}"
        return f"{self.name} = {self.amount:g}{UNITS[self.name]}"

    def target(self, current: np.ndarray) -> np.ndarray | None:
        """The value asked for, per bar of ``current`` values (None for a shift)."""
        if self.mode == "target":
            return np.full(len(current), self.amount, dtype=np.float64)
        if self.mode == "change":
            return np.asarray(current, dtype=np.float64) + self.amount
        return None


def parse_request(text: str, *, relative: bool = True) -> Request:
    """``NAME=V`` (a target), ``NAME=+K`` / ``NAME=-K`` (a change from each bar's
    value) or ``NAME==V`` (a target of any sign, e.g. ``contour==-5``).

    With ``relative`` False (bars that have no value of their own, as in
    sampling) a signed value is a target too.
    """
    match = _REQUEST.match(text)
    if not match:
        raise MelodyVAEError(
            f"--set {text!r}: write NAME=VALUE (a target), NAME=+K or NAME=-K "
            "(a change) or NAME==VALUE (a target of either sign)"
        )
    name, equals, sign, number = match.groups()
    amount = float(number) * (-1.0 if sign == "-" else 1.0)
    if not np.isfinite(amount):
        raise MelodyVAEError(f"--set {text!r}: {number} is too large")
    mode = "change" if relative and sign and equals == "=" else "target"
    # A target no bar can have is refused; one outside the training range is
    # aimed at its nearest end instead (see aim).
    low, high = DEFINED_RANGES.get(name, (-np.inf, np.inf))
    if mode == "target" and not low <= amount <= high:
        bounds = f"from {low:g} to {high:g}" if np.isfinite(high) else f"≥ {low:g}"
        raise MelodyVAEError(
            f"--set {text!r}: {name} is {bounds} by definition, so {amount:g} "
            "cannot be reached"
        )
    return Request(name, mode, amount)


@dataclass
class BarOutcome:
    """What one bar was asked for and what it became.

    ``targets`` holds per requested attribute the value asked for (None for a
    shift), ``aimed`` the value aimed at (the target moved into the training range
    when it lay outside it), ``out_of_range`` the requested attributes whose target
    lay outside, ``met`` per requested attribute whether it was reached within
    :data:`TOLERANCES` (a shift: moved the right way; a change: both).
    ``candidate`` is the try that was kept (0 = the most likely decoding; the
    report counts tries from 1),
    ``notes_moved`` how many notes key snapping moved in it.
    """

    before: dict[str, float] | None
    after: dict[str, float]
    targets: dict[str, float | None]
    aimed: dict[str, float | None]
    out_of_range: list[str]
    met: dict[str, bool]
    candidate: int = 0
    notes_moved: int = 0

    @property
    def all_met(self) -> bool:
        return all(self.met.values())

    def errors(self) -> dict[str, float]:
        """Achieved minus target, per requested attribute with a target."""
        return {
            name: self.after[name] - target
            for name, target in self.targets.items()
            if target is not None
        }

    def crosstalk(self) -> dict[str, float]:
        """Change of every attribute not requested (empty without ``before``)."""
        if self.before is None:
            return {}
        return {
            name: self.after[name] - self.before[name]
            for name in ATTRIBUTE_NAMES
            if name not in self.targets
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "before": self.before,
            "after": self.after,
            "requested": self.targets,
            "aimed": self.aimed,
            "outside_training_range": self.out_of_range,
            "met": self.met,
            "all_met": self.all_met,
            "error": self.errors(),
            "unrequested_change": self.crosstalk(),
            "try": self.candidate + 1,
            "notes_moved_into_key": self.notes_moved,
        }


@dataclass
class Controlled:
    """Decoded bars (N, T) and one :class:`BarOutcome` per bar."""

    tokens: np.ndarray
    outcomes: list[BarOutcome] = field(default_factory=list)


def check_requests(requests: list[Request]) -> None:
    """Refuse two requests for one attribute."""
    names = [r.name for r in requests]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise MelodyVAEError(f"{twice[0]} is requested more than once")


def needs_calibration(requests: list[Request]) -> bool:
    return any(r.mode != "shift" for r in requests)


def _rows_as_dicts(values: np.ndarray) -> list[dict[str, float]]:
    return [dict(zip(ATTRIBUTE_NAMES, map(float, row), strict=True)) for row in values]


def aim(
    trained: TrainedModel,
    calibration: Calibration | None,
    latents: np.ndarray,
    meters: list[str],
    before: np.ndarray | None,
    requests: list[Request],
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """The codes to decode for ``requests``.

    Returns (codes (N, Z), targets per attribute (N,), values aimed at per
    attribute (N,), out-of-range mask (N, L) over :data:`ATTRIBUTE_NAMES`).
    ``before`` (N, L) is each bar's current attributes (None for new bars, where
    a change is meaningless).
    """
    check_requests(requests)
    if needs_calibration(requests) and calibration is None:
        raise MelodyVAEError("targets in musical units need a calibrated checkpoint")
    codes = np.array(latents, dtype=np.float32, copy=True)
    n = len(codes)
    targets: dict[str, np.ndarray] = {}
    aimed: dict[str, np.ndarray] = {}
    outside = np.zeros((n, len(ATTRIBUTE_NAMES)), dtype=bool)
    for request in requests:
        column = ATTRIBUTE_NAMES.index(request.name)
        dim = trained.attribute_dims[request.name]
        if request.mode == "shift":
            codes[:, dim] += request.amount
            continue
        if request.mode == "change" and before is None:
            raise MelodyVAEError(
                f"{request.describe()}: a change needs bars to change; "
                "give a target instead"
            )
        current = before[:, column] if before is not None else np.zeros(n)
        wanted = request.target(current)
        goal = np.empty(n)
        for row in range(n):
            fitted = calibration.for_meter(meters[row])[request.name]
            goal[row] = min(max(wanted[row], fitted.low), fitted.high)
            outside[row, column] = not fitted.in_range(wanted[row])
            codes[row, dim] = fitted.value_to_coordinate(goal[row])
        targets[request.name] = wanted
        aimed[request.name] = goal
    return codes, targets, aimed, outside


def candidate_key(
    after: np.ndarray,
    before: np.ndarray | None,
    aimed: dict[str, float],
    shifts: dict[str, float],
    distance: float,
) -> tuple[float, float]:
    """Sort key of one candidate bar (smaller is better).

    First how far the requests are missed beyond their tolerance (0 when every
    target is reached within it and every shift or change in ``shifts`` moved the
    right way), then the
    sum of the errors (in tolerances), of the change of the attributes not
    requested (in tolerances) and of the share of slots that differ from the
    original bar.
    """
    miss = spread = 0.0
    for name, goal in aimed.items():
        error = abs(after[ATTRIBUTE_NAMES.index(name)] - goal) / TOLERANCES[name]
        miss += max(0.0, error - 1.0)
        spread += error
    if before is not None:
        for name, amount in shifts.items():
            column = ATTRIBUTE_NAMES.index(name)
            moved = (after[column] - before[column]) * np.sign(amount)
            if amount and moved <= 0:
                miss += 1.0
        for column, name in enumerate(ATTRIBUTE_NAMES):
            if name not in aimed and name not in shifts:
                spread += abs(after[column] - before[column]) / TOLERANCES[name]
    return (round(miss, 9), spread + distance)


# Search probes stay within this many prior sds of the origin.
COORDINATE_LIMIT = 6.0
MIN_SEARCH_STEP = 0.25


@dataclass
class _Search:
    """Per bar, a search along a line in latent space for a code whose decoding
    lands in the band ``low``-``high`` of one attribute.

    The line starts as the attribute's own coordinate. Every attribute grows
    along it (the AR loss orders them so), so a value below the band raises the
    lower bracket and one above lowers the upper: the next probe is the middle of
    the bracket, or, while one side is open, a step beyond the known side that
    doubles each time. A bar whose coordinate reaches :data:`COORDINATE_LIMIT`
    without getting there (the decoder stops responding to that coordinate)
    goes on from there along its row of ``fallback``, the calibration's steepest
    direction of the attribute over the whole code for the bar's grid, when the
    calibration has one for that grid (``has_fallback``).

    :meth:`delta` is the change to make to each bar's code: ``offset`` (fixed by
    the first line, once left) plus the position along the current line.
    """

    low: np.ndarray
    high: np.ndarray
    x: np.ndarray
    x0: np.ndarray
    direction: np.ndarray
    offset: np.ndarray
    fallback: np.ndarray
    has_fallback: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    step: np.ndarray
    met: np.ndarray
    switched: np.ndarray

    @classmethod
    def start(cls, codes, dim, aimed_x, low, high, goal, reached, fitted) -> _Search:
        """The search after a first probe with coordinate ``dim`` at ``aimed_x``
        (the rest of ``codes``) that reached ``reached``."""
        n, size = codes.shape
        gap = np.array(
            [
                0.0
                if f is None
                else abs(f.value_to_coordinate(g) - f.value_to_coordinate(r))
                for f, g, r in zip(fitted, goal, reached, strict=True)
            ]
        )
        direction = np.zeros((n, size))
        direction[:, dim] = 1.0
        has_fallback = np.array(
            [
                f is not None and f.direction is not None and len(f.direction) == size
                for f in fitted
            ],
            dtype=bool,
        )
        fallback = np.zeros((n, size))
        for row in np.flatnonzero(has_fallback):
            fallback[row] = fitted[row].direction
        search = cls(
            low=np.asarray(low, dtype=np.float64),
            high=np.asarray(high, dtype=np.float64),
            x=np.asarray(aimed_x, dtype=np.float64).copy(),
            x0=np.asarray(codes[:, dim], dtype=np.float64).copy(),
            direction=direction,
            offset=np.zeros((n, size)),
            fallback=fallback,
            has_fallback=has_fallback,
            lower=np.full(n, -np.inf),
            upper=np.full(n, np.inf),
            step=np.maximum(gap, MIN_SEARCH_STEP),
            met=np.zeros(n, dtype=bool),
            switched=np.zeros(n, dtype=bool),
        )
        search.update(reached)
        return search

    def delta(self) -> np.ndarray:
        return self.offset + (self.x - self.x0)[:, None] * self.direction

    def update(self, reached: np.ndarray) -> None:
        """Record what the last probe reached."""
        below = reached < self.low
        above = reached > self.high
        self.lower = np.where(below, np.maximum(self.lower, self.x), self.lower)
        self.upper = np.where(above, np.minimum(self.upper, self.x), self.upper)
        self.met = ~below & ~above
        stuck = (
            self.has_fallback
            & ~self.switched
            & (
                (below & (self.x >= COORDINATE_LIMIT))
                | (above & (self.x <= -COORDINATE_LIMIT))
            )
        )
        if not stuck.any():
            return
        self.offset[stuck] = self.delta()[stuck]
        self.direction[stuck] = self.fallback[stuck]
        self.x[stuck] = self.x0[stuck] = 0.0
        self.lower[stuck] = np.where(below[stuck], 0.0, -np.inf)
        self.upper[stuck] = np.where(above[stuck], 0.0, np.inf)
        self.step[stuck] = 2 * MIN_SEARCH_STEP
        self.switched |= stuck

    def probe(self) -> np.ndarray:
        """Move to the next position per bar (bars already met stay); returns
        the change to make to each code."""
        both = np.isfinite(self.lower) & np.isfinite(self.upper)
        up = np.isfinite(self.lower) & ~both
        down = np.isfinite(self.upper) & ~both
        with np.errstate(invalid="ignore"):
            middle = (self.lower + self.upper) / 2
        x = np.where(both, middle, self.x)
        x = np.where(up, self.lower + self.step, x)
        x = np.where(down, self.upper - self.step, x)
        x = np.where(self.met, self.x, x)
        self.step = np.where((up | down) & ~self.met, self.step * 2, self.step)
        self.x = np.clip(x, -COORDINATE_LIMIT, COORDINATE_LIMIT)
        return self.delta()


def _band(
    request: Request, goal: np.ndarray, current: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The values that meet ``request`` per bar: within the tolerance of the
    goal and, for a change, on the asked side of the bar's current value; for a
    shift, anything on the asked side."""
    tolerance = TOLERANCES[request.name]
    low, high = goal - tolerance, goal + tolerance
    if request.mode == "shift":
        low, high = np.full(len(goal), -np.inf), np.full(len(goal), np.inf)
    if request.mode != "target" and current is not None and request.amount:
        # Attribute values are multiples of far more than this.
        nudge = 1e-6
        if request.amount > 0:
            low = np.maximum(low, current + nudge)
        else:
            high = np.minimum(high, current - nudge)
    return low, high


def control(
    trained: TrainedModel,
    calibration: Calibration | None,
    latents: np.ndarray,
    meters: list[str],
    requests: list[Request],
    *,
    originals: np.ndarray | None = None,
    tries: int = 1,
    temperature: float = DEFAULT_TRY_TEMPERATURE,
    seed: int = 0,
    snap=None,
    row_ids: np.ndarray | list[int] | None = None,
) -> Controlled:
    """Decode ``latents`` (N, Z) of bars of ``meters`` as ``requests`` ask, keep
    the best of ``tries`` candidates per bar and verify every one.

    ``originals`` (N, T) are the bars the codes came from (None for new bars):
    changes are measured from them and candidates that stay closer to them win
    ties. ``snap`` (tokens → (tokens, notes moved per bar)) is applied to every
    candidate before it is measured (key snapping). ``row_ids`` (default 0 ..
    N-1) number the bars for their sampled candidates: a bar with the same
    number, code and seed gets the same sampled candidates whichever bars come
    with it, and so does its search.
    """
    from melodyvae.music.generation import decode_latents

    if tries < 1:
        raise MelodyVAEError(f"--tries must be at least 1, got {tries}")
    n = len(latents)
    before = None
    if originals is not None:
        before = compute_attributes(originals, meters)
    codes, targets, aimed, outside = aim(
        trained, calibration, latents, meters, before, requests
    )
    # The codes with the shifts made but no target set.
    unaimed = aim(
        trained,
        None,
        latents,
        meters,
        before,
        [r for r in requests if r.mode == "shift"],
    )[0]
    # Shifts and changes must also move their attribute the way asked.
    shifts = {r.name: r.amount for r in requests if r.mode != "target"}

    def decoded(candidate_codes: np.ndarray, temp: float, try_seed: int):
        tokens = decode_latents(
            trained,
            candidate_codes,
            meters,
            temperature=temp,
            seed=try_seed,
            row_ids=row_ids,
        )
        moved = np.zeros(n, dtype=np.int64)
        if snap is not None:
            tokens, moved = snap(tokens)
        return tokens, moved, compute_attributes(tokens, meters)

    def distance(tokens: np.ndarray, row: int) -> float:
        if originals is None:
            return 0.0
        width = min(tokens.shape[1], originals.shape[1])
        valid = originals[row, :width] != PAD
        return float((tokens[row, :width] != originals[row, :width])[valid].mean())

    def key(after_row: np.ndarray, tokens: np.ndarray, row: int):
        goals = {name: float(values[row]) for name, values in aimed.items()}
        bar_before = None if before is None else before[row]
        return candidate_key(
            after_row, bar_before, goals, shifts, distance(tokens, row)
        )

    best_tokens, best_moved, best_after = decoded(codes, 0.0, seed)
    best_keys = [key(best_after[r], best_tokens, r) for r in range(n)]
    chosen = np.zeros(n, dtype=np.int64)
    # Searches start from the codes before any target was set.
    # A shift that left its attribute where it was searches on past the shift,
    # the way it points.
    searches = {}
    for request in requests:
        name, column = request.name, ATTRIBUTE_NAMES.index(request.name)
        dim = trained.attribute_dims[name]
        current = None if before is None else before[:, column]
        if request.mode == "shift":
            if current is None or not request.amount:
                continue
            low, high = _band(request, current, current)
            goal = current
            base = unaimed.copy()
            base[:, dim] = latents[:, dim]
        else:
            low, high = _band(request, aimed[name], current)
            goal, base = aimed[name], unaimed
        fitted = [
            None if calibration is None else calibration.for_meter(m)[name]
            for m in meters
        ]
        searches[name] = _Search.start(
            base, dim, codes[:, dim], low, high, goal, best_after[:, column], fitted
        )
    centre = codes.copy()
    for attempt in range(1, tries):
        if searches and attempt % SAMPLE_EVERY != SAMPLE_EVERY - 1:
            candidate_codes = unaimed.copy()
            for name, search in searches.items():
                dim = trained.attribute_dims[name]
                # Each search sets its own dim; shifts are already in ``unaimed``.
                candidate_codes[:, dim] = latents[:, dim]
                candidate_codes += search.probe().astype(np.float32)
            tokens, moved, after = decoded(candidate_codes, 0.0, seed)
            for name, search in searches.items():
                search.update(after[:, ATTRIBUTE_NAMES.index(name)])
        else:
            candidate_codes = None
            tokens, moved, after = decoded(centre, temperature, seed + attempt)
        for row in range(n):
            candidate = key(after[row], tokens, row)
            if candidate < best_keys[row]:
                best_keys[row] = candidate
                best_tokens[row] = tokens[row]
                best_moved[row] = moved[row]
                best_after[row] = after[row]
                chosen[row] = attempt
                if candidate_codes is not None:
                    # Later samples centre on the best code found.
                    centre[row] = candidate_codes[row]

    before_rows = _rows_as_dicts(before) if before is not None else [None] * n
    outcomes = []
    for row, after_row in enumerate(_rows_as_dicts(best_after)):
        bar_targets: dict[str, float | None] = {}
        bar_aimed: dict[str, float | None] = {}
        met: dict[str, bool] = {}
        for request in requests:
            name = request.name
            if request.mode == "shift":
                bar_targets[name] = bar_aimed[name] = None
                if before is None:
                    met[name] = True
                else:
                    moved = (after_row[name] - before_rows[row][name]) * np.sign(
                        request.amount
                    )
                    met[name] = bool(moved > 0) if request.amount else True
                continue
            bar_targets[name] = float(targets[name][row])
            bar_aimed[name] = float(aimed[name][row])
            met[name] = bool(
                abs(after_row[name] - bar_targets[name]) <= TOLERANCES[name] + 1e-9
            )
            if request.mode == "change" and request.amount and before is not None:
                moved = (after_row[name] - before_rows[row][name]) * request.amount
                met[name] = met[name] and bool(moved > 0)
        outcomes.append(
            BarOutcome(
                before=before_rows[row],
                after=after_row,
                targets=bar_targets,
                aimed=bar_aimed,
                out_of_range=[
                    name
                    for column, name in enumerate(ATTRIBUTE_NAMES)
                    if outside[row, column]
                ],
                met=met,
                candidate=int(chosen[row]),
                notes_moved=int(best_moved[row]),
            )
        )
    return Controlled(best_tokens, outcomes)


# -- keeping to the key -------------------------------------------------------------


@dataclass(frozen=True)
class KeyScale:
    """The pitch classes of a tune's key signature, and where they came from."""

    pitch_classes: frozenset[int]
    name: str  # e.g. "D major"
    estimated: bool  # True when music21 estimated it from the notes


def key_scale(key_name: str | None, pitches: list[int]) -> KeyScale:
    """The diatonic pitch classes of ``key_name`` ("G major", "A dorian": the
    scale of its signature), or, when it is None or not a key, of the key music21
    estimates from ``pitches`` (Krumhansl-Schmuckler, durations ignored).

    Raises :class:`MelodyVAEError` when there is neither a key nor a note.
    """
    from music21 import key as m21key
    from music21 import note, stream

    from melodyvae.music.notation import parse_key

    parsed = parse_key(key_name)
    if parsed is not None:
        signature = m21key.KeySignature(parsed.fifths)
        estimated = False
        name = key_name
    else:
        if not pitches:
            raise MelodyVAEError("--keep-key: the tune has no key and no notes")
        notes = stream.Stream([note.Note(midi=p, quarterLength=1) for p in pitches])
        found = notes.analyze("key")
        signature = m21key.KeySignature(found.sharps)
        estimated = True
        name = f"{found.tonic.name.replace('-', 'b')} {found.mode}"
    scale = signature.asKey("major").getScale()
    classes = frozenset(p.pitchClass for p in scale.getPitches())
    return KeyScale(classes, name, estimated)


def snap_to_scale(
    tokens: np.ndarray, vocab, pitch_classes: frozenset[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Every pitch onset of ``tokens`` (N, T) moved to the nearest pitch of
    ``pitch_classes`` inside the vocabulary's window; a note halfway between two
    goes the way the next onset of its bar lies (down when there is none or it is
    the same pitch). Returns the new tokens and the number of notes moved per bar.
    """
    out = np.array(tokens, copy=True)
    moved = np.zeros(len(out), dtype=np.int64)
    allowed = [
        p
        for p in range(vocab.pitch_min, vocab.pitch_max + 1)
        if p % 12 in pitch_classes
    ]
    if not allowed:
        return out, moved
    allowed_arr = np.asarray(allowed)
    for row in range(len(out)):
        slots = np.flatnonzero(vocab.is_onset(out[row]))
        pitches = [vocab.token_to_pitch(int(out[row, s])) for s in slots]
        for position, (slot, pitch) in enumerate(zip(slots, pitches, strict=True)):
            if pitch % 12 in pitch_classes:
                continue
            distance = np.abs(allowed_arr - pitch)
            nearest = allowed_arr[distance == distance.min()]
            following = pitches[position + 1] if position + 1 < len(pitches) else None
            if len(nearest) > 1 and following is not None and following > pitch:
                choice = int(nearest.max())
            else:
                choice = int(nearest.min())
            out[row, slot] = vocab.pitch_to_token(choice)
            moved[row] += 1
    return out, moved
