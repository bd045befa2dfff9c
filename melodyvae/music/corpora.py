"""Corpora of measures: built once from real files, cached, split by tune.

A corpus is named (``folk``, ``folk+essen``, ``chorales``) or a path to a file or
folder of music files. Building reads every tune with the project's readers, cuts it
into bars and tokenises every bar that has a grid; bars that cannot be tokenised are
counted by reason. The result is cached as ``.npz`` + ``.json`` in the cache folder,
keyed by the corpus, the options, the music21 version and :data:`EXTRACTION_VERSION`,
so a second use does not parse again. Building uses every core.

Splits are by tune and deterministic: a tune's split follows from a hash of its
notes, so the same tune transcribed twice (several collections share tunes) lands in
one split, and no held-out measure has a twin in training. Transposition
augmentation happens later, per batch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from melodyvae.core.cache import default_cache_dir
from melodyvae.errors import MelodyVAEError, ReadError
from melodyvae.music.melody import Melody
from melodyvae.music.tokens import (
    MAX_SLOTS,
    PAD,
    SUPPORTED_METERS,
    BarSkipped,
    Vocabulary,
    melody_to_bar_tokens,
)

logger = logging.getLogger(__name__)

# Bump when reading or tokenisation changes what a build produces.
# 2: bars of every meter with a grid are kept for the meter-aware model, with
#    per-meter skip counts.
EXTRACTION_VERSION = 2
FOLK_COLLECTIONS = ("oneills1850", "ryansMammoth", "airdsAirs", "miscFolk")
ESSEN_COLLECTION = "essenFolksong"
ESSEN_NOTICE = (
    "The Essen Folksong Collection (music21's essenFolksong) is licensed for "
    "non-commercial use only; models trained on it inherit that restriction."
)
NAMED_CORPORA = ("folk", "folk+essen", "chorales")
SPLIT_SHARES = {"train": 0.8, "valid": 0.1, "test": 0.1}
MUSIC_SUFFIXES = (".abc", ".mid", ".midi", ".musicxml", ".xml", ".mxl", ".krn")


def _music21_corpus_dir() -> Path:
    import music21

    return Path(music21.__file__).parent / "corpus"


@dataclass(frozen=True)
class CorpusSource:
    """What to read: files, and which part of each is the melody."""

    name: str
    files: tuple[Path, ...]
    part: int = 0
    notice: str | None = None


def resolve_corpus(name: str) -> CorpusSource:
    """Files of a named corpus or of a path (file or folder, searched recursively).

    Raises :class:`MelodyVAEError` for an unknown name or a path without music.
    """
    if name in ("folk", "folk+essen"):
        root = _music21_corpus_dir()
        collections = FOLK_COLLECTIONS + (
            (ESSEN_COLLECTION,) if name == "folk+essen" else ()
        )
        files = tuple(sorted(p for c in collections for p in (root / c).rglob("*.abc")))
        notice = ESSEN_NOTICE if name == "folk+essen" else None
        return CorpusSource(name, files, notice=notice)
    if name == "chorales":
        root = _music21_corpus_dir() / "bach"
        files = tuple(sorted(root.glob("bwv*.mxl")) + sorted(root.glob("bwv*.xml")))
        return CorpusSource(name, files, part=0)
    if not name.strip():
        raise MelodyVAEError("empty corpus name")
    path = Path(name)
    if path.is_file():
        return CorpusSource(str(path.resolve()), (path.resolve(),))
    if path.is_dir():
        # is_file() also drops dangling links, which no build could read.
        files = tuple(
            sorted(
                p
                for p in path.resolve().rglob("*")
                if p.suffix.lower() in MUSIC_SUFFIXES and p.is_file()
            )
        )
        if not files:
            raise MelodyVAEError(
                f"{path}: no music files in this folder "
                f"(looked for {', '.join(MUSIC_SUFFIXES)})"
            )
        return CorpusSource(str(path.resolve()), files)
    raise MelodyVAEError(
        f"{name}: not a corpus name ({', '.join(NAMED_CORPORA)}) nor an existing path"
    )


# -- building -------------------------------------------------------------------


@dataclass
class _FileResult:
    """Everything one file contributes, in compact arrays (cheap to pickle)."""

    path: str
    error: str | None = None
    titles: list[str] = field(default_factory=list)
    tune_keys: list[str] = field(default_factory=list)
    tokens: list[np.ndarray] = field(default_factory=list)
    meters: list[str] = field(default_factory=list)
    tune_of_bar: list[int] = field(default_factory=list)
    bar_index: list[int] = field(default_factory=list)
    pickup: list[bool] = field(default_factory=list)
    bars_by_meter: Counter = field(default_factory=Counter)
    skipped: Counter = field(default_factory=Counter)
    skipped_by_meter: Counter = field(default_factory=Counter)  # (meter, reason)


def tune_key(melody: Melody) -> str:
    """A hash of a tune's notes relative to its first pitch (transposition-free)."""
    if not melody.notes:
        return hashlib.sha1(melody.title.encode()).hexdigest()
    base = melody.notes[0].pitch
    text = ";".join(
        f"{n.onset - melody.notes[0].onset},{n.duration},{n.pitch - base}"
        for n in melody.notes
    )
    return hashlib.sha1(text.encode()).hexdigest()


def _read_file(task: tuple[str, int, int, int]) -> _FileResult:
    """Read and tokenise one file (runs in a worker process)."""
    from melodyvae.music.reading import read_melodies

    path, part, pitch_min, pitch_max = task
    vocab = Vocabulary(pitch_min=pitch_min, pitch_max=pitch_max)
    result = _FileResult(path)
    try:
        # Written order: a repeated section is one set of bars, not two identical
        # copies in training.
        melodies = read_melodies(path, part=part, expand_repeats=False)
    except MelodyVAEError as error:
        result.error = str(error)
        return result
    for melody in melodies:
        tune = len(result.titles)
        result.titles.append(melody.title)
        result.tune_keys.append(tune_key(melody))
        bar_results = melody_to_bar_tokens(melody, vocab)
        for bar, tokens in zip(melody.bars, bar_results, strict=True):
            result.bars_by_meter[bar.meter] += 1
            if isinstance(tokens, BarSkipped):
                result.skipped[tokens.reason] += 1
                result.skipped_by_meter[bar.meter, tokens.reason] += 1
                continue
            padded = np.full(MAX_SLOTS, PAD, dtype=np.int16)
            padded[: len(tokens)] = tokens
            result.tokens.append(padded)
            result.meters.append(bar.meter)
            result.tune_of_bar.append(tune)
            result.bar_index.append(bar.index)
            result.pickup.append(bar.pickup)
    return result


def _cache_key(source: CorpusSource, vocab: Vocabulary) -> str:
    import music21

    # Named corpora live inside the music21 package: identify their files by path
    # relative to it and size, so that every installation of the same music21
    # gets the same key. A user's own files may change in place: add the mtime.
    files = []
    if source.name in NAMED_CORPORA:
        root = _music21_corpus_dir()
        for path in source.files:
            files.append([path.relative_to(root).as_posix(), path.stat().st_size])
    else:
        for path in source.files:
            stat = path.stat()
            files.append([str(path), stat.st_size, int(stat.st_mtime)])
    identity = {
        "corpus": source.name,
        "part": source.part,
        "vocab": vocab.to_dict(),
        "music21": music21.__version__,
        "extraction_version": EXTRACTION_VERSION,
        "files": files,
    }
    return hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def _cache_stem(source: CorpusSource, key: str, cache_dir: Path) -> Path:
    label = "".join(c if c.isalnum() or c in "+-_" else "_" for c in source.name)
    return cache_dir / f"{label[-40:]}-{key[:12]}"


@dataclass
class Corpus:
    """Tokenised bars of a corpus with their tunes, meters and splits.

    ``tokens`` is (N, 24) int16, padded with -1 (PAD) past the bar's slots; ``meters``,
    ``tune``, ``bar_index`` and ``pickup`` are per bar; ``tune_split`` per tune.
    ``stats`` holds the counts shown by ``melodyvae corpus info``.
    """

    name: str
    key: str
    tokens: np.ndarray
    meters: np.ndarray
    tune: np.ndarray
    bar_index: np.ndarray
    pickup: np.ndarray
    titles: list[str]
    tune_split: np.ndarray
    stats: dict[str, Any]

    def select(
        self,
        meters: tuple[str, ...] = ("4/4", "2/2"),
        split: str | None = None,
        include_pickups: bool = False,
    ) -> np.ndarray:
        """Row indices of bars of the given meters (and split), pickups excluded."""
        rows = np.isin(self.meters, meters)
        if not include_pickups:
            rows &= ~self.pickup
        if split is not None:
            rows &= self.tune_split[self.tune] == split
        return np.flatnonzero(rows)

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "cache_key": self.key}


def split_of(tune_key_hex: str) -> str:
    """train / valid / test from a tune's hash (80 / 10 / 10 %)."""
    share = int(tune_key_hex[:8], 16) / 16**8
    edge = 0.0
    for split, fraction in SPLIT_SHARES.items():
        edge += fraction
        if share < edge:
            return split
    return "test"


def _assemble(source: CorpusSource, key: str, results: list[_FileResult]) -> Corpus:
    titles: list[str] = []
    keys: list[str] = []
    tokens, meters, tunes, bar_index, pickup = [], [], [], [], []
    bars_by_meter: Counter = Counter()
    kept_by_meter: Counter = Counter()
    skipped: Counter = Counter()
    skipped_by_meter: Counter = Counter()
    failed: list[str] = []
    for result in sorted(results, key=lambda r: r.path):
        if result.error is not None:
            failed.append(result.error)
            continue
        offset = len(titles)
        titles.extend(result.titles)
        keys.extend(result.tune_keys)
        tokens.extend(result.tokens)
        meters.extend(result.meters)
        tunes.extend(t + offset for t in result.tune_of_bar)
        bar_index.extend(result.bar_index)
        pickup.extend(result.pickup)
        bars_by_meter.update(result.bars_by_meter)
        kept_by_meter.update(result.meters)
        skipped.update(result.skipped)
        skipped_by_meter.update(result.skipped_by_meter)
    by_meter: dict[str, dict[str, int]] = {}
    for (meter, reason), count in skipped_by_meter.most_common():
        by_meter.setdefault(meter, {})[reason] = count
    tune_split = np.array([split_of(k) for k in keys], dtype="<U5")
    stats = {
        "corpus": source.name,
        "notice": source.notice,
        "n_files": len(source.files),
        "n_files_failed": len(failed),
        "failed_files": failed,
        "n_tunes": len(titles),
        "tunes_by_split": dict(Counter(tune_split.tolist())),
        "bars_by_meter": dict(bars_by_meter.most_common()),
        "bars_kept_by_meter": dict(kept_by_meter.most_common()),
        "bars_skipped_by_reason": dict(skipped.most_common()),
        "bars_skipped_by_meter": by_meter,
        "meters_with_grid": list(SUPPORTED_METERS),
    }
    return Corpus(
        name=source.name,
        key=key,
        tokens=np.array(tokens, dtype=np.int16).reshape(-1, MAX_SLOTS),
        meters=np.array(meters, dtype="<U5"),
        tune=np.array(tunes, dtype=np.int32),
        bar_index=np.array(bar_index, dtype=np.int32),
        pickup=np.array(pickup, dtype=bool),
        titles=titles,
        tune_split=tune_split,
        stats=stats,
    )


def _save(corpus: Corpus, stem: Path) -> None:
    stem.parent.mkdir(parents=True, exist_ok=True)
    temporary = stem.with_name(stem.name + ".tmp.npz")
    np.savez_compressed(
        temporary,
        tokens=corpus.tokens,
        meters=corpus.meters,
        tune=corpus.tune,
        bar_index=corpus.bar_index,
        pickup=corpus.pickup,
        tune_split=corpus.tune_split,
    )
    meta = {"name": corpus.name, "key": corpus.key, "titles": corpus.titles}
    meta["stats"] = corpus.stats
    stem.with_name(stem.name + ".json").write_text(json.dumps(meta) + "\n")
    os.replace(temporary, stem.with_name(stem.name + ".npz"))


def _load(stem: Path) -> Corpus | None:
    npz_path = stem.with_name(stem.name + ".npz")
    json_path = stem.with_name(stem.name + ".json")
    if not (npz_path.is_file() and json_path.is_file()):
        return None
    try:
        meta = json.loads(json_path.read_text())
        with np.load(npz_path) as arrays:
            data = {k: arrays[k] for k in arrays.files}
    except (OSError, ValueError, json.JSONDecodeError):
        logger.warning("cache %s is unreadable; rebuilding", npz_path)
        return None
    return Corpus(
        name=meta["name"],
        key=meta["key"],
        titles=meta["titles"],
        stats=meta["stats"],
        **data,
    )


def load_corpus(
    name: str,
    *,
    vocab: Vocabulary | None = None,
    cache_dir: Path | None = None,
    rebuild: bool = False,
    n_workers: int | None = None,
    on_start: Callable[[int], None] | None = None,
    on_file: Callable[[str, int], None] | None = None,
) -> Corpus:
    """The corpus ``name``, from the cache or built now.

    ``on_start(n_files)`` is called before a build and ``on_file(path, n_tunes)``
    after each file, for progress display. ``n_workers`` defaults to every core.
    """
    vocab = vocab or Vocabulary()
    source = resolve_corpus(name)
    if source.notice:
        logger.warning(source.notice)
    key = _cache_key(source, vocab)
    stem = _cache_stem(source, key, cache_dir or default_cache_dir())
    if not rebuild:
        cached = _load(stem)
        if cached is not None:
            logger.info("corpus %s loaded from %s", source.name, stem)
            return cached

    # Largest files first, so the workers finish together.
    paths = sorted(source.files, key=lambda p: -p.stat().st_size)
    tasks = [(str(p), source.part, vocab.pitch_min, vocab.pitch_max) for p in paths]
    if on_start is not None:
        on_start(len(tasks))
    n_workers = n_workers or os.cpu_count() or 1
    results: list[_FileResult] = []
    if n_workers == 1 or len(tasks) == 1:
        iterator = map(_read_file, tasks)
        for result in iterator:
            results.append(result)
            if on_file is not None:
                on_file(result.path, len(result.titles))
    else:
        with ProcessPoolExecutor(max_workers=n_workers) as pool:
            for result in pool.map(_read_file, tasks, chunksize=1):
                results.append(result)
                if on_file is not None:
                    on_file(result.path, len(result.titles))
    corpus = _assemble(source, key, results)
    if corpus.stats["n_tunes"] == 0:
        first = corpus.stats["failed_files"][:1]
        raise ReadError(
            f"{source.name}: no tune could be read"
            + (f" (first problem: {first[0]})" if first else "")
        )
    _save(corpus, stem)
    logger.info("corpus %s built: %s", source.name, stem)
    return corpus


def fraction_of_kept(
    stats: dict[str, Any], meters: tuple[str, ...] | None = None
) -> float:
    """Share of all bars of ``meters`` (default: of every meter) that were
    tokenised."""
    if meters is None:
        meters = tuple(stats["bars_by_meter"])
    total = sum(stats["bars_by_meter"].get(m, 0) for m in meters)
    kept = sum(stats["bars_kept_by_meter"].get(m, 0) for m in meters)
    return kept / total if total else 0.0
