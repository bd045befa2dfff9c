"""Round trip of every folk tune through MIDI: read, write MIDI, read back, compare.

Run on demand (not in CI), from the repository root::

    .venv/bin/python benchmarks/roundtrip.py [--corpus folk] [--out docs/roundtrip.md]

For every tune of the corpus (by default ``folk``: music21's ``oneills1850``,
``ryansMammoth``, ``airdsAirs`` and ``miscFolk``, enumerated as
:func:`melodyvae.music.corpora.resolve_corpus` does for training) it reads the tune
with :func:`~melodyvae.music.reading.read_melodies` (repeats as written, as a
corpus build reads them; ``--played-order`` expands them, as ``edit`` does),
writes it with :func:`~melodyvae.music.writing.melody_to_midi`, reads that file
back and compares
them bar by bar. A bar is identical when it has the same meter and the same notes
starting in it, at the same offsets from the barline and with the same pitches.
Durations, the pickup, the key and the tempo are compared as well and reported
separately. Files are read in parallel on every core, largest first, as a corpus
build does. The summary and every failure (the file, the tune and the first
difference) are printed and written to ``--out`` as Markdown.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import mido

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "docs" / "roundtrip.md"
DEFAULT_TEMPO_QPM = 120.0


@dataclass
class TuneResult:
    """One tune's comparison; ``difference`` is None when nothing differs."""

    file: str
    tune: int
    title: str
    n_bars: int
    n_identical: int
    n_duration_differs: int
    kind: str | None = None
    mode_lost: bool = False
    difference: str | None = None


@dataclass
class FileResult:
    path: str
    error: str | None = None
    tunes: list[TuneResult] = field(default_factory=list)


def _bar_notes(melody, bar) -> list[tuple[Fraction, int, Fraction]]:
    """(offset from the barline, pitch, duration) of the notes starting in ``bar``."""
    return [
        (note.onset - bar.start, note.pitch, note.duration)
        for note in melody.notes
        if bar.start <= note.onset < bar.end
    ]


def _show(notes: list[tuple[Fraction, int, Fraction]]) -> str:
    return " ".join(f"{pitch}@{offset}" for offset, pitch, _ in notes) or "no notes"


def _signature(key_name: str | None) -> tuple[int, bool] | None:
    """Sharps or flats, and whether minor, of a key name; None without a key."""
    from melodyvae.music.notation import parse_key

    info = parse_key(key_name)
    if info is None:
        return None
    return info.fifths, info.mode in ("minor", "aeolian")


def compare(file: str, tune: int, original, again) -> TuneResult:
    """Compare a melody with its MIDI round trip, bar by bar."""
    result = TuneResult(file, tune, original.title, len(original.bars), 0, 0)

    def differ(kind: str, text: str) -> None:
        if result.kind is None:
            result.kind, result.difference = kind, text

    if len(again.bars) != len(original.bars):
        differ(
            "bar count",
            f"{len(original.bars)} bars written, {len(again.bars)} read back",
        )
    for bar, bar_again in zip(original.bars, again.bars, strict=False):
        where = f"bar {bar.index}"
        if (bar.start, bar.length, bar.meter) != (
            bar_again.start,
            bar_again.length,
            bar_again.meter,
        ):
            differ(
                "meter",
                f"{where}: {bar.meter} at {bar.start} ql written, "
                f"{bar_again.meter} at {bar_again.start} ql read back",
            )
            continue
        notes, notes_again = _bar_notes(original, bar), _bar_notes(again, bar_again)
        onsets = [(offset, pitch) for offset, pitch, _ in notes]
        onsets_again = [(offset, pitch) for offset, pitch, _ in notes_again]
        if onsets != onsets_again:
            kind = (
                "pitches"
                if [o for o, _ in onsets] == [o for o, _ in onsets_again]
                else "onsets"
            )
            differ(
                kind,
                f"{where}: {_show(notes)} written, {_show(notes_again)} read back",
            )
            continue
        result.n_identical += 1
        if notes != notes_again:
            result.n_duration_differs += 1
            first = next(
                (a, b) for a, b in zip(notes, notes_again, strict=True) if a != b
            )
            differ(
                "durations",
                f"{where}: note {first[0][1]}@{first[0][0]} lasts {first[0][2]} ql "
                f"written, {first[1][2]} ql read back",
            )
    if original.pickup_length != again.pickup_length:
        differ(
            "pickup",
            f"pickup of {original.pickup_length} ql written, "
            f"{again.pickup_length} ql read back",
        )
    if _signature(original.key) != _signature(again.key):
        differ(
            "key signature", f"key {original.key!r} written, {again.key!r} read back"
        )
    elif original.key != again.key:
        # MIDI key signatures are major or minor: "A dorian" is written (and read
        # back) as "G major", the same signature.
        result.mode_lost = True
    # A melody without a tempo is written at the MIDI default, 120 qpm. MIDI
    # stores whole microseconds per quarter note: compare at that precision.
    tempo = original.tempo_qpm or DEFAULT_TEMPO_QPM
    if again.tempo_qpm is None or mido.bpm2tempo(tempo) != mido.bpm2tempo(
        again.tempo_qpm
    ):
        differ("tempo", f"tempo {tempo} written, {again.tempo_qpm} read back")
    return result


def round_trip_file(task: tuple[str, bool]) -> FileResult:
    """Read one file, and round-trip each of its tunes (runs in a worker)."""
    path, played_order = task
    import warnings

    from melodyvae.errors import MelodyVAEError, MelodyVAEWarning
    from melodyvae.music.reading import read_melodies
    from melodyvae.music.writing import melody_to_midi

    warnings.simplefilter("ignore", MelodyVAEWarning)
    result = FileResult(path)
    try:
        melodies = read_melodies(path, expand_repeats=played_order)
    except MelodyVAEError as error:
        result.error = str(error)
        return result
    with tempfile.TemporaryDirectory(prefix="melodyvae-roundtrip-") as folder:
        out = Path(folder) / "tune.mid"
        for index, melody in enumerate(melodies, 1):
            try:
                melody_to_midi(melody, out)
                again = read_melodies(out)
            except (MelodyVAEError, ValueError) as error:
                failed = TuneResult(path, index, melody.title, len(melody.bars), 0, 0)
                failed.kind = "write or read-back error"
                failed.difference = str(error)
                result.tunes.append(failed)
                continue
            if len(again) != 1:
                failed = TuneResult(path, index, melody.title, len(melody.bars), 0, 0)
                failed.kind = "tune count"
                failed.difference = f"{len(again)} melodies read back"
                result.tunes.append(failed)
                continue
            result.tunes.append(compare(path, index, melody, again[0]))
    return result


def _relative(path: str) -> str:
    import music21

    root = Path(music21.__file__).parent / "corpus"
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return path


def report(
    corpus: str,
    results: list[FileResult],
    seconds: float,
    workers: int,
    played_order: bool,
) -> str:
    """The Markdown page: summary, failures by kind and every failure."""
    import music21

    tunes = [tune for result in results for tune in result.tunes]
    unreadable = [result for result in results if result.error is not None]
    n_bars = sum(t.n_bars for t in tunes)
    n_identical = sum(t.n_identical for t in tunes)
    n_duration = sum(t.n_duration_differs for t in tunes)
    failures = [t for t in tunes if t.kind is not None]
    kinds = Counter(t.kind for t in failures)
    share = 100 * n_identical / n_bars if n_bars else 0.0
    lines = [
        "# MIDI round trip of the folk corpus",
        "",
        "Every tune is read (repeats "
        + ("in played order" if played_order else "as written, as corpora read them")
        + "), written as MIDI by `melody_to_midi`, read back with `read_melodies`",
        "and compared bar by bar: a bar is identical when its meter and the onsets",
        "(offset from the barline) and pitches of the notes that start in it are the",
        "same. Durations, the pickup, the key signature and the tempo (at the",
        "microsecond MIDI stores) are compared too. Not compared: the instrument",
        "(ABC names none), and tempo or key changes inside a tune (a `Melody` holds",
        "one of each).",
        "Regenerate with",
        "",
        "```bash",
        "nice -n 10 .venv/bin/python benchmarks/roundtrip.py --corpus "
        + corpus
        + (" --played-order" if played_order else ""),
        "```",
        "",
        f"Measured {datetime.date.today().isoformat()} with music21 "
        f"{music21.__version__}, Python {platform.python_version()}, "
        f"{workers} worker process(es) on {os.cpu_count()} core(s).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| files | {len(results)} ({len(unreadable)} unreadable) |",
        f"| tunes | {len(tunes)} |",
        f"| tunes with every bar, pickup, key and tempo identical | "
        f"{len(tunes) - len(failures)} |",
        f"| bars | {n_bars} |",
        f"| identical bars (meter, onsets, pitches) | {n_identical} ({share:.2f} %) |",
        f"| identical bars whose durations differ | {n_duration} |",
        f"| tunes in a mode read back as the major key of its signature | "
        f"{sum(t.mode_lost for t in tunes)} |",
        f"| wall time | {seconds:.0f} s |",
        "",
    ]
    if kinds:
        lines += ["## Failures by kind (the first difference of each tune)", ""]
        lines += ["| kind | tunes |", "|---|---|"]
        lines += [f"| {kind} | {count} |" for kind, count in kinds.most_common()]
        lines.append("")
        lines += ["## Failures", ""]
        lines += ["| file | tune | title | kind | first difference |"]
        lines += ["|---|---|---|---|---|"]
        for tune in failures:
            title = tune.title.replace("|", "\\|")
            difference = (tune.difference or "").replace("|", "\\|")
            lines.append(
                f"| {_relative(tune.file)} | {tune.tune} | {title} | {tune.kind} | "
                f"{difference} |"
            )
        lines.append("")
    else:
        lines += ["No tune differs.", ""]
    if unreadable:
        lines += ["## Unreadable files (not round-tripped)", ""]
        for result in unreadable:
            lines.append(f"- {result.error}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", default="folk", help="corpus name or path")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="Markdown file")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--limit", type=int, default=None, help="first N files only")
    parser.add_argument(
        "--played-order",
        action="store_true",
        help="expand repeats as edit does (default: as written, as a corpus build)",
    )
    args = parser.parse_args(argv)

    from melodyvae.music.corpora import resolve_corpus

    source = resolve_corpus(args.corpus)
    # Largest files first, so the workers finish together.
    paths = sorted(source.files, key=lambda p: -p.stat().st_size)[: args.limit]
    started = time.perf_counter()
    results: list[FileResult] = []
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for done, result in enumerate(
            pool.map(
                round_trip_file,
                [(str(path), args.played_order) for path in paths],
                chunksize=1,
            ),
            1,
        ):
            results.append(result)
            if done % 100 == 0 or done == len(paths):
                print(f"{done}/{len(paths)} files", file=sys.stderr, flush=True)
    seconds = time.perf_counter() - started
    results.sort(key=lambda r: r.path)
    page = report(args.corpus, results, seconds, args.workers, args.played_order)
    print(page)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(page)
    print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
