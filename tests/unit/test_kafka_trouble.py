"""Connection trouble a Kafka client only logs, said beside the error the command reports."""

from __future__ import annotations

import logging

from kafka.errors import KafkaConnectionError, KafkaTimeoutError

from samt124.kafka import trouble as kafka_trouble


def test_a_refused_certificate_is_named_with_a_hint() -> None:
    kafka_trouble.watch()
    logging.getLogger("kafka.net.manager").warning(
        "Bootstrap connection to bootstrap-0 failed: KafkaConnectionError: [SSL:"
        " SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate (_ssl.c:2580) (backoff 3 secs)"
    )
    said = kafka_trouble.explain(KafkaTimeoutError("Unable to bootstrap"))
    assert said.startswith("KafkaTimeoutError: Unable to bootstrap; the connection failed with:")
    assert "[SSL: SSLV3_ALERT_BAD_CERTIFICATE] sslv3 alert bad certificate (_ssl.c:2580) (" in said
    assert "backoff" not in said
    assert "SAMT124_KAFKA_SSL_CERTFILE" in said


def test_a_refused_login_gets_the_sasl_hint() -> None:
    kafka_trouble.watch()
    logging.getLogger("kafka.conn").error(
        "<BrokerConnection>: Connection lost: SaslAuthenticationFailedError: Authentication"
        " failed: Invalid username or password"
    )
    said = kafka_trouble.explain(KafkaConnectionError())
    assert "Invalid username or password" in said
    assert "SAMT124_KAFKA_SASL_PASSWORD" in said


def test_a_connection_closed_after_a_plain_login_gets_the_login_hint() -> None:
    kafka_trouble.watch()
    logging.getLogger("kafka.net.sasl.plain").warning("Sending username and password in the clear")
    logging.getLogger("kafka.net.connection").error(
        "<KafkaConnection node_id=bootstrap-0>: Connection lost: KafkaConnectionError: socket"
        " disconnected"
    )
    said = kafka_trouble.explain(KafkaTimeoutError("Unable to bootstrap"))
    assert "the connection failed with: socket disconnected" in said
    assert "closed the connection after the login" in said
    assert "SAMT124_KAFKA_SASL_PASSWORD" in said


def test_client_tracebacks_are_dropped_but_not_the_message() -> None:
    error = OSError("connection reset")
    record = logged("kafka.net.transport", logging.ERROR, "closing socket", (), error)
    assert kafka_trouble.without_tracebacks(record)
    assert record.exc_info is None
    assert record.getMessage() == "closing socket"
    ours = logged("samt124", logging.ERROR, "x", (), error)
    kafka_trouble.without_tracebacks(ours)
    assert ours.exc_info is not None


def logged(
    name: str, level: int, message: str, args: tuple[object, ...], error: BaseException
) -> logging.LogRecord:
    """The record a logger ``name`` makes of ``message`` with the traceback of ``error``."""
    return logging.LogRecord(name, level, __file__, 1, message, args, (type(error), error, None))


def test_a_clickhouse_client_s_connection_warning_loses_its_traceback_too() -> None:
    error = OSError("certificate verify failed")
    record = logged(
        "clickhouse_driver.connection",
        logging.WARNING,
        "Failed to connect to %s",
        ("localhost:9440",),
        error,
    )
    assert kafka_trouble.without_tracebacks(record)
    assert record.exc_info is None
    assert record.getMessage() == "Failed to connect to localhost:9440"


def test_a_refused_login_is_not_replaced_by_the_time_outs_of_the_retries() -> None:
    kafka_trouble.watch()
    logging.getLogger("kafka.net.manager").error(
        "Bootstrap attempt to bootstrap-0 failed: SaslAuthenticationFailedError: Authentication"
        " failed: Invalid username or password (backoff 0.10 secs)"
    )
    logging.getLogger("kafka.net.manager").warning(
        "Bootstrap connection to bootstrap-0 failed: KafkaTimeoutError: Request timed out after"
        " 188 ms (backoff 0.20 secs)"
    )
    said = kafka_trouble.explain(KafkaTimeoutError("Unable to bootstrap"))
    assert "Authentication failed: Invalid username or password" in said
    assert "the broker refused the login" in said
