"""The development subcommands: ``local``, ``bench``, ``demo`` and ``calendar holidays``.

The ``samt124`` command line adds them when this package is installed (a source checkout);
the production image leaves the package out, and the commands say so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import devtools.bench.cli
import devtools.demo
import devtools.holidays
import devtools.local.cli

REGISTRATIONS: list[Callable[[Any], None]] = [
    devtools.local.cli.register,
    devtools.bench.cli.register,
    devtools.demo.register,
    devtools.holidays.register,
]
