"""Consumer lag as Prometheus metrics, under kafka-lag-exporter's names and labels.

Dashboards and alerts written for kafka-lag-exporter work unchanged; the Burrow-style status
comes as ``samt124_consumergroup_status{group, status}``: 1 for the group's current status,
0 for the others. The endpoint shows the latest sample; ``samt124 lag --serve`` refreshes it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from consumers.lag.burrow import Status
from consumers.lag.reader import GroupReport

PARTITION_LABELS = (
    "cluster_name",
    "group",
    "topic",
    "partition",
    "member_host",
    "consumer_id",
    "client_id",
)
GROUP_LABELS = ("cluster_name", "group")


class LagCollector(Collector):
    """Renders the latest reports at every scrape; series of vanished partitions go with them."""

    def __init__(self, cluster_name: str) -> None:
        self._cluster = cluster_name
        self._reports: tuple[GroupReport, ...] = ()
        self._lock = threading.Lock()

    def update(self, reports: Sequence[GroupReport]) -> None:
        with self._lock:
            self._reports = tuple(reports)

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            reports = self._reports
        cluster = self._cluster
        lag = GaugeMetricFamily(
            "kafka_consumergroup_group_lag",
            "Group offset lag of a partition",
            labels=PARTITION_LABELS,
        )
        lag_seconds = GaugeMetricFamily(
            "kafka_consumergroup_group_lag_seconds",
            "Group time lag of a partition: age of the oldest unconsumed message",
            labels=PARTITION_LABELS,
        )
        max_lag = GaugeMetricFamily(
            "kafka_consumergroup_group_max_lag", "Max group offset lag", labels=GROUP_LABELS
        )
        max_lag_seconds = GaugeMetricFamily(
            "kafka_consumergroup_group_max_lag_seconds", "Max group time lag", labels=GROUP_LABELS
        )
        sum_lag = GaugeMetricFamily(
            "kafka_consumergroup_group_sum_lag", "Sum of group offset lag", labels=GROUP_LABELS
        )
        latest = GaugeMetricFamily(
            "kafka_partition_latest_offset",
            "Latest offset of a partition",
            labels=("cluster_name", "topic", "partition"),
        )
        status = GaugeMetricFamily(
            "samt124_consumergroup_status",
            "Burrow-style group status over the window: 1 for the current status",
            labels=(*GROUP_LABELS, "status"),
        )
        seen_partitions: set[tuple[str, int]] = set()
        for report in reports:
            group = [cluster, report.group]
            for partition in report.partitions:
                reading, member = partition.lag, partition.lag.member
                labels = [
                    *group,
                    reading.topic,
                    str(reading.partition),
                    member.host if member else "",
                    member.consumer_id if member else "",
                    member.client_id if member else "",
                ]
                if reading.lag is not None:
                    lag.add_metric(labels, reading.lag)
                if reading.lag_seconds is not None:
                    lag_seconds.add_metric(labels, reading.lag_seconds)
                where = (reading.topic, reading.partition)
                if reading.log_end is not None and where not in seen_partitions:
                    seen_partitions.add(where)
                    latest.add_metric([cluster, *map(str, where)], reading.log_end)
            max_lag.add_metric(group, report.max_lag)
            max_lag_seconds.add_metric(group, report.max_lag_seconds)
            sum_lag.add_metric(group, report.sum_lag)
            for each in Status:
                status.add_metric([*group, each.name], 1.0 if report.status is each else 0.0)
        yield from (lag, lag_seconds, max_lag, max_lag_seconds, sum_lag, latest, status)


def serve(host: str, port: int, collector: LagCollector) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``/metrics`` on ``host:port`` from a background thread."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(collector)
    return start_http_server(port, addr=host, registry=registry)
