"""Measured figures and their rendering into ``benchmarks/RESULTS.md``."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Figure:
    """One measured number, with what it is and how it compares."""

    label: str
    value: float | None  # None: not measured (the note says why)
    unit: str
    note: str = ""


@dataclass
class Section:
    """The outcome of one measurement: figures side by side with their baselines."""

    name: str  # the --only name
    title: str
    method: str  # how it was measured, precisely
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    error: str | None = None

    def add(self, label: str, value: float | None, unit: str, note: str = "") -> float | None:
        self.figures.append(Figure(label, value, unit, note))
        return value

    def ratio(self, label: str, numerator: float | None, denominator: float | None) -> None:
        """A ratio of two figures of the same run (``None`` when either is missing)."""
        value = numerator / denominator if numerator and denominator else None
        self.figures.append(Figure(label, value, "×", "same run"))


def number(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit == "×":
        return f"{value:.3f}" if value < 1 else f"{value:.2f}"
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3f}"


def render(sections: list[Section], machine: list[tuple[str, str]], command: str, date: str) -> str:
    lines = [
        "# samt124 benchmarks",
        "",
        "Written by `samt124 bench`; rerun it to refresh. Every ratio below divides two figures",
        "measured in the same run, on the same private broker, so the machine's load affects both.",
        "",
        f"- date: {date}",
        f"- command: `{command}`",
        "",
        "## Machine",
        "",
        "| | |",
        "| --- | --- |",
        *(f"| {name} | {value} |" for name, value in machine),
        "",
        "## Summary",
        "",
        "| measurement | figure | value | unit |",
        "| --- | --- | ---: | --- |",
    ]
    for section in sections:
        for figure in section.figures:
            lines.append(
                f"| {section.name} | {figure.label} | {number(figure.value, figure.unit)} |"
                f" {figure.unit} |"
            )
    for section in sections:
        lines += ["", f"## {section.title}", "", section.method, ""]
        if section.error:
            lines += [f"**Not measured:** {section.error}", ""]
        if section.figures:
            lines += ["| figure | value | unit | note |", "| --- | ---: | --- | --- |"]
            lines += [
                f"| {f.label} | {number(f.value, f.unit)} | {f.unit} | {f.note} |"
                for f in section.figures
            ]
            lines.append("")
        lines += section.notes
    return "\n".join(lines).rstrip() + "\n"
