"""The fault-injection test mode: which messages and batches it fails."""

from __future__ import annotations

import pytest

from streams.faults import Faults, InjectedFault


def test_message_faults_are_a_seeded_fraction_of_places_in_the_log() -> None:
    faults = Faults(rate=0.03, seed=5)
    failing = [o for o in range(20_000) if faults.message_fails("t.intake", 1, o)]
    assert 450 <= len(failing) <= 750  # about 3 % of 20,000
    again = Faults(rate=0.03, seed=5, restarts=9)  # the same messages after any restart
    assert failing == [o for o in range(20_000) if again.message_fails("t.intake", 1, o)]
    other = Faults(rate=0.03, seed=6)
    assert failing != [o for o in range(20_000) if other.message_fails("t.intake", 1, o)]
    with pytest.raises(InjectedFault, match=rf"t.intake\[1\]@{failing[0]}"):
        faults.check_message("t.intake", 1, failing[0])
    passing = next(o for o in range(20_000) if o not in set(failing))
    faults.check_message("t.intake", 1, passing)  # does not raise


def test_no_faults_unless_asked() -> None:
    faults = Faults()
    assert not faults.active
    assert not any(faults.message_fails("t", 0, o) for o in range(10_000))
    assert all(faults.batch_point(500) is None for _ in range(1_000))


def test_batch_faults_fall_at_random_points_that_change_with_each_restart() -> None:
    first = Faults(batch_rate=0.2, seed=1)
    points = [first.batch_point(100) for _ in range(1_000)]
    hits = [p for p in points if p is not None]
    assert 130 <= len(hits) <= 270
    assert all(0 <= p < 100 for p in hits)
    assert len(set(hits)) > 50  # anywhere in the batch
    replay = Faults(batch_rate=0.2, seed=1)
    assert [replay.batch_point(100) for _ in range(1_000)] == points  # seeded
    restarted = Faults(batch_rate=0.2, seed=1, restarts=1)
    assert [restarted.batch_point(100) for _ in range(1_000)] != points
