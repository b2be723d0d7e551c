"""``samt124 api`` on the real broker and worker: an Open311 client library from PyPI submits and
reads; the work queue and actions drive a request to resolution; keys that do not belong are
refused and publish nothing, in the API and, straight from Kafka, in the worker."""

from __future__ import annotations

import socket
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from api.keys import KeyStore
from producers.publisher import Publisher
from samt124.contract import wire
from samt124.domain.calendar import Calendar, Closure, load_config
from samt124.domain.events import OfficeClosureAnnounced, RequestResolved, RequestResponded
from samt124.domain.tehran_time import TEHRAN
from samt124.kafka.admin import ensure_topics
from samt124.kafka.reader import read_topics
from samt124.kafka.topics import Topics
from samt124.settings import Settings
from tests.integration.pipeline import Process, decoded, produce_raw, start, wait_for

pytestmark = pytest.mark.integration

FORM = {
    "service_code": "MKT-OVERCHARGE",
    "description": "گران‌فروشی در فروشگاه",
    "attribute[province]": "IR-23",
    "attribute[national_id]": "10101010101",
    "first_name": "Ali",
    "last_name": "Rezaei",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    settings: Settings
    url: str
    keys: dict[str, str]
    worker: Process
    api: Process
    metrics_url: str
    seen: Counter[tuple[str, int]] = field(default_factory=Counter)  # answers clients got

    def client(self, who: str | None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.keys[who]}"} if who else {}
        return httpx.Client(
            base_url=self.url, headers=headers, timeout=30, event_hooks={"response": [self._saw]}
        )

    def _saw(self, response: httpx.Response) -> None:
        self.seen[response.request.method, response.status_code] += 1

    def scrape(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """The API's metrics now: (sample name, labels) -> value."""
        from prometheus_client.parser import text_string_to_metric_families

        text = httpx.get(self.metrics_url, timeout=10).text
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def intake(self) -> list[Any]:
        return decoded(read_topics(self.settings, [Topics(self.settings.topic_namespace).intake]))


@pytest.fixture
def stack(settings: Settings, tmp_path: Path) -> Iterator[Stack]:
    ensure_topics(settings)
    store = KeyStore(settings.api_keys_path)
    keys = {
        "portal": store.add("portal", "publisher", channel="WEB_PORTAL")[1],
        "app": store.add("samt-app", "publisher", channel="SAMTEMA_APP")[1],
        "tehran": store.add("samt-org-tehran", "body", body="samt-org:IR-23")[1],
        "esfahan": store.add("samt-org-esfahan", "body", body="samt-org:IR-10")[1],
        "hq": store.add("hq", "ministry")[1],
    }
    worker = start(settings, "worker", log=tmp_path / "worker.log")
    port, metrics_port = free_port(), free_port()
    api = start(
        settings,
        "api",
        "--listen",
        f"127.0.0.1:{port}",
        "--metrics",
        f"127.0.0.1:{metrics_port}",
        log=tmp_path / "api.log",
    )
    url = f"http://127.0.0.1:{port}"
    try:

        def ready() -> bool:
            try:
                return bool(httpx.get(url + "/health", timeout=2).json()["caught_up"])
            except httpx.HTTPError:
                return False

        wait_for(ready, 120, "the API to follow the worker's states")
        yield Stack(settings, url, keys, worker, api, f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        api.stop()
        worker.stop()


def post(client: httpx.Client, **changes: str) -> httpx.Response:
    return client.post("/open311/v2/requests.json", data={**FORM, **changes})


def status_of(stack: Stack, who: str, request_id: str) -> dict[str, Any]:
    with stack.client(who) as client:
        answer = client.get(f"/api/v1/requests/{request_id}")
        assert answer.status_code == 200, answer.text
        result: dict[str, Any] = answer.json()
        return result


def wait_status(stack: Stack, who: str, request_id: str, status: str) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        with stack.client(who) as client:  # a body sees the request once it is referred to it
            answer = client.get(f"/api/v1/requests/{request_id}")
        data: dict[str, Any] = answer.json()
        return data if answer.status_code == 200 and data["detailed_status"] == status else None

    found: dict[str, Any] = wait_for(reached, 30, f"{request_id} to be {status}", every=0.1)
    return found


def shown_to(stack: Stack, who: str, request_id: str) -> dict[str, Any]:
    with stack.client(who) as client:
        answer = client.get(f"/open311/v2/requests/{request_id}.json")
        assert answer.status_code == 200, answer.text
        shown: dict[str, Any] = answer.json()[0]
        return shown


def when_of(stack: Stack, request_id: str, kind: str) -> str:
    """The time of a request's ``kind`` event on the intake, as Open311 writes it."""
    event = next(
        e for e in stack.intake() if e.request_id == request_id and type(e).__name__ == kind
    )
    at: datetime = event.occurred_at
    return at.astimezone(TEHRAN).isoformat(timespec="seconds")


def test_an_open311_client_library_submits_and_reads_through_the_api(stack: Stack) -> None:
    from civicbot.open311 import Open311Client
    from civicbot.registry import Endpoint

    base = stack.url + "/open311/v2"
    # reads authenticate with HTTP Basic (the key as password) after the API's 401 challenge:
    # the standard library's own handler, the client library is not changed
    passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
    passwords.add_password(None, stack.url, "portal", stack.keys["portal"])
    opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(passwords))
    urllib.request.install_opener(opener)
    try:
        client = Open311Client(
            Endpoint(id="samt124", name="samt124 124", base_url=base, write=True)
        )
        services = client.list_services()
        overcharge = next(s for s in services if s["service_code"] == "MKT-OVERCHARGE")
        assert overcharge["service_name"] == "Overcharging"
        assert overcharge["service_name_fa"] == "گران‌فروشی"
        definition = client.get_service_definition("MKT-OVERCHARGE")
        required = {a["code"] for a in definition["attributes"] if a["required"]}
        assert required == {"province", "national_id"}

        prepared = client.create_request(
            "MKT-OVERCHARGE",
            dry_run=False,
            confirm="SEND",
            api_key=stack.keys["portal"],
            validate_remote=True,
            address_string="تهران، خیابان ولیعصر",
            description="گران‌فروشی لبنیات",
            first_name="Sara",
            last_name="Ahmadi",
            attributes={"province": "IR-23", "national_id": "0012345678"},
        )
        created = prepared.response[0]
        request_id = created["service_request_id"]
        read = client.get_request(request_id)  # at once: the API's own write
        assert read is not None
        assert read["status"] == "open"
        assert read["detailed_status"] in ("submitted", "referred")
        assert read["service_code"] == "MKT-OVERCHARGE"

        started = time.monotonic()

        def referred() -> dict[str, Any] | None:
            got = client.get_request(request_id)
            return got if got and got["agency_responsible"] else None

        routed = wait_for(referred, 30, "the referral in the API", every=0.05)
        print(f"referral visible {time.monotonic() - started:.2f} s after the first read")
        assert routed["agency_responsible"] == "samt-org:IR-23"
        assert routed["detailed_status"] == "referred"
        assert routed["requested_datetime"].endswith("+03:30")
        listed = client.list_requests(status="open")
        assert [r["service_request_id"] for r in listed] == [request_id]
        token = client.get_token(created["token"])
        assert token[0]["service_request_id"] == request_id
    finally:
        urllib.request.install_opener(urllib.request.build_opener())

    # the same in XML
    with stack.client("portal") as http:
        xml = http.get(f"/open311/v2/requests/{request_id}.xml")
        assert xml.headers["content-type"].startswith("text/xml")
        root = ElementTree.fromstring(xml.content)
        assert root.tag == "service_requests"
        assert root.findtext("request/service_request_id") == request_id
        assert root.findtext("request/status") == "open"
        services_xml = ElementTree.fromstring(http.get("/open311/v2/services.xml").content)
        assert len(services_xml.findall("service")) == len(services)
    # the submission is on the intake once, by the portal, on its channel
    submissions = [e for e in stack.intake() if e.request_id == request_id]
    assert len(submissions) == 1
    assert submissions[0].source == "portal"
    assert submissions[0].channel == "WEB_PORTAL"
    assert submissions[0].requester.national_id == "0012345678"


def test_a_body_works_its_queue_to_resolution_with_the_clock_paused_for_the_applicant(
    stack: Stack,
) -> None:
    with stack.client("portal") as portal:
        first = post(portal, **{"attribute[province]": "IR-23"}).json()[0]["service_request_id"]
        retried = {"Idempotency-Key": "portal-ticket-77"}
        answer = portal.post("/open311/v2/requests.json", data=FORM, headers=retried)
        again = portal.post("/open311/v2/requests.json", data=FORM, headers=retried)
        assert answer.status_code == again.status_code == 201
        assert answer.json()[0]["service_request_id"] == again.json()[0]["service_request_id"]
    wait_status(stack, "tehran", first, "referred")

    with stack.client("tehran") as tehran:
        queue = tehran.get("/api/v1/queue", params={"page_size": 10}).json()
        assert queue["body"] == "samt-org:IR-23"
        assert first in [r["request_id"] for r in queue["requests"]]
        row = next(r for r in queue["requests"] if r["request_id"] == first)
        assert {c["clock"] for c in row["clocks"]} == {
            "FIRST_RESPONSE",
            "RESOLUTION",
            "OPERATIONAL",
        }
        assert tehran.get("/api/v1/queue", params={"page": "0"}).status_code == 400
    # referred: last changed when submitted, the referral its note
    with stack.client("portal") as portal:
        shown = portal.get(f"/open311/v2/requests/{first}.json").json()[0]
    assert shown["updated_datetime"] == shown["requested_datetime"]
    assert shown["status_notes"] == "referred (samt-org:IR-23)"

    # Tehran's offices close from today for four days: the queue's deadlines move as the
    # worker's clocks do; each running clock's deadline is its target in working time from
    # the submission, counted in a calendar with the closure
    running = status_of(stack, "tehran", first)["clocks"]
    today = datetime.now(TEHRAN).date()
    closure = Closure("IR-23", today, today + timedelta(days=3))
    announced = datetime.now(UTC)
    with Publisher(stack.settings) as publisher:
        publisher.publish(
            OfficeClosureAnnounced(
                event_id=str(uuid.uuid4()),
                request_id=f"closure:IR-23:{today.isoformat()}",
                occurred_at=announced,
                recorded_at=announced,
                source="governorate-announcements",
                province="IR-23",
                first_day=closure.first_day,
                last_day=closure.last_day,
                reason="air pollution",
            )
        )

    def moved() -> list[dict[str, Any]] | None:
        with stack.client("tehran") as tehran:
            page = tehran.get("/api/v1/queue", params={"page_size": 500}).json()["requests"]
        clocks: list[dict[str, Any]] = next(r for r in page if r["request_id"] == first)["clocks"]
        return clocks if [c["due"] for c in clocks] != [c["due"] for c in running] else None

    after = wait_for(moved, 30, "the closure in the queue's deadlines", every=0.1)
    submitted_at = datetime.fromisoformat(shown["requested_datetime"])
    plain = Calendar(load_config())
    closed = plain.with_closure(closure)
    for old, new in zip(running, after, strict=True):
        assert old["clock"] == new["clock"]
        assert new["state"] == "running"
        target = new["target_hours"] * 3600
        due_before = datetime.fromisoformat(old["due"])
        due_after = datetime.fromisoformat(new["due"])
        assert due_after > due_before, new["clock"]
        assert abs(plain.working_seconds_between("IR-23", submitted_at, due_before) - target) < 2
        assert abs(closed.working_seconds_between("IR-23", submitted_at, due_after) - target) < 2
    with stack.client("tehran") as tehran:

        def act(action: str, **body: str) -> httpx.Response:
            return tehran.post(f"/api/v1/requests/{first}/{action}", json=body)

        assert act("assign", assignee="expert-07").status_code == 202
        wait_status(stack, "tehran", first, "assigned")
        assert act("ask-applicant", reason="فاکتور خرید").status_code == 202
        paused = wait_status(stack, "tehran", first, "awaiting_applicant")
        assert {c["state"] for c in paused["clocks"]} == {"paused"}
        worked = {c["clock"]: c["worked_hours"] for c in paused["clocks"]}
        # the applicant cannot be answered twice, nor the request resolved by another body
        with stack.client("esfahan") as esfahan:
            foreign = esfahan.post(
                f"/api/v1/requests/{first}/resolve", json={"outcome": "VIOLATOR"}
            )
            assert foreign.status_code == 403, foreign.text
            assert esfahan.get(f"/open311/v2/requests/{first}.json").status_code == 403
            assert first not in [
                r["request_id"] for r in esfahan.get("/api/v1/queue").json()["requests"]
            ]
        with stack.client("portal") as portal:
            answered = portal.post(
                f"/api/v1/requests/{first}/applicant-responded", json={"note": "فاکتور پیوست شد"}
            )
            assert answered.status_code == 202, answered.text
        resumed = wait_status(stack, "tehran", first, "in_progress")
        assert {c["state"] for c in resumed["clocks"]} == {"running"}
        assert {c["clock"]: c["worked_hours"] for c in resumed["clocks"]} == worked
        assert act("respond", message="بازرسی انجام شد").status_code == 202
        wait_status(stack, "tehran", first, "responded")
        responded = shown_to(stack, "portal", first)
        assert responded["status_notes"] == "بازرسی انجام شد"
        assert responded["updated_datetime"] == when_of(stack, first, "RequestResponded")
        bad = act("resolve", outcome="MAYBE")
        assert bad.status_code == 400
        assert "outcome" in bad.json()[0]["description"]
        assert act("resolve", outcome="VIOLATOR", note="پرونده به تعزیرات").status_code == 202
        done = wait_status(stack, "tehran", first, "resolved")
        assert done["status"] == "closed"
        assert done["status_notes"] == "پرونده به تعزیرات"
        assert done["updated_datetime"] == when_of(stack, first, "RequestResolved")
        again_resolved = act("resolve", outcome="VIOLATOR")
        assert again_resolved.status_code == 409
        assert "RESOLVED" in again_resolved.json()[0]["description"]
    with stack.client("hq") as hq:
        assert (
            hq.post(f"/api/v1/requests/{first}/reopen", json={"reason": "شکایت مجدد"}).status_code
            == 202
        )
    wait_status(stack, "hq", first, "reopened")

    kinds = [type(e).__name__ for e in stack.intake() if e.request_id == first]
    assert kinds == [
        "RequestSubmitted",
        "RequestAssigned",
        "RequestAwaitingApplicant",
        "ApplicantResponded",
        "RequestResponded",
        "RequestResolved",
        "RequestReopened",
    ]
    counts = Counter(e.event_id for e in stack.intake())
    assert max(counts.values()) == 1  # each event once, the retried POST included


def test_wrong_keys_and_bad_input_are_refused_and_nothing_is_published(stack: Stack) -> None:
    metrics_before = stack.scrape()
    with stack.client("portal") as portal:
        accepted = post(portal).json()[0]["service_request_id"]
    wait_status(stack, "tehran", accepted, "referred")
    before = len(stack.intake())
    open311 = "/open311/v2/requests.json"
    with stack.client(None) as anonymous:
        no_key = anonymous.post(open311, data=FORM)
        assert no_key.status_code == 401
        assert no_key.headers["www-authenticate"].startswith("Basic")
        wrong = anonymous.post(open311, data={**FORM, "api_key": "s124_000000000000_" + "a" * 43})
        assert wrong.status_code == 401
        assert anonymous.get("/api/v1/queue", headers={"X-Api-Key": "nope"}).status_code == 401
        assert anonymous.get("/open311/v2/services.json").status_code == 200  # public
    with stack.client("tehran") as tehran:
        assert post(tehran).status_code == 403  # a body does not submit
    with stack.client("app") as app:  # another publisher's submission is not its to read
        assert app.get(f"/open311/v2/requests/{accepted}.json").status_code == 403
        assert (
            app.post(f"/api/v1/requests/{accepted}/applicant-responded", json={}).status_code == 403
        )
    with stack.client("esfahan") as esfahan:
        for action, body in [
            ("assign", {"assignee": "x"}),
            ("respond", {"message": "m"}),
            (
                "transfer",
                {
                    "to_province": "IR-10",
                    "to_body_id": "samt-org:IR-10",
                    "to_body_kind": "SAMT_ORGANIZATION",
                    "reason": "mine",
                },
            ),
        ]:
            answer = esfahan.post(f"/api/v1/requests/{accepted}/{action}", json=body)
            assert answer.status_code == 403, (action, answer.text)
        assert esfahan.get("/api/v1/queue", params={"body": "samt-org:IR-23"}).status_code == 403
    with stack.client("portal") as portal:
        problems = {
            "malformed JSON": portal.post(
                open311, content=b'{"service_code": ', headers={"Content-Type": "application/json"}
            ),
            "malformed XML": portal.post(
                "/open311/v2/requests.xml",
                content=b"<request><a>",
                headers={"Content-Type": "text/xml"},
            ),
            "unknown service": post(portal, service_code="NOPE"),
            "wrong province": post(portal, **{"attribute[province]": "IR-99"}),
            "bad national id": post(portal, **{"attribute[national_id]": "12"}),
            "no description": post(portal, description=""),
            "latitude out of range": post(portal, lat="999", long="51.4"),
            "longitude not a number": post(portal, lat="35.7", long="east"),
            "oversized": portal.post(open311, content=b"a" * 70_000),
            "unknown id": portal.get("/open311/v2/requests/no-such-request.json"),
            "bad paging": portal.get("/open311/v2/requests.json", params={"page_size": "x"}),
            "bad date": portal.get("/open311/v2/requests.json", params={"start_date": "yesterday"}),
            "bad format": portal.get("/open311/v2/services.yaml"),
        }
        for what, answer in problems.items():
            assert 400 <= answer.status_code < 500, (what, answer.status_code, answer.text)
            if answer.headers["content-type"].startswith("text/xml"):
                continue  # the XML request's error, in XML: below
            assert answer.json()[0]["code"] == answer.status_code, what
            assert answer.json()[0]["description"], what
        assert "attribute[province]" in problems["wrong province"].json()[0]["description"]
        assert "attribute[national_id]" in problems["bad national id"].json()[0]["description"]
        assert problems["latitude out of range"].json()[0]["description"].startswith("lat: '999'")
        assert problems["longitude not a number"].json()[0]["description"].startswith("long:")
        assert problems["oversized"].status_code == 413
        assert problems["unknown id"].status_code == 404
        xml_error = ElementTree.fromstring(problems["malformed XML"].content)
        assert xml_error.findtext("error/code") == "400"
    time.sleep(1)
    assert len(stack.intake()) == before  # nothing of the above was published
    _metrics_count_what_the_clients_saw(stack, metrics_before, published=1)


def _metrics_count_what_the_clients_saw(
    stack: Stack, before: dict[tuple[str, tuple[tuple[str, str], ...]], float], published: int
) -> None:
    """The API's metrics, scraped before and after, count each answer the clients got (by
    method and status), time each, and count the events that reached the intake."""
    after = stack.scrape()

    def grown(name: str, **only: str) -> Counter[tuple[str, ...]]:
        found: Counter[tuple[str, ...]] = Counter()
        for (sample, labels), value in after.items():
            given = dict(labels)
            if sample == name and all(given.get(k) == v for k, v in only.items()):
                change = value - before.get((sample, labels), 0.0)
                if change:
                    found[tuple(v for k, v in labels if k in ("method", "status"))] += int(change)
        return found

    answers = grown("samt124_api_requests_total")
    expected = Counter({(method, str(status)): n for (method, status), n in stack.seen.items()})
    assert answers == expected
    timed = grown("samt124_api_request_duration_seconds_count")
    assert sum(timed.values()) == sum(expected.values())
    assert grown("samt124_api_events_published_total", outcome="confirmed") == Counter(
        {(): published}
    )
    assert after["samt124_api_view_caught_up", ()] == 1.0
    assert after["samt124_api_view_requests", ()] >= 1


def test_the_worker_dead_letters_an_action_published_straight_to_kafka_by_another_body(
    stack: Stack,
) -> None:
    with stack.client("portal") as portal:
        request_id = post(portal).json()[0]["service_request_id"]
    wait_status(stack, "tehran", request_id, "referred")
    now = datetime.now(UTC)
    forged = RequestResolved(
        event_id=str(uuid.uuid4()),
        request_id=request_id,
        occurred_at=now,
        recorded_at=now,
        source="desk-124",
        actor="samt-org:IR-10",
        body_id="samt-org:IR-10",
        outcome="NOT_VIOLATOR",
        resolution_note="بسته شد",
    )
    topics = Topics(stack.settings.topic_namespace)
    produce_raw(stack.settings, topics.intake, [(wire.key(forged), wire.encode(forged))])

    def dead() -> list[Any] | None:
        records = read_topics(stack.settings, [topics.dlq])
        return [r for r in records if r.value == wire.encode(forged)] or None

    letters = wait_for(dead, 60, "the forged resolution on the dead-letter topic")
    reason = letters[0].headers["dlq-reason"].decode()
    assert "only the holder 'samt-org:IR-23' may" in reason
    assert request_id in reason
    time.sleep(1)
    assert status_of(stack, "tehran", request_id)["detailed_status"] == "referred"
    province = decoded(read_topics(stack.settings, [topics.province("IR-23")]))
    assert forged.event_id not in {e.event_id for e in province}
    # the refused action is not the request's last change, nor its note
    shown = shown_to(stack, "portal", request_id)
    assert shown["status_notes"] == "referred (samt-org:IR-23)"
    assert shown["updated_datetime"] == shown["requested_datetime"]

    # the holder's own system answers straight on Kafka, not through the API: the status shows
    # the answer's time and note once the worker has taken it in
    answered_at = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=7)
    answer = RequestResponded(
        event_id=str(uuid.uuid4()),
        request_id=request_id,
        occurred_at=answered_at,
        recorded_at=datetime.now(UTC),
        source="samt-org-tehran-crm",
        actor="samt-org:IR-23",
        body_id="samt-org:IR-23",
        message="کارشناس با متقاضی تماس گرفت",
    )
    with Publisher(stack.settings) as publisher:
        publisher.publish(answer)
    wait_status(stack, "tehran", request_id, "responded")
    shown = shown_to(stack, "portal", request_id)
    assert shown["status_notes"] == "کارشناس با متقاضی تماس گرفت"
    assert shown["updated_datetime"] == answered_at.astimezone(TEHRAN).isoformat()
    assert shown["updated_datetime"] != shown["requested_datetime"]


def test_a_second_api_on_a_port_in_use_says_so_and_stops_quietly(
    settings: Settings, tmp_path: Path
) -> None:
    """The port is taken (another API, another program): the new one exits non-zero with the
    reason, and its follower, still waiting for the worker's topics, stops without a traceback."""
    import subprocess
    import sys

    from tests.integration.pipeline import REPO, env_for

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "samt124.cli", "api", "--listen", f"127.0.0.1:{port}"],
            env=env_for(settings),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    said = result.stdout + result.stderr
    assert result.returncode != 0, said
    assert "address already in use" in said.lower(), said
    assert "Traceback" not in said, said
