"""Attributes of every bar of a file, for people measuring their own tunes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from melodyvae.music.attributes import ATTRIBUTE_NAMES, compute_attributes
from melodyvae.music.reading import read_melodies
from melodyvae.music.tokens import (
    BarSkipped,
    Vocabulary,
    grid_for_meter,
    melody_to_bar_tokens,
)

# Measuring needs no model, so every MIDI pitch is allowed.
FULL_RANGE = Vocabulary(pitch_min=0, pitch_max=127)


def file_attributes(
    path: str | Path, *, part: int = 0, voice: int = 0, expand_repeats: bool = True
) -> dict[str, Any]:
    """Per tune and bar: meter, pickup, status and the four attributes.

    ``warnings`` lists what the reader assumed or repaired in each tune. Bars that
    cannot be put on the grid have ``status`` "skipped", a ``reason`` and
    null attributes. ``expand_repeats`` reads repeats in played order (see
    :func:`~melodyvae.music.reading.read_melodies`). Raises
    :class:`melodyvae.errors.ReadError` for unreadable files.
    """
    tunes = []
    melodies = read_melodies(
        path, part=part, voice=voice, expand_repeats=expand_repeats
    )
    for melody in melodies:
        bars = []
        for bar, tokens in zip(
            melody.bars, melody_to_bar_tokens(melody, FULL_RANGE), strict=True
        ):
            record: dict[str, Any] = {
                "index": bar.index,
                "meter": bar.meter,
                "pickup": bar.pickup,
            }
            if isinstance(tokens, BarSkipped):
                record.update(status="skipped", reason=str(tokens))
                record.update(dict.fromkeys(ATTRIBUTE_NAMES))
            else:
                values = compute_attributes(tokens[None], grid_for_meter(bar.meter))[0]
                record.update(status="ok", reason=None)
                for name, value in zip(ATTRIBUTE_NAMES, values.tolist(), strict=True):
                    record[name] = (
                        value if name == "rhythmic_complexity" else int(value)
                    )
            bars.append(record)
        tunes.append(
            {"title": melody.title, "warnings": list(melody.warnings), "bars": bars}
        )
    return {"file": str(path), "tunes": tunes}
