"""Subcommands of the pipeline's stages, registered on the ``samt124`` parser.

Each stage module exposes ``register(subparsers)``; this list is the one place that names them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import consumers.cli
import consumers.lag_cli
import producers.cli
import samt124.bench.cli
import samt124.contract_cli
import samt124.demo
import streams.cli

REGISTRATIONS: list[Callable[[Any], None]] = [
    samt124.contract_cli.register,
    producers.cli.register,
    streams.cli.register,
    consumers.cli.register,
    consumers.lag_cli.register,
    samt124.bench.cli.register,
    samt124.demo.register,
]
