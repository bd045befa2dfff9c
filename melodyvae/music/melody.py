"""The one internal melody representation every reader produces and every writer uses.

Times are exact :class:`fractions.Fraction` values in quarter notes (ql). Time 0 is
the start of bar 0. When a tune begins with a pickup (anacrusis), bar 0 is the
pickup bar *padded to its full notated length*: a one-eighth pickup in 4/4 starts at
3.5 ql, so every barline falls on a whole multiple of the bar length and a sequencer
shows the bars where a musician expects them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction


@dataclass(frozen=True)
class Note:
    """One sounding note of a monophonic melody.

    ``onset`` and ``duration`` are in quarter notes from the start of bar 0;
    ``pitch`` is a MIDI number (60 = middle C). A note tied across a barline is one
    Note whose duration runs past the barline.
    """

    onset: Fraction
    duration: Fraction
    pitch: int

    @property
    def end(self) -> Fraction:
        return self.onset + self.duration


@dataclass(frozen=True)
class Bar:
    """One notated bar: its number, where it starts, how long it is and its meter.

    ``index`` is the bar number a musician reads in the score: a pickup is bar 0
    and the first complete bar is bar 1 (a :class:`Melody` renumbers its bars so).

    ``length`` is the notated length of the bar (numerator · 4 / denominator ql).
    ``pickup`` marks an incomplete first bar; its notes sit at the end of the bar and
    the start is rest. ``meter`` is written like ``"4/4"``.
    """

    index: int
    start: Fraction
    length: Fraction
    meter: str
    pickup: bool = False

    @property
    def end(self) -> Fraction:
        return self.start + self.length


@dataclass
class Melody:
    """A monophonic melody with its bars.

    ``notes`` are sorted by onset and never overlap. ``bars`` cover the melody from
    time 0 without gaps. ``key`` is a name like ``"G major"`` (or None when unknown),
    ``tempo_qpm`` quarter notes per minute (or None), ``source`` the file it came from.
    ``pickup_length`` is the notated length of the pickup in ql (0 without one).
    ``warnings`` lists what the reader assumed or repaired (e.g. "no time
    signature: assumed 4/4"). ``program`` is the General MIDI instrument (0-127)
    the input names (a MIDI program change, a MusicXML instrument), or None.
    """

    title: str
    notes: list[Note]
    bars: list[Bar]
    key: str | None = None
    tempo_qpm: float | None = None
    source: str = ""
    pickup_length: Fraction = Fraction(0)
    warnings: list[str] = field(default_factory=list)
    program: int | None = None

    def __post_init__(self) -> None:
        # Number bars as notation does: the pickup is 0, the first full bar 1.
        first = 0 if self.bars and self.bars[0].pickup else 1
        self.bars = [
            bar if bar.index == first + i else replace(bar, index=first + i)
            for i, bar in enumerate(self.bars)
        ]
