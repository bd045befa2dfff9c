"""The ``melodyvae`` command line: parse options, call the library, show results.

Heavy libraries (torch, music21) are imported inside the commands so that
``melodyvae --help`` answers at once. Errors the user can cause end in one line on
stderr and exit status 1; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shlex
import sys
import warnings
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from melodyvae.cli_support import (
    METRIC_ROWS,
    device_option,
    force_option,
    json_option,
    loss_options,
    resume_option,
    split_option,
    training_progress,
)
from melodyvae.cli_support import check_device as _check_device
from melodyvae.cli_support import console as _console
from melodyvae.cli_support import refuse_overwrite as _refuse_overwrite
from melodyvae.cli_support import seed_option as shared_seed_option
from melodyvae.errors import MelodyVAEError, MelodyVAEWarning
from melodyvae.music.attributes import ATTRIBUTE_NAMES

logger = logging.getLogger("melodyvae")

# The attribute names come from the library (numpy only; torch and music21 are
# imported inside the commands).
ATTRIBUTE_CHOICES = ATTRIBUTE_NAMES
# Table headers with units: complexity is a 0-1 share of the bar's metrical weight,
# contour is last minus first pitch.
ATTRIBUTE_HEADERS = {
    "rhythmic_complexity": "rhythmic\ncomplexity (0-1)",
    "pitch_range": "pitch range\n(semitones)",
    "note_density": "note density\n(notes)",
    "contour": "contour\n(semitones)",
}


class _Group(click.Group):
    """A click group that turns the project's errors into one line and exit 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (MelodyVAEError, OSError) as error:
            if (ctx.obj or {}).get("debug"):
                raise
            message = str(error) or type(error).__name__
            if isinstance(error, OSError) and error.filename and error.strerror:
                message = f"{error.filename}: {error.strerror}"
            click.echo(f"melodyvae: error: {message}", err=True)
            ctx.exit(1)


class _CurrentStderr:
    """Writes to whatever ``sys.stderr`` is now, so log lines go through a rich
    progress display's redirection instead of tearing it."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


class _LineFormatter(logging.Formatter):
    """One plain line per record (grep-able); warnings and errors say so."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            return f"melodyvae: {record.levelname.lower()}: {message}"
        return message


def _show_warning(message, category, filename, lineno, file=None, line=None):
    click.echo(f"melodyvae: warning: {message}", err=True)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.version_option(package_name="melodyvae")
@click.pass_context
def cli(ctx: click.Context, debug: bool, quiet: bool) -> None:
    """Measure, sample, interpolate and edit melodies with an attribute-regularised
    VAE whose latent axes carry rhythmic complexity, pitch range, note density and
    contour.

    Commands that need a model use the shipped folk model unless given
    --checkpoint.
    """
    ctx.obj = {"debug": debug}
    handler = logging.StreamHandler(_CurrentStderr())
    handler.setFormatter(_LineFormatter())
    logging.basicConfig(level=logging.WARNING, handlers=[handler], force=True)
    logger.setLevel(logging.WARNING if quiet else logging.INFO)
    if not debug:
        warnings.showwarning = _show_warning
    # Readers also record their warnings on each melody; the commands show those,
    # once per tune, so the library's own warning would be a duplicate.
    warnings.filterwarnings("ignore", category=MelodyVAEWarning)


# -- shared options --------------------------------------------------------------

checkpoint_option = click.option(
    "--checkpoint",
    "-c",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Model checkpoint (STEM, STEM.json or STEM.safetensors). "
    "Default: the shipped folk model.",
)
part_option = click.option(
    "--part",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="Which part (MusicXML, kern) or track/channel (MIDI) holds the melody, "
    "counting from 0 among those with pitched notes.",
)
voice_option = click.option(
    "--voice",
    default=0,
    show_default=True,
    type=click.IntRange(0),
    help="Which voice of that part (ABC V: voices, MusicXML voices), from 0.",
)
as_written_option = click.option(
    "--as-written",
    is_flag=True,
    help="Read repeats and first/second endings as written, each written bar "
    "once. Default: in the order they are played (|: A :| gives A A).",
)
seed_option = shared_seed_option("result")


def output_folder_option(default: str):
    return click.option(
        "-o",
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        default=Path(default),
        show_default=True,
        help="Output folder.",
    )


# Output formats and the suffix each writes; suffixes that imply a format.
FORMAT_SUFFIXES = {"midi": ".mid", "musicxml": ".musicxml", "abc": ".abc"}
_SUFFIX_FORMATS = {
    ".mid": "midi",
    ".midi": "midi",
    ".musicxml": "musicxml",
    ".xml": "musicxml",
    ".abc": "abc",
}
# Music files that can be read but not written.
_UNWRITABLE_SUFFIXES = (".mxl", ".krn")


def format_option(default: str | None, help_text: str):
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(list(FORMAT_SUFFIXES)),
        default=default,
        show_default=default is not None,
        help=help_text,
    )


def _writers(output_format: str):
    """The functions that write one melody and several in sequence."""
    from melodyvae.music import writing

    return {
        "midi": (writing.melody_to_midi, writing.melodies_to_midi),
        "musicxml": (writing.melody_to_musicxml, writing.melodies_to_musicxml),
        "abc": (writing.melody_to_abc, writing.melodies_to_abc),
    }[output_format]


def _load_model(checkpoint: Path | None):
    from melodyvae.music.training import load_trained_model

    return load_trained_model(checkpoint)


def _series_paths(
    out: Path, prefix: str, n: int, force: bool, output_format: str = "midi"
) -> list[Path]:
    """``out/PREFIX_01.mid`` … and ``out/all_PREFIXs.mid`` (or the suffix of
    ``output_format``), checked for writing."""
    suffix = FORMAT_SUFFIXES[output_format]
    width = max(2, len(str(n)))
    paths = [out / f"{prefix}_{i:0{width}d}{suffix}" for i in range(1, n + 1)]
    paths.append(out / f"all_{prefix}s{suffix}")
    _refuse_overwrite(paths, force)
    return paths


def _write_series(
    out: Path,
    prefix: str,
    melodies: list,
    paths: list[Path],
    output_format: str = "midi",
) -> None:
    """Write one file per melody and all of them in sequence (each one standing
    alone: a leading hold is silence, never a tie; in ABC, a tunebook of one tune
    per melody). Earlier outputs of the same kind and format in ``out`` are
    removed first (only reached with --force when any exist), so no stale step or
    sample remains."""
    write_one, write_all = _writers(output_format)
    if out.is_dir():
        for stale in out.glob(f"{prefix}_*{FORMAT_SUFFIXES[output_format]}"):
            stale.unlink()
    out.mkdir(parents=True, exist_ok=True)
    for melody, path in zip(melodies, paths[:-1], strict=True):
        write_one(melody, path)
    write_all(melodies, paths[-1])


def _read_tune(
    path: Path, tune: int, part: int = 0, voice: int = 0, as_written: bool = False
):
    from melodyvae.music.reading import read_melodies

    melodies = read_melodies(
        path, part=part, voice=voice, expand_repeats=not as_written
    )
    if not 1 <= tune <= len(melodies):
        raise MelodyVAEError(
            f"{path}: tune {tune} requested, the file has {len(melodies)}"
        )
    melody = melodies[tune - 1]
    for message in melody.warnings:
        logger.warning("%s: %s", path.name, message)
    return melody


def _fmt(value: float | None, name: str) -> str:
    if value is None:
        return "-"
    if name == "rhythmic_complexity":
        return f"{value:.3f}"
    return f"{value:+g}" if name == "contour" else f"{value:g}"


def _fmt_mean(value: float, name: str) -> str:
    """An expected (averaged) attribute value: one decimal in natural units."""
    if name == "rhythmic_complexity":
        return f"{value:.3f}"
    return f"{value:+.1f}" if name == "contour" else f"{value:.1f}"


# -- train ---------------------------------------------------------------------


@cli.command()
@click.option(
    "--corpus",
    default="folk",
    show_default=True,
    help="folk, folk+essen (non-commercial licence), chorales, "
    "or a file/folder of ABC, MIDI, MusicXML or kern files.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Checkpoint stem to write. Default: runs/CORPUS.",
)
@click.option("--epochs", default=60, show_default=True, type=click.IntRange(1))
@loss_options(beta=0.001, gamma=1.0, delta=10.0)
@click.option("--latent-dim", default=32, show_default=True, type=click.IntRange(4))
@click.option(
    "--max-transpose",
    default=6,
    show_default=True,
    type=click.IntRange(0),
    help="Random transposition of training measures, in semitones.",
)
@click.option(
    "--teacher-forcing",
    nargs=2,
    type=click.FloatRange(0, 1),
    default=(1.0, 0.5),
    show_default=True,
    metavar="FIRST LAST",
    help="Share of true previous tokens fed to the decoder, falling linearly "
    "from the first epoch to the last.",
)
@seed_option
@device_option
@click.option(
    "--init-from",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Start from this checkpoint's weights (fine-tune on your own corpus, "
    "or train a model further).",
)
@click.option(
    "--meters",
    "meters_text",
    default=None,
    metavar="M1,M2,...",
    help="Train on bars of these meters only, e.g. 4/4,2/2 for the 4-beat model. "
    "Default: every meter with a grid (2/4, 3/4, 4/4, 2/2, 6/8, 9/8, 12/8) "
    "the corpus has.",
)
@resume_option
@force_option
def train(
    corpus: str,
    out: Path | None,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    beta: float,
    gamma: float,
    delta: float,
    latent_dim: int,
    max_transpose: int,
    teacher_forcing: tuple[float, float],
    seed: int,
    device: str,
    init_from: Path | None,
    meters_text: str | None,
    resume: bool,
    force: bool,
) -> None:
    """Train an AR-VAE on the bars of a corpus.

    By default one meter-aware model learns the bars of every meter with a grid;
    --meters 4/4,2/2 trains the 4-beat model. The corpus is parsed once and
    cached; later runs start training at once.
    Example: melodyvae train --corpus folk --epochs 30 -o runs/folk
    """
    from melodyvae.core.checkpoint import checkpoint_stem, resume_path
    from melodyvae.core.losses import ARConfig
    from melodyvae.core.trainer import TrainConfig
    from melodyvae.music.training import MusicTrainOptions, train_music_model

    if out is None:
        label = "".join(c if c.isalnum() or c in "+-_" else "_" for c in corpus)
        out = Path("runs") / label.strip("_")
    stem = checkpoint_stem(out)
    outputs = [stem.with_name(stem.name + s) for s in (".json", ".safetensors")]
    if resume and not resume_path(stem).exists():
        raise MelodyVAEError(f"{resume_path(stem)}: nothing to resume")
    _refuse_overwrite(outputs, force or resume)
    _check_device(device)

    config = TrainConfig(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        seed=seed,
        loss=ARConfig(beta=beta, gamma=gamma, delta=delta),
        reg_dims=(0, 1, 2, 3),
        device=device,
    )
    options = MusicTrainOptions(
        max_transpose=max_transpose,
        teacher_forcing_start=teacher_forcing[0],
        teacher_forcing_end=teacher_forcing[1],
        meters=_parse_meters(meters_text),
    )
    command = "melodyvae " + shlex.join(sys.argv[1:]) if sys.argv else ""

    with training_progress(epochs) as progress:
        result = train_music_model(
            corpus,
            stem,
            config,
            options=options,
            latent_dim=latent_dim,
            init_from=init_from,
            resume=resume,
            command=command,
            on_corpus_start=lambda n: progress.on_stage(f"reading {corpus}", n),
            on_corpus_file=lambda path, n_tunes: progress.advance_stage(),
            on_batch=progress.on_batch,
            on_epoch=progress.on_epoch,
        )
    metrics = result["test_metrics"]
    _print_metrics(metrics, title=f"{stem} on the held-out test split")
    click.echo(f"wrote {stem}.safetensors and {stem}.json")


def _parse_meters(text: str | None) -> tuple[str, ...] | None:
    """``4/4,2/2`` as a tuple of meters with a grid (None for None)."""
    if text is None:
        return None
    from melodyvae.music.tokens import SUPPORTED_METERS

    meters = tuple(dict.fromkeys(m.strip() for m in text.split(",") if m.strip()))
    unknown = [m for m in meters if m not in SUPPORTED_METERS]
    if unknown or not meters:
        raise click.BadParameter(
            f"{text!r}: give meters among {', '.join(SUPPORTED_METERS)}, "
            "separated by commas",
            param_hint="--meters",
        )
    return meters


def _print_metrics(metrics: dict[str, Any], title: str) -> None:
    from rich.table import Table

    table = Table(title=title)
    table.add_column("metric")
    table.add_column("mean", justify="right")
    for name in ATTRIBUTE_CHOICES:
        table.add_column(ATTRIBUTE_HEADERS[name].split("\n")[0], justify="right")
    for key, label in METRIC_ROWS:
        if key not in metrics:
            continue
        entry = metrics[key]
        per = entry.get("per_attribute", entry)
        mean = entry.get("mean", sum(per.values()) / len(per))
        table.add_row(
            label, f"{mean:.3f}", *(f"{per[n]:.3f}" for n in ATTRIBUTE_CHOICES)
        )
    table.add_row("token accuracy", f"{100 * metrics['recon_accuracy']:.2f} %")
    if metrics.get("onset_accuracy") is not None:
        table.add_row("onset accuracy", f"{100 * metrics['onset_accuracy']:.2f} %")
    table.caption = f"{metrics['n_measures']} measures"
    _console().print(table)


def _edit_benchmark(trained, data, n_bars: int, status) -> dict | None:
    """The edit benchmark on ``n_bars`` evenly spread bars of ``data`` (None, with
    a warning, for a checkpoint without a calibration)."""
    from melodyvae.music.calibration import CalibrationMissing, calibration_of
    from melodyvae.music.evaluation import edit_benchmark, evenly_spread
    from melodyvae.music.training import split_meters

    try:
        calibration = calibration_of(
            trained.meta, str(trained.path), _fingerprint(trained)
        )
    except CalibrationMissing as missing:
        logger.warning("edit benchmark skipped: %s", missing)
        return None
    subset = evenly_spread(len(data.inputs), n_bars)
    meters = split_meters(data, trained)
    return edit_benchmark(
        trained,
        calibration,
        data.inputs[subset],
        None if meters is None else meters[subset],
        progress=lambda text: status.update(f"evaluating: {text}"),
    )


def _print_edit_benchmark(bench: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"edits on {bench['n_bars']} held-out bars")
    table.add_column("attribute")
    tries = list(bench["success"])
    for key in tries:
        table.add_column(f"±1 sd right way, {key.replace('_', ' ')}", justify="right")
    for key in tries:
        table.add_column(f"±K met, {key.replace('_', ' ')}", justify="right")
    table.add_column("tolerance", justify="right")
    for name in ATTRIBUTE_CHOICES:
        cells = [
            f"{100 * bench['direction_at_1sd'][key]['per_attribute'][name]:.1f} %"
            for key in tries
        ]
        for key in tries:
            rate = bench["success"][key]["per_attribute"].get(name)
            cells.append("-" if rate is None else f"{100 * rate:.1f} %")
        table.add_row(
            ATTRIBUTE_HEADERS[name].split("\n")[0],
            *cells,
            f"±{bench['tolerances'][name]:g}",
        )
    changes = ", ".join(f"{c:+g}" for c in bench["changes"]["note_density"])
    table.caption = (
        "±1 sd: --attr NAME ±1 moved the attribute the way asked, over bars that "
        f"can move that way; ±K met: --set NAME=±K for K in {changes} "
        "(complexity: tenths), within the "
        "tolerance and the right way, over bars whose target was in the training "
        "range"
    )
    _console().print(table)


def _trained_corpus(trained):
    """The corpus ``trained`` was trained on, built or loaded from the cache; a
    warning when it was built differently (its splits may differ)."""
    corpus_name = trained.meta["corpus"]["name"]
    corpus = _load_corpus_with_progress(corpus_name, rebuild=False, vocab=trained.vocab)
    if corpus.key != trained.meta["corpus"].get("cache_key"):
        logger.warning(
            "corpus %s was built differently from the one this model was trained "
            "on (another music21 or melodyvae version): splits may differ",
            corpus_name,
        )
    return corpus


def _model_corpus(trained, split: str):
    """The split of the corpus ``trained`` was trained on, as a :class:`Split`."""
    from melodyvae.music.training import evaluation_meters, model_split

    corpus = _trained_corpus(trained)
    if trained.meter_aware:
        logger.info(
            "meter-aware model: scored on its %s bars",
            ", ".join(evaluation_meters(trained)),
        )
    return corpus, model_split(corpus, split, trained)


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one existing file (links included)."""
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _refuse_checkpoint_overwrite(trained, path: Path) -> None:
    own_files = {
        trained.path.with_name(trained.path.name + suffix).resolve()
        for suffix in (".json", ".safetensors")
    }
    if path.resolve() in own_files or any(_same_file(path, f) for f in own_files):
        raise MelodyVAEError(f"{path}: refusing to write over the checkpoint")


def _training_commands(meta: dict[str, Any]) -> list[str]:
    """The commands that trained a checkpoint, first to last (through --init-from)."""
    commands = []
    training = meta.get("training", {})
    while isinstance(training, dict) and training:
        if training.get("command"):
            commands.append(training["command"])
        training = (training.get("init_from") or {}).get("training", {})
    return commands[::-1]


# -- evaluate ------------------------------------------------------------------


@cli.command()
@checkpoint_option
@split_option
@json_option
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Also draw each attribute against its latent dim as PNG in this folder.",
)
@click.option(
    "--traversal-bars",
    default=256,
    show_default=True,
    type=click.IntRange(1),
    help="Held-out bars used for the traversal-control metrics.",
)
@click.option(
    "--edit-bars",
    default=256,
    show_default=True,
    type=click.IntRange(0),
    help="Held-out bars used for the edit benchmark (0: skip it). Needs a "
    "calibrated checkpoint.",
)
@force_option
def evaluate(
    checkpoint: Path | None,
    split: str,
    json_path: Path | None,
    out: Path | None,
    traversal_bars: int,
    edit_bars: int,
    force: bool,
) -> None:
    """Disentanglement, reconstruction and traversal control on held-out bars.

    Interpretability, MIG, SAP, modularity and SCC on the posterior means; token
    and onset accuracy of free-running argmax decoding; and, for every regularised
    dim set from -4 to +4, how well its attribute follows (traversal Spearman) and
    how far the other attributes move (crosstalk, in attribute standard deviations).
    With a calibrated checkpoint, an edit benchmark: for each attribute, changes of
    -2, -1, +1 and +2 in its own unit (notes, semitones; 0.1 for complexity) asked
    of held-out bars with 1 and 8 tries, the share met within the tolerance, and
    latent shifts of ±1 sd, the share that moved the right way. Deterministic.

    Example: melodyvae evaluate --json metrics.json --out plots/
    """
    from melodyvae.music.evaluation import evaluate_split

    trained = _load_model(checkpoint)
    outputs = []
    if json_path is not None:
        _refuse_checkpoint_overwrite(trained, json_path)
        outputs.append(json_path)
    plot_paths = []
    if out is not None:
        plot_paths = [out / f"latent_{name}.png" for name in ATTRIBUTE_CHOICES]
        outputs.extend(plot_paths)
    _refuse_overwrite(outputs, force)
    corpus, data = _model_corpus(trained, split)
    if len(data) < 2:
        raise MelodyVAEError(
            f"the {split} split of {corpus.name} has {len(data)} usable bars; "
            "metrics need at least 2"
        )
    with _console(stderr=True).status("evaluating") as status:
        metrics, latents = evaluate_split(
            trained,
            data,
            traversal_bars=traversal_bars,
            progress=lambda text: status.update(f"evaluating: {text}"),
        )
        if edit_bars:
            metrics["edit_benchmark"] = _edit_benchmark(
                trained, data, edit_bars, status
            )
    _print_metrics(
        metrics, title=f"{trained.path} on the {split} split of {corpus.name}"
    )
    if metrics.get("edit_benchmark"):
        _print_edit_benchmark(metrics["edit_benchmark"])
    if json_path is not None:
        record = {
            "checkpoint": str(trained.path),
            "training_commands": _training_commands(trained.meta),
            "corpus": corpus.identity(),
            "split": split,
            **metrics,
        }
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(record, indent=2) + "\n")
    if plot_paths:
        from melodyvae.music.plots import latent_scatter

        for index, (name, path) in enumerate(
            zip(ATTRIBUTE_CHOICES, plot_paths, strict=True)
        ):
            dim = trained.reg_dims[index]
            latent_scatter(latents[:, dim], data.attributes[:, index], name, dim, path)
        click.echo(f"wrote {len(plot_paths)} pictures to {out}")


# -- calibrate -----------------------------------------------------------------


@cli.command()
@checkpoint_option
@click.option(
    "--force", is_flag=True, help="Fit again a checkpoint that is calibrated."
)
def calibrate(checkpoint: Path | None, force: bool) -> None:
    """Fit the map between each attribute and its latent axis, in musical units.

    For every regularised attribute (and every grid a meter-aware model serves)
    an isotonic regression from latent coordinate to attribute value on the
    training bars, stored in the checkpoint's JSON. It lets edit and sample take
    targets like --set note_density=8. train does this at the end of training;
    this command adds it to a checkpoint that lacks it (--force: fit again).

    Example: melodyvae calibrate -c runs/folk
    """
    from melodyvae.core.checkpoint import save_description
    from melodyvae.music.calibration import calibrate_model

    trained = _load_model(checkpoint)
    if "calibration" in trained.meta and not force:
        raise MelodyVAEError(
            f"{trained.path}.json is already calibrated; --force fits it again"
        )
    corpus = _trained_corpus(trained)
    with _console(stderr=True).status("encoding the training bars"):
        calibration = calibrate_model(trained, corpus)
    meta = {k: v for k, v in trained.meta.items() if k != "format_version"}
    meta["calibration"] = calibration.to_dict()
    path = save_description(trained.path, meta)
    _print_calibration(calibration)
    click.echo(f"calibrated {path}")


def _print_calibration(calibration) -> None:
    from rich.table import Table

    from melodyvae.music.control import UNITS

    for grid, attributes in calibration.grids.items():
        table = Table(
            title=f"{', '.join(calibration.meters[grid])}: "
            f"{calibration.n_bars[grid]} training bars"
        )
        table.add_column("attribute")
        table.add_column("dim", justify="right")
        table.add_column("training range", justify="right")
        for coordinate in (-2, -1, 0, 1, 2):
            table.add_column(f"z = {coordinate:+d}", justify="right")
        for name in ATTRIBUTE_CHOICES:
            fitted = attributes[name]
            values = fitted.coordinate_to_value([-2.0, -1.0, 0.0, 1.0, 2.0])
            table.add_row(
                ATTRIBUTE_HEADERS[name].split("\n")[0],
                str(fitted.dim),
                f"{_fmt(fitted.low, name)} to {_fmt(fitted.high, name)}" + UNITS[name],
                *(_fmt_mean(v, name) for v in values),
            )
        table.caption = "expected value of each attribute at latent coordinates z"
        _console().print(table)


# -- encode --------------------------------------------------------------------


@cli.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--corpus",
    "corpus_name",
    default=None,
    help="Encode a corpus (folk, chorales, or a path) instead of FILE.",
)
@click.option(
    "--split",
    type=click.Choice(["train", "valid", "test", "all"]),
    default="test",
    show_default=True,
    help="With --corpus: which split.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    required=True,
    help="The .npz file to write.",
)
@part_option
@voice_option
@as_written_option
@checkpoint_option
@force_option
def encode(
    file: Path | None,
    corpus_name: str | None,
    split: str,
    out: Path,
    part: int,
    voice: int,
    as_written: bool,
    checkpoint: Path | None,
    force: bool,
) -> None:
    """Posterior means and attributes of every usable bar, as an .npz file.

    The file holds `latents` (bars x latent dims), `attributes` (bars x 4, in
    `attribute_names` order), `reg_dims` (the latent dim of each attribute),
    `tune` and `bar` (which tune and bar number each row came from) and `titles`.

    Example: melodyvae encode tune.abc -o latents.npz

    Example: melodyvae encode --corpus folk --split test -o folk_test.npz
    """
    import numpy as np

    from melodyvae.music.attributes import compute_attributes
    from melodyvae.music.generation import encode_measures

    if (file is None) == (corpus_name is None):
        raise MelodyVAEError("give either FILE or --corpus NAME")
    if out.suffix != ".npz":
        raise MelodyVAEError(f"{out}: the output must be an .npz file")
    trained = _load_model(checkpoint)
    _refuse_checkpoint_overwrite(trained, out)
    _refuse_overwrite([out], force)
    if corpus_name is not None:
        built = _load_corpus_with_progress(corpus_name, False, vocab=trained.vocab)
        rows = built.select(trained.meters, None if split == "all" else split)
        width = trained.model.config.n_slots
        tokens = built.tokens[rows, :width].astype(np.int64)
        bar_meters = list(built.meters[rows])
        tune, bar = built.tune[rows], built.bar_index[rows]
        titles = list(built.titles)
        source = built.name
    else:
        from melodyvae.music.generation import encodable_bars
        from melodyvae.music.reading import read_melodies

        melodies = read_melodies(
            file, part=part, voice=voice, expand_repeats=not as_written
        )
        from melodyvae.music.tokens import pad_measures

        token_rows, tune_rows, bar_rows, bar_meters = [], [], [], []
        for number, melody in enumerate(melodies):
            encodable = encodable_bars(trained, melody)
            for index in encodable.indices:
                token_rows.append(encodable.tokens[index])
                tune_rows.append(number)
                bar_rows.append(index)
                bar_meters.append(encodable.meters[index])
        if not token_rows:
            raise MelodyVAEError(f"{file}: no bar this model can take")
        tokens = pad_measures(token_rows)
        tune, bar = np.array(tune_rows), np.array(bar_rows)
        titles = [m.title for m in melodies]
        source = str(file)
    if len(tokens) == 0:
        raise MelodyVAEError(f"{source}: no bars of {', '.join(trained.meters)} here")
    latents = encode_measures(trained, tokens, bar_meters)
    values = compute_attributes(tokens, bar_meters)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial.npz")
    np.savez_compressed(
        partial,
        latents=latents,
        attributes=values,
        attribute_names=np.array(ATTRIBUTE_CHOICES),
        reg_dims=np.array(trained.reg_dims),
        tune=tune.astype(np.int32),
        bar=bar.astype(np.int32),
        titles=np.array(titles),
        source=np.array(source),
        checkpoint=np.array(str(trained.path)),
    )
    partial.replace(out)
    click.echo(
        f"wrote {len(tokens)} bars x {latents.shape[1]} latent dims "
        f"from {len(set(tune.tolist()))} tune(s) to {out}"
    )


# -- traverse ------------------------------------------------------------------


@cli.command()
@click.option(
    "--attr",
    "attr_names",
    type=click.Choice(ATTRIBUTE_CHOICES),
    multiple=True,
    help="Only this attribute's dim (repeatable). Default: all four.",
)
@click.option(
    "--bar",
    "bar_spec",
    default=None,
    metavar="FILE:N",
    help="Start from bar N of FILE. Default: the centre of the prior (z = 0).",
)
@click.option("--steps", default=9, show_default=True, type=click.IntRange(2, 41))
@click.option(
    "--range",
    "span",
    default=4.0,
    show_default=True,
    type=click.FloatRange(0, min_open=True),
    help="Traverse from -RANGE to +RANGE prior sds.",
)
@output_folder_option("traversal")
@checkpoint_option
@force_option
def traverse(
    attr_names: tuple[str, ...],
    bar_spec: str | None,
    steps: int,
    span: float,
    out: Path,
    checkpoint: Path | None,
    force: bool,
) -> None:
    """Decode one bar along each regularised dim: a PNG grid and MIDI per dim.

    Row r of traversal.png is the bar decoded with attribute r's dim set to evenly
    spaced values (other coordinates kept), with the attribute measured under each
    column. ATTRIBUTE.mid holds the same bars in sequence.

    Example: melodyvae traverse --bar tune.mid:3 -o traversal/
    """
    import numpy as np

    from melodyvae.music.attributes import compute_attributes
    from melodyvae.music.generation import (
        decode_latents,
        encode_measures,
        measures_to_melody,
    )
    from melodyvae.music.plots import traversal_grid
    from melodyvae.music.tokens import grid_for_meter
    from melodyvae.music.writing import melody_to_midi

    trained = _load_model(checkpoint)
    names = list(attr_names) if attr_names else list(ATTRIBUTE_CHOICES)
    names = [n for n in ATTRIBUTE_CHOICES if n in names]
    midi_paths = [out / f"{name}.mid" for name in names]
    picture = out / "traversal.png"
    _refuse_overwrite([picture, *midi_paths], force)
    like = None
    if bar_spec is not None:
        if ":" not in bar_spec or not bar_spec.rpartition(":")[2].isdigit():
            raise click.UsageError(f"{bar_spec}: give --bar FILE:N with N a bar number")
        like, bars, bar_meters = _bar_source(bar_spec, trained)
        meter = bar_meters[0]
        code = encode_measures(trained, np.stack(bars), bar_meters)[0]
        origin = f"bar {bar_spec.rpartition(':')[2]} of {like.title or bar_spec}"
    else:
        meter = trained.meters[0]
        code = np.zeros(trained.model.config.latent_dim, dtype=np.float32)
        origin = "the prior's centre"
    grid = grid_for_meter(meter)
    values = np.linspace(-span, span, steps, dtype=np.float32)
    dims = [trained.attribute_dims[name] for name in names]
    codes = np.repeat(code[None, None], len(names), axis=0).repeat(steps, axis=1)
    for row, dim in enumerate(dims):
        codes[row, :, dim] = values
    decoded = decode_latents(
        trained, codes.reshape(len(names) * steps, -1), [meter] * len(names) * steps
    )
    decoded = decoded.reshape(len(names), steps, -1)
    measured = compute_attributes(decoded.reshape(len(names) * steps, -1), grid)
    measured = measured.reshape(len(names), steps, -1)
    order = [ATTRIBUTE_CHOICES.index(n) for n in names]
    traversal_grid(
        decoded,
        measured[:, :, order],
        values,
        names,
        dims,
        grid,
        trained.vocab,
        picture,
        title=f"{trained.path.name}: traversals from {origin}",
    )
    for row, path in enumerate(midi_paths):
        melody = measures_to_melody(
            trained,
            decoded[row],
            title=f"{names[row]} traversal",
            like=like,
            meters=meter,
        )
        melody_to_midi(melody, path)
    from rich.table import Table

    table = Table(title=f"each attribute along its own dim ({origin})")
    table.add_column("z", justify="right")
    for name in names:
        table.add_column(ATTRIBUTE_HEADERS[name], justify="right")
    for step, v in enumerate(values):
        cells = [
            _fmt(measured[row, step, order[row]], n) for row, n in enumerate(names)
        ]
        table.add_row(f"{v:+.1f}", *cells)
    _console().print(table)
    click.echo(f"wrote {picture} and {len(midi_paths)} MIDI file(s) to {out}")


# -- attribute requests (sample, edit) ----------------------------------------


set_option = click.option(
    "--set",
    "set_texts",
    multiple=True,
    metavar="NAME=VALUE",
    help="A target in the attribute's own unit (repeatable): note_density=8 "
    "(notes), pitch_range=12 (semitones), contour==-5 (== for a target of either "
    "sign); NAME=+K or NAME=-K changes each bar's value by K. Needs a calibrated "
    "checkpoint (melodyvae calibrate).",
)
sample_set_option = click.option(
    "--set",
    "set_texts",
    multiple=True,
    metavar="NAME=VALUE",
    help="A target in the attribute's own unit for every sample (repeatable): "
    "note_density=12 (notes), pitch_range=7, contour=+5 or contour=-5 "
    "(semitones; signed values are targets too). Needs a calibrated checkpoint.",
)
tries_option = click.option(
    "--tries",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="Candidates decoded per bar; the one closest to the request (then, "
    "when editing, changing the other attributes least and staying closest to "
    "the original bar) is kept.",
)
try_temperature_option = click.option(
    "--try-temperature",
    default=0.5,
    show_default=True,
    type=click.FloatRange(0.01, 10),
    callback=lambda ctx, param, value: _finite(param, value),
    help="Temperature of the sampled candidates of --tries: every 8th try while "
    "a request searches along its coordinate, else every try after the first.",
)


def _warn_idle_try_temperature(requests, tries: int, *, editing: bool) -> None:
    """Warn when --try-temperature is given but no candidate is sampled."""
    from melodyvae.music.control import tries_for_a_sample

    source = click.get_current_context().get_parameter_source("try_temperature")
    needed = tries_for_a_sample(requests, editing=editing)
    if source is not ParameterSource.DEFAULT and tries < needed:
        logger.warning(
            "--try-temperature has no effect here: only sampled candidates use "
            f"it, and these start at --tries {needed}"
        )


def _finite(param, value: float) -> float:
    if not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number", param=param)
    return value


def _requests(shifts, set_texts, *, relative: bool) -> list:
    """--attr and --set as :class:`Request` objects, checked."""
    from melodyvae.music.control import Request, check_requests, parse_request

    requests = []
    for name, delta in shifts:
        if not math.isfinite(delta) or abs(delta) > 10:
            raise click.UsageError(
                f"--attr {name} {delta}: DELTA must lie within -10..+10 prior sds"
            )
        requests.append(Request(name, "shift", delta))
    try:
        requests.extend(parse_request(t, relative=relative) for t in set_texts)
        check_requests(requests)
    except MelodyVAEError as error:
        raise click.UsageError(str(error)) from None
    return requests


def _calibration(trained, requests):
    """The checkpoint's calibration when a request needs it (else None)."""
    from melodyvae.music.calibration import calibration_of
    from melodyvae.music.control import needs_calibration

    if not needs_calibration(requests):
        return None
    return calibration_of(trained.meta, str(trained.path), _fingerprint(trained))


def _fingerprint(trained) -> str:
    from melodyvae.core.checkpoint import weights_fingerprint

    return weights_fingerprint(trained.model.state_dict())


def _request_cell(outcome, name: str) -> str:
    """One attribute of an edited bar: before → after, with the request."""
    after = _fmt(outcome.after[name], name)
    text = (
        after
        if outcome.before is None
        else f"{_fmt(outcome.before[name], name)} → {after}"
    )
    if name not in outcome.met:
        return text
    target = outcome.targets[name]
    mark = "[green]✓[/green]" if outcome.met[name] else "[red]✗[/red]"
    if target is None:
        return f"{text} {mark}"
    flag = "[yellow]![/yellow]" if name in outcome.out_of_range else ""
    return f"{text} ({_fmt(target, name)}{flag}) {mark}"


def _range_line(reports_or_outcomes, calibration) -> str | None:
    """One line naming the requests that lay outside what the model learned."""
    counts: dict[str, int] = {}
    for outcome in reports_or_outcomes:
        for name in outcome.out_of_range:
            counts[name] = counts.get(name, 0) + 1
    if not counts:
        return None
    parts = []
    for name, count in counts.items():
        lows = [g[name].low for g in calibration.grids.values()]
        highs = [g[name].high for g in calibration.grids.values()]
        parts.append(
            f"{name} in {count} bar{'s' if count > 1 else ''} (learned "
            f"{_fmt(min(lows), name)} to {_fmt(max(highs), name)})"
        )
    return (
        "outside what the model learned, aimed at the nearest learned value "
        "instead (marked !): " + "; ".join(parts)
    )


def _requests_record(requests) -> list[dict[str, Any]]:
    from melodyvae.music.control import TOLERANCES

    return [
        {
            "attribute": r.name,
            "mode": r.mode,
            "amount": r.amount,
            "tolerance": None if r.mode == "shift" else TOLERANCES[r.name],
        }
        for r in requests
    ]


# -- sample --------------------------------------------------------------------


@cli.command()
@click.option(
    "-n",
    "--n",
    "n_samples",
    default=16,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Number of measures.",
)
@output_folder_option("samples")
@click.option(
    "--temperature",
    default=0.0,
    show_default=True,
    type=click.FloatRange(0, 100),
    help="0 = most likely tokens; higher = wilder (1 = the model's own odds).",
)
@click.option(
    "--meter",
    default=None,
    help="Meter of the bars, e.g. 6/8 or 3/4 (one the model serves). "
    "Default: the model's first meter.",
)
@sample_set_option
@tries_option
@try_temperature_option
@seed_option
@format_option("midi", "Output format (file suffix .mid, .musicxml or .abc).")
@checkpoint_option
@force_option
def sample(
    n_samples: int,
    out: Path,
    temperature: float,
    meter: str | None,
    set_texts: tuple[str, ...],
    tries: int,
    try_temperature: float,
    seed: int,
    output_format: str,
    checkpoint: Path | None,
    force: bool,
) -> None:
    """Sample new measures from the prior and write them as MIDI, MusicXML or ABC.

    Writes sample_01.mid ... and all_samples.mid (every sample in sequence; with
    --format abc a tunebook of one tune per sample). --set asks every sample for
    an attribute value in its own unit (here a signed value is a target too:
    contour=+5 means bars that rise five semitones); each sample is measured and
    the table says whether it was met.

    Example: melodyvae sample --n 16 -o out/ --format musicxml

    Example: melodyvae sample --n 8 --set note_density=12 --tries 8 -o busy/
    """
    from melodyvae.music.control import control
    from melodyvae.music.generation import (
        check_meter,
        decode_latents,
        measures_to_melody,
        prior_codes,
    )

    requests = _requests((), set_texts, relative=False)
    if not requests:
        context = click.get_current_context()
        for option in ("tries", "try_temperature"):
            if context.get_parameter_source(option) is not ParameterSource.DEFAULT:
                flag = "--" + option.replace("_", "-")
                logger.warning("%s has no effect without --set", flag)
    else:
        _warn_idle_try_temperature(requests, tries, editing=False)
    trained = _load_model(checkpoint)
    calibration = _calibration(trained, requests)
    meter = meter or trained.meters[0]
    check_meter(trained, meter)
    paths = _series_paths(out, "sample", n_samples, force, output_format)
    latents = prior_codes(trained, n_samples, seed)
    meters = [meter] * n_samples
    outcomes = None
    if requests:
        controlled = control(
            trained,
            calibration,
            latents,
            meters,
            requests,
            tries=tries,
            temperature=try_temperature,
            seed=seed + 1,
        )
        tokens, outcomes = controlled.tokens, controlled.outcomes
    else:
        tokens = decode_latents(
            trained, latents, meters, temperature=temperature, seed=seed + 1
        )
    melodies = [
        measures_to_melody(trained, tokens[i : i + 1], title=path.stem, meters=meter)
        for i, path in enumerate(paths[:-1])
    ]
    _write_series(out, "sample", melodies, paths, output_format)

    labels = [p.name for p in paths[:-1]]
    title = f"{n_samples} samples of {meter} in {out}"
    if outcomes is None:
        from melodyvae.music.attributes import compute_attributes

        _attribute_table(labels, compute_attributes(tokens, meters), title=title)
        return
    from rich.table import Table

    table = Table(title=f"{title}: {', '.join(r.describe() for r in requests)}")
    table.add_column("")
    for name in ATTRIBUTE_CHOICES:
        table.add_column(ATTRIBUTE_HEADERS[name], justify="right")
    for label, outcome in zip(labels, outcomes, strict=True):
        table.add_row(label, *(_request_cell(outcome, n) for n in ATTRIBUTE_CHOICES))
    _console().print(table)
    line = _range_line(outcomes, calibration)
    if line:
        click.echo(line)
    n_met = sum(o.all_met for o in outcomes)
    click.echo(f"request met in {n_met} of {n_samples} samples")


def _attribute_table(
    labels: list[str], attributes, title: str, format_value=None
) -> None:
    from rich.table import Table

    format_value = format_value or _fmt
    table = Table(title=title)
    table.add_column("")
    for name in ATTRIBUTE_CHOICES:
        table.add_column(ATTRIBUTE_HEADERS[name], justify="right")
    for label, row in zip(labels, attributes, strict=True):
        table.add_row(
            label,
            *(format_value(v, n) for v, n in zip(row, ATTRIBUTE_CHOICES, strict=True)),
        )
    _console().print(table)


# -- interpolate ---------------------------------------------------------------


def _bar_source(spec: str, trained) -> tuple[Any, list, list[str]]:
    """The melody, tokens and meters of FILE (every usable bar) or FILE:N (bar
    N)."""
    from melodyvae.music.generation import encodable_bars

    path_text, colon, bar_text = spec.rpartition(":")
    if not colon or Path(spec).exists():
        path_text, bar_text = spec, ""
    elif not bar_text.isdigit():
        raise click.UsageError(f"{spec}: give FILE or FILE:N with N a bar number")
    melody = _read_tune(Path(path_text), 1, 0)
    encodable = encodable_bars(trained, melody)
    if bar_text:
        index = int(bar_text)
        if index not in encodable.tokens:
            why = encodable.reasons.get(index, "no such bar")
            raise MelodyVAEError(f"{path_text}: bar {index} cannot be used ({why})")
        return melody, [encodable.tokens[index]], [encodable.meters[index]]
    if not encodable.tokens:
        reasons = "; ".join(sorted(set(encodable.reasons.values()))[:3])
        raise MelodyVAEError(f"{path_text}: no bar this model can take ({reasons})")
    indices = encodable.indices
    return (
        melody,
        [encodable.tokens[i] for i in indices],
        [encodable.meters[i] for i in indices],
    )


@cli.command()
@click.argument("start", metavar="A")
@click.argument("end", metavar="B")
@click.option("--steps", default=8, show_default=True, type=click.IntRange(2, 1000))
@click.option(
    "--method",
    type=click.Choice(["linear", "slerp"]),
    default="linear",
    show_default=True,
    help="Straight line, or spherical (along the great circle, the norm "
    "changing linearly).",
)
@output_folder_option("interpolation")
@format_option("midi", "Output format (file suffix .mid, .musicxml or .abc).")
@checkpoint_option
@force_option
def interpolate(
    start: str,
    end: str,
    steps: int,
    method: str,
    out: Path,
    output_format: str,
    checkpoint: Path | None,
    force: bool,
) -> None:
    """Interpolate in latent space from A to B and write each step as MIDI,
    MusicXML or ABC.

    A and B are music files (their bars are paired in order) or FILE:N for bar N
    of a file. Writes step_01.mid ... and all_steps.mid (with --format, .musicxml
    or .abc files).
    Example: melodyvae interpolate tune.mid:1 tune.mid:4 --steps 8 -o out/
    """
    from melodyvae.music.attributes import compute_attributes
    from melodyvae.music.generation import (
        decode_latents,
        encode_measures,
        interpolate_latents,
        measures_to_melody,
    )
    from melodyvae.music.tokens import pad_measures

    trained = _load_model(checkpoint)
    melody_a, bars_a, meters_a = _bar_source(start, trained)
    _, bars_b, meters_b = _bar_source(end, trained)
    n_bars = min(len(bars_a), len(bars_b))
    if len(bars_a) != len(bars_b):
        logger.warning(
            "A has %d usable bars and B %d: interpolating the first %d of each",
            len(bars_a),
            len(bars_b),
            n_bars,
        )
    paths = _series_paths(out, "step", steps, force, output_format)

    # Every step has A's meters (a pair of bars of two meters meets in A's).
    meters_a, meters_b = meters_a[:n_bars], meters_b[:n_bars]
    z_a = encode_measures(trained, pad_measures(bars_a[:n_bars]), meters_a)
    z_b = encode_measures(trained, pad_measures(bars_b[:n_bars]), meters_b)
    path_codes = interpolate_latents(z_a, z_b, steps, method)  # (steps, n_bars, Z)
    decoded = decode_latents(
        trained, path_codes.reshape(steps * n_bars, -1), meters_a * steps
    )
    decoded = decoded.reshape(steps, n_bars, -1)
    melodies = [
        measures_to_melody(
            trained, decoded[i], title=path.stem, like=melody_a, meters=meters_a
        )
        for i, path in enumerate(paths[:-1])
    ]
    _write_series(out, "step", melodies, paths, output_format)
    # The attributes of each step: the mean over its bars, and how they move.
    per_bar = compute_attributes(
        decoded.reshape(steps * n_bars, -1), meters_a * steps
    ).reshape(steps, n_bars, -1)
    means = per_bar.mean(axis=1)
    what = "bar 1" if n_bars == 1 else f"mean of {n_bars} bars"
    _attribute_table(
        [p.name for p in paths[:-1]],
        means,
        title=f"{steps} steps ({method}) in {out}; attributes of each step ({what})",
        format_value=_fmt if n_bars == 1 else _fmt_mean,
    )
    click.echo(_path_summary(means))


def _path_summary(means) -> str:
    """How each attribute changes along an interpolation: from → to, and whether
    it moves steadily (the share of steps that move towards the end value)."""
    import numpy as np

    parts = []
    for index, name in enumerate(ATTRIBUTE_CHOICES):
        values = means[:, index]
        total = values[-1] - values[0]
        steps = np.diff(values)
        if total == 0:
            steady = "flat" if not steps.any() else "returns to its start"
        else:
            towards = int((steps * np.sign(total) > 0).sum())
            away = int((steps * np.sign(total) < 0).sum())
            steady = f"{towards} of {len(steps)} steps towards the end, {away} away"
        parts.append(
            f"{name} {_fmt_mean(values[0], name)} → {_fmt_mean(values[-1], name)} "
            f"({steady})"
        )
    return "along the path: " + "; ".join(parts)


# -- edit ----------------------------------------------------------------------


def _edit_format(out: Path | None, output_format: str | None) -> str:
    """The format edit writes: --format, else the one the suffix of -o names, else
    MIDI. A suffix that names another format, or one that cannot be written, is
    refused."""
    suffix = out.suffix.lower() if out is not None else ""
    if suffix in _UNWRITABLE_SUFFIXES:
        raise MelodyVAEError(
            f"{out}: cannot write {suffix} files; use .mid, .musicxml or .abc"
        )
    implied = _SUFFIX_FORMATS.get(suffix)
    if output_format is None:
        return implied or "midi"
    if implied is not None and implied != output_format:
        raise MelodyVAEError(
            f"{out}: a {suffix} file is not {output_format}; "
            f"use {FORMAT_SUFFIXES[output_format]} or leave out --format"
        )
    return output_format


def _parse_bars(text: str | None, melody) -> set[int] | None:
    """Bar numbers from ``5-8,12``; every one must exist in ``melody``."""
    if text is None:
        return None
    first, last = melody.bars[0].index, melody.bars[-1].index
    bars: set[int] = set()
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        if not low.isdigit() or (dash and not high.isdigit()):
            raise click.UsageError(
                f"--bars {text!r}: use numbers and ranges like 5-8,12"
            )
        low_bar, high_bar = int(low), int(high or low)
        if high_bar < low_bar:
            raise click.UsageError(
                f"--bars {text!r}: range {part.strip()} runs backwards"
            )
        if low_bar < first or high_bar > last:
            raise MelodyVAEError(
                f"--bars {text!r}: {melody.source or melody.title} has bars "
                f"{first}-{last}"
            )
        bars.update(range(low_bar, high_bar + 1))
    return bars


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--attr",
    "shifts",
    multiple=True,
    nargs=2,
    type=(click.Choice(ATTRIBUTE_CHOICES), float),
    metavar="NAME DELTA",
    help="Move NAME's latent axis by DELTA prior standard deviations (repeatable).",
)
@set_option
@click.option(
    "-o",
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Output file. Default: FILE-edited.mid (.musicxml, .abc) beside FILE.",
)
@click.option(
    "--bars",
    "bar_text",
    default=None,
    metavar="BARS",
    help="Only these bars, e.g. 5-8, 3 or 1-4,9-12. A pickup is bar 0, the first "
    "full bar is bar 1; bars count in the order played (with --as-written, as "
    "written). Default: all.",
)
@tries_option
@try_temperature_option
@seed_option
@click.option(
    "--keep-key",
    is_flag=True,
    help="Move decoded notes outside the tune's key (its key signature, or the "
    "key music21 estimates) to the nearest note of the key.",
)
@click.option(
    "--report",
    "report_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write, per bar, what was requested and achieved as JSON.",
)
@click.option(
    "--tune",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Which tune of a multi-tune file (ABC).",
)
@part_option
@voice_option
@as_written_option
@format_option(
    None,
    "Output format. Default: the one the suffix of -o names (.mid, .midi, "
    ".musicxml, .xml, .abc), else midi.",
)
@checkpoint_option
@force_option
def edit(
    file: Path,
    shifts: tuple[tuple[str, float], ...],
    set_texts: tuple[str, ...],
    out: Path | None,
    bar_text: str | None,
    tries: int,
    try_temperature: float,
    seed: int,
    keep_key: bool,
    report_path: Path | None,
    tune: int,
    part: int,
    voice: int,
    as_written: bool,
    output_format: str | None,
    checkpoint: Path | None,
    force: bool,
) -> None:
    """Edit a tune's bars towards attribute targets and write MIDI, MusicXML or
    ABC, checking every edited bar against the request.

    --attr moves a latent axis (prior standard deviations); --set asks for a value
    in the attribute's own unit (notes, semitones), or a change of each bar's
    value. Every edited bar is measured again: the table shows before → after,
    the target and whether it was met (✓ within the tolerance, or moved the way
    asked for --attr); --report writes the same as JSON.

    Bar numbers: a pickup is bar 0 and the first full bar is bar 1 (a tune
    without a pickup starts at bar 1), counted in the order the bars are played
    (with --as-written, as written). The pickup, the final bar, bars outside
    --bars and bars the model cannot take keep every note of the input. A tune
    outside the model's pitch window is moved by whole octaves for the model and
    back for the output.

    Example: melodyvae edit tune.mid --set note_density=8 --tries 8 -o denser.mid

    Example: melodyvae edit tune.abc --bars 5-8 --attr pitch_range 1 -o wider.mid

    Example: melodyvae edit tune.abc --set contour=+5 --keep-key --report r.json
    """
    from melodyvae.music.control import TOLERANCES
    from melodyvae.music.generation import UNSELECTED, edit_melody

    if not shifts and not set_texts:
        raise click.UsageError(
            "give at least one --attr NAME DELTA or --set NAME=VALUE"
        )
    requests = _requests(shifts, set_texts, relative=True)
    _warn_idle_try_temperature(requests, tries, editing=True)
    output_format = _edit_format(out, output_format)
    out = out or file.with_name(f"{file.stem}-edited{FORMAT_SUFFIXES[output_format]}")
    if out.resolve() == file.resolve():
        raise MelodyVAEError(f"{out}: refusing to write over the input file")
    outputs = [out] + ([report_path] if report_path is not None else [])
    if report_path is not None and (
        report_path.resolve() == out.resolve() or _same_file(report_path, file)
    ):
        raise MelodyVAEError(f"{report_path}: the report needs a file of its own")
    if _same_file(out, file):
        raise MelodyVAEError(f"{out}: refusing to write over the input file")
    _refuse_overwrite(outputs, force)
    trained = _load_model(checkpoint)
    for path in outputs:
        _refuse_checkpoint_overwrite(trained, path)
    calibration = _calibration(trained, requests)
    melody = _read_tune(file, tune, part, voice, as_written)
    result = edit_melody(
        trained,
        melody,
        bars=_parse_bars(bar_text, melody),
        requests=requests,
        calibration=calibration,
        tries=tries,
        temperature=try_temperature,
        seed=seed,
        keep_key=keep_key,
    )
    reports = result.bars
    out.parent.mkdir(parents=True, exist_ok=True)
    write_one, _ = _writers(output_format)
    write_one(result.melody, out)
    edited = [r for r in reports if r.status == "edited"]
    outcomes = [r.outcome for r in edited]
    n_met = sum(o.all_met for o in outcomes)
    missed = [r.index for r in edited if not r.outcome.all_met]
    # The report is written before anything is printed, so that a closed
    # terminal cannot leave the output without it.
    if report_path is not None:
        record = {
            "file": str(file),
            "output": str(out),
            "checkpoint": str(trained.path),
            "requests": _requests_record(requests),
            "tries": tries,
            "key": None
            if result.key is None
            else {
                "name": result.key.name,
                "estimated": result.key.estimated,
                "notes_moved": result.notes_moved_into_key,
            },
            "bars": [
                {
                    "index": r.index,
                    "status": r.status,
                    "reason": r.reason,
                    "octaves": r.octaves,
                    **(r.outcome.to_dict() if r.outcome is not None else {}),
                }
                for r in reports
            ],
            "summary": {
                "edited": len(edited),
                "met": n_met,
                "not_met": missed,
                "outside_training_range": sorted(
                    r.index for r in edited if r.outcome.out_of_range
                ),
            },
        }
        report_path.parent.mkdir(parents=True, exist_ok=True)
        report_path.write_text(json.dumps(record, indent=2) + "\n")

    from rich.table import Table

    asked = ", ".join(r.describe() for r in requests)
    table = Table(title=f"{file.name} → {out}: {asked}")
    table.add_column("bar", justify="right")
    for name in ATTRIBUTE_CHOICES:
        table.add_column(f"{ATTRIBUTE_HEADERS[name]}\nbefore → after", justify="right")
    table.add_column("note")
    unselected = [r.index for r in reports if r.reason == UNSELECTED]
    captions = []
    if unselected:
        captions.append(f"bars {_bar_ranges(unselected)}: not in --bars, kept")
    if any(r.mode != "shift" for r in requests):
        tolerances = ", ".join(
            f"{r.name} ±{TOLERANCES[r.name]:g}" for r in requests if r.mode != "shift"
        )
        captions.append(f"(target) ✓ met within {tolerances}")
    table.caption = "; ".join(captions) or None
    for report in reports:
        if report.reason == UNSELECTED:
            continue
        if report.status != "edited":
            blank = [""] * len(ATTRIBUTE_CHOICES)
            table.add_row(
                str(report.index), *blank, f"[dim]kept: {report.reason}[/dim]"
            )
            continue
        outcome = report.outcome
        cells = [_request_cell(outcome, n) for n in ATTRIBUTE_CHOICES]
        notes = []
        if report.octaves:
            notes.append(_octaves(report.octaves))
        if tries > 1:
            notes.append(f"try {outcome.candidate + 1}")
        if outcome.notes_moved:
            notes.append(f"{outcome.notes_moved} into key")
        table.add_row(str(report.index), *cells, ", ".join(notes))
    _console().print(table)
    if result.octave_moves:
        click.echo(_octave_line(result.octave_moves, result.pitch_window))
    if calibration is not None:
        line = _range_line(outcomes, calibration)
        if line:
            click.echo(line)
    if result.key is not None:
        origin = "estimated by music21" if result.key.estimated else "key signature"
        click.echo(
            f"--keep-key: moved {result.notes_moved_into_key} decoded "
            f"note{'s' if result.notes_moved_into_key != 1 else ''} into "
            f"{result.key.name} ({origin})"
        )
    click.echo(
        f"edited {len(edited)} of {len(reports)} bars; request met in {n_met} of "
        f"{len(edited)}"
        + (f" (not met: bars {_bar_ranges(missed)})" if missed else "")
        + f"; wrote {out}"
        + (f" and {report_path}" if report_path is not None else "")
    )


def _octaves(octaves: int) -> str:
    """``+1`` as "up 1 octave", ``-2`` as "down 2 octaves"."""
    count = abs(octaves)
    return f"{'up' if octaves > 0 else 'down'} {count} octave{'s' if count > 1 else ''}"


def _octave_line(moves: dict[int, int], window: tuple[int, int]) -> str:
    """One line saying which bars were moved by octaves for the model."""
    by_move: dict[int, list[int]] = {}
    for index, octaves in sorted(moves.items()):
        by_move.setdefault(octaves, []).append(index)
    parts = [
        f"bar{'s' if len(bars) > 1 else ''} {_bar_ranges(bars)} {_octaves(octaves)}"
        for octaves, bars in sorted(by_move.items(), key=lambda item: item[1][0])
    ]
    return (
        f"outside the model's pitch window (MIDI {window[0]}-{window[1]}): moved "
        f"{'; '.join(parts)} for the model, and back in the output"
    )


def _bar_ranges(numbers: list[int]) -> str:
    """Sorted bar numbers as "1-4, 7"."""
    runs: list[list[int]] = []
    for number in numbers:
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)


# -- attributes ----------------------------------------------------------------


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON to stdout instead of tables."
)
@part_option
@voice_option
@as_written_option
def attributes(
    file: Path, as_json: bool, part: int, voice: int, as_written: bool
) -> None:
    """The four attributes of every bar of every tune in FILE.

    Example: melodyvae attributes tune.abc --json
    """
    from melodyvae.music.measure import file_attributes

    record = file_attributes(
        file, part=part, voice=voice, expand_repeats=not as_written
    )
    for tune in record["tunes"]:
        for message in tune["warnings"]:
            logger.warning("%s (%s): %s", file.name, tune["title"], message)
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return
    from rich.table import Table

    console = _console()
    for tune in record["tunes"]:
        table = Table(title=tune["title"])
        table.add_column("bar", justify="right")
        table.add_column("meter")
        for name in ATTRIBUTE_CHOICES:
            table.add_column(ATTRIBUTE_HEADERS[name], justify="right")
        table.add_column("note")
        for bar in tune["bars"]:
            label = f"{bar['index']}{' (pickup)' if bar['pickup'] else ''}"
            if bar["status"] != "ok":
                blank = [""] * len(ATTRIBUTE_CHOICES)
                reason = f"[dim]skipped: {bar['reason']}[/dim]"
                table.add_row(label, bar["meter"], *blank, reason)
                continue
            values = [_fmt(bar[n], n) for n in ATTRIBUTE_CHOICES]
            table.add_row(label, bar["meter"], *values, "")
        console.print(table)


# -- check ---------------------------------------------------------------------


@cli.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--json", "as_json", is_flag=True, help="Print JSON to stdout instead of tables."
)
@part_option
@voice_option
@as_written_option
@checkpoint_option
def check(
    file: Path,
    as_json: bool,
    part: int,
    voice: int,
    as_written: bool,
    checkpoint: Path | None,
) -> None:
    """Which bars of FILE the model can encode (and so edit), bar by bar; for the
    others, why not and what would help.

    The exit status is 0 whatever the bars are; 1 only when FILE or the model
    cannot be read.

    Example: melodyvae check tune.mid
    """
    from melodyvae.music.checking import check_file

    trained = _load_model(checkpoint)
    record = check_file(
        file, trained, part=part, voice=voice, expand_repeats=not as_written
    )
    if as_json:
        click.echo(json.dumps(record, indent=2))
        return

    from rich.table import Table

    console = _console()
    window = "MIDI {}-{}".format(*record["pitch_window"])
    for tune in record["tunes"]:
        table = Table(
            title=f"{tune['title']}: {tune['n_usable']} of {tune['n_bars']} bars usable"
        )
        table.add_column("bar", justify="right")
        table.add_column("meter")
        table.add_column("usable")
        table.add_column("problem")
        table.add_column("what to do")
        for bar in tune["bars"]:
            label = f"{bar['index']}{' (pickup)' if bar['pickup'] else ''}"
            if bar["usable"]:
                note = f"[dim]{bar['note']}[/dim]" if bar["note"] else ""
                table.add_row(label, bar["meter"], "[green]yes[/green]", note, "")
                continue
            problem = bar["problem"] or ""
            # The meter and pickup problems say all their detail would.
            if bar["detail"] and bar["problem"] not in ("meter not served", "pickup"):
                problem += f"\n[dim]{bar['detail']}[/dim]"
            table.add_row(
                label, bar["meter"], "[red]no[/red]", problem, bar["advice"] or ""
            )
        if tune["warnings"]:
            table.caption = "reader: " + "; ".join(tune["warnings"])
        console.print(table)
    click.echo(
        f"{record['n_usable']} of {record['n_bars']} bars usable by "
        f"{trained.path.name} (meters {', '.join(record['meters'])}; pitches "
        f"{window})"
    )


# -- corpus --------------------------------------------------------------------


@cli.group(cls=_Group)
def corpus() -> None:
    """Build and inspect corpora (folk, folk+essen, chorales, or a path)."""


@corpus.command("info")
@click.argument("name")
@click.option("--rebuild", is_flag=True, help="Parse again even if cached.")
def corpus_info(name: str, rebuild: bool) -> None:
    """Tunes, bars by meter, bars kept and skipped (builds the cache if needed).

    Example: melodyvae corpus info folk
    """
    from rich.table import Table

    from melodyvae.music.corpora import fraction_of_kept
    from melodyvae.music.training import ALL_METERS, FOUR_BEAT_METERS

    built = _load_corpus_with_progress(name, rebuild)
    stats = built.stats
    console = _console()
    if stats.get("notice"):
        console.print(f"[yellow]{stats['notice']}[/yellow]")
    console.print(
        f"[bold]{stats['corpus']}[/bold]: {stats['n_tunes']} tunes from "
        f"{stats['n_files']} files ({stats['n_files_failed']} unreadable); tunes by "
        "split: "
        + ", ".join(f"{k} {v}" for k, v in sorted(stats["tunes_by_split"].items()))
    )
    table = Table(title="bars by meter")
    table.add_column("meter")
    table.add_column("bars", justify="right")
    table.add_column("kept (tokenised)", justify="right")
    table.add_column("share kept", justify="right")
    table.add_column("for training: train / valid / test", justify="right")
    for meter, count in stats["bars_by_meter"].items():
        kept = stats["bars_kept_by_meter"].get(meter, 0)
        rows = " / ".join(
            str(len(built.select((meter,), s))) for s in ("train", "valid", "test")
        )
        table.add_row(
            meter,
            str(count),
            str(kept),
            f"{100 * kept / count:.1f} %" if count else "-",
            rows if meter in ALL_METERS else "no grid",
        )
    console.print(table)
    if stats["bars_skipped_by_reason"]:
        skipped = Table(title="bars skipped, by reason")
        skipped.add_column("reason")
        skipped.add_column("bars", justify="right")
        for reason, count in stats["bars_skipped_by_reason"].items():
            skipped.add_row(reason, str(count))
        console.print(skipped)
    for label, meters in (
        ("the meter-aware model (every meter with a grid", ALL_METERS),
        ("the 4-beat model (4/4, 2/2", FOUR_BEAT_METERS),
    ):
        model_rows = {
            s: len(built.select(meters, s)) for s in ("train", "valid", "test")
        }
        console.print(
            f"bars for {label}, no pickups): "
            + ", ".join(f"{k} {v}" for k, v in model_rows.items())
            + f"; {100 * fraction_of_kept(stats, meters):.1f} % of their bars "
            "tokenised"
        )
    console.print(
        f"bars kept, all meters: {100 * fraction_of_kept(stats):.1f} % "
        f"({sum(stats['bars_kept_by_meter'].values())} of "
        f"{sum(stats['bars_by_meter'].values())})"
    )
    for problem in stats["failed_files"][:10]:
        console.print(f"[red]unreadable:[/red] {problem}")


def _load_corpus_with_progress(name: str, rebuild: bool, vocab=None):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from melodyvae.music.corpora import load_corpus

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=_console(stderr=True), transient=True) as progress:
        task: dict[str, Any] = {}
        return load_corpus(
            name,
            vocab=vocab,
            rebuild=rebuild,
            on_start=lambda n: task.setdefault(
                "id", progress.add_task(f"reading {name}", total=n)
            ),
            on_file=lambda path, n: progress.advance(task["id"]),
        )


# The image domain's commands (melodyvae images ...).
from melodyvae.images.cli import images  # noqa: E402

cli.add_command(images)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="melodyvae")


if __name__ == "__main__":
    main()
