"""The replay's arithmetic: how much of the log is done, and the progress line with its ETA."""

from __future__ import annotations

import pytest

from consumers.sink.replay import MAX_JOBS, LogRange, eta_text, jobs_for, progress_line
from samt124.errors import CommandFailed

WHERE = LogRange(beginning={("a", 0): 10, ("a", 1): 0}, end={("a", 0): 110, ("a", 1): 50})


def test_messages_and_done_count_within_the_range() -> None:
    assert WHERE.messages == 150
    assert WHERE.done({}) == 0
    assert WHERE.done({("a", 0): 60}) == 50
    # before the beginning counts as nothing, past the end as the whole partition
    assert WHERE.done({("a", 0): 5, ("a", 1): 80}) == 50
    assert WHERE.done({("a", 0): 110, ("a", 1): 50}) == WHERE.messages


def test_eta_reads_in_hours_minutes_or_seconds() -> None:
    assert eta_text(42.4) == "42 s"
    assert eta_text(185) == "3 min 05 s"
    assert eta_text(3_720) == "1 h 02 min"


def test_progress_line_rate_leaves_out_what_an_earlier_run_did() -> None:
    line = progress_line(6_000, 10_000, 10.0, before=2_000, width=10)
    assert line == "[######....] 6,000 / 10,000 messages  60.0 %  400/s  ETA 10 s"
    assert progress_line(0, 10, 0.0, width=4).endswith("0/s  ETA ?")


def test_a_replay_into_a_server_runs_a_process_per_core_and_into_chdb_one() -> None:
    assert jobs_for(None, "server", 2) == 2
    assert jobs_for(None, "server", 64) == MAX_JOBS
    assert jobs_for(None, "server", None) == 1
    assert jobs_for(7, "server", 2) == 7  # as asked
    assert jobs_for(None, "chdb", 8) == 1
    assert jobs_for(1, "chdb", 8) == 1
    with pytest.raises(CommandFailed, match="opened by one process at a time"):
        jobs_for(2, "chdb", 8)
