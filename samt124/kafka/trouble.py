"""Why a Kafka client could not connect, in words: the last connection error the client logged.

kafka-python reports a refused TLS handshake or SASL login only in its log and then gives up with
"Unable to bootstrap"; :func:`explain` puts the logged cause and a hint beside that error. A
broker that refuses a SASL/PLAIN login may simply close the connection: a connection lost right
after a login was sent gets the login hint too.
"""

from __future__ import annotations

import logging
import re

# "<connection>: Connection lost: KafkaConnectionError: [SSL: ...] ... (backoff 10.2 secs)"
CAUSE = re.compile(r"(?:Error|Exception): (?P<cause>.+?)(?: \(backoff [^)]*\))?$")
SASL_SETTINGS = (
    "check SAMT124_KAFKA_SASL_MECHANISM, SAMT124_KAFKA_SASL_USERNAME"
    " and SAMT124_KAFKA_SASL_PASSWORD"
)
HINTS = (
    (
        ("CERTIFICATE", "CERTIFICATE_VERIFY_FAILED", "HANDSHAKE"),
        "a TLS certificate was refused or could not be verified: check SAMT124_KAFKA_SSL_CAFILE,"
        " and SAMT124_KAFKA_SSL_CERTFILE / SAMT124_KAFKA_SSL_KEYFILE when the broker asks for a"
        " client certificate",
    ),
    (("SASL", "AUTHENTICATION"), f"the broker refused the login: {SASL_SETTINGS}"),
)
CLOSED_AFTER_LOGIN = f"the broker closed the connection after the login: {SASL_SETTINGS}"


def _telling(text: str) -> bool:
    """The text names a cause a hint explains (a certificate, a login)."""
    upper = text.upper()
    return any(word in upper for words, _ in HINTS for word in words)


class _LastTrouble(logging.Handler):
    """Remembers the latest connection error a Kafka client logged, and whether it logged in."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.last: str | None = None
        self.logged_in = False  # a SASL login was sent (kafka-python warns about PLAIN)

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if ".sasl" in record.name:
            self.logged_in = True
            return
        if not CAUSE.search(text):
            return
        telling = _telling(text)
        if not telling and "CONNECTION" not in text.upper():
            return
        # not the client's final "Unable to bootstrap": the cause before it; and a refused
        # login or certificate is not replaced by the time-outs of the retries after it
        if telling or self.last is None or not _telling(self.last):
            self.last = text


_trouble = _LastTrouble()


def watch() -> None:
    """Start remembering connection trouble afresh (each command run in this process)."""
    _trouble.last = None
    _trouble.logged_in = False
    logger = logging.getLogger("kafka")
    if _trouble not in logger.handlers:
        logger.addHandler(_trouble)


def explain(error: BaseException) -> str:
    """``error``, with the connection trouble logged before it and a hint when one fits."""
    name = type(error).__name__
    text = str(error) if str(error).startswith(name) else f"{name}: {error}"
    last = _trouble.last
    if last is None:
        return text
    found = CAUSE.search(last)
    cause = found.group("cause") if found else last
    hints = [hint for words, hint in HINTS if any(word in last.upper() for word in words)]
    if not hints and _trouble.logged_in:
        hints = [CLOSED_AFTER_LOGIN]
    return f"{text}; the connection failed with: {cause}" + (f" ({hints[0]})" if hints else "")


CLIENT_LOGGERS = ("kafka", "aiokafka", "clickhouse_driver")


def without_tracebacks(record: logging.LogRecord) -> bool:
    """A logging filter: a Kafka or ClickHouse client's connection errors as one line, no
    traceback (the error that ends the command says what failed)."""
    if record.name.split(".", 1)[0] in CLIENT_LOGGERS and record.exc_info:
        record.exc_info = None
        record.exc_text = None
    return True


def without_client_chatter(record: logging.LogRecord) -> bool:
    """A logging filter: none of the Kafka or ClickHouse clients' own lines (their retries and
    reconnections) on the screen; the error that ends a command says what failed, and
    ``--debug`` shows them. The explanation above still hears them (it listens on the client's
    logger, before this filter on the screen's handler)."""
    return record.name.split(".", 1)[0] not in CLIENT_LOGGERS
