"""The small real files in tests/data, sorted by whether melodyvae can read them."""

from __future__ import annotations

from pathlib import Path

from melodyvae.music.reading import SUPPORTED_SUFFIXES

DATA = Path(__file__).parent / "data"

# Files every reader must refuse with a ReadError (each has a test of its message).
UNREADABLE = {
    "empty.abc",
    "empty_0_bytes.mid",
    "truncated.mid",
    "not_midi.mid",
    "smpte_timing.mid",
    "huge_delta_time.mid",
    "huge_duration.musicxml",
    "huge_meter.krn",
    "huge_meter.musicxml",
    "zero_ticks_per_beat.mid",
    "drums_only.mid",
    "corrupt_track.mid",
    "tune_without_notes.abc",
}
READABLE_FILES = sorted(
    path.name
    for path in DATA.iterdir()
    if path.is_file()
    and path.suffix in SUPPORTED_SUFFIXES
    and path.name not in UNREADABLE
)
