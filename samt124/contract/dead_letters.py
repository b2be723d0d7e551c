"""What a dead letter carries besides its original bytes, and the kind of its reason.

The worker writes the original message's bytes and key to ``samt124.dlq`` with its headers and
these of its own: ``dlq-reason`` (the text), ``dlq-error`` (the exception's type, when handling
the message raised), ``dlq-topic``, ``dlq-partition``, ``dlq-offset`` (where the original was
read) and ``dlq-at`` (when, ISO 8601 in UTC). A message re-published after a fix carries
``replay-of`` (the dead letter's place) and ``replay-of-event-id`` (the original's event id,
when it had one) for audit.

:func:`reason_kind` sorts the free-text reasons into a few kinds that reports and metrics count
by (the text itself names request ids and values, too many to count by).
"""

from __future__ import annotations

REASON = "dlq-reason"
ERROR = "dlq-error"
SOURCE_TOPIC = "dlq-topic"
SOURCE_PARTITION = "dlq-partition"
SOURCE_OFFSET = "dlq-offset"
AT = "dlq-at"
REPLAY_OF = "replay-of"
REPLAY_OF_EVENT_ID = "replay-of-event-id"

# the kinds, in the order reports list them
UNDECODABLE = "undecodable"
INVALID = "invalid"
OWN_FACT = "own-fact-on-intake"
KEY_MISMATCH = "key-mismatch"
UNKNOWN_REQUEST = "unknown-request"
FAILURE = "failure"
OTHER = "other"
KINDS = (UNDECODABLE, INVALID, OWN_FACT, KEY_MISMATCH, UNKNOWN_REQUEST, FAILURE, OTHER)

# how samt124.contract.wire.DecodeError's reasons begin or end
_UNDECODABLE_STARTS = (
    "truncated header",
    "bad marker",
    "unknown schema fingerprint",
    "undecodable",
)
_UNDECODABLE_PARTS = ("trailing bytes after", "record does not fit the event")


def reason_kind(reason: str, error_type: str = "") -> str:
    """The kind of a dead letter's reason (one of :data:`KINDS`)."""
    if error_type:
        return FAILURE
    if reason.startswith(_UNDECODABLE_STARTS) or any(p in reason for p in _UNDECODABLE_PARTS):
        return UNDECODABLE
    if reason.startswith("invalid "):
        return INVALID
    if "is published by samt124 itself" in reason:
        return OWN_FACT
    if reason.startswith("message key "):
        return KEY_MISMATCH
    if " for unknown request " in reason:
        return UNKNOWN_REQUEST
    return OTHER


def place(topic: str, partition: int, offset: int) -> str:
    """``samt124.dlq[2]@17``: a message's place, as the worker's log lines write it."""
    return f"{topic}[{partition}]@{offset}"
