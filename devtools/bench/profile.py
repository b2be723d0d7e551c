"""Where the worker's time goes: py-spy sampling a running process, summarised by function and
by package (self time: the frame on top of the stack; total time: anywhere on the stack)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^():]+)(?::\d+)?\)$")
SAMPLE_RATE = 100


@dataclass
class Profile:
    samples: int = 0
    self_by_function: Counter[str] = field(default_factory=Counter)
    total_by_function: Counter[str] = field(default_factory=Counter)
    self_by_package: Counter[str] = field(default_factory=Counter)

    def table(self, counter: Counter[str], top: int) -> list[str]:
        lines = ["| share of samples | samples | where |", "| ---: | ---: | --- |"]
        for name, count in counter.most_common(top):
            lines.append(f"| {100 * count / self.samples:.1f} % | {count} | `{name}` |")
        return lines


def py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


class Recorder:
    """``py-spy record -f raw`` attached to ``pid`` until :meth:`stop`."""

    def __init__(self, pid: int, output: Path) -> None:
        binary = py_spy()
        if binary is None:
            raise FileNotFoundError("py-spy is not installed")
        self.output = output
        self.log = output.with_suffix(".log")
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    binary,
                    "record",
                    "--pid",
                    str(pid),
                    "--rate",
                    str(SAMPLE_RATE),
                    "--nonblocking",
                    "--format",
                    "raw",
                    "--output",
                    str(output),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def stop(self) -> Profile | None:
        """Stop sampling (py-spy writes its file on SIGINT) and summarise it."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if not self.output.exists():
            return None
        return summarise(self.output.read_text(errors="replace"))


def _package(path: str) -> str:
    """A frame's file as a short package name: site-packages/<pkg>, the repo's top directory."""
    parts = Path(path).parts
    if "site-packages" in parts:
        return parts[parts.index("site-packages") + 1].removesuffix(".py")
    for top in ("samt124", "streams", "producers", "consumers", "schemas"):
        if top in parts:
            return f"{top}/ (samt124)"
    if "python3" in "".join(parts) or "lib" in parts:
        stem = Path(path).stem
        return f"stdlib {parts[-2] if parts[-2].startswith(('asyncio', 'json')) else stem}"
    return path


def summarise(raw: str) -> Profile:
    """Aggregate py-spy's raw (collapsed stacks) output."""
    profile = Profile()
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [FRAME.match(frame) for frame in stack.split(";")]
        named = [
            (m.group("function"), m.group("file")) for m in frames if m is not None
        ]  # thread and process entries carry no file
        if not named:
            continue
        profile.samples += count
        function, path = named[-1]
        profile.self_by_function[f"{function} ({_short(path)})"] += count
        profile.self_by_package[_package(path)] += count
        for name in {f"{f} ({_short(p)})" for f, p in named}:
            profile.total_by_function[name] += count
    return profile


def _short(path: str) -> str:
    parts = Path(path).parts
    if "site-packages" in parts:
        return "/".join(parts[parts.index("site-packages") + 1 :])
    for top in ("samt124", "streams", "producers", "consumers"):
        if top in parts:
            return "/".join(parts[parts.index(top) :])
    return "/".join(parts[-2:])


def report(profile: Profile | None, top: int = 15) -> list[str]:
    """Markdown: the top functions by self time and total time, and self time by package."""
    if profile is None or profile.samples == 0:
        return ["py-spy recorded no samples (is ptrace allowed here?)."]
    return [
        f"py-spy sampled the worker {profile.samples} times at {SAMPLE_RATE} Hz while it was"
        " busy (idle threads are not counted).",
        "",
        "Self time by package (the code on top of the stack):",
        "",
        *profile.table(profile.self_by_package, top),
        "",
        "Top functions by self time:",
        "",
        *profile.table(profile.self_by_function, top),
        "",
        "Top functions by total time (anywhere on the stack):",
        "",
        *profile.table(profile.total_by_function, top + 10),
        "",
    ]
