"""The sink's Prometheus metrics (``samt124 sink --metrics HOST:PORT``).

Counters since the process started: messages read and committed, rows stored per table,
batches, retries (ClickHouse did not take a batch; the same rows are sent again), errors by
kind (``clickhouse``: a refused or failed insert; ``undecodable``: a message on a provincial or
SLA topic that is no samt124 event, kept in ``sink_errors``); histograms of the batches
(messages) and of the time ClickHouse took to store one (all its tables, from the first insert
to the last, retries not included); the time of the last stored batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from consumers.sink.loader import SinkStats

BATCH_SIZES = (1, 10, 100, 500, 1_000, 5_000, 10_000, 20_000, 50_000)
INSERT_SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class SinkMetrics(Collector):
    """Counters read from the sink's own :class:`SinkStats` at each scrape, and histograms."""

    def __init__(self, stats: SinkStats) -> None:
        self.stats = stats
        self.last_batch = 0.0  # Unix time the last batch was stored and committed
        self.registry = CollectorRegistry(auto_describe=True)
        self.batch_size = Histogram(
            "samt124_sink_batch_messages",
            "Messages per batch stored",
            buckets=BATCH_SIZES,
            registry=self.registry,
        )
        self.insert_duration = Histogram(
            "samt124_sink_insert_duration_seconds",
            "Time ClickHouse took to store a batch (every table), when it took it",
            buckets=INSERT_SECONDS,
            registry=self.registry,
        )
        self.registry.register(self)

    def collect(self) -> Iterator[Metric]:
        stats = self.stats
        yield CounterMetricFamily(
            "samt124_sink_messages",
            "Messages stored in ClickHouse and committed",
            value=stats.messages,
        )
        rows = CounterMetricFamily(
            "samt124_sink_rows_stored", "Rows stored in ClickHouse, by table", labels=["table"]
        )
        for table, count in (
            ("events", stats.events),
            ("sla_events", stats.sla_events),
            ("sink_errors", stats.errors),
            ("dead_letters", stats.dead_letters),
            ("sla_deadlines", stats.deadlines),
        ):
            rows.add_metric([table], count)
        yield rows
        yield CounterMetricFamily(
            "samt124_sink_batches", "Batches stored and committed", value=stats.batches
        )
        yield CounterMetricFamily(
            "samt124_sink_retries",
            "Batches sent again because ClickHouse did not take them",
            value=stats.retries,
        )
        errors = CounterMetricFamily("samt124_sink_errors", "Errors, by kind", labels=["kind"])
        errors.add_metric(["clickhouse"], stats.retries)
        errors.add_metric(["undecodable"], stats.errors)
        yield errors
        yield GaugeMetricFamily(
            "samt124_sink_last_batch_timestamp_seconds",
            "When the sink last stored and committed a batch (Unix time; 0: not yet)",
            value=self.last_batch,
        )

    def describe(self) -> Iterator[Metric]:
        return iter(())
