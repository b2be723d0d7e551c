"""The 124 service API under load: POST requests, GET a request, a province's work-queue page,
beside the framework's own floor (a constant endpoint of the same app), in one run."""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from devtools.bench import harness, loadgen
from devtools.bench.results import Section
from devtools.bench.worker_cost import cpu_seconds
from samt124.settings import Settings

CONCURRENCY = 32  # connections of the load generator, one request in flight on each
POST_RATE = 1_000.0  # requests/s offered on a schedule: the figure, "sustained"
PACED_CONNECTIONS = 64  # enough that a free connection waits for the schedule, not the reverse
GENERATORS = 1  # load generator processes (one uses about 40 µs of CPU per request here)
OPEN311 = "/open311/v2"
REFERRAL_CLIENTS = 8  # read-your-write: clients that POST, then GET until the referral shows
REFERRAL_POLL = 0.02  # s between those GETs: the resolution of the figure
REFERRAL_TARGET_MS = 2_000.0
REFERRAL_GIVE_UP = 60.0  # s: a request not referred by then is counted, not waited for
OPEN_REQUESTS = 100_000  # nationally, for the work-queue page of the busiest province
FORM = {
    "service_code": "MKT-OVERCHARGE",
    "description": "گران‌فروشی در فروشگاه",
    "attribute[province]": "IR-23",
    "attribute[national_id]": "10101010101",
    "first_name": "Ali",
    "last_name": "Rezaei",
}


@dataclass
class Load:
    """What one load loop saw: latencies (ms) of the answers, their statuses, their bodies."""

    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    bodies: list[Any] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def p(self, fraction: float) -> float | None:
        return harness.percentile(self.latencies, fraction) if self.latencies else None


async def _referrals(url: str, seconds: float, auth: dict[str, str]) -> tuple[Load, int]:
    """Read-your-write: clients that POST a request, then GET it every :data:`REFERRAL_POLL`
    seconds until ``agency_responsible`` shows; the latency is from the 201 to that GET's answer.
    Also how many of those first GETs did not find the request at all (should be none)."""
    import httpx

    load = Load()
    unseen = 0
    limits = httpx.Limits(max_connections=REFERRAL_CLIENTS * 2)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        end = time.monotonic() + seconds

        async def one() -> None:
            nonlocal unseen
            while time.monotonic() < end:
                answer = await client.post("/open311/v2/requests.json", data=FORM, headers=auth)
                load.statuses[answer.status_code] += 1
                if answer.status_code != 201:
                    continue
                created = time.perf_counter()
                request_id = answer.json()[0]["service_request_id"]
                first = True
                while True:
                    got = await client.get(f"/open311/v2/requests/{request_id}.json", headers=auth)
                    if first and got.status_code != 200:
                        unseen += 1
                    first = False
                    if got.status_code == 200 and got.json()[0]["agency_responsible"]:
                        load.latencies.append((time.perf_counter() - created) * 1000)
                        break
                    if time.perf_counter() - created > REFERRAL_GIVE_UP:
                        load.statuses[0] += 1  # counted apart: not referred in time
                        break
                    await asyncio.sleep(REFERRAL_POLL)

        started = time.monotonic()
        await asyncio.gather(*(one() for _ in range(REFERRAL_CLIENTS)))
        load.seconds = time.monotonic() - started
    return load, unseen


def _follower(url: str) -> dict[str, float]:
    """What following the worker has cost the API so far (its /health): records, CPU seconds."""
    import httpx

    stats = httpx.get(url + "/health", timeout=30).json().get("follower") or {}
    return {"records": float(stats.get("records", 0)), "cpu": float(stats.get("cpu_seconds", 0))}


def open_requests(count: int, now: datetime) -> list[Any]:
    """``count`` submissions spread over the provinces as 124's traffic is, none acted on."""
    from samt124.domain.catalogue import CATALOGUE
    from samt124.domain.events import Requester, RequestSubmitted
    from samt124.domain.provinces import PROVINCES

    rng = random.Random(124)
    provinces = list(PROVINCES)
    weights = [PROVINCES[p].weight for p in provinces]
    codes = list(CATALOGUE)
    out = []
    for _ in range(count):
        at = now - timedelta(minutes=rng.uniform(10, 3 * 24 * 60))
        out.append(
            RequestSubmitted(
                event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                request_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                occurred_at=at,
                recorded_at=at,
                source="bench-preload",
                channel="PHONE_124",
                requester=Requester(national_id="10101010101", name="شرکت آزمون"),
                category=rng.choice(codes),
                province=rng.choices(provinces, weights)[0],
                subject="درخواست",
                body="شرح درخواست",
                priority="NORMAL",
            )
        )
    return out


def measure_api(
    base: Settings, server_url: str | None, work: Path, open_count: int, seconds: float
) -> Section:
    import httpx

    from api.keys import KeyStore
    from producers.publisher import Publisher
    from samt124.contract import wire
    from samt124.domain.routing import referral_bodies
    from samt124.kafka.reader import read_topics
    from samt124.kafka.topics import Topics

    section = Section(
        "api",
        "The 124 service API (`samt124 api`)",
        f"The worker, the sink and `samt124 api` run as child processes on the benchmark's broker."
        f" {open_count:,} open requests are published nationally first (straight to the intake,"
        f" spread over the provinces by their weight) and the API's view waits for all of them."
        f" Then, from a load generator in {GENERATORS} process{'es' if GENERATORS > 1 else ''}"
        " of its own (`devtools/bench/loadgen.py`: raw HTTP/1.1 on asyncio streams, no client"
        " library),"
        f" {CONCURRENCY} keep-alive connections with one request in flight on each, each for"
        f" {seconds:.0f} s: `GET /bare` (a constant from the same FastAPI app: the framework's"
        " floor), `POST /open311/v2/requests.json` (an Open311 form; a"
        " RequestSubmitted published to the intake and confirmed by the broker before the"
        " answer) as fast as it is answered, then the same offered at a fixed"
        f" {POST_RATE:,.0f}/s ({PACED_CONNECTIONS} connections; each request's latency from its"
        " time on the schedule, so a server that falls behind shows it),"
        " `GET /open311/v2/requests/{id}.json` of the requests just posted, and the work"
        " queue of Tehran's SAMT organization (`GET /api/v1/queue?page_size=50`, the busiest"
        " province, IR-23) by its body key. Latency is from send to the whole answer read; the API"
        " process's CPU time in each phase (from /proc, all its threads) per answer is what a"
        " request costs the server, less sensitive than the rates to the machine's other load."
        " Every 201/202 answered is then looked for on the intake topic by event id (the token)."
        f" Read-your-write: {REFERRAL_CLIENTS} clients each POST a request, then GET it every"
        f" {REFERRAL_POLL * 1000:.0f} ms until it shows its `agency_responsible` (the worker's"
        " referral, followed by the API), for the same time, once on the quiet pipeline before"
        " the preload and once after the other phases (the worker then still works off the"
        " preload's SLA facts); the figure is from the 201 to that GET's answer (target:"
        f" {REFERRAL_TARGET_MS / 1000:.0f} s). The follower (the API's"
        " thread that reads the worker's states and the intake) reports its own CPU time: its"
        " share of the measured phases' wall time is what it takes from the HTTP handlers.",
    )
    settings = harness.namespace(base, "api")
    if server_url is not None:
        database = f"bench_{settings.topic_namespace}"
        settings = settings.model_copy(
            update={"clickhouse_url": f"{server_url.rsplit('/', 1)[0]}/{database}"}
        )
    harness.topics_ready(settings)
    harness.run(settings, "init", log=work / "api-init.log")
    store = KeyStore(settings.api_keys_path)
    portal = store.add("bench-portal", "publisher")[1]
    tehran = store.add("bench-tehran", "body", body="samt-org:IR-23")[1]
    port = harness.free_port()
    url = f"http://127.0.0.1:{port}"
    worker = harness.start(settings, "worker", log=work / "api-worker.log")
    sink = harness.start(settings, "sink", log=work / "api-sink.log")
    api = harness.start(settings, "api", "--listen", f"127.0.0.1:{port}", log=work / "api.log")
    try:

        def ready() -> bool:
            try:
                return bool(httpx.get(url + "/health", timeout=2).json()["caught_up"])
            except httpx.HTTPError:
                return False

        harness.wait_until(ready, 300, "the API to start")
        auth = {"Authorization": f"Bearer {portal}"}
        # read-your-write on a quiet pipeline first: what the API and the worker take alone
        quiet, quiet_unseen = asyncio.run(_referrals(url, seconds, auth))
        preload = open_requests(open_count, datetime.now(UTC))
        with Publisher(settings) as publisher:
            publisher.publish_many(preload)
        body_for = referral_bodies()
        tehran_open = sum(
            1
            for e in preload
            if body_for(e.province, e.category, e.occurred_at) == "samt-org:IR-23"
        )
        body = {"Authorization": f"Bearer {tehran}"}
        queue_url = url + "/api/v1/queue"

        def routed() -> bool:
            answer = httpx.get(queue_url, headers=body, params={"page_size": 1}, timeout=30)
            return int(answer.json()["total"]) >= tehran_open

        harness.wait_until(routed, 1800, "the preload in the API's view", every=2.0)
        held = httpx.get(queue_url, headers=body, params={"page_size": 1}, timeout=60).json()

        server_cpu: dict[str, float] = {}  # the API process's CPU seconds in each phase

        def drive(name: str, method: str, paths: list[str], **plan: Any) -> loadgen.Seen:
            before = cpu_seconds(api.pid)
            seen = loadgen.run(
                loadgen.Plan(url, method, paths, seconds=seconds, **plan),
                GENERATORS,
                work / "api-load",
            )
            server_cpu[name] = cpu_seconds(api.pid) - before
            return seen

        form = {**auth, "Content-Type": "application/x-www-form-urlencoded"}
        following = _follower(url)
        began = time.monotonic()
        floor = drive("GET /bare", "GET", ["/bare"], connections=CONCURRENCY)
        submit: dict[str, Any] = {"headers": form, "body": urlencode(FORM).encode(), "keep": True}
        posted = drive(
            "POST requests", "POST", [f"{OPEN311}/requests.json"], connections=CONCURRENCY, **submit
        )
        paced = drive(
            "POST requests, paced",
            "POST",
            [f"{OPEN311}/requests.json"],
            connections=PACED_CONNECTIONS,
            rate=POST_RATE,
            **submit,
        )
        ids = [b[0]["service_request_id"] for b in posted.bodies if "service_request_id" in b[0]]
        tokens = [b[0]["token"] for b in posted.bodies + paced.bodies]
        if not ids:
            raise harness.BenchError(f"no POST was answered 201: {_statuses(posted)}")
        got = drive(
            "GET requests/{id}",
            "GET",
            [f"{OPEN311}/requests/{i}.json" for i in ids],
            headers=auth,
            connections=CONCURRENCY,
        )
        pages = drive(
            "work-queue page", "GET", ["/api/v1/queue?page_size=50"], headers=body, connections=4
        )
        referred, unseen = asyncio.run(_referrals(url, seconds, auth))
        followed = _follower(url)
        wall = time.monotonic() - began
        intake = read_topics(settings, [Topics(settings.topic_namespace).intake])
        on_intake = Counter(wire.decode(r.value).event_id for r in intake)
        missing = sum(1 for t in tokens if on_intake[t] == 0)
        doubled = sum(1 for t in tokens if on_intake[t] > 1)
    finally:
        api.stop()
        sink.stop()
        worker.stop()
    section.add(
        "GET /bare (framework floor)", floor.rate, "requests/s", f"p99 {floor.p(0.99):.1f} ms"
    )
    section.add("GET /bare p99", floor.p(0.99), "ms")
    measured = [floor, posted, paced, got, pages]
    section.add(
        "load generator CPU per request",
        1e6 * sum(m.cpu_seconds for m in measured) / sum(len(m.latencies) for m in measured),
        "µs",
        "its own processes, start-up included",
    )
    section.add("POST requests", posted.rate, "requests/s", _statuses(posted))
    section.add("POST requests p50", posted.p(0.5), "ms")
    section.add("POST requests p99", posted.p(0.99), "ms")
    section.ratio("POST / bare", posted.rate, floor.rate)
    section.add(
        f"POST requests, {POST_RATE:,.0f}/s offered: answered",
        paced.rate,
        "requests/s",
        f"{_statuses(paced)}, {PACED_CONNECTIONS} connections",
    )
    section.add(f"POST requests, {POST_RATE:,.0f}/s offered: p50", paced.p(0.5), "ms")
    section.add(
        f"POST requests, {POST_RATE:,.0f}/s offered: p99",
        paced.p(0.99),
        "ms",
        "from each request's time on the schedule",
    )
    section.add("answered 201/202, not on the intake", missing, "events", "by event id")
    section.add("answered 201/202, on the intake twice or more", doubled, "events")
    section.add("GET requests/{id}", got.rate, "requests/s", _statuses(got))
    section.add("GET requests/{id} p99", got.p(0.99), "ms")
    section.add("work-queue page (IR-23)", pages.rate, "pages/s", _statuses(pages) + ", 4 clients")
    section.add("work-queue page p50", pages.p(0.5), "ms")
    section.add("work-queue page p99", pages.p(0.99), "ms")
    for when, load, missed in (
        ("quiet pipeline", quiet, quiet_unseen),
        ("after the preload", referred, unseen),
    ):
        section.add(
            f"POST 201 → GET shows agency_responsible p50, {when}",
            load.p(0.5),
            "ms",
            f"{len(load.latencies):,} requests, GET every {REFERRAL_POLL * 1000:.0f} ms",
        )
        section.add(f"POST 201 → agency_responsible p99, {when}", load.p(0.99), "ms")
        section.add(
            f"POST 201 → agency_responsible max, {when}",
            max(load.latencies, default=None),
            "ms",
            f"target {REFERRAL_TARGET_MS:,.0f} ms",
        )
        section.add(
            f"first GET after the 201 without the request, {when}", missed, "requests", "0 due"
        )
        section.add(
            f"not referred within {REFERRAL_GIVE_UP:.0f} s, {when}",
            load.statuses[0],
            "requests",
        )
    records = followed["records"] - following["records"]
    cpu = followed["cpu"] - following["cpu"]
    section.add(
        "follower CPU share of the measured phases",
        100 * cpu / wall if wall else None,
        "%",
        f"{cpu:.1f} s of {wall:.0f} s, {records:,.0f} records",
    )
    section.add(
        "follower CPU per record", 1e6 * cpu / records if records else None, "µs", "states, intake"
    )
    for name, seen in (
        ("GET /bare", floor),
        ("POST requests", posted),
        ("POST requests, paced", paced),
        ("GET requests/{id}", got),
        ("work-queue page", pages),
    ):
        section.add(
            f"API CPU per request, {name}",
            1e6 * server_cpu[name] / len(seen.latencies) if seen.latencies else None,
            "µs",
            "the API process, all its threads",
        )
    section.add("open requests nationally (preload)", open_count, "requests")
    section.add("open requests held by samt-org:IR-23", held["total"], "requests")
    return section


def _statuses(load: Load | loadgen.Seen) -> str:
    return ", ".join(f"{count:,}× {status}" for status, count in sorted(load.statuses.items()))
