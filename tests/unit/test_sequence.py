"""The guard that notices messages the consumer skipped (streams.sequence)."""

from __future__ import annotations

import pytest

from streams.sequence import Sequence, Skipped

TP = ("samt124.intake", 0)


def test_the_first_message_must_be_at_the_committed_offset() -> None:
    sequence = Sequence()
    sequence.start(TP, 1, 100)
    with pytest.raises(Skipped, match=r"offsets 100\.\.149"):
        sequence.see(TP, 1, 150)


def test_messages_in_order_pass_and_a_jump_is_caught() -> None:
    sequence = Sequence()
    sequence.start(TP, 1, 100)
    for offset in range(100, 110):
        sequence.see(TP, 1, offset)
    with pytest.raises(Skipped, match=r"offsets 110\.\.111"):
        sequence.see(TP, 1, 112)


def test_a_message_read_again_is_not_a_skip_and_is_not_handled_twice() -> None:
    sequence = Sequence()
    sequence.start(TP, 1, 100)
    fresh = [sequence.see(TP, 1, offset) for offset in (100, 101, 102, 100, 101, 102, 103)]
    assert fresh == [True, True, True, False, False, False, True]
    assert sequence.expected[TP] == (1, 104)


def test_messages_below_the_committed_offset_are_passed_over() -> None:
    sequence = Sequence()
    sequence.start(TP, 1, 100)
    assert [sequence.see(TP, 1, offset) for offset in (98, 99, 100)] == [False, False, True]


def test_a_new_generation_handles_again_what_the_last_one_read_past_its_commit() -> None:
    sequence = Sequence()
    sequence.start(TP, 1, 100)
    assert all(sequence.see(TP, 1, offset) for offset in range(100, 120))
    sequence.start(TP, 2, 110)  # committed up to 110 before the rebalance
    assert [sequence.see(TP, 2, offset) for offset in (110, 111)] == [True, True]


def test_without_a_committed_offset_the_first_message_starts_the_sequence() -> None:
    sequence = Sequence()
    sequence.start(TP, 1, None)
    assert not sequence.knows(TP, 1)
    sequence.see(TP, 1, 42)
    sequence.see(TP, 1, 43)
    with pytest.raises(Skipped):
        sequence.see(TP, 1, 45)


def test_a_new_generation_starts_again_from_its_committed_offset() -> None:
    sequence = Sequence()
    sequence.start(TP, 1, 0)
    sequence.see(TP, 1, 0)
    assert sequence.knows(TP, 1)
    assert not sequence.knows(TP, 2)
    sequence.start(TP, 2, 500)  # another worker went on meanwhile
    sequence.see(TP, 2, 500)
    with pytest.raises(Skipped):
        sequence.see(TP, 2, 502)
    other = ("samt124.intake", 1)
    sequence.start(other, 2, 7)
    sequence.see(other, 2, 7)
