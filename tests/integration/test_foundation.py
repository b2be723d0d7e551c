"""The real services answer: produce/consume on the broker, insert/select on both engines."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from clickhouse_driver import Client
from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from samt124.settings import Settings, parse_clickhouse_url

TEHRAN = ZoneInfo("Asia/Tehran")


def test_produce_and_consume_on_the_real_broker(settings: Settings) -> None:
    topic = f"{settings.topic_namespace}.roundtrip"
    admin = KafkaAdminClient(**settings.kafka_client_options())
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])
    admin.close()
    producer = KafkaProducer(**settings.kafka_client_options(), acks="all")
    sent = {f"req-{i}".encode(): f"درخواست {i}".encode() for i in range(200)}
    for key, value in sent.items():
        producer.send(topic, key=key, value=value)
    producer.flush()
    producer.close()

    consumer = KafkaConsumer(
        topic,
        **settings.kafka_client_options(),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=10_000,
    )
    received = {}
    for message in consumer:
        received[message.key] = message.value
        if len(received) == len(sent):
            break
    consumer.close()
    assert received == sent


def test_insert_and_select_on_the_clickhouse_server(server_url: str) -> None:
    target = parse_clickhouse_url(server_url)
    client = Client(target.host, port=target.port, database=target.database)
    client.execute(
        "CREATE TABLE requests (request_id String, province String, "
        "submitted_at DateTime('Asia/Tehran')) ENGINE = MergeTree ORDER BY request_id"
    )
    at = dt.datetime(2025, 3, 19, 10, 30, tzinfo=TEHRAN)
    client.execute(
        "INSERT INTO requests VALUES",
        [("r-1", "IR-30", at), ("r-2", "IR-23", at + dt.timedelta(hours=1))],
    )
    rows = client.execute("SELECT request_id, province, submitted_at FROM requests ORDER BY 1")
    assert [(r[0], r[1], r[2].astimezone(TEHRAN)) for r in rows] == [
        ("r-1", "IR-30", at),
        ("r-2", "IR-23", at + dt.timedelta(hours=1)),
    ]
    assert client.execute("SELECT version()")[0][0].startswith(("18.", "2"))
    client.disconnect()


def test_the_clickhouse_server_keeps_tehran_time_as_samt124_does(server_url: str) -> None:
    """Before 2022 Tehran kept summer time (+04:30): the server and Python agree on the day."""
    from samt124.domain.tehran_time import jalali, tehran

    target = parse_clickhouse_url(server_url)
    client = Client(target.host, port=target.port, database=target.database)
    summer = dt.datetime(2021, 7, 10, 20, 0, tzinfo=dt.UTC)
    local = client.execute(f"SELECT toString(toDateTime({int(summer.timestamp())}, 'Asia/Tehran'))")
    client.disconnect()
    assert local[0][0] == tehran(summer).strftime("%Y-%m-%d %H:%M:%S") == "2021-07-11 00:30:00"
    assert (jalali(summer).month, jalali(summer).day) == (4, 20)


def test_insert_and_select_on_chdb_persists(chdb_url: str) -> None:
    from chdb import session

    path = Path(chdb_url.removeprefix("chdb://"))
    first = session.Session(str(path))
    first.query("CREATE DATABASE IF NOT EXISTS samt124")
    first.query(
        "CREATE TABLE samt124.requests (request_id String, province String) "
        "ENGINE = MergeTree ORDER BY request_id"
    )
    first.query("INSERT INTO samt124.requests VALUES ('r-1', 'IR-30'), ('r-2', 'البرز')")
    first.close()

    again = session.Session(str(path))
    result = again.query("SELECT request_id, province FROM samt124.requests ORDER BY 1", "CSV")
    again.close()
    assert result.bytes().decode().splitlines() == ['"r-1","IR-30"', '"r-2","البرز"']
