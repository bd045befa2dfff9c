"""Which bars of a file a trained model can encode, why not, and what would help.

The decision is the one :func:`melodyvae.music.generation.encodable_bars` makes for
``edit`` and ``encode``: a bar is usable when its meter is one the model serves, it
is not a pickup, and it tokenises on the model's grid and pitch window (the rules
of :func:`melodyvae.music.tokens.bar_to_tokens`). This module only names each
problem and suggests a remedy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from melodyvae.music.generation import encodable_bars
from melodyvae.music.melody import Bar, Melody
from melodyvae.music.reading import read_melodies
from melodyvae.music.tokens import SUPPORTED_METERS, BarSkipped, melody_to_bar_tokens
from melodyvae.music.training import TrainedModel

# Problems, as shown in the "problem" column and the JSON.
METER = "meter not served"
PICKUP = "pickup"
OFF_GRID = "off the grid"
CROWDED = "two onsets in one slot"
PITCH = "pitch outside the model's window"

_MIDI_SUFFIXES = (".mid", ".midi")


@dataclass(frozen=True)
class BarCheck:
    """One bar: whether the model can encode it, and if not why and what to do.

    ``problem`` is one of the module's problem names (None for a usable bar),
    ``detail`` the tokeniser's or model's reason, ``advice`` a remedy for the user
    (None when there is nothing to do). ``note`` remarks on a usable bar (an
    empty bar encodes as rest).
    """

    index: int
    meter: str
    pickup: bool
    usable: bool
    problem: str | None = None
    detail: str | None = None
    advice: str | None = None
    note: str | None = None


def check_melody(trained: TrainedModel, melody: Melody) -> list[BarCheck]:
    """A :class:`BarCheck` for every bar of ``melody``, in order."""
    encodable = encodable_bars(trained, melody)
    tokenised = melody_to_bar_tokens(melody, trained.vocab)
    midi_source = melody.source.lower().endswith(_MIDI_SUFFIXES)
    checks = []
    for bar, tokens in zip(melody.bars, tokenised, strict=True):
        if bar.index in encodable.tokens:
            empty = not any(
                n.onset < bar.end and n.end > bar.start for n in melody.notes
            )
            note = "rest only: encodes as an empty bar" if empty else None
            checks.append(BarCheck(bar.index, bar.meter, bar.pickup, True, note=note))
            continue
        detail = encodable.reasons.get(bar.index)
        problem, advice = _problem_and_advice(trained, melody, bar, tokens, midi_source)
        checks.append(
            BarCheck(bar.index, bar.meter, bar.pickup, False, problem, detail, advice)
        )
    return checks


def _problem_and_advice(
    trained: TrainedModel,
    melody: Melody,
    bar: Bar,
    tokens: object,
    midi_source: bool,
) -> tuple[str, str | None]:
    if bar.meter not in trained.meters:
        if bar.meter in SUPPORTED_METERS:
            return METER, f"train a model with --meters {bar.meter}"
        known = ", ".join(SUPPORTED_METERS)
        return METER, f"no grid for {bar.meter} (meters with a grid: {known})"
    if bar.pickup:
        return PICKUP, "none: a pickup is kept as written (edit leaves it alone)"
    if not isinstance(tokens, BarSkipped):
        return "not encodable", None
    if tokens.reason == "pitch out of range":
        return PITCH, _pitch_advice(trained, melody, bar)
    if tokens.reason in ("off-grid onset", CROWDED):
        problem = CROWDED if tokens.reason == CROWDED else OFF_GRID
        if midi_source:
            return problem, "quantise to sixteenths or eighth-note triplets in your DAW"
        return problem, (
            "the grid holds sixteenths and eighth-note triplets (sixteenths in "
            "compound meters); write the rhythm with those"
        )
    return tokens.reason, None


def _pitch_advice(trained: TrainedModel, melody: Melody, bar: Bar) -> str:
    """Transpose by whole octaves where that fits the window, else say why not."""
    low_window, high_window = trained.vocab.pitch_min, trained.vocab.pitch_max
    pitches = [n.pitch for n in melody.notes if bar.start <= n.onset < bar.end]
    window = f"MIDI {low_window}-{high_window}"
    if not pitches:
        return f"the note held into this bar lies outside the window {window}"
    low, high = min(pitches), max(pitches)
    if high - low > high_window - low_window:
        return (
            f"its range (MIDI {low}-{high}) is wider than the model's window "
            f"{window}: no transposition fits"
        )
    fitting = [
        k
        for k in range(-10, 11)
        if low_window <= low + 12 * k <= high + 12 * k <= high_window
    ]
    if fitting:
        octaves = min(fitting, key=abs)
        direction = "up" if octaves > 0 else "down"
        count = "an octave" if abs(octaves) == 1 else f"{abs(octaves)} octaves"
        return (
            f"transpose {direction} {count} into the model's window {window} "
            "(edit moves it by itself)"
        )
    shift = low_window - low if low < low_window else high_window - high
    direction = "up" if shift > 0 else "down"
    return f"transpose {direction} {abs(shift)} semitones (window {window})"


def check_file(
    path: str | Path,
    trained: TrainedModel,
    *,
    part: int = 0,
    voice: int = 0,
    expand_repeats: bool = True,
) -> dict[str, Any]:
    """Every bar of every tune of a file, checked against ``trained``.

    Returns a JSON-ready record: the file, the model (path, meters, pitch window),
    per tune its title, the reader's warnings, the bars (see :class:`BarCheck`)
    and counts, and the totals ``n_usable`` and ``n_bars``. Raises
    :class:`melodyvae.errors.ReadError` for an unreadable file.
    """
    melodies = read_melodies(
        path, part=part, voice=voice, expand_repeats=expand_repeats
    )
    tunes = []
    for melody in melodies:
        checks = check_melody(trained, melody)
        tunes.append(
            {
                "title": melody.title,
                "warnings": list(melody.warnings),
                "n_usable": sum(c.usable for c in checks),
                "n_bars": len(checks),
                "bars": [asdict(c) for c in checks],
            }
        )
    return {
        "file": str(path),
        "checkpoint": str(trained.path),
        "meters": list(trained.meters),
        "pitch_window": [trained.vocab.pitch_min, trained.vocab.pitch_max],
        "expand_repeats": expand_repeats,
        "n_usable": sum(t["n_usable"] for t in tunes),
        "n_bars": sum(t["n_bars"] for t in tunes),
        "tunes": tunes,
    }
