"""The Avro contract: one self-contained ``<RecordName>.avsc`` per event.

Namespace ``ir.samt124.events``.

``released/<version>/`` keeps every released version unchanged, so that old messages stay
readable and :mod:`samt124.contract.compatibility` can prove each change compatible.
"""

from pathlib import Path

SCHEMA_DIR: Path = Path(__file__).resolve().parent
RELEASED_DIR: Path = SCHEMA_DIR / "released"

__all__ = ["RELEASED_DIR", "SCHEMA_DIR"]
