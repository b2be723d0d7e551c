"""Burrow-style evaluation over hand-made windows of samples."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from consumers.lag.burrow import History, Sample, Status, evaluate, filled, in_window, worst

WINDOW = 10.0


def window(
    committed: list[int], log_end: list[int], *, owned: bool = True, step: float = 2.0
) -> list[Sample]:
    return [
        Sample(at=1000.0 + index * step, committed=offset, log_end=end, owned=owned)
        for index, (offset, end) in enumerate(zip(committed, log_end, strict=True))
    ]


def test_lag_zero_at_some_point_is_ok() -> None:
    assert evaluate(window([0, 5, 10, 10, 12, 12], [10, 10, 10, 15, 20, 20]), WINDOW) is Status.OK


def test_committing_and_catching_up_is_ok() -> None:
    samples = window([0, 10, 20, 30, 40, 50], [100, 100, 105, 110, 110, 115])
    assert evaluate(samples, WINDOW) is Status.OK


def test_lag_growing_while_committing_is_warn() -> None:
    samples = window([0, 1, 2, 3, 4, 5], [10, 12, 14, 16, 18, 20])
    assert evaluate(samples, WINDOW) is Status.WARN


def test_offset_not_moving_with_an_owner_is_stall() -> None:
    samples = window([7] * 6, [10, 10, 11, 12, 12, 12])
    assert evaluate(samples, WINDOW) is Status.STALL


def test_offset_not_moving_and_nobody_committing_is_stop() -> None:
    samples = window([7] * 6, [10] * 6, owned=False)
    assert evaluate(samples, WINDOW) is Status.STOP


def test_offset_going_backwards_is_rewind() -> None:
    samples = window([0, 5, 10, 3, 4, 5], [20] * 6)
    assert evaluate(samples, WINDOW) is Status.REWIND


def test_latest_reading_failed_is_err() -> None:
    samples = [*window([1, 2], [5, 5]), Sample(at=1010.0, committed=None, log_end=None, error="x")]
    assert evaluate(samples, WINDOW) is Status.ERR
    assert evaluate([], WINDOW) is Status.ERR


def test_an_earlier_failed_reading_does_not_count() -> None:
    failed = Sample(at=999.0, committed=None, log_end=None, error="timeout")
    assert evaluate([failed, *window([0, 2, 4, 6, 8, 10], [10] * 6)], WINDOW) is Status.OK


def test_no_verdict_until_the_window_is_filled() -> None:
    samples = window([7] * 3, [10] * 3, owned=False)  # 4 seconds of a 10-second window
    assert not filled(samples, WINDOW)
    assert evaluate(samples, WINDOW) is Status.OK
    assert evaluate(samples, 4.0) is Status.STOP


def test_no_commit_yet_is_not_judged() -> None:
    samples = [Sample(at=1000.0 + i, committed=None, log_end=50) for i in range(12)]
    assert evaluate(samples, WINDOW) is Status.OK


def test_only_the_window_counts() -> None:
    # lag was zero long ago, then the offset stopped: the old zero has left the window
    samples = window([10, 10, 10, 10, 10, 10, 10, 10], [10, 12, 12, 12, 12, 12, 12, 12])
    assert in_window(samples, WINDOW)[0].at == samples[2].at
    assert evaluate(samples, WINDOW) is Status.STALL


def test_group_is_its_worst_partition() -> None:
    assert worst([Status.OK, Status.STALL, Status.WARN]) is Status.STALL
    assert worst([Status.REWIND, Status.STOP, Status.OK]) is Status.STOP
    assert worst([]) is Status.OK
    assert [status.name for status in Status if status.unhealthy] == ["STALL", "STOP", "ERR"]


def test_history_keeps_only_the_window_and_forgets_gone_keys() -> None:
    history = History(WINDOW)
    for index, sample in enumerate(window([7] * 20, [9] * 20, step=1.0)):
        history.record(("g", "t", index % 2), sample)
    assert history.status(("g", "t", 0)) is Status.STALL
    history.retain([("g", "t", 1)])
    assert history.status(("g", "t", 0)) is Status.ERR  # nothing known any more
    assert history.filled(("g", "t", 1))


offsets = st.lists(st.integers(min_value=0, max_value=1_000), min_size=2, max_size=12)


@given(offsets, st.data())
def test_never_ok_when_the_offset_went_backwards(committed: list[int], data: st.DataObject) -> None:
    drop = data.draw(st.integers(min_value=1, max_value=len(committed) - 1))
    committed = sorted(committed)
    committed[drop] = committed[drop - 1] - 1  # one step back
    ends = [max(committed) + data.draw(st.integers(0, 5)) for _ in committed]
    assert evaluate(window(committed, ends, step=1.0), float(len(committed))) is Status.REWIND


@given(offsets, st.integers(min_value=1, max_value=100), st.booleans())
def test_never_healthy_when_stuck_behind_for_a_whole_window(
    committed: list[int], behind: int, owned: bool
) -> None:
    stuck = [committed[0]] * len(committed)
    samples = window(stuck, [committed[0] + behind] * len(committed), owned=owned, step=1.0)
    status = evaluate(samples, float(len(committed) - 1))
    assert status is (Status.STALL if owned else Status.STOP)


@given(offsets)
def test_always_ok_when_caught_up_at_the_end(committed: list[int]) -> None:
    committed = sorted(committed)
    samples = window(committed, [committed[-1]] * len(committed), step=1.0)
    assert evaluate(samples, float(len(committed))) is Status.OK
