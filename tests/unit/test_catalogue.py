"""The reference data: provinces and the category catalogue."""

from __future__ import annotations

from typing import get_args

from samt124.domain.catalogue import CATALOGUE, GROUPS, in_group
from samt124.domain.events import Priority
from samt124.domain.provinces import PROVINCES


def test_the_31_provinces_with_current_iso_codes() -> None:
    assert list(PROVINCES) == [f"IR-{number:02d}" for number in range(31)]
    assert PROVINCES["IR-30"].name_en == "Alborz"
    assert PROVINCES["IR-30"].name_fa == "البرز"
    assert PROVINCES["IR-23"].name_en == "Tehran"
    assert PROVINCES["IR-10"].name_en == "Isfahan"
    assert PROVINCES["IR-09"].name_en == "Khorasan Razavi"
    assert len({province.name_fa for province in PROVINCES.values()}) == 31


def test_industrial_provinces_carry_more_traffic() -> None:
    weights = {code: province.weight for code, province in PROVINCES.items()}
    assert all(weight > 0 for weight in weights.values())
    heaviest = sorted(weights, key=weights.__getitem__, reverse=True)[:8]
    assert {"IR-23", "IR-10", "IR-09", "IR-30"} <= set(heaviest)


def test_catalogue_entries_are_complete() -> None:
    assert 20 <= len(CATALOGUE) <= 40
    for code, category in CATALOGUE.items():
        assert category.code == code
        assert category.group in GROUPS
        assert category.priority in get_args(Priority)
        assert category.name_fa.strip()
        assert category.name_en.strip()
    assert all(in_group(group) for group in GROUPS)


def test_catalogue_covers_the_124_remit() -> None:
    names = {category.name_fa for category in CATALOGUE.values()}
    for expected in ("احتکار", "کم‌فروشی", "گران‌فروشی", "تقلب و کالای تقلبی", "نامه درخواست"):
        assert expected in names
    assert in_group("industrial_units")
    assert in_group("guild_licensing")
    assert in_group("correspondence")
