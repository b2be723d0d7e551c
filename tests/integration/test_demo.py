"""``samt124 demo`` end to end on the test broker: exit status, printed figures, the HTML page
as headless Chromium renders it, and nothing left running afterwards."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path

import pytest

from consumers.analytics.html_report import BACKLOG_BODIES
from samt124.settings import Settings
from tests.integration.conftest import Services, unique
from tests.integration.pipeline import REPO, env_for

DEMO_ARGS = ("--count", "2000", "--minutes", "0.3", "--seed", "7")
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@dataclass(frozen=True)
class DemoRun:
    settings: Settings
    result: subprocess.CompletedProcess[str]
    html: Path


@pytest.fixture(scope="module")
def demo(services: Services, tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """One short demo in its own home and topic namespace, on the shared test broker."""
    root = tmp_path_factory.mktemp("demo")
    settings = Settings(
        home=root / "home",
        cache=services.base.cache,
        kafka_bootstrap=services.base.bootstrap,
        topic_namespace=unique("t"),
        partitions=4,
    )
    html = root / "out" / "demo.html"
    result = subprocess.run(
        [sys.executable, "-m", "samt124.cli", "demo", *DEMO_ARGS, "--output", str(html)],
        env=env_for(settings),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=420,
        check=False,
    )
    return DemoRun(settings, result, html)


PROVINCE_LINE = re.compile(
    r"^\s+(?P<code>IR-\d\d) .+?\s{2,}(?P<requests>[\d,]+)\s+(?P<resolved>[\d,]+)\s+"
    r"(?P<on_time>[\d.]+|-)\s+(?P<open>[\d,]+)\s+(?P<past_resolution>[\d,]+)\s+"
    r"(?P<past_first_response>[\d,]+)\s+"
)


def province_lines(output: str) -> list[dict[str, str]]:
    """The rows of the printed by-province table."""
    section = output[output.index("By province") : output.index("Alborz (IR-30)")]
    return [
        found.groupdict()
        for line in section.splitlines()
        if (found := PROVINCE_LINE.match(line)) is not None
    ]


def number(text: str) -> int:
    return int(text.replace(",", ""))


@pytest.mark.timeout(480)
def test_demo_runs_and_prints_the_headline_reports(demo: DemoRun) -> None:
    output = demo.result.stdout
    assert demo.result.returncode == 0, output + demo.result.stderr
    assert re.search(r"\d{1,2} [A-Z][a-z]+ 14\d\d, \d\d:\d\d Tehran time", output)
    published = re.search(r"traffic: ([\d,]+) events published", output)
    assert published is not None
    assert number(published.group(1)) == 2000  # all of --count: the traffic ends by now
    backlog = re.search(r"([\d,]+) open requests\n", output)
    assert backlog is not None
    assert number(backlog.group(1)) > 0
    # each clock on its own line, named
    resolution = re.search(r"\n  ([\d,]+) past their resolution deadline \(most overdue", output)
    first = re.search(r"\n  ([\d,]+) past their first-response deadline without a response", output)
    assert resolution is not None
    assert first is not None
    assert re.search(r"resolution on time: (-|[\d.]+) % of [\d,]+ resolved requests", output)
    assert re.search(r"first response on time: (-|[\d.]+) %", output)
    rows = province_lines(output)
    assert len(rows) >= 20  # national traffic reaches most of the 31 provinces
    assert sum(number(row["requests"]) for row in rows) > 0
    assert sum(number(row["open"]) for row in rows) == number(backlog.group(1))
    assert sum(number(row["past_resolution"]) for row in rows) == number(resolution.group(1))
    assert sum(number(row["past_first_response"]) for row in rows) == number(first.group(1))
    assert "Khaneh Samt" in output
    namespace = demo.settings.topic_namespace
    for group in (f"{namespace}-worker", f"{namespace}-sink"):
        line = next(line for line in output.splitlines() if line.strip().startswith(group))
        assert line.split()[2] == "Stable"
        assert line.split()[4] == "0"  # caught up: no lag left
    assert f"HTML report: {demo.html}" in output
    assert demo.html.stat().st_size > 10_000
    assert re.search(
        r"dashboard: http://127\.0\.0\.1:\d+/ \(live while the pipeline runs\)", output
    )
    assert "the dashboard on what is stored now: `samt124 --home " in output
    for log in ("worker", "sink", "lag", "simulate", "dashboard"):
        assert (demo.settings.home / "demo" / f"{log}.log").exists()


def test_nothing_is_left_running(demo: DemoRun) -> None:
    home = str(demo.settings.home.resolve())
    namespace = demo.settings.topic_namespace
    left = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            environ = (entry / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue  # gone meanwhile, or not ours to read
        if home in cmdline or f"SAMT124_TOPIC_NAMESPACE={namespace}" in environ:
            left.append(f"{entry.name}: {cmdline}")
    assert demo.result.returncode == 0
    assert left == []


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess[str]:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is not installed (make system installs Debian's chromium as root)"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    return subprocess.run(
        [str(CHROMIUM), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.timeout(480)
def test_the_page_renders_its_charts_in_chromium(demo: DemoRun, tmp_path: Path) -> None:
    assert demo.result.returncode == 0, demo.result.stderr
    rendered = chromium("--dump-dom", demo.html.as_uri(), profile=tmp_path / "profile")
    dom = rendered.stdout
    assert rendered.returncode == 0, rendered.stderr[-2000:]
    assert 'id="volume-chart"' in dom
    provinces = [row for row in province_lines(demo.result.stdout) if number(row["requests"])]
    assert count_in(dom, "volume-chart", r'<rect class="bar"') == len(provinces)
    assert count_in(dom, "on-time-chart", r'<rect class="bar (good|fair|poor)"') >= 0
    assert 0 < count_in(dom, "backlog-chart", r'<g class="bar-row"') <= BACKLOG_BODIES + 1
    assert re.search(r'<polyline class="lag-line" data-group="[^"]+-worker"', dom)
    assert re.search(r'<table id="lag-table">', dom)
    cells = re.findall(r'<rect class="cell" data-province="(IR-\d\d)" data-week="([^"]+)"', dom)
    if cells:  # one cell per province and week with any breach
        assert len(cells) == len({p for p, _ in cells}) * len({w for _, w in cells})


def count_in(dom: str, element_id: str, pattern: str) -> int:
    """Matches of ``pattern`` inside the element ``id="element_id"`` (up to its </svg>)."""
    start = dom.index(f'id="{element_id}"')
    end = dom.find("</svg>", start)
    return len(re.findall(pattern, dom[start : end if end >= 0 else len(dom)]))


@pytest.mark.timeout(480)
def test_the_screenshot_is_not_blank(demo: DemoRun, tmp_path: Path) -> None:
    assert demo.result.returncode == 0, demo.result.stderr
    png = tmp_path / "demo.png"
    shot = chromium(
        f"--screenshot={png}",
        "--window-size=1280,2000",
        "--hide-scrollbars",
        demo.html.as_uri(),
        profile=tmp_path / "profile",
    )
    assert png.exists(), shot.stderr[-2000:]
    assert png.stat().st_size > 20_000
    width, height, rows = read_png(png.read_bytes())
    assert (width, height) == (1280, 2000)
    colours = {row[i : i + 3] for row in rows[::8] for i in range(0, len(row), 3 * 7)}
    assert len(colours) > 20  # text, bars in several colours, heat cells: not one flat colour
    assert any(row != rows[0] for row in rows[::50])


# ---------------------------------------------------------------- a small PNG reader


def read_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and the RGB rows of a non-interlaced 8-bit RGB or RGBA PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    position, idat = 8, b""
    width = height = colour_type = 0
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert (depth, interlace) == (8, 0), "only 8-bit non-interlaced PNGs"
            assert colour_type in (2, 6), "only RGB or RGBA PNGs"
        elif kind == b"IDAT":
            idat += body
        elif kind == b"IEND":
            break
    channels = 4 if colour_type == 6 else 3
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    previous = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        row = unfilter(
            raw[start], bytearray(raw[start + 1 : start + 1 + stride]), previous, channels
        )
        rgb = bytes(row) if channels == 3 else bytes(b for i, b in enumerate(row) if i % 4 != 3)
        rows.append(rgb)
        previous = row
    return width, height, rows


def unfilter(kind: int, row: bytearray, previous: bytearray, step: int) -> bytearray:
    """Undo one of PNG's five row filters (None, Sub, Up, Average, Paeth) in place."""
    if kind == 0:
        return row
    if kind == 2:
        return bytearray((a + b) & 0xFF for a, b in zip(row, previous, strict=True))
    for i in range(len(row)):
        left = row[i - step] if i >= step else 0
        up = previous[i]
        if kind == 1:
            row[i] = (row[i] + left) & 0xFF
        elif kind == 3:
            row[i] = (row[i] + (left + up) // 2) & 0xFF
        elif kind == 4:
            corner = previous[i - step] if i >= step else 0
            estimate = left + up - corner
            near_left, near_up, near_corner = (
                abs(estimate - left),
                abs(estimate - up),
                abs(estimate - corner),
            )
            if near_left <= near_up and near_left <= near_corner:
                predictor = left
            elif near_up <= near_corner:
                predictor = up
            else:
                predictor = corner
            row[i] = (row[i] + predictor) & 0xFF
        else:
            raise ValueError(f"unknown PNG filter {kind}")
    return row
