"""Subcommands of the pipeline's stages, registered on the ``samt124`` parser.

Each stage module exposes ``register(subparsers)``; this list is the one place that names them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

REGISTRATIONS: list[Callable[[Any], None]] = []
