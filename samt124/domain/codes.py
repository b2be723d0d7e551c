"""Codes a person types (provinces, categories, groups, bodies): refused with the closest one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping


def closest(value: str, known: Iterable[str], names: Mapping[str, str] | None = None) -> str | None:
    """The known code nearest to ``value`` (case aside), or the code whose name (``names``:
    name -> code, e.g. ``Alborz`` -> ``IR-30``) is nearest, when one is near enough."""
    candidates = {code.upper(): code for code in known}
    candidates.update({name.upper(): code for name, code in (names or {}).items()})
    found = difflib.get_close_matches(value.strip().upper(), list(candidates), n=1, cutoff=0.6)
    return candidates[found[0]] if found else None


def unknown(
    kind: str, value: str, known: Iterable[str], names: Mapping[str, str] | None = None
) -> str:
    """``unknown province 'IR-99' (did you mean IR-29?)`` or, with no near code, the range."""
    codes = sorted(known)
    near = closest(value, codes, names)
    shown = value if len(value) <= 40 else value[:40] + "..."
    if near is not None:
        return f"unknown {kind} {shown!r} (did you mean {near}?)"
    return f"unknown {kind} {shown!r} (known: {codes[0]} ... {codes[-1]}, {len(codes)} in all)"
