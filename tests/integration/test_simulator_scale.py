"""A million simulated events, twice, in two processes: the same seed gives the same bytes."""

from __future__ import annotations

import subprocess
import sys

from tests.integration.pipeline import REPO

DIGEST = """
import hashlib, sys
from datetime import datetime
from producers.simulator import simulate
from samt124.contract import wire
digest, count = hashlib.sha256(), 0
start = datetime.fromisoformat("2025-05-25T07:00:00+03:30")
for event in simulate(int(sys.argv[1]), int(sys.argv[2]), start):
    digest.update(wire.encode(event))
    count += 1
print(count, digest.hexdigest())
"""


def digests(*runs: tuple[int, int]) -> list[str]:
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", DIGEST, str(seed), str(count)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        for seed, count in runs
    ]
    return [p.communicate(timeout=900)[0].strip() for p in processes]


def test_a_million_events_are_the_same_bytes_for_the_same_seed() -> None:
    first, second = digests((124, 1_000_000), (124, 1_000_000))
    assert first.startswith("1000000 ")
    assert first == second


def test_another_seed_gives_other_events() -> None:
    one, other = digests((124, 5_000), (125, 5_000))
    assert one.split()[0] == other.split()[0] == "5000"
    assert one != other
