"""``samt124 dashboard``: usage mistakes in one line (exit 2), ClickHouse away said (exit 1), and
a page that needs nothing from elsewhere."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from tests.unit.test_cli_mistakes import assert_usage_mistake, nowhere, run

__all__ = ["nowhere"]  # its autouse fixture: services where nothing listens

MISTAKES = [
    (["dashboard", "--listen", "nowhere"], ["argument --listen", "HOST:PORT"]),
    (["dashboard", "--listen", ":8125"], ["argument --listen", "HOST:PORT"]),
    (["dashboard", "--listen", "127.0.0.1:99999"], ["argument --listen", "1..65535"]),
    (["dashboard", "--refresh", "0"], ["argument --refresh", "more than zero seconds"]),
]


@pytest.mark.parametrize(("argv", "said"), MISTAKES, ids=[" ".join(a) for a, _ in MISTAKES])
def test_a_mistake_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], said: list[str]
) -> None:
    status, _, err = run(capsys, *argv)
    assert_usage_mistake(status, err, *said)


def test_clickhouse_away_is_a_cause_and_a_remedy(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(capsys, "dashboard", "--listen", "127.0.0.1:18125")
    assert status == 1, err
    assert "Traceback" not in err
    cause, remedy = err.strip().splitlines()
    assert cause.startswith("samt124 dashboard: cannot reach ClickHouse"), cause
    assert remedy.startswith("  "), remedy
    assert out == ""


def test_the_page_fetches_nothing_from_elsewhere() -> None:
    static = files("dashboard").joinpath("static")
    names = sorted(entry.name for entry in static.iterdir())
    assert names == ["dashboard.css", "dashboard.js", "index.html"]
    for name in names:
        text = static.joinpath(name).read_text(encoding="utf-8")
        urls = set(re.findall(r"(?:https?:)?//[\w.-]+[^\s\"'`)]*", text))
        assert urls <= {"http://www.w3.org/2000/svg"}, (name, urls)
        assert "@import" not in text
        assert "url(" not in text
    page = static.joinpath("index.html").read_text(encoding="utf-8")
    loaded = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert loaded == ["data:,", "/static/dashboard.css", "/static/dashboard.js"]
    assert '<html lang="fa" dir="rtl">' in page
