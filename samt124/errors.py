"""Errors the command line reports as they are: the message says what is wrong and what to do.

Two kinds, one rule each (``samt124`` prints them without a traceback unless ``--debug``):

- :class:`CommandError`: the command was asked for something it cannot do (a bad value, an
  unknown code, a file that cannot be read, settings that do not fit). One line; exit 2.
- :class:`CommandFailed`: the command was right, the world was not (a service that does not
  answer, a worker already running). One line of cause, one of what to do; exit 1.
"""

from __future__ import annotations

USAGE = 2
FAILED = 1


class CommandError(RuntimeError):
    """A command cannot go on; ``samt124`` prints the message (no traceback) and exits 2."""

    exit_code = USAGE


class CommandFailed(RuntimeError):
    """A command could not do its work: ``cause`` and what to do (``remedy``); exit 1."""

    exit_code = FAILED

    def __init__(self, cause: str, remedy: str) -> None:
        super().__init__(f"{cause}\n{remedy}")
        self.cause = cause
        self.remedy = remedy
