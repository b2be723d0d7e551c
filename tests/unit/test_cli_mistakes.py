"""Every subcommand answers a usage mistake with one line naming the argument, and exit 2.

The commands run in this process (``samt124.cli.main``) against addresses where nothing
listens: a command that got past its checks would stop with "cannot reach" and exit 1, so an
exit 2 also shows that the mistake was found before anything connected or was published.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from samt124 import cli
from samt124.domain.provinces import PROVINCES
from tests.samples import submitted_line

NOWHERE_KAFKA = "127.0.0.1:1"
NOWHERE_CLICKHOUSE = "clickhouse://default:@127.0.0.1:2/x"
EVENT = submitted_line("req-cli-1")


@pytest.fixture(autouse=True)
def nowhere(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Services at addresses where nothing listens; a home and a working directory of its own."""
    work = tmp_path_factory.mktemp("cli")
    monkeypatch.chdir(work)
    for name in ("SAMT124_DEBUG", "SAMT124_CONNECT_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SAMT124_HOME", str(work / "home"))
    monkeypatch.setenv("SAMT124_KAFKA_BOOTSTRAP", NOWHERE_KAFKA)
    monkeypatch.setenv("SAMT124_CLICKHOUSE_URL", NOWHERE_CLICKHOUSE)
    (work / "good.jsonl").write_text(json.dumps(EVENT, ensure_ascii=False) + "\n", "utf-8")
    (work / "latin1.jsonl").write_bytes(b'{"subject": "\xe9t\xe9"}\n')
    return work


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def assert_usage_mistake(status: int, err: str, *said: str) -> None:
    assert "Traceback" not in err, err
    assert status == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    (line,) = lines
    assert line.startswith("samt124"), line
    for words in said:
        assert words in line, line


# (argv, words the one line must hold)
MISTAKES: list[tuple[list[str], list[str]]] = [
    (["publish", "/nonexistent.jsonl"], ["argument file", "no such file: /nonexistent.jsonl"]),
    (["publish", "."], ["argument file", "is a directory"]),
    (["publish", "latin1.jsonl"], ["argument file", "cannot read latin1.jsonl: not UTF-8 text"]),
    (
        ["publish", "good.jsonl", "--reject-file", "/nonexistent/dir/rejects.jsonl"],
        ["argument --reject-file", "no directory /nonexistent/dir"],
    ),
    (["report", "sla", "--since", "1405-13-40"], ["argument --since", "no month 13"]),
    (
        ["report", "sla", "--since", "2026-02-30", "--calendar", "gregorian"],
        ["argument --since", "month 2 of 2026 has no day 30"],
    ),
    (["report", "sla", "--since", "1403-12-31"], ["argument --since", "has no day 31"]),
    (["report", "sla", "--since", "yesterday"], ["argument --since", "expected YYYY-MM-DD"]),
    (["report", "backlog", "--as-of", "1405-13-01"], ["argument --as-of", "no month 13"]),
    (
        ["report", "backlog", "--as-of", "1405-09-08 25:00"],
        ["argument --as-of", "expected a Jalali date and time"],
    ),
    (["report", "sla", "--as-of", "tomorrow"], ["argument --as-of", "not an ISO 8601 time"]),
    (
        ["report", "volume", "--province", "IR-99"],
        ["argument --province", "unknown province 'IR-99'", "did you mean"],
    ),
    (
        ["report", "volume", "--province", "IR-30' OR '1'='1"],
        ["argument --province", "unknown province"],
    ),
    (["report", "volume", "--province", "Alborz"], ["did you mean IR-30?"]),
    (["report", "nonsense"], ["argument name", "invalid choice"]),
    (["report", "sla", "--by", "colour"], ["argument --by", "invalid choice"]),
    (["simulate", "--count", "-5"], ["argument --count", "must be 1 or more, got -5"]),
    (["simulate", "--count", "many"], ["argument --count", "expected a whole number"]),
    (["simulate", "--rate", "-1"], ["argument --rate", "0 (as fast as possible) or more"]),
    (["simulate", "--rate", "nan"], ["argument --rate"]),
    (["simulate", "--requests-per-day", "0"], ["argument --requests-per-day"]),
    (["simulate", "--seed", "-1"], ["argument --seed"]),
    (["simulate", "--start", "tomorrow"], ["argument --start", "not an ISO 8601 time"]),
    (["simulate", "--output", "/nonexistent/dir/x.jsonl"], ["argument --output"]),
    (["sink", "--max-batch", "0"], ["argument --max-batch"]),
    (["sink", "--max-wait", "-1"], ["argument --max-wait"]),
    (["sink", "--until-idle", "0"], ["argument --until-idle"]),
    (["lag", "--window", "0"], ["argument --window", "more than zero seconds"]),
    (["lag", "--watch", "-2"], ["argument --watch"]),
    (["lag", "--serve", "nowhere"], ["argument --serve", "HOST:PORT"]),
    (["lag", "--serve", "0.0.0.0:99999"], ["argument --serve", "1..65535"]),
    (["worker", "--web-port", "70000"], ["argument --web-port", "1..65535"]),
    (["verify", "--since", "last week"], ["argument --since", "not an ISO 8601 time"]),
    (
        ["verify", "--since", "2026-11-29T08:00", "--until", "2026-11-28T08:00"],
        ["argument --until", "is not after --since"],
    ),
    (["rules", "check", "/nonexistent.json"], ["cannot read /nonexistent.json"]),
    (["rules", "check"], ["required: file"]),
    (["schemas"], ["required: ACTION"]),
    (["nonsense"], ["invalid choice: 'nonsense'"]),
    ([], ["required: COMMAND"]),
    (["simulate", "--bootstrap", "127.0.0.1:9092"], ["unrecognized arguments: --bootstrap"]),
]


@pytest.mark.parametrize(("argv", "said"), MISTAKES, ids=[" ".join(a) for a, _ in MISTAKES])
def test_a_known_mistake_is_one_line_naming_it_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], said: list[str]
) -> None:
    status, _, err = run(capsys, *argv)
    assert_usage_mistake(status, err, *said)


def test_a_bad_setting_is_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAMT124_PARTITIONS", "many")
    assert_usage_mistake(*run(capsys, "lag")[::2], "SAMT124_PARTITIONS")
    monkeypatch.delenv("SAMT124_PARTITIONS")
    monkeypatch.setenv("SAMT124_CLICKHOUSE_URL", "postgres://x")
    assert_usage_mistake(*run(capsys, "sql", "SELECT 1")[::2], "SAMT124_CLICKHOUSE_URL")
    monkeypatch.setenv("SAMT124_CLICKHOUSE_URL", "clickhouse://u:secret@127.0.0.1:2,:3/x")
    status, err = run(capsys, "sink")[::2]
    assert_usage_mistake(status, err, "':3' in the ClickHouse URL is not a server")
    assert "secret" not in err
    replicas = "clickhouse://u:secret@127.0.0.1:2,127.0.0.1:3/x"
    monkeypatch.setenv("SAMT124_CLICKHOUSE_URL", replicas)
    assert_usage_mistake(*run(capsys, "sink")[::2], "SAMT124_CLICKHOUSE_CLUSTER")
    status, err = run(capsys, "init", "--cluster", "samt124")[::2]  # a cluster: it connects
    assert status == 1, err
    assert "cannot reach Kafka" in err


def test_debug_shows_the_traceback_of_a_mistake(capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run(capsys, "--debug", "report", "sla", "--since", "1405-13-40")
    assert status == 2
    assert "Traceback" in err
    assert err.strip().splitlines()[-1].endswith("there is no month 13")


def test_a_command_past_its_checks_says_it_cannot_reach_kafka(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, err = run(capsys, "publish", "good.jsonl")
    assert status == 1, err
    assert "Traceback" not in err
    cause, remedy = err.strip().splitlines()
    assert cause == "samt124 publish: cannot reach Kafka at 127.0.0.1:1: connection refused"
    assert "SAMT124_KAFKA_BOOTSTRAP" in remedy
    assert out == ""


# ---------------------------------------------------------------- generated mistakes


def _not_a_date(text: str) -> bool:
    try:
        date.fromisoformat(text)
    except ValueError:
        return True
    return False


DATE_LIKE = re.compile(r"\d+[-/]\d+[-/]\d+")
IMPOSSIBLE_DAYS = st.one_of(
    # a month that no calendar has
    st.tuples(st.integers(1, 2999), st.integers(13, 99) | st.just(0), st.integers(1, 31)).map(
        lambda t: f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}"
    ),
    # a day no month has
    st.tuples(st.integers(1, 2999), st.integers(1, 12), st.integers(32, 99) | st.just(0)).map(
        lambda t: f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}"
    ),
    st.text(max_size=12).filter(
        lambda s: s.strip() and not s.startswith("-") and not DATE_LIKE.fullmatch(s.strip())
    ),
)
NOT_PROVINCES = st.text(min_size=1, max_size=30).filter(
    lambda s: s not in PROVINCES and not s.startswith("-")
)
NOT_POSITIVE = st.integers(max_value=0).map(str)
NOT_NUMBERS = st.text(min_size=1, max_size=10).filter(
    lambda s: not s.startswith("-") and not _is_number(s)
)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


GENERATED = st.one_of(
    IMPOSSIBLE_DAYS.map(lambda d: ["report", "sla", "--since", d]),
    IMPOSSIBLE_DAYS.filter(_not_a_date).map(
        lambda d: ["report", "durations", "--calendar", "gregorian", "--since", d]
    ),
    NOT_PROVINCES.map(lambda p: ["report", "volume", "--province", p]),
    NOT_PROVINCES.map(lambda p: ["report", "sla", "--province", "IR-30", "--province", p]),
    (NOT_POSITIVE | NOT_NUMBERS).map(lambda n: ["simulate", "--count", n]),
    st.floats(max_value=-1e-9).map(lambda n: ["simulate", "--rate", f"{n}"]),
    (NOT_POSITIVE | NOT_NUMBERS).map(lambda n: ["sink", "--max-batch", n]),
    st.floats(max_value=0).map(lambda n: ["lag", "--window", f"{n}"]),
    (st.integers(max_value=0) | st.integers(min_value=65536)).map(
        lambda n: ["worker", "--web-port", str(n)]
    ),
    st.text(min_size=1, max_size=20)
    .filter(lambda s: not s.startswith("-") and not Path(s).exists() and "\x00" not in s)
    .map(lambda name: ["publish", f"missing-{name}.jsonl"]),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(argv=GENERATED)
def test_a_generated_mistake_is_one_line_and_exit_2(argv: list[str]) -> None:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(argv)
    assert_usage_mistake(status, err.getvalue(), "argument ")
    assert out.getvalue() == ""


HOLD = """
import sys, time
from pathlib import Path
from streams.identity import HomeLock
HomeLock.acquire(Path(sys.argv[1]), "w-1")
print("locked", flush=True)
time.sleep(60)
"""


def test_a_worker_whose_identity_is_taken_says_what_to_do(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, nowhere: Path
) -> None:
    import subprocess
    import sys

    from streams.identity import LOCK_FD

    monkeypatch.delenv(LOCK_FD, raising=False)
    monkeypatch.setenv("SAMT124_WORKER_ID", "w-1")
    home = nowhere / "home"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(home)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        status, _, err = run(capsys, "worker")
    finally:
        holder.kill()
        holder.wait()
    assert status == 1, err
    cause, remedy = err.strip().splitlines()
    assert cause.startswith("samt124 worker: another worker with the id 'w-1' already runs")
    assert remedy.strip().startswith("stop it first")
    assert "SAMT124_WORKER_ID" in remedy


# ---------------------------------------------------------------- any argv at all

SAFE = {  # commands and their options; none of them starts a process or writes a file here
    "publish": ["good.jsonl", "--reject-file"],
    "simulate": ["--count", "--seed", "--rate", "--start", "--recent", "--requests-per-day"],
    "report": [
        "volume",
        "sla",
        "--format",
        "--calendar",
        "--province",
        "--since",
        "--by",
        "--as-of",
    ],
    "sql": ["SELECT 1", "--format", "--write"],
    "lag": ["--group", "--json", "--window", "--serve", "--record", "--watch"],
    "verify": ["--since", "--until", "--json"],
    "sink": ["--max-batch", "--max-wait", "--until-idle"],
    "init": [],
    "rules": ["check", "--kind"],
}
TOKENS = st.one_of(
    st.text(max_size=12),
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["IR-30", "IR-99", "1404-02-31", "2026-02-29", "jalali", "table", "-", "--"]),
)


@st.composite
def any_argv(draw: st.DrawFn) -> list[str]:
    command = draw(st.sampled_from(sorted(SAFE)))
    vocabulary = st.sampled_from(SAFE[command]) if SAFE[command] else TOKENS
    return [command, *draw(st.lists(st.one_of(vocabulary, TOKENS), max_size=6))]


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(argv=any_argv())
def test_any_argv_ends_in_a_clear_line_and_a_known_exit_status(argv: list[str]) -> None:
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = cli.main(argv)
    said = err.getvalue()
    assert "Traceback" not in said, said
    assert "unexpected" not in said, said
    assert status in (0, 1, 2), said
    lines = said.strip().splitlines()
    if status == 2:
        assert len(lines) == 1, said
    if status == 1 and argv[0] not in ("publish", "rules"):  # their problems: one a line
        cause, _ = lines
        assert "cannot reach" in cause, said
