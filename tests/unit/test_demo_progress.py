"""The demo's progress line reads the simulator's log: a figure once there is one, else None."""

from __future__ import annotations

from pathlib import Path

from devtools.demo import _published_so_far


def test_the_last_figure_the_simulator_wrote_is_read(tmp_path: Path) -> None:
    log = tmp_path / "simulate.log"
    log.write_text(
        "\rpublished 120 / 108,000 events (600/s)\rpublished 1,320 / 108,000 events (601/s)",
        encoding="utf-8",
    )
    assert _published_so_far(log) == 1_320


def test_no_figure_while_the_start_is_still_being_searched(tmp_path: Path) -> None:
    assert _published_so_far(tmp_path / "not-yet.log") is None
    log = tmp_path / "simulate.log"
    log.write_text("", encoding="utf-8")
    assert _published_so_far(log) is None
