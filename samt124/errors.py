"""Errors the command line reports as they are: the message says what is wrong and what to do."""

from __future__ import annotations


class CommandError(RuntimeError):
    """A command cannot go on; ``samt124`` prints the message (no traceback) and exits 2."""
