"""Sample input the tests share: a request submission as a line of a JSON Lines file would hold."""

from __future__ import annotations


def submitted_line(request_id: str) -> dict[str, object]:
    """A valid ``RequestSubmitted`` as the JSON object ``samt124 publish`` reads."""
    return {
        "type": "RequestSubmitted",
        "request_id": request_id,
        "occurred_at": "2025-06-30T10:15:00+03:30",
        "source": "portal",
        "channel": "WEB_PORTAL",
        "requester": {"national_id": "10101010101", "name": "شرکت نمونه"},
        "category": "MKT-OVERCHARGE",
        "province": "IR-30",
        "subject": "گرانفروشی",
        "body": "قیمت بیش از نرخ مصوب",
        "priority": "NORMAL",
    }
