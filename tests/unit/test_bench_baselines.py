"""Reading the summary of Kafka's ``ConsumerPerformance`` tool, in the shapes it prints."""

from __future__ import annotations

import pytest

from devtools.bench.baselines import ShortRead, parse_consumer_performance
from devtools.bench.harness import BenchError

HEADER = (
    "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec,"
    " rebalance.time.ms, fetch.time.ms, fetch.MB.sec, fetch.nMsg.sec"
)
WARNING = (
    "WARNING: Exiting before consuming the expected number of messages: timeout (5000 ms)"
    " exceeded. You can use the --timeout option to increase the timeout."
)


def test_the_summary_line_is_read_by_column_name() -> None:
    out = "\n".join(
        [
            HEADER,
            "2026-11-28 15:47:45:677, 2026-11-28 15:47:50:743, 97.1, 19.2, 200000, 39478.9,"
            " 312, 4754, 20.4, 42069.8",
        ]
    )
    perf = parse_consumer_performance(out, 200_000)
    assert (perf.records, perf.per_second, perf.per_second_total) == (200_000, 42069.8, 39478.9)


def test_a_read_cut_short_by_the_tool_s_timeout_is_an_error_naming_both_counts() -> None:
    out = "\n".join(
        [
            HEADER,
            WARNING,
            "2026-11-28 15:47:45:677, 2026-11-28 15:47:50:743, 0.5, 0.1, 1200, 237.0,"
            " 0, 5066, 0.1, 237.0",
        ]
    )
    with pytest.raises(ShortRead, match=r"read 1,200 of 200,000 records\. WARNING: Exiting"):
        parse_consumer_performance(out, 200_000)


def test_output_without_figures_is_an_error_quoting_it() -> None:
    with pytest.raises(BenchError, match="unexpected ConsumerPerformance output"):
        parse_consumer_performance(HEADER + "\n" + WARNING, 10)
