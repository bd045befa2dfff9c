"""Shared fixtures: a tiny model trained on real tunes, built once per test run."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from melodyvae.cli import cli

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """Two epochs on 40 real reels from Ryan's Mammoth Collection (music21 corpus)."""
    work = tmp_path_factory.mktemp("tiny")
    corpus = DATA / "ryans_mammoth_reels"
    cache = work / "cache"
    env = {"MELODYVAE_CACHE_DIR": str(cache)}
    stem = work / "model"
    args = ["train", "--corpus", str(corpus), "--epochs", "2", "--batch-size", "64"]
    args += ["--latent-dim", "8", "-o", str(stem)]
    result = CliRunner().invoke(cli, args, env=env)
    assert result.exit_code == 0, result.output
    return {"stem": stem, "env": env, "work": work, "corpus": corpus}
