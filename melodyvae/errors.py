"""The project's exceptions and warnings.

Every error a user can cause (a missing file, a corrupt MIDI, an unknown attribute)
is a :class:`MelodyVAEError`. The CLI prints its message on one line and exits
non-zero; any other exception is a bug and shows a traceback.
"""

from __future__ import annotations


class MelodyVAEError(Exception):
    """Base class of every error the project raises on purpose."""


class ReadError(MelodyVAEError):
    """A music file cannot be read; the message names the file and the problem."""


class UnsupportedError(MelodyVAEError):
    """The input is readable but asks for something the tool cannot model."""


class CheckpointError(MelodyVAEError):
    """A checkpoint is missing, incomplete or of an incompatible version."""


class DataError(MelodyVAEError):
    """A data set (image arrays, an IDX or .npz file) is missing or malformed; the
    message names the file and what was expected."""


class MelodyVAEWarning(UserWarning):
    """Odd but readable input: the tool goes on and says what it assumed."""
