"""The demo's report: figures merged from the report tables, the text summary, the HTML page."""

from __future__ import annotations

from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from consumers.analytics.html_report import (
    BACKLOG_BODIES,
    LagGroup,
    LagPoint,
    ReportData,
    Table,
    body_rows,
    build_html,
    headline,
    headline_text,
    province_rows,
    unit_of,
    week_label,
)
from samt124.domain.tehran_time import jalali_long
from samt124.domain.tehran_time import jalali_text as jalali

GENERATED = datetime(2025, 11, 11, 10, 30, tzinfo=UTC)  # 20 Aban 1404, 14:00 in Tehran


def sample(**changes: object) -> ReportData:
    reports = {
        "sla": Table.of(
            [
                "province",
                "requests",
                "resolved_requests",
                "resolved_on_time",
                "resolution_on_time_percent",
                "responded_on_time",
                "late_first_response",
                "first_response_breaches",
                "resolution_breaches",
                "operational_breaches",
            ],
            [
                ("IR-23", 400, 300, 270, 90.0, 240, 80, 80, 30, 2),
                ("IR-30", 100, 80, 56, 70.0, 60, 20, 20, 24, 3),
                ("IR-10", 200, 0, 0, 0.0, 0, 0, 0, 0, 0),
            ],
        ),
        "backlog": Table.of(
            [
                "province",
                "body_id",
                "open_requests",
                "past_first_response_deadline",
                "first_response_max_overdue_hours",
                "first_response_max_overdue_working_hours",
                "past_resolution_deadline",
                "resolution_max_overdue_hours",
                "resolution_max_overdue_working_hours",
            ],
            [
                ("IR-23", "samt-org:IR-23", 100, 40, 30.0, 12.0, 10, 50.5, 24.0),
                ("IR-30", "khaneh-samt:IR-30", 12, 6, 90.0, 40.0, 2, 8.0, 3.5),
                ("IR-30", "samt-org:IR-30", 8, 0, 0.0, 0.0, 0, 0.0, 0.0),
                ("IR-10", "samt-org:IR-10", 200, 3, 5.0, 2.0, 0, 0.0, 0.0),
                ("IR-10", "ministry:agriculture", 5, 1, 1.0, 0.5, 5, 72.25, 16.0),
            ],
        ),
        "durations": Table.of(
            [
                "province",
                "responded_requests",
                "response_p50_hours",
                "response_p90_hours",
                "resolved_requests",
                "resolution_p50_hours",
                "resolution_p90_hours",
            ],
            [("IR-23", 390, 1.5, 4.0, 300, 20.25, 55.0), ("IR-30", 90, 2.0, 5.0, 80, 30.0, 70.0)],
        ),
        "alborz": Table.of(
            [
                "period",
                "body_kind",
                "requests",
                "resolved_requests",
                "resolution_p50_hours",
                "resolution_p90_hours",
            ],
            [
                ("before", "SAMT_ORGANIZATION", 40, 35, 35.0, 80.0),
                ("after", "KHANEH_SAMT", 30, 25, 22.5, 60.0),
                ("after", "SAMT_ORGANIZATION", 30, 20, 33.0, 75.0),
            ],
        ),
        "heatmap": Table.of(
            ["province", "week", "breaches"],
            [
                ("IR-23", "1404-W33 from 1404-08-10", 4),
                ("IR-23", "1404-W34 from 1404-08-17", 8),
                ("IR-30", "1404-W34 from 1404-08-17", 2),
                ("IR-30", "1404-W35 from 1404-08-24", 1),
            ],
        ),
    }
    values: dict[str, object] = {
        "generated_at": GENERATED,
        "reports": reports,
        "published": 12_345,
        "publish_seconds": 180.0,
        "first_submitted": datetime(2025, 10, 29, 5, 0, tzinfo=UTC),
        "last_submitted": datetime(2025, 11, 11, 10, 0, tzinfo=UTC),
        "analytics": "chdb (embedded) at .samt124/chdb database samt124",
        "bootstrap": "127.0.0.1:9092",
        "namespace": "samt124",
        "lag": (
            LagGroup("samt124-worker", "OK", "Stable", 16, 0, 0, 0.0),
            LagGroup("samt124-sink", "OK", "Stable", 132, 0, 0, 0.0),
        ),
        "lag_series": (
            LagPoint(1000.0, "samt124-worker", 500),
            LagPoint(1005.0, "samt124-worker", 20),
            LagPoint(1000.0, "samt124-sink", 900),
            LagPoint(1005.0, "samt124-sink", 0),
        ),
    }
    values.update(changes)
    return ReportData(**values)  # type: ignore[arg-type]


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, {name: value or "" for name, value in attrs}))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def inside(self, element_id: str, tag: str, css: str | None = None) -> list[dict[str, str]]:
        """``tag`` elements after the element with ``element_id`` and before the next chart."""
        found: list[dict[str, str]] = []
        started = False
        for name, attrs in self.tags:
            if attrs.get("id") == element_id:
                started = True
                continue
            if started and name in ("svg", "table", "section") and "id" in attrs:
                break
            if started and name == tag and (css is None or css in attrs.get("class", "").split()):
                found.append(attrs)
        return found


def parsed(data: ReportData) -> Elements:
    elements = Elements()
    elements.feed(build_html(data))
    return elements


def test_province_rows_merge_the_reports() -> None:
    rows = {row.code: row for row in province_rows(sample())}
    assert set(rows) == {"IR-10", "IR-23", "IR-30"}
    alborz = rows["IR-30"]
    assert (alborz.name_en, alborz.name_fa) == ("Alborz", "البرز")
    assert (alborz.requests, alborz.resolved, alborz.on_time) == (100, 80, 56)
    assert alborz.on_time_percent == pytest.approx(70.0)
    # both bodies of the province; each clock counted on its own
    assert (alborz.open, alborz.past_resolution, alborz.past_first_response) == (20, 2, 6)
    assert (alborz.p50, alborz.p90) == (30.0, 70.0)
    isfahan = rows["IR-10"]
    assert isfahan.on_time_percent is None  # nothing resolved: no rate, not 0 %
    assert (isfahan.open, isfahan.past_resolution, isfahan.past_first_response) == (205, 5, 4)
    assert isfahan.p50 is None


def test_headline_adds_up_the_provinces() -> None:
    figures = headline(sample())
    assert (figures.requests, figures.resolved, figures.on_time) == (700, 380, 326)
    assert figures.on_time_percent == pytest.approx(326 / 380 * 100)
    assert (figures.open, figures.past_resolution, figures.past_first_response) == (325, 17, 50)
    assert figures.resolution_max_overdue_hours == 72.25
    # not the same request's: each its own max
    assert figures.resolution_max_overdue_working_hours == 24.0
    # the first-response clock's own figures, never mixed into the resolution ones
    assert figures.first_response_max_overdue_hours == 90.0
    assert figures.first_response_max_overdue_working_hours == 40.0
    assert figures.duration_unit == "h"


def test_bodies_are_ordered_by_backlog() -> None:
    assert [(row.body_id, row.open, row.breached) for row in body_rows(sample())] == [
        ("samt-org:IR-10", 200, 0),
        ("samt-org:IR-23", 100, 10),
        ("khaneh-samt:IR-30", 12, 2),
        ("samt-org:IR-30", 8, 0),
        ("ministry:agriculture", 5, 5),
    ]


def test_renamed_duration_columns_are_found_and_their_unit_shown() -> None:
    durations = Table.of(
        ["province", "resolution_p50_working_hours", "resolution_p90_working_hours"],
        [("IR-23", 7.5, 19.0)],
    )
    data = sample(reports={**sample().reports, "durations": durations})
    row = next(row for row in province_rows(data) if row.code == "IR-23")
    assert (row.p50, row.p90) == (7.5, 19.0)
    assert headline(data).duration_unit == "working h"
    assert "resolution times in working h" in headline_text(data)
    noted = sample(duration_note="hours are working hours of the answering province")
    assert "  (hours are working hours of the answering province)" in headline_text(noted)
    assert unit_of(None) == "h"


def test_dates_are_jalali_in_tehran_time() -> None:
    assert jalali(GENERATED) == "1404-08-20 14:00"
    assert jalali_long(GENERATED) == "20 Aban 1404, 14:00 Tehran time"
    assert week_label("1404-W34 from 1404-08-17") == ("W34", "08-17")
    assert week_label("1404-W05") == ("W5", "1404")
    assert week_label("140434") == ("W34", "1404")
    assert week_label("2025-11-10") == ("2025-11-10", "")


def test_text_summary_carries_the_figures() -> None:
    text = headline_text(sample(), html_path="reports/demo.html")
    assert "20 Aban 1404, 14:00 Tehran time" in text
    assert "325 open requests" in text
    assert (
        "17 past their resolution deadline (most overdue: 24.0 working hours, 72.2 h on the clock)"
        in text
    )
    assert (
        "50 past their first-response deadline without a response (most overdue: 40.0 working "
        "hours, 90.0 h on the clock)" in text
    )
    assert "resolution on time: 85.8 % of 380 resolved requests" in text
    assert "first response on time: 75.0 % (300 answered before the first-response" in text
    assert "1404-08-07 08:30 to 1404-08-20 13:30 Tehran time" in text
    lines = text.splitlines()
    alborz_line = next(line for line in lines if line.strip().startswith("IR-30 Alborz"))
    assert alborz_line.split()[2:9] == ["100", "80", "70.0", "20", "2", "6", "30.0"]
    assert any("after" in line and "Khaneh Samt" in line and "22.5" in line for line in lines)
    assert any("samt124-sink" in line and "Stable" in line for line in lines)
    assert lines[-1] == "HTML report: reports/demo.html"


def test_page_has_one_bar_per_province_and_body() -> None:
    page = parsed(sample())
    volume = page.inside("volume-chart", "rect", "bar")
    assert [bar["data-key"] for bar in volume] == ["IR-23", "IR-10", "IR-30"]  # largest first
    assert [bar["data-value"] for bar in volume] == ["400", "200", "100"]
    on_time = page.inside("on-time-chart", "rect", "bar")
    assert [bar["data-key"] for bar in on_time] == ["IR-30", "IR-23"]  # worst first
    assert on_time[0]["class"] == "bar poor"
    assert on_time[1]["class"] == "bar good"
    bodies = page.inside("backlog-chart", "g", "bar-row")
    assert len(bodies) == 5
    assert bodies[0]["data-key"] == "samt-org:IR-10"


def test_small_backlogs_share_one_bar() -> None:
    rows = [("IR-23", f"association:IR-{n:02d}", 100 - n, n % 3) for n in range(BACKLOG_BODIES + 4)]
    backlog = Table.of(["province", "body_id", "open_requests", "past_resolution_deadline"], rows)
    page = parsed(sample(reports={"backlog": backlog}))
    bars = page.inside("backlog-chart", "g", "bar-row")
    assert len(bars) == BACKLOG_BODIES + 1
    assert bars[-1]["data-key"] == "others:4"
    assert bars[-1]["data-open"] == str(
        sum(100 - n for n in range(BACKLOG_BODIES, BACKLOG_BODIES + 4))
    )
    assert "4 other bodies" in build_html(sample(reports={"backlog": backlog}))


def test_heatmap_has_a_cell_per_province_and_week() -> None:
    cells = parsed(sample()).inside("heatmap-chart", "rect", "cell")
    assert len(cells) == 2 * 3  # IR-23, IR-30 × weeks 33, 34, 35
    counts = {(cell["data-province"], cell["data-week"]): cell["data-count"] for cell in cells}
    assert counts[("IR-23", "1404-W34 from 1404-08-17")] == "8"
    assert counts[("IR-30", "1404-W33 from 1404-08-10")] == "0"
    assert float(next(c for c in cells if c["data-count"] == "8")["fill-opacity"]) == 1.0


def test_heatmap_joins_a_year_column_to_week_numbers() -> None:
    heatmap = Table.of(["province", "year", "week", "breaches"], [("IR-30", 1404, 7, 3)])
    cells = parsed(sample(reports={"heatmap": heatmap})).inside("heatmap-chart", "rect", "cell")
    assert [(c["data-week"], c["data-count"]) for c in cells] == [("1404-W07", "3")]


def test_lag_chart_has_a_line_per_group_and_the_final_table() -> None:
    page = parsed(sample())
    lines = page.inside("lag-chart", "polyline", "lag-line")
    assert sorted(line["data-group"] for line in lines) == ["samt124-sink", "samt124-worker"]
    assert all(len(line["points"].split()) == 2 for line in lines)
    assert len(page.inside("lag-table", "tr")) == 1 + 2


def test_page_is_self_contained_and_labelled_in_both_languages() -> None:
    page = build_html(sample())
    elements = parsed(sample())
    for tag, attrs in elements.tags:
        assert tag not in ("script", "link", "img", "iframe"), tag
        for name in ("src", "href"):
            assert not attrs.get(name, "").startswith(("http:", "https:", "//")), attrs
    assert "@import" not in page
    assert "url(" not in page
    text = "".join(elements.text)
    assert "حجم درخواست‌ها به تفکیک استان" in text
    assert "Volume by province" in text
    assert any(
        attrs.get("dir") == "rtl" and attrs.get("lang") == "fa" for _, attrs in elements.tags
    )
    assert "Alborz" in text
    assert "البرز" in text


def test_values_are_escaped() -> None:
    backlog = Table.of(
        ["province", "body_id", "open_requests", "past_resolution_deadline"],
        [("IR-23", '<script>alert("x")</script>', 3, 1)],
    )
    page = build_html(sample(reports={**sample().reports, "backlog": backlog}))
    assert "<script>" not in page
    assert "&lt;script&gt;" in page


def test_empty_data_still_makes_a_page() -> None:
    data = ReportData(generated_at=GENERATED, reports={})
    page = build_html(data)
    assert page.startswith("<!DOCTYPE html>")
    assert page.rstrip().endswith("</html>")
    assert "No data." in page
    assert "No SLA breaches." in page
    assert "No lag samples." in page
    text = headline_text(data)
    assert "0 open requests" in text
    assert "no requests" in text
