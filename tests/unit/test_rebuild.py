"""A worker's local store belongs to the request changelog it was built from."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.rebuild import STORE_ID, check_store, store_verdict


@pytest.mark.parametrize(
    ("recorded", "current", "has_store", "verdict"),
    [
        ("a", "a", True, "keep"),
        (None, None, True, "keep"),  # no changelog yet: nothing to judge by
        ("a", None, True, "keep"),
        (None, "a", True, "adopt"),  # a store from before the records
        (None, "a", False, "adopt"),
        ("a", "b", False, "adopt"),  # the changelog was made again, and there is no store
        ("a", "b", True, "discard"),  # the store holds states the changelog no longer has
    ],
)
def test_the_verdict_on_a_local_store(
    recorded: str | None, current: str | None, has_store: bool, verdict: str
) -> None:
    assert store_verdict(recorded, current, has_store) == verdict


def test_a_store_built_from_another_changelog_is_discarded_and_the_new_one_recorded(
    tmp_path: Path,
) -> None:
    datadir = tmp_path / "worker" / "w1"
    assert check_store(datadir, "id-1") == "adopt"
    assert (datadir / STORE_ID).read_text() == "id-1\n"
    (datadir / "v1" / "tables").mkdir(parents=True)
    (datadir / "v1" / "tables" / "requests-0.db").write_bytes(b"state")
    (datadir / "sla-timers.marshal").write_bytes(b"timers")
    assert check_store(datadir, "id-1") == "keep"
    assert (datadir / "sla-timers.marshal").exists()
    assert check_store(datadir, "id-2") == "discard"
    assert sorted(p.name for p in datadir.iterdir()) == [STORE_ID]
    assert (datadir / STORE_ID).read_text() == "id-2\n"
    assert check_store(datadir, "id-2") == "keep"


def test_a_store_from_before_the_records_is_kept_and_adopts_the_changelog(tmp_path: Path) -> None:
    datadir = tmp_path / "w"
    datadir.mkdir()
    (datadir / "sla-timers.marshal").write_bytes(b"timers")
    assert check_store(datadir, "id-1") == "adopt"
    assert (datadir / "sla-timers.marshal").exists()
    assert (datadir / STORE_ID).read_text() == "id-1\n"
