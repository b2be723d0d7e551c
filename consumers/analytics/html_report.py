"""The demo's report: the headline figures as text for the terminal and as one HTML page.

Pure functions over plain values: :class:`ReportData` holds the report tables as ClickHouse
returned them (column names and rows, see :mod:`consumers.analytics.reports`), the final
consumer lag and the lag sampled during the run. :func:`headline_text` formats the figures for
a terminal; :func:`build_html` writes a self-contained page (inline CSS and SVG, no script, no
network resource) with a chart per question: volume by province, on-time rate by province,
backlog by body, SLA breaches by province and week, and consumer lag.

Columns are found by name, with a fallback on the words they contain (``resolution`` and
``p50``), so a report that gains a column or renames its unit still draws; the unit shown
follows the column name (``..._working_hours`` reads "working h").
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from samt124.domain.provinces import PROVINCES
from samt124.domain.tehran_time import jalali_long, jalali_text

BODY_KINDS = {
    "SAMT_ORGANIZATION": ("سازمان صمت", "SAMT organization"),
    "KHANEH_SAMT": ("خانه صمت", "Khaneh Samt"),
    "ASSOCIATION": ("تشکل", "Association"),
    "OTHER_MINISTRY": ("وزارتخانه دیگر", "Other ministry"),
}
BACKLOG_BODIES = 25  # bodies drawn one by one; the rest share a bar
OTHERS = "others:"
MINISTRIES = {"agriculture": "وزارت جهاد کشاورزی", "health": "وزارت بهداشت"}
PERIODS = {"before": ("پیش از تفاهم‌نامه", "before the MoU"), "after": ("پس از", "after")}


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Table:
    """One report as ClickHouse returned it."""

    columns: tuple[str, ...]
    rows: tuple[tuple[object, ...], ...]

    @classmethod
    def of(cls, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Table:
        return cls(tuple(columns), tuple(tuple(row) for row in rows))

    def find(self, *names: str, words: Sequence[str] = ()) -> str | None:
        """The first of ``names`` present, else the first column containing all ``words``."""
        for name in names:
            if name in self.columns:
                return name
        if words:
            for column in self.columns:
                if all(word in column for word in words):
                    return column
        return None

    def records(self) -> list[dict[str, object]]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


EMPTY = Table((), ())
# The backlog report's counts of open requests past each clock's deadline.
PAST_RESOLUTION = "past_resolution_deadline"
PAST_FIRST_RESPONSE = "past_first_response_deadline"


@dataclass(frozen=True)
class LagGroup:
    """A consumer group's final reading."""

    group: str
    status: str
    state: str
    partitions: int
    sum_lag: int
    max_lag: int
    max_lag_seconds: float


@dataclass(frozen=True)
class LagPoint:
    """The summed lag of one group at one moment (seconds since the epoch)."""

    at: float
    group: str
    sum_lag: int


@dataclass(frozen=True)
class ReportData:
    """Everything the demo shows, gathered once the pipeline has caught up."""

    generated_at: datetime
    reports: Mapping[str, Table]  # by report name: sla, backlog, durations, alborz, heatmap
    published: int = 0
    publish_seconds: float = 0.0
    first_submitted: datetime | None = None
    last_submitted: datetime | None = None
    analytics: str = ""
    bootstrap: str = ""
    namespace: str = ""
    lag: tuple[LagGroup, ...] = ()
    lag_series: tuple[LagPoint, ...] = field(default=())
    duration_note: str = ""  # how the reports count hours (wall clock or working time)

    def report(self, name: str) -> Table:
        return self.reports.get(name, EMPTY)


# ---------------------------------------------------------------- figures


@dataclass(frozen=True)
class ProvinceRow:
    code: str
    name_fa: str
    name_en: str
    requests: int
    resolved: int
    on_time: int
    on_time_percent: float | None  # None: nothing resolved yet
    open: int
    past_resolution: int  # open past the resolution deadline
    past_first_response: int  # open, no response yet, past the first-response deadline
    p50: float | None
    p90: float | None


@dataclass(frozen=True)
class BodyRow:
    body_id: str
    open: int
    breached: int  # open past the resolution deadline


@dataclass(frozen=True)
class Headline:
    requests: int
    resolved: int
    on_time: int
    open: int
    past_resolution: int
    past_first_response: int
    # the most overdue open request by each clock: on the clock, in the province's working time
    resolution_max_overdue_hours: float | None
    resolution_max_overdue_working_hours: float | None
    first_response_max_overdue_hours: float | None
    first_response_max_overdue_working_hours: float | None
    duration_unit: str
    responded_on_time: int = 0  # first response before its deadline
    late_first_response: int = 0  # first response after its deadline, or none by then

    @property
    def on_time_percent(self) -> float | None:
        """Resolved before the resolution deadline, of the resolved requests."""
        return self.on_time / self.resolved * 100 if self.resolved else None

    @property
    def first_response_on_time_percent(self) -> float | None:
        decided = self.responded_on_time + self.late_first_response
        return self.responded_on_time / decided * 100 if decided else None


def _int(value: object) -> int:
    if value is None or value == "":
        return 0
    try:
        return int(float(str(value)))
    except ValueError:
        return 0


def _float(value: object) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(str(value))
    except ValueError:
        return None
    return None if math.isnan(number) else number


def unit_of(column: str | None) -> str:
    """``resolution_p50_working_hours`` -> ``working h``; ``..._hours`` -> ``h``."""
    if column is None:
        return "h"
    if "working" in column:
        return "working h"
    if column.endswith("_days"):
        return "days"
    return "h"


def _resolution_columns(table: Table) -> tuple[str | None, str | None]:
    p50 = table.find("resolution_p50_hours", words=("resolution", "p50"))
    p90 = table.find("resolution_p90_hours", words=("resolution", "p90"))
    return p50, p90


def province_rows(data: ReportData) -> list[ProvinceRow]:
    """One row per province found in any report, in ISO code order."""
    sla = {str(r.get("province")): r for r in data.report("sla").records()}
    durations_table = data.report("durations")
    key = durations_table.find("province") or (
        durations_table.columns[0] if durations_table.columns else ""
    )
    durations = {str(r.get(key)): r for r in durations_table.records()}
    p50_column, p90_column = _resolution_columns(durations_table)
    backlog: dict[str, tuple[int, int, int]] = {}
    for record in data.report("backlog").records():
        code = str(record.get("province"))
        opened, resolution, first = backlog.get(code, (0, 0, 0))
        backlog[code] = (
            opened + _int(record.get("open_requests")),
            resolution + _int(record.get(PAST_RESOLUTION)),
            first + _int(record.get(PAST_FIRST_RESPONSE)),
        )
    rows = []
    for code in sorted(set(sla) | set(durations) | set(backlog)):
        province = PROVINCES.get(code)
        figures = sla.get(code, {})
        resolved = _int(figures.get("resolved_requests"))
        on_time = _int(figures.get("resolved_on_time"))
        timing = durations.get(code, {})
        opened, resolution, first = backlog.get(code, (0, 0, 0))
        rows.append(
            ProvinceRow(
                code=code,
                name_fa=province.name_fa if province else "",
                name_en=province.name_en if province else code,
                requests=_int(figures.get("requests")),
                resolved=resolved,
                on_time=on_time,
                on_time_percent=on_time / resolved * 100 if resolved else None,
                open=opened,
                past_resolution=resolution,
                past_first_response=first,
                p50=_float(timing.get(p50_column)) if p50_column else None,
                p90=_float(timing.get(p90_column)) if p90_column else None,
            )
        )
    return rows


def body_rows(data: ReportData) -> list[BodyRow]:
    """Open requests by body (summed over provinces), the largest backlog first."""
    bodies: dict[str, tuple[int, int]] = {}
    for record in data.report("backlog").records():
        body = str(record.get("body_id"))
        opened, breached = bodies.get(body, (0, 0))
        bodies[body] = (
            opened + _int(record.get("open_requests")),
            breached + _int(record.get(PAST_RESOLUTION)),
        )
    rows = [BodyRow(body, opened, breached) for body, (opened, breached) in bodies.items()]
    return sorted(rows, key=lambda row: (-row.open, row.body_id))


def headline(data: ReportData) -> Headline:
    rows = province_rows(data)
    records = data.report("backlog").records()

    def most(clock: str, column: str) -> float | None:
        late = [r for r in records if _int(r.get(f"past_{clock}_deadline")) > 0]
        found = [n for r in late if (n := _float(r.get(f"{clock}_{column}"))) is not None]
        return max(found) if found else None

    p50_column, _ = _resolution_columns(data.report("durations"))
    sla = data.report("sla").records()
    return Headline(
        requests=sum(row.requests for row in rows),
        resolved=sum(row.resolved for row in rows),
        on_time=sum(row.on_time for row in rows),
        open=sum(row.open for row in rows),
        past_resolution=sum(row.past_resolution for row in rows),
        past_first_response=sum(row.past_first_response for row in rows),
        resolution_max_overdue_hours=most("resolution", "max_overdue_hours"),
        resolution_max_overdue_working_hours=most("resolution", "max_overdue_working_hours"),
        first_response_max_overdue_hours=most("first_response", "max_overdue_hours"),
        first_response_max_overdue_working_hours=most(
            "first_response", "max_overdue_working_hours"
        ),
        duration_unit=unit_of(p50_column),
        responded_on_time=sum(_int(r.get("responded_on_time")) for r in sla),
        late_first_response=sum(_int(r.get("late_first_response")) for r in sla),
    )


def heat_cells(data: ReportData) -> tuple[list[str], list[str], dict[tuple[str, str], int]]:
    """Provinces (rows), weeks (columns) and the breach count of each cell present."""
    counts: dict[tuple[str, str], int] = {}
    for record in data.report("heatmap").records():
        cell = (str(record.get("province")), _week_of(record))
        counts[cell] = counts.get(cell, 0) + _int(record.get("breaches"))
    provinces = sorted({province for province, _ in counts})
    weeks = sorted({week for _, week in counts})
    return provinces, weeks, counts


def _week_of(record: Mapping[str, object]) -> str:
    """The week label of a heatmap row (a ``year`` column and a week number are joined)."""
    week = str(record.get("week"))
    year = record.get("year")
    if year is not None and week.isdigit():
        return f"{year}-W{int(week):02d}"
    return week


WEEK = re.compile(r"^(?P<year>\d{4})-W(?P<week>\d{1,2})(?: from (?P<start>[\d-]+))?")


def week_label(week: str) -> tuple[str, str]:
    """A week's column header, two short lines: ``1404-W32 from 1404-05-04`` -> ``W32``,
    ``05-04``; ``140432`` (year * 100 + week) -> ``W32``, ``1404``; anything else as it is."""
    found = WEEK.match(week)
    if found:
        start = found.group("start")
        return f"W{int(found.group('week'))}", start[5:] if start else found.group("year")
    if week.isdigit() and len(week) == 6:
        return f"W{int(week[4:])}", week[:4]
    return week, ""


# ---------------------------------------------------------------- dates


def _span(data: ReportData) -> str:
    if data.first_submitted is None or data.last_submitted is None:
        return "no requests"
    days = (data.last_submitted - data.first_submitted).total_seconds() / 86400
    return (
        f"{jalali_text(data.first_submitted)} to {jalali_text(data.last_submitted)} Tehran time "
        f"({days:.1f} days)"
    )


# ---------------------------------------------------------------- text


def _number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}"


def _aligned(header: Sequence[str], rows: Sequence[Sequence[str]], right: set[int]) -> list[str]:
    widths = [max([len(header[i]), *(len(row[i]) for row in rows)]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ).rstrip()

    return [line(header), line(["-" * width for width in widths]), *(line(r) for r in rows)]


def headline_text(data: ReportData, html_path: str | None = None) -> str:
    """The figures a reader looks for first, as plain text (Jalali dates, Tehran time)."""
    figures = headline(data)
    unit = figures.duration_unit
    out = [
        f"samt124 report, {jalali_long(data.generated_at)}",
        f"  traffic: {data.published:,} events published in {data.publish_seconds:.0f} s; "
        f"requests submitted {_span(data)}",
        "",
        "Backlog",
        f"  {figures.open:,} open requests",
        f"  {figures.past_resolution:,} past their resolution deadline (most overdue: "
        f"{_number(figures.resolution_max_overdue_working_hours)} working hours, "
        f"{_number(figures.resolution_max_overdue_hours)} h on the clock)",
        f"  {figures.past_first_response:,} past their first-response deadline without a "
        f"response (most overdue: {_number(figures.first_response_max_overdue_working_hours)} "
        f"working hours, {_number(figures.first_response_max_overdue_hours)} h on the clock)",
    ]
    bodies = body_rows(data)[:5]
    if bodies:
        out.append(
            "  largest: "
            + ", ".join(
                f"{_body_label(body.body_id)[1]} {body.open:,} "
                f"({body.breached:,} past the resolution deadline)"
                for body in bodies
            )
        )
    out += [
        "",
        "SLA",
        f"  resolution on time: {_number(figures.on_time_percent)} % of {figures.resolved:,} "
        f"resolved requests ({figures.on_time:,} resolved before the resolution deadline), "
        f"{figures.requests:,} requests in all",
        f"  first response on time: {_number(figures.first_response_on_time_percent)} % "
        f"({figures.responded_on_time:,} answered before the first-response deadline, "
        f"{figures.late_first_response:,} after it or not yet)",
        "",
        f"By province (resolution times in {unit}, p50 / p90)",
    ]
    header = [
        "province",
        "requests",
        "resolved",
        "on-time %",
        "open",
        "past resolution",
        "past first response",
        "p50",
        "p90",
        "",
    ]
    rows = [
        [
            f"{row.code} {row.name_en}",
            f"{row.requests:,}",
            f"{row.resolved:,}",
            _number(row.on_time_percent),
            f"{row.open:,}",
            f"{row.past_resolution:,}",
            f"{row.past_first_response:,}",
            _number(row.p50),
            _number(row.p90),
            row.name_fa,
        ]
        for row in province_rows(data)
    ]
    out += ["  " + line for line in _aligned(header, rows, right={1, 2, 3, 4, 5, 6, 7, 8})]
    if data.duration_note:
        out.append(f"  ({data.duration_note})")
    out += ["", "Alborz (IR-30): Khaneh Samt vs the SAMT organization"]
    out += ["  " + line for line in _alborz_lines(data.report("alborz"))]
    out += ["", "Consumer lag"]
    lag_header = ["group", "status", "state", "partitions", "lag", "max lag s"]
    lag_rows = [
        [
            group.group,
            group.status,
            group.state,
            str(group.partitions),
            f"{group.sum_lag:,}",
            f"{group.max_lag_seconds:.1f}",
        ]
        for group in data.lag
    ]
    out += ["  " + line for line in _aligned(lag_header, lag_rows, right={3, 4, 5})]
    if html_path:
        out += ["", f"HTML report: {html_path}"]
    return "\n".join(out)


def _kind(record: Mapping[str, object]) -> tuple[str, str]:
    """The Persian and English names of a record's ``body_kind``."""
    kind = str(record.get("body_kind", ""))
    return BODY_KINDS.get(kind, ("", kind))


def _alborz_lines(table: Table) -> list[str]:
    p50, p90 = _resolution_columns(table)
    unit = unit_of(p50)
    header = ["period", "body", "requests", "resolved", f"p50 {unit}", f"p90 {unit}"]
    rows = [
        [
            str(record.get("period", "")),
            _kind(record)[1],
            f"{_int(record.get('requests')):,}",
            f"{_int(record.get('resolved_requests')):,}",
            _number(_float(record.get(p50)) if p50 else None),
            _number(_float(record.get(p90)) if p90 else None),
        ]
        for record in table.records()
    ]
    if not rows:
        return ["(no Alborz requests)"]
    return _aligned(header, rows, right={2, 3, 4, 5})


# ---------------------------------------------------------------- HTML

CSS = """
body { font-family: Vazirmatn, Tahoma, "DejaVu Sans", Arial, sans-serif; margin: 24px auto;
       max-width: 1180px; color: #1d2733; background: #fff; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; margin: 28px 0 6px; border-bottom: 1px solid #d5dbe3; padding-bottom: 4px; }
.fa { font-weight: 600; }
.meta { color: #5b6876; font-size: 13px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 16px 0; }
.card { border: 1px solid #d5dbe3; border-radius: 6px; padding: 10px 14px; min-width: 150px; }
.card b { display: block; font-size: 22px; }
.card span { font-size: 12px; color: #5b6876; }
svg text { font-size: 11px; fill: #1d2733; }
svg .axis { stroke: #b8c2cc; }
svg .bar { fill: #3b6ea8; }
svg .bar.good { fill: #2e8b57; } svg .bar.fair { fill: #d39b23; } svg .bar.poor { fill: #c0392b; }
svg .late { fill: #c0392b; } svg .timely { fill: #3b6ea8; }
table { border-collapse: collapse; font-size: 12px; margin: 6px 0; }
th, td { border: 1px solid #d5dbe3; padding: 3px 7px; text-align: right; }
th { background: #f1f4f7; }
td.text, th.text { text-align: left; }
.note { font-size: 12px; color: #5b6876; }
"""


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _title(fa: str, en: str) -> str:
    return f'<span class="fa" lang="fa" dir="rtl">{_e(fa)}</span> · {_e(en)}'


def _province_label(code: str) -> tuple[str, str]:
    province = PROVINCES.get(code)
    return (province.name_fa, province.name_en) if province else ("", code)


@dataclass(frozen=True)
class Bar:
    key: str
    label_fa: str
    label_en: str
    value: float
    text: str
    css: str = "bar"


def hbar_svg(element_id: str, bars: Sequence[Bar], maximum: float | None = None) -> str:
    """A horizontal bar chart: Persian and English labels, one ``rect.bar`` per bar."""
    if not bars:
        return f'<p id="{_e(element_id)}" class="note">No data.</p>'
    row, label_fa, bar_x, width = 18, 130, 370, 1100
    span = width - bar_x - 140
    top = maximum if maximum is not None else max(bar.value for bar in bars)
    top = top if top > 0 else 1.0
    height = row * len(bars) + 10
    parts = [
        f'<svg id="{_e(element_id)}" class="chart" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f'<line class="axis" x1="{bar_x}" y1="0" x2="{bar_x}" y2="{height - 6}"/>',
    ]
    for i, bar in enumerate(bars):
        y = 4 + i * row
        length = max(bar.value, 0.0) / top * span
        parts.append(
            f'<text x="{label_fa}" y="{y + 12}" text-anchor="end" lang="fa">{_e(bar.label_fa)}'
            f'</text><text x="{bar_x - 8}" y="{y + 12}" text-anchor="end">{_e(bar.label_en)}</text>'
            f'<rect class="{_e(bar.css)}" data-key="{_e(bar.key)}" data-value="{bar.value:g}" '
            f'x="{bar_x}" y="{y + 2}" width="{length:.1f}" height="{row - 5}">'
            f"<title>{_e(bar.label_en)}: {_e(bar.text)}</title></rect>"
            f'<text x="{bar_x + length + 5:.1f}" y="{y + 12}">{_e(bar.text)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def volume_svg(rows: Sequence[ProvinceRow]) -> str:
    bars = [
        Bar(row.code, row.name_fa, f"{row.name_en} ({row.code})", row.requests, f"{row.requests:,}")
        for row in sorted(rows, key=lambda row: (-row.requests, row.code))
        if row.requests > 0
    ]
    return hbar_svg("volume-chart", bars)


def _grade(percent: float) -> str:
    if percent >= 90:
        return "bar good"
    if percent >= 75:
        return "bar fair"
    return "bar poor"


def on_time_svg(rows: Sequence[ProvinceRow]) -> str:
    bars = [
        Bar(
            row.code,
            row.name_fa,
            f"{row.name_en} ({row.code})",
            row.on_time_percent,
            f"{row.on_time_percent:.1f} % of {row.resolved:,}",
            _grade(row.on_time_percent),
        )
        for row in sorted(rows, key=lambda row: (row.on_time_percent or 0.0, row.code))
        if row.on_time_percent is not None
    ]
    return hbar_svg("on-time-chart", bars, maximum=100.0)


def backlog_svg(rows: Sequence[BodyRow]) -> str:
    """Open requests by body, the part past its deadline in red: one ``g.bar-row`` per body
    for the :data:`BACKLOG_BODIES` largest backlogs, and one for all the others together."""
    if not rows:
        return '<p id="backlog-chart" class="note">No open requests.</p>'
    bodies = list(rows[:BACKLOG_BODIES])
    rest = rows[BACKLOG_BODIES:]
    if rest:
        bodies.append(
            BodyRow(
                f"{OTHERS}{len(rest)}",
                sum(body.open for body in rest),
                sum(body.breached for body in rest),
            )
        )
    row, fa_x, bar_x, width = 18, 190, 420, 1100
    span = width - bar_x - 150
    top = max(body.open for body in bodies) or 1
    height = row * len(bodies) + 10
    parts = [
        f'<svg id="backlog-chart" class="chart" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f'<line class="axis" x1="{bar_x}" y1="0" x2="{bar_x}" y2="{height - 6}"/>',
    ]
    for i, body in enumerate(bodies):
        y = 4 + i * row
        late = body.breached / top * span
        timely = max(body.open - body.breached, 0) / top * span
        fa, en = _body_label(body.body_id)
        parts.append(
            f'<g class="bar-row" data-key="{_e(body.body_id)}" data-open="{body.open}" '
            f'data-breached="{body.breached}">'
            f'<text x="{fa_x}" y="{y + 12}" text-anchor="end" lang="fa">{_e(fa)}</text>'
            f'<text x="{bar_x - 8}" y="{y + 12}" text-anchor="end">{_e(en)}</text>'
            f'<rect class="late" x="{bar_x}" y="{y + 2}" width="{late:.1f}" height="{row - 5}">'
            f"<title>{_e(body.body_id)}: {body.breached:,} past the resolution deadline"
            "</title></rect>"
            f'<rect class="timely" x="{bar_x + late:.1f}" y="{y + 2}" width="{timely:.1f}" '
            f'height="{row - 5}"><title>{_e(body.body_id)}: {body.open - body.breached:,} '
            f"within the resolution deadline</title></rect>"
            f'<text x="{bar_x + late + timely + 5:.1f}" y="{y + 12}">{body.open:,} open, '
            f"{body.breached:,} past resolution deadline</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _body_label(body_id: str) -> tuple[str, str]:
    """``samt-org:IR-30`` -> (Persian, English) names for the chart."""
    if body_id.startswith(OTHERS):
        return "سایر مراجع", f"{body_id.removeprefix(OTHERS)} other bodies"
    kind, _, where = body_id.partition(":")
    fa_name, en_name = _province_label(where) if where.startswith("IR-") else ("", where)
    if kind == "samt-org":
        return f"سازمان صمت {fa_name}".strip(), f"SAMT org., {en_name}"
    if kind == "khaneh-samt":
        return f"خانه صمت {fa_name}".strip(), f"Khaneh Samt, {en_name}"
    if kind == "association":
        return f"تشکل {fa_name}".strip(), f"Association, {en_name}"
    if kind == "ministry":
        return MINISTRIES.get(where, ""), f"Ministry of {where.title()}"
    return "", body_id


def heatmap_svg(data: ReportData) -> str:
    """SLA breaches by province (rows) and Jalali week (columns): one ``rect.cell`` per cell."""
    provinces, weeks, counts = heat_cells(data)
    if not provinces:
        return '<p id="heatmap-chart" class="note">No SLA breaches.</p>'
    cell_w, cell_h, fa_x, left, top_margin = max(30, min(60, 640 // len(weeks))), 16, 130, 370, 38
    width = left + cell_w * len(weeks) + 20
    height = top_margin + cell_h * len(provinces) + 10
    peak = max(counts.values()) or 1
    parts = [
        f'<svg id="heatmap-chart" class="chart" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
    ]
    for j, week in enumerate(weeks):
        x = left + j * cell_w + cell_w / 2
        top, bottom = week_label(week)
        parts.append(
            f'<text x="{x:.1f}" y="14" text-anchor="middle">{_e(top)}</text>'
            f'<text x="{x:.1f}" y="28" text-anchor="middle">{_e(bottom)}</text>'
        )
    for i, code in enumerate(provinces):
        y = top_margin + i * cell_h
        fa, en = _province_label(code)
        parts.append(
            f'<text x="{fa_x}" y="{y + 12}" text-anchor="end" lang="fa">{_e(fa)}</text>'
            f'<text x="{left - 8}" y="{y + 12}" text-anchor="end">{_e(en)} ({_e(code)})</text>'
        )
        for j, week in enumerate(weeks):
            count = counts.get((code, week), 0)
            shade = 0.06 + 0.94 * count / peak if count else 0.0
            parts.append(
                f'<rect class="cell" data-province="{_e(code)}" data-week="{_e(week)}" '
                f'data-count="{count}" x="{left + j * cell_w + 1}" y="{y + 1}" '
                f'width="{cell_w - 2}" height="{cell_h - 2}" fill="#c0392b" '
                f'fill-opacity="{shade:.3f}" stroke="#e3e7ec">'
                f"<title>{_e(en)}, {_e(week)}: {count:,} breaches</title></rect>"
            )
    parts.append("</svg>")
    return "".join(parts)


LAG_COLOURS = ("#3b6ea8", "#c0392b", "#2e8b57", "#8e44ad", "#d39b23")


def lag_svg(points: Sequence[LagPoint]) -> str:
    """Summed lag over the run, one ``polyline.lag-line`` per consumer group."""
    if not points:
        return '<p id="lag-chart" class="note">No lag samples.</p>'
    width, height, left, bottom, top_margin = 920, 220, 70, 30, 10
    start = min(point.at for point in points)
    end = max(point.at for point in points)
    duration = max(end - start, 1.0)
    peak = max(1, *(point.sum_lag for point in points))
    plot_w, plot_h = width - left - 180, height - bottom - top_margin
    parts = [
        f'<svg id="lag-chart" class="chart" xmlns="http://www.w3.org/2000/svg" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f'<line class="axis" x1="{left}" y1="{top_margin}" x2="{left}" y2="{height - bottom}"/>',
        f'<line class="axis" x1="{left}" y1="{height - bottom}" x2="{left + plot_w}" '
        f'y2="{height - bottom}"/>',
        f'<text x="{left - 6}" y="{top_margin + 10}" text-anchor="end">{peak:,}</text>',
        f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end">0</text>',
        f'<text x="{left}" y="{height - 8}">0 s</text>',
        f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end">{duration:.0f} s</text>',
    ]
    groups = sorted({point.group for point in points})
    for index, group in enumerate(groups):
        colour = LAG_COLOURS[index % len(LAG_COLOURS)]
        coordinates = " ".join(
            f"{left + (point.at - start) / duration * plot_w:.1f},"
            f"{height - bottom - point.sum_lag / peak * plot_h:.1f}"
            for point in sorted(points, key=lambda point: point.at)
            if point.group == group
        )
        parts.append(
            f'<polyline class="lag-line" data-group="{_e(group)}" fill="none" '
            f'stroke="{colour}" stroke-width="2" points="{coordinates}"/>'
            f'<rect x="{left + plot_w + 16}" y="{top_margin + index * 18}" width="10" '
            f'height="10" fill="{colour}"/>'
            f'<text x="{left + plot_w + 32}" y="{top_margin + 9 + index * 18}">{_e(group)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _html_table(
    element_id: str, header: Sequence[str], rows: Sequence[Sequence[str]], text: set[int]
) -> str:
    def cell(tag: str, i: int, value: str) -> str:
        css = ' class="text"' if i in text else ""
        return f"<{tag}{css}>{_e(value)}</{tag}>"

    head = "".join(cell("th", i, name) for i, name in enumerate(header))
    body = "".join(
        "<tr>" + "".join(cell("td", i, value) for i, value in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f'<table id="{_e(element_id)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody>' + (
        "</table>"
    )


def _card(value: str, fa: str, en: str) -> str:
    return (
        f'<div class="card"><b>{_e(value)}</b><span lang="fa" dir="rtl">{_e(fa)}</span><br>'
        f"<span>{_e(en)}</span></div>"
    )


PROVINCE_COLUMNS = (
    "province",
    "استان",
    "requests",
    "resolved",
    "on-time %",
    "open",
    "past resolution deadline",
    "past first-response deadline",
)
ALBORZ_COLUMNS = ("period", "دوره", "body", "مرجع", "requests", "resolved")


def build_html(data: ReportData) -> str:
    """The whole page, self-contained (inline CSS and SVG only)."""
    figures = headline(data)
    provinces = province_rows(data)
    unit = figures.duration_unit
    cards = "".join(
        [
            _card(f"{figures.requests:,}", "درخواست‌ها", "requests"),
            _card(f"{figures.resolved:,}", "رسیدگی‌شده", "resolved"),
            _card(
                f"{_number(figures.on_time_percent)} %",
                "رسیدگی به‌موقع",
                "resolved before the resolution deadline",
            ),
            _card(
                f"{_number(figures.first_response_on_time_percent)} %",
                "اولین پاسخ به‌موقع",
                "first response before its deadline",
            ),
            _card(f"{figures.open:,}", "باز", "open (backlog)"),
            _card(
                f"{figures.past_resolution:,}",
                "باز و گذشته از مهلت رسیدگی",
                "open past resolution deadline",
            ),
            _card(
                f"{figures.past_first_response:,}",
                "باز و گذشته از مهلت اولین پاسخ",
                "open past first-response deadline",
            ),
            _card(f"{data.published:,}", "رویداد منتشرشده", "events published"),
        ]
    )
    province_table = _html_table(
        "province-table",
        [*PROVINCE_COLUMNS, f"p50 {unit}", f"p90 {unit}"],
        [
            [
                f"{row.code} {row.name_en}",
                row.name_fa,
                f"{row.requests:,}",
                f"{row.resolved:,}",
                _number(row.on_time_percent),
                f"{row.open:,}",
                f"{row.past_resolution:,}",
                f"{row.past_first_response:,}",
                _number(row.p50),
                _number(row.p90),
            ]
            for row in provinces
        ],
        text={0},
    )
    alborz = data.report("alborz")
    p50, p90 = _resolution_columns(alborz)
    alborz_table = _html_table(
        "alborz-table",
        [*ALBORZ_COLUMNS, f"p50 {unit_of(p50)}", f"p90 {unit_of(p90)}"],
        [
            [
                str(record.get("period", "")),
                PERIODS.get(str(record.get("period")), ("", ""))[0],
                _kind(record)[1],
                _kind(record)[0],
                f"{_int(record.get('requests')):,}",
                f"{_int(record.get('resolved_requests')):,}",
                _number(_float(record.get(p50)) if p50 else None),
                _number(_float(record.get(p90)) if p90 else None),
            ]
            for record in alborz.records()
        ],
        text={0, 2},
    )
    lag_table = _html_table(
        "lag-table",
        ["group", "status", "state", "partitions", "lag (messages)", "max lag (s)"],
        [
            [
                group.group,
                group.status,
                group.state,
                str(group.partitions),
                f"{group.sum_lag:,}",
                f"{group.max_lag_seconds:.1f}",
            ]
            for group in data.lag
        ],
        text={0, 1, 2},
    )
    sections = [
        ("حجم درخواست‌ها به تفکیک استان", "Volume by province", volume_svg(provinces), ""),
        (
            "نرخ رسیدگی به‌موقع به تفکیک استان",
            "On-time resolution rate by province (worst first)",
            on_time_svg(provinces),
            "Share of resolved requests resolved before their resolution deadline.",
        ),
        (
            "درخواست‌های باز به تفکیک مرجع",
            "Backlog by body",
            backlog_svg(body_rows(data)),
            "Red: open past the resolution deadline; blue: open within it.",
        ),
        (
            "نقشه حرارتی تخلف از مهلت",
            "SLA breaches by province and Jalali week",
            heatmap_svg(data),
            "Every clock (first response, resolution, operational) that passed its deadline "
            "before it stopped, by the week of that deadline, as of the report's instant.",
        ),
        (
            "زمان رسیدگی و نرخ به‌موقع به تفکیک استان",
            f"Resolution time (p50 / p90, {unit}) and on-time rate by province",
            province_table,
            data.duration_note,
        ),
        (
            "البرز: خانه صمت و سازمان صمت",
            "Alborz (IR-30): Khaneh Samt vs the SAMT organization",
            alborz_table,
            "Before and after the first referral to Khaneh Samt found in the data.",
        ),
        (
            "تاخیر مصرف‌کننده‌ها",
            "Consumer lag: summed lag during the run, and the final reading",
            lag_svg(data.lag_series) + lag_table,
            "",
        ),
    ]
    body = "".join(
        f"<section><h2>{_title(fa, en)}</h2>"
        + (f'<p class="note">{_e(note)}</p>' if note else "")
        + f"{content}</section>"
        for fa, en, content, note in sections
    )
    meta = (
        f"Generated {jalali_long(data.generated_at)} "
        f"({data.generated_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC). "
        f"Requests submitted {_span(data)}. "
        f"{data.published:,} events published in {data.publish_seconds:.0f} s to "
        f"{data.namespace or 'samt124'}.intake at {data.bootstrap or '-'}; "
        f"analytics: {data.analytics or '-'}."
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        "<title>samt124: 124 requests report</title>"
        f"<style>{CSS}</style></head><body>"
        f"<h1>{_title('گزارش سامانه ۱۲۴ وزارت صمت', 'SAMT 124 requests report')}</h1>"
        f'<p class="meta">{_e(meta)}</p>'
        f'<div class="cards" id="headline">{cards}</div>'
        f"{body}</body></html>\n"
    )
