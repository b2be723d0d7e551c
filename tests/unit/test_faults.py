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


def first_fault(faults: Faults, size: int = 37) -> int:
    """The message (counted from the first taken) at which a worker's first batch fault falls."""
    taken = 0
    while (point := faults.batch_point(size)) is None:
        taken += size
    return taken + point


def test_batch_faults_fall_at_random_messages_and_change_with_each_restart() -> None:
    firsts = [first_fault(Faults(batch_rate=0.01, seed=seed)) for seed in range(400)]
    assert max(firsts) < 200  # always one within 2 / rate messages
    assert 85 <= sum(firsts) / len(firsts) <= 115  # one in 100 on average
    assert len(set(firsts)) > 100
    assert first_fault(Faults(batch_rate=0.01, seed=3)) == firsts[3]  # seeded
    restarted = [first_fault(Faults(batch_rate=0.01, seed=s, restarts=1)) for s in range(400)]
    assert restarted != firsts  # a restarted worker fails elsewhere
    faults = Faults(batch_rate=0.01, seed=1)
    points = [faults.batch_point(size) for size in (1, 500, 3, 500, 500)]
    assert all(
        p is None or 0 <= p < size for p, size in zip(points, (1, 500, 3, 500, 500), strict=True)
    )
