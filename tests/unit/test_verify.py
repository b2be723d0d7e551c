"""``samt124 verify``'s judgement, from what the topics hold (no broker)."""

from __future__ import annotations

from collections import Counter

from streams.verify import IntakeMessage, reconcile


def test_each_acknowledged_message_is_routed_dead_lettered_or_missing() -> None:
    judged = [
        IntakeMessage(0, 0, "e0"),  # routed
        IntakeMessage(0, 1, None),  # garbage, dead-lettered
        IntakeMessage(0, 2, "e2"),  # lost
        IntakeMessage(0, 3, "e3"),  # routed and dead-lettered
        IntakeMessage(1, 5, "e5"),  # on the wrong partition, copied to 0@9, routed there
        IntakeMessage(1, 6, "e6"),  # copied to 0@10, dead-lettered there
        IntakeMessage(1, 7, "e0"),  # the same event again, absorbed as a duplicate
    ]
    copies = [IntakeMessage(0, 9, "e5", moved_from=(1, 5)), IntakeMessage(0, 10, "e6", (1, 6))]
    routed = Counter({"e0": 2, "e3": 1, "e5": 1})
    dead = Counter({(0, 1): 1, (0, 3): 1, (0, 10): 2})
    report = reconcile(judged, copies, routed, dead, {0: (0, 4, 11), 1: (5, 8, 8)})
    first, second = report.partitions
    assert (first.judged, first.routed, first.dead_lettered, first.missing, first.both) == (
        4,
        1,
        1,
        [2],
        [3],
    )
    assert (second.judged, second.routed, second.dead_lettered, second.moved) == (3, 2, 1, 2)
    assert second.missing == []
    assert first.pending == 7  # offsets 4..10 are past the committed offset
    assert second.pending == 0
    assert report.missing == 1
    assert report.both == 1
    assert report.duplicated_routes == 1  # e0
    assert report.duplicated_dead_letters == 1  # 0@10
    assert report.to_json()["ok"] is False


def test_nothing_missing_is_ok() -> None:
    report = reconcile([IntakeMessage(2, 0, "a")], [], Counter({"a": 1}), Counter(), {2: (0, 1, 1)})
    assert report.missing == 0
    assert report.to_json()["ok"] is True
    assert report.to_json()["routed"] == 1
