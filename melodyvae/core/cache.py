"""Where generated data sets (parsed corpora, measured images) are cached."""

from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    """``$MELODYVAE_CACHE_DIR``, else ``corpora/`` of a source checkout (when it
    is writable), else ``~/.cache/melodyvae/corpora``."""
    if "MELODYVAE_CACHE_DIR" in os.environ:
        return Path(os.environ["MELODYVAE_CACHE_DIR"])
    checkout = Path(__file__).resolve().parents[2] / "corpora"
    if checkout.is_dir() and os.access(checkout, os.W_OK):
        return checkout
    return Path.home() / ".cache" / "melodyvae" / "corpora"
