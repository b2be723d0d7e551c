"""Open311 GeoReport v2, as samt124 speaks it: the catalogue as services, requests as the
standard's records, errors in its format, in JSON or XML.

Status mapping (the standard knows ``open`` and ``closed``; ``detailed_status`` says more):

========================  ==========  ==========================================
samt124                   Open311     detailed_status
========================  ==========  ==========================================
accepted, not yet routed  open        ``submitted``
REFERRED                  open        ``referred``
ASSIGNED                  open        ``assigned``
IN_PROGRESS               open        ``in_progress`` (the applicant answered)
AWAITING_APPLICANT        open        ``awaiting_applicant`` (SLA clocks paused)
RESPONDED                 open        ``responded``
REOPENED                  open        ``reopened``
RESOLVED                  closed      ``resolved``
CLOSED                    closed      ``closed``
========================  ==========  ==========================================

``agency_responsible`` is the holder's body id (``samt-org:IR-23``, ``khaneh-samt:IR-30``,
``ministry:health``), ``expected_datetime`` the resolution deadline while the clock runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree

from samt124.domain.catalogue import CATALOGUE, GROUPS
from samt124.domain.provinces import PROVINCES
from samt124.domain.tehran_time import TEHRAN

FORMATS = ("json", "xml")
OPEN_STATUSES = frozenset(
    {
        "submitted",
        "referred",
        "assigned",
        "in_progress",
        "awaiting_applicant",
        "responded",
        "reopened",
    }
)
PRIORITIES = ("LOW", "NORMAL", "HIGH", "URGENT")


def open311_status(detailed: str) -> str:
    return "open" if detailed in OPEN_STATUSES else "closed"


def when(at: datetime | None) -> str | None:
    """ISO 8601 with the offset, in Tehran time (``2026-11-30T10:15:00+03:30``)."""
    if at is None:
        return None
    return at.astimezone(TEHRAN).isoformat(timespec="seconds")


def services() -> list[dict[str, Any]]:
    """``GET services``: every category of the 124 catalogue, English name and Persian."""
    return [
        {
            "service_code": c.code,
            "service_name": c.name_en,
            "service_name_fa": c.name_fa,
            "description": f"{c.name_en} — {c.name_fa}",
            "metadata": True,
            "type": "realtime",
            "keywords": c.group,
            "group": GROUPS[c.group].name_en,
            "group_fa": GROUPS[c.group].name_fa,
        }
        for c in CATALOGUE.values()
    ]


def definition(code: str) -> dict[str, Any]:
    """``GET services/{code}``: the attributes a request of this service carries."""
    provinces = [
        {"key": p, "name": f"{PROVINCES[p].name_en} — {PROVINCES[p].name_fa}"}
        for p in sorted(PROVINCES)
    ]
    return {
        "service_code": code,
        "attributes": [
            _attribute(
                1, "province", "singlevaluelist", True, "Province (ISO 3166-2:IR)", provinces
            ),
            _attribute(
                2,
                "national_id",
                "string",
                True,
                "The applicant's national id (11 digits, a unit) or national code (10, a person)",
            ),
            _attribute(
                3,
                "priority",
                "singlevaluelist",
                False,
                f"Priority (default {CATALOGUE[code].priority})",
                [{"key": p, "name": p.lower()} for p in PRIORITIES],
            ),
            _attribute(4, "subject", "string", False, "Subject (default: the service's name)"),
        ],
    }


def _attribute(
    order: int,
    code: str,
    datatype: str,
    required: bool,
    description: str,
    values: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "variable": True,
        "code": code,
        "datatype": datatype,
        "required": required,
        "datatype_description": None,
        "order": order,
        "description": description,
    }
    if values is not None:
        out["values"] = values
    return out


def discovery(base: str) -> dict[str, Any]:
    return {
        "changeset": "2026-11-30T00:00:00+03:30",
        "contact": "samt124 — the 124 request system of the Ministry of Industry, Mine and Trade",
        "key_service": "API keys are issued by the ministry (samt124 keys add)",
        "endpoints": [
            {
                "specification": "http://wiki.open311.org/GeoReport_v2",
                "url": base,
                "changeset": "2026-11-30T00:00:00+03:30",
                "type": "production",
                "formats": ["application/json", "text/xml"],
            }
        ],
    }


def error(code: int, description: str) -> list[dict[str, Any]]:
    return [{"code": code, "description": description}]


# -- XML -----------------------------------------------------------------------------------

XML_ROOTS = {  # the list element and the element of each item, per document
    "services": ("services", "service"),
    "requests": ("service_requests", "request"),
    "errors": ("errors", "error"),
    "tokens": ("service_requests", "request"),
}


def to_xml(kind: str, data: Any) -> bytes:
    """The Open311 XML of a document: a list of items, or one definition or discovery."""
    if kind == "definition":
        root = ElementTree.Element("service_definition")
        _fill(root, data)
    elif kind == "discovery":
        root = ElementTree.Element("discovery")
        _fill(root, data)
    else:
        outer, inner = XML_ROOTS[kind]
        root = ElementTree.Element(outer)
        for item in data:
            _fill(ElementTree.SubElement(root, inner), item)
    body: bytes = ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
    return body


_LIST_ITEMS = {"attributes": "attribute", "values": "value", "endpoints": "endpoint"}


def _fill(element: ElementTree.Element, data: Mapping[str, Any]) -> None:
    for name, value in data.items():
        if isinstance(value, list):
            holder = ElementTree.SubElement(element, name)
            item_name = _LIST_ITEMS.get(name, "format" if name == "formats" else "item")
            for item in value:
                child = ElementTree.SubElement(holder, item_name)
                if isinstance(item, Mapping):
                    _fill(child, item)
                else:
                    child.text = _text(item)
        elif isinstance(value, Mapping):
            _fill(ElementTree.SubElement(element, name), value)
        else:
            ElementTree.SubElement(element, name).text = _text(value)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class BadInput(ValueError):
    """A request the API refuses: the field and the problem (400 unless ``status`` says)."""

    def __init__(self, field: str, problem: str, status: int = 400) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field
        self.problem = problem
        self.status = status


def parse_xml_form(raw: bytes) -> dict[str, str]:
    """The fields of a ``<request>`` XML document (child elements; ``<attribute>`` children as
    ``attribute[code]``). No DTD and no entity is accepted."""
    if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
        raise BadInput("body", "XML with a DTD or entities is not accepted")
    try:
        root = ElementTree.fromstring(raw)
    except ElementTree.ParseError as problem:
        raise BadInput("body", f"malformed XML: {problem}") from None
    fields: dict[str, str] = {}
    for child in root:
        if child.tag == "attributes":
            for attribute in child:
                fields[f"attribute[{attribute.tag}]"] = (attribute.text or "").strip()
        else:
            fields[child.tag] = (child.text or "").strip()
    return fields


def flatten_json(data: Any) -> dict[str, str]:
    """The fields of a JSON request object (``attribute`` as an object of code to value)."""
    if not isinstance(data, dict):
        raise BadInput("body", "a JSON object is expected")
    fields: dict[str, str] = {}
    for name, value in data.items():
        if name in ("attribute", "attributes") and isinstance(value, dict):
            for code, item in value.items():
                fields[f"attribute[{code}]"] = _scalar(f"attribute[{code}]", item)
        else:
            fields[str(name)] = _scalar(str(name), value)
    return fields


def _scalar(name: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None or isinstance(value, list | dict):
        raise BadInput(name, "a string or a number is expected")
    return str(value)


def parse_instant(field: str, text: str) -> datetime:
    """A W3C date-time (``2026-11-01T00:00:00Z``, ``...+03:30``; a bare date: Tehran midnight)."""
    try:
        at = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadInput(field, f"{text!r} is not an ISO 8601 date-time") from None
    if at.tzinfo is None:
        at = at.replace(tzinfo=TEHRAN)
    return at.astimezone(UTC)


def split_list(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


def codes_known(codes: Iterable[str]) -> None:
    for code in codes:
        if code not in CATALOGUE:
            raise BadInput("service_code", f"unknown service code {code!r}", status=404)
