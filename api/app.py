"""The 124 service API (FastAPI): Open311 GeoReport v2 for upstream systems, the work queue and
its actions for the bodies that answer requests, each caller allowed only its own requests.

Every write is an event published to the intake topic through :class:`producers.publisher.
AsyncPublisher` (validated, idempotent producer, ``acks=all``) and decided by the worker like any
other; before publishing, the API applies the same rule the worker does
(:func:`samt124.domain.lifecycle.refusal`), so a refused action is answered at once and nothing
is published. Reads come from :class:`api.view.View`.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, get_args
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route
from starlette.types import Scope

from api import open311
from api.keys import Caller, KeyStore
from api.metrics import ApiMetrics
from api.open311 import BadInput
from api.view import ACTIONS as ACTION_EVENTS
from api.view import Row, Submission, View, fact_of, submission_of
from producers.publisher import AsyncPublisher
from samt124.domain.catalogue import CATALOGUE
from samt124.domain.events import (
    ApplicantResponded,
    BodyKind,
    Event,
    Outcome,
    RequestAssigned,
    RequestAwaitingApplicant,
    Requester,
    RequestReopened,
    RequestResolved,
    RequestResponded,
    RequestSubmitted,
    RequestTransferred,
    derived_id,
)
from samt124.domain.lifecycle import HEADQUARTERS, RequestState, deadline, refusal
from samt124.domain.provinces import PROVINCES
from samt124.domain.validation import validate

OPEN311 = "/open311/v2"
MAX_BODY = 64 * 1024
CONFIRM_SECONDS = 5.0  # after this the answer is a token: the send is still on its way
MAX_PAGE_SIZE = 500
MAX_RANGE = timedelta(days=90)
OUTCOMES: tuple[str, ...] = get_args(Outcome)
BODY_KINDS: tuple[str, ...] = get_args(BodyKind)
# Open311 field names for the event fields validation names
FIELD_NAMES = {
    "body": "description",
    "requester.national_id": "attribute[national_id]",
    "requester.name": "first_name",
    "requester.phone": "phone",
    "requester.email": "email",
    "province": "attribute[province]",
    "category": "service_code",
    "subject": "attribute[subject]",
    "priority": "attribute[priority]",
}


class Problem(Exception):
    """An answer other than success: the HTTP status and what is wrong."""

    def __init__(self, status: int, description: str, *, challenge: bool = False) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.challenge = challenge


@dataclass
class Services:
    """What the handlers use: the key store, the view, the publisher, the clock."""

    keys: KeyStore
    view: View
    publisher: AsyncPublisher | None
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    max_body: int = MAX_BODY
    follower_stats: Callable[[], dict[str, Any]] | None = None  # what following has cost
    metrics: ApiMetrics | None = None  # served on --metrics HOST:PORT when asked


def create_app(services: Services, *, lifespan: Any = None) -> FastAPI:
    app = FastAPI(
        title="samt124 — the 124 service API",
        version="1",
        description="Open311 GeoReport v2 intake and status; the bodies' work queue and actions.",
        lifespan=lifespan,
    )
    app.state.services = services

    @app.exception_handler(Problem)
    async def on_problem(request: Request, problem: Problem) -> Response:
        return _error(request, problem.status, problem.description, problem.challenge)

    @app.exception_handler(BadInput)
    async def on_bad_input(request: Request, bad: BadInput) -> Response:
        return _error(request, bad.status, str(bad))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path"))
        return _error(request, 400, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, error: StarletteHTTPException) -> Response:
        return _error(request, error.status_code, str(error.detail))

    _open311_routes(app, services)
    _work_routes(app, services)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        follower_ok = services.view.caught_up.is_set()
        stats = services.follower_stats() if services.follower_stats is not None else None
        return {
            "status": "ok" if follower_ok else "starting",
            "caught_up": follower_ok,
            "follower": stats,
        }

    @app.get("/bare")
    async def bare() -> dict[str, str]:
        """A constant: what the framework alone costs (the benchmarks' floor)."""
        return {"status": "ok"}

    return app


# -- errors and formats --------------------------------------------------------------------


def _format_of(request: Request) -> str:
    fmt = request.path_params.get("fmt", "json")
    return fmt if fmt in open311.FORMATS else "json"


def _error(request: Request, status: int, description: str, challenge: bool = False) -> Response:
    headers = {"WWW-Authenticate": 'Basic realm="samt124"'} if challenge else None
    body = open311.error(status, description)
    if _format_of(request) == "xml":
        return Response(
            open311.to_xml("errors", body),
            status_code=status,
            media_type="text/xml; charset=utf-8",
            headers=headers,
        )
    return JSONResponse(body, status_code=status, headers=headers)


def _render(fmt: str, kind: str, data: Any, status: int = 200) -> Response:
    if fmt not in open311.FORMATS:
        raise Problem(404, f"format {fmt!r}: json or xml")
    if fmt == "xml":
        return Response(
            open311.to_xml(kind, data), status_code=status, media_type="text/xml; charset=utf-8"
        )
    return Json(data, status_code=status)


class Json(JSONResponse):
    """JSON rendered once, straight to bytes (values that are not JSON as their text)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, default=str, ensure_ascii=False, separators=(",", ":")).encode()


# -- who is calling ------------------------------------------------------------------------


def presented_key(request: Request, form_key: str | None = None) -> str | None:
    """The key a caller presents: ``Authorization: Bearer KEY``, Basic auth with the key as the
    password, ``X-Api-Key``, or Open311's ``api_key`` parameter."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if scheme.lower() == "basic" and value:
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise Problem(401, "Authorization: malformed Basic credentials") from None
        return decoded.partition(":")[2]
    return request.headers.get("x-api-key") or request.query_params.get("api_key") or form_key


def authenticate(services: Services, request: Request, form_key: str | None = None) -> Caller:
    key = presented_key(request, form_key)
    if not key:
        raise Problem(401, "api_key: an API key is required", challenge=True)
    caller = services.keys.authenticate(key)
    if caller is None:
        raise Problem(401, "api_key: unknown or revoked key", challenge=True)
    return caller


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused past ``limit`` bytes (413) whether announced or streamed."""
    announced = request.headers.get("content-length")
    if announced is not None:
        if not announced.isdigit():
            raise Problem(400, "Content-Length: not a number")
        if int(announced) > limit:
            raise Problem(413, f"body: larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Problem(413, f"body: larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_fields(content_type: str, raw: bytes) -> dict[str, str]:
    """The fields of a POSTed request: a form (Open311's own), a JSON object or XML."""
    kind = content_type.split(";", maxsplit=1)[0].strip().lower()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput("body", "not UTF-8") from None
    if kind in ("", "application/x-www-form-urlencoded"):
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text))
        except ValueError as problem:
            raise BadInput("body", f"malformed form: {problem}") from None
        return dict(pairs)
    if kind == "application/json" or kind.endswith("+json"):
        try:
            data = json.loads(text) if text else None
        except json.JSONDecodeError as problem:
            raise BadInput("body", f"malformed JSON: {problem}") from None
        return open311.flatten_json(data)
    if kind in ("application/xml", "text/xml"):
        return open311.parse_xml_form(raw)
    raise BadInput("Content-Type", f"{kind!r}: form, JSON or XML", status=415)


# -- Open311 -------------------------------------------------------------------------------


def _open311_routes(app: FastAPI, services: Services) -> None:
    view = services.view

    @app.get("/open311/discovery.{fmt}")
    async def discovery(request: Request, fmt: str) -> Response:
        base = str(request.base_url).rstrip("/") + OPEN311 + "/"
        return _render(fmt, "discovery", open311.discovery(base))

    @app.get(OPEN311 + "/services.{fmt}")
    async def service_list(fmt: str) -> Response:
        return _render(fmt, "services", open311.services())

    @app.get(OPEN311 + "/services/{code}.{fmt}")
    async def service_definition(code: str, fmt: str) -> Response:
        if code not in CATALOGUE:
            raise Problem(404, f"service_code: unknown service code {code!r}")
        return _render(fmt, "definition", open311.definition(code))

    @app.post(OPEN311 + "/requests.{fmt}")
    async def post_request(request: Request, fmt: str) -> Response:
        if fmt not in open311.FORMATS:
            raise Problem(404, f"format {fmt!r}: json or xml")
        raw = await read_body(request, services.max_body)
        fields = parse_fields(request.headers.get("content-type", ""), raw)
        caller = authenticate(services, request, fields.pop("api_key", None))
        if caller.role != "publisher":
            raise Problem(403, f"{caller.name}: only publishers' keys submit requests")
        event = submission(caller, fields, request.headers.get("idempotency-key"), services.now())
        known_id = view.token(event.event_id)
        if known_id is not None:  # the same submission again (a retried POST): not re-sent
            return _render(fmt, "requests", [_created(known_id, event.event_id)], 201)
        confirmed = await _publish(services, event)
        if not confirmed:
            notice = "queued: GET tokens/{token} gives the service_request_id once it is stored"
            return _render(
                fmt, "requests", [{"token": event.event_id, "service_notice": notice}], 202
            )
        return _render(fmt, "requests", [_created(event.request_id, event.event_id)], 201)

    _serve_plainly(app, OPEN311 + "/requests.{fmt}", "POST", post_request)

    @app.get(OPEN311 + "/tokens/{token}.{fmt}")
    async def token(request: Request, token: str, fmt: str) -> Response:
        caller = authenticate(services, request)
        request_id = view.token(token)
        if request_id is None:
            raise Problem(404, f"token: unknown token {token!r} (or not stored yet)")
        _readable(view, caller, request_id)
        return _render(fmt, "tokens", [{"service_request_id": request_id, "token": token}])

    @app.get(OPEN311 + "/requests/{request_id}.{fmt}")
    async def get_request(request: Request, request_id: str, fmt: str) -> Response:
        caller = authenticate(services, request)
        state, sub = _readable(view, caller, request_id)
        return _render(fmt, "requests", [record(view, state, sub)])

    _serve_plainly(app, OPEN311 + "/requests/{request_id}.{fmt}", "GET", get_request)

    @app.get(OPEN311 + "/requests.{fmt}")
    async def get_requests(request: Request, fmt: str) -> Response:
        caller = authenticate(services, request)
        query = request.query_params
        ids = open311.split_list(query.get("service_request_id"))
        codes = open311.split_list(query.get("service_code"))
        open311.codes_known(codes)
        statuses = open311.split_list(query.get("status"))
        for status in statuses:
            if status not in ("open", "closed"):
                raise BadInput("status", f"{status!r}: open or closed")
        page, size = _paging(query.get("page"), query.get("page_size"), default_size=1000)
        now = services.now()
        end = open311.parse_instant("end_date", query["end_date"]) if "end_date" in query else now
        start = (
            open311.parse_instant("start_date", query["start_date"])
            if "start_date" in query
            else end - MAX_RANGE
        )
        if start > end:
            raise BadInput("start_date", "after end_date")
        if end - start > MAX_RANGE:
            raise BadInput("start_date", "the range may not span more than 90 days")
        if len(ids) > 100:
            raise BadInput("service_request_id", "at most 100 ids")
        candidates = ids or _visible_ids(view, caller)
        out = []
        for request_id in candidates:
            state, sub = view.get(request_id)
            if (state is None and sub is None) or not _may_read(caller, state, sub):
                continue
            item = record(view, state, sub)
            if not ids:
                requested = state.submitted_at if state is not None else sub.requested  # type: ignore[union-attr]
                if not start <= requested <= end:
                    continue
                if codes and item["service_code"] not in codes:
                    continue
                if statuses and item["status"] not in statuses:
                    continue
            out.append(item)
        out.sort(key=lambda item: str(item["requested_datetime"]), reverse=True)
        return _render(fmt, "requests", out[(page - 1) * size : page * size])


class PlainRoute(Route):
    """A Starlette route that names itself in the scope as FastAPI's do (for the metrics)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


def _serve_plainly(
    app: FastAPI, path: str, method: str, handler: Callable[..., Awaitable[Response]]
) -> None:
    """Serve ``method path`` by ``handler`` through a plain Starlette route placed ahead of
    FastAPI's: no dependency solving or parameter validation, which cost more than the handler on
    the busiest routes. FastAPI's route for the same path stays, for the OpenAPI document; the
    exception handlers and middleware are the same."""

    async def endpoint(request: Request) -> Response:
        return await handler(request, **request.path_params)

    plain = PlainRoute(path, endpoint, methods=[method], include_in_schema=False)
    app.router.routes.insert(0, plain)


def _created(request_id: str, token: str) -> dict[str, Any]:
    return {
        "service_request_id": request_id,
        "token": token,
        "service_notice": "accepted; referred to the responsible body within seconds",
        "account_id": None,
    }


def submission(
    caller: Caller, fields: dict[str, str], idempotency_key: str | None, now: datetime
) -> RequestSubmitted:
    """The ``RequestSubmitted`` an Open311 POST makes; a field's problem raises :class:`BadInput`.

    With an ``Idempotency-Key`` the event and request ids derive from the caller and the key, so a
    retried POST is the same request, not a second one.
    """
    code = fields.get("service_code", "").strip()
    if not code:
        raise BadInput("service_code", "required")
    if code not in CATALOGUE:
        raise BadInput("service_code", f"unknown service code {code!r}")
    province = fields.get("attribute[province]", "").strip().upper()
    if not province:
        raise BadInput("attribute[province]", "required (ISO 3166-2:IR, e.g. IR-23)")
    if province not in PROVINCES:
        raise BadInput("attribute[province]", f"unknown province {province!r}")
    national_id = fields.get("attribute[national_id]", "").strip()
    if not national_id:
        raise BadInput("attribute[national_id]", "required")
    description = fields.get("description", "").strip()
    if not description:
        raise BadInput("description", "required")
    _check_location(fields)
    priority = fields.get("attribute[priority]", "").strip().upper() or CATALOGUE[code].priority
    if priority not in open311.PRIORITIES:
        raise BadInput("attribute[priority]", f"{priority!r}: one of {open311.PRIORITIES}")
    if idempotency_key is not None:
        if not 1 <= len(idempotency_key) <= 200:
            raise BadInput("Idempotency-Key", "1 to 200 characters")
        event_id = derived_id("api-submission", caller.key_id, idempotency_key)
    else:
        event_id = str(uuid.uuid4())
    name = " ".join(
        part for part in (fields.get("first_name", ""), fields.get("last_name", "")) if part
    )
    subject = fields.get("attribute[subject]", "").strip() or (
        f"{CATALOGUE[code].name_fa} - {PROVINCES[province].name_fa}"
    )
    event = RequestSubmitted(
        event_id=event_id,
        request_id=derived_id("api-request", event_id),
        occurred_at=now,
        recorded_at=now,
        source=caller.name,
        actor=caller.name,
        correlation_id=fields.get("device_id") or None,
        channel=caller.channel,
        requester=Requester(
            national_id=national_id,
            name=name.strip() or "—",
            phone=fields.get("phone") or None,
            email=fields.get("email") or None,
        ),
        category=code,
        province=province,
        subject=subject,
        body=description,
        priority=priority,  # type: ignore[arg-type]
    )
    _check(event)
    return event


LOCATION_RANGES = {"lat": 90.0, "long": 180.0}


def _check_location(fields: dict[str, str]) -> None:
    """Open311's ``lat``/``long``, when given, are checked; they are not stored: a 124 request is
    placed by its province (``attribute[province]``), which routes it."""
    for name, limit in LOCATION_RANGES.items():
        text = fields.get(name, "").strip()
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            raise BadInput(name, f"{text!r} is not a number") from None
        if not -limit <= value <= limit:  # also refuses nan
            raise BadInput(name, f"{text!r}: a WGS 84 degree from {-limit:g} to {limit:g}")


def _check(event: Event) -> None:
    errors = validate(event, now=event.recorded_at)
    if errors:
        first = errors[0]
        raise BadInput(FIELD_NAMES.get(first.field, first.field), first.message)


async def _publish(services: Services, event: Event) -> bool:
    """Send through the publisher; ``True`` once the broker confirmed it, ``False`` if it is still
    on its way after :data:`CONFIRM_SECONDS` (the producer keeps retrying it)."""
    if services.publisher is None:
        raise Problem(503, "publishing is not available")
    try:  # waits only for the topic's metadata (a broker unreachable) or a full buffer
        future = await asyncio.wait_for(services.publisher.send(event), CONFIRM_SECONDS)
    except Exception as error:  # not queued: nothing will be published
        raise Problem(503, f"Kafka did not take the event: {type(error).__name__}") from error

    def confirmed(done: asyncio.Future[Any]) -> None:
        # also when the answer went out as 202 already: the view shows what the broker took
        if done.cancelled() or done.exception() is not None:
            return
        metadata = done.result()
        if isinstance(event, RequestSubmitted):
            services.view.submitted(submission_of(event))
            services.view.published(metadata.partition, metadata.offset)
        elif type(event).__name__ in ACTION_EVENTS:  # shown once the worker takes it in
            services.view.acted(event.request_id, fact_of(event))
            services.view.published(metadata.partition, metadata.offset)

    future.add_done_callback(confirmed)
    try:
        await asyncio.wait_for(asyncio.shield(future), CONFIRM_SECONDS)
    except TimeoutError:
        _count_published(services, "on_its_way")
        return False
    except Exception as error:
        raise Problem(503, f"Kafka did not take the event: {type(error).__name__}") from error
    _count_published(services, "confirmed")
    return True


def _count_published(services: Services, outcome: str) -> None:
    if services.metrics is not None:
        services.metrics.published.labels(outcome).inc()


def _may_read(caller: Caller, state: RequestState | None, sub: Submission | None) -> bool:
    if caller.role == "ministry":
        return True
    if caller.role == "publisher":
        return sub is not None and sub.owner == caller.name
    return state is not None and state.body_id == caller.body


def _readable(
    view: View, caller: Caller, request_id: str
) -> tuple[RequestState | None, Submission | None]:
    state, sub = view.get(request_id)
    if state is None and sub is None:
        raise Problem(404, f"service_request_id: unknown request {request_id!r}")
    if not _may_read(caller, state, sub):
        raise Problem(403, f"{caller.name}: request {request_id!r} is not yours to read")
    return state, sub


def _visible_ids(view: View, caller: Caller) -> list[str]:
    if caller.role == "publisher":
        return view.submission_ids(caller.name)
    if caller.role == "body":
        return view.state_ids(caller.body)
    return list(dict.fromkeys([*view.state_ids(), *view.submission_ids()]))


def record(view: View, state: RequestState | None, sub: Submission | None) -> dict[str, Any]:
    """A request as Open311 shows it, with samt124's detailed status."""
    if state is None:
        assert sub is not None
        detailed, code, province, requested = (
            "submitted",
            sub.service_code,
            sub.province,
            sub.requested,
        )
        agency = expected = None
    else:
        detailed, code, province = state.status.lower(), state.category, state.province
        requested, agency = state.submitted_at, state.body_id
        p = view.pipeline
        expected = deadline(state, "RESOLUTION", p.calendar, p.policies)
    updated, note = view.updated(state, sub)
    if note is None:
        note = (
            f"{detailed} ({agency})" if agency is not None and detailed == "referred" else detailed
        )
    category = CATALOGUE.get(code)
    return {
        "service_request_id": state.request_id if state is not None else sub.request_id,  # type: ignore[union-attr]
        "status": open311.open311_status(detailed),
        "detailed_status": detailed,
        "status_notes": note,
        "service_name": category.name_en if category else code,
        "service_name_fa": category.name_fa if category else code,
        "service_code": code,
        "description": sub.description if sub is not None else None,
        "agency_responsible": agency,
        "service_notice": None,
        "requested_datetime": open311.when(requested),
        "updated_datetime": open311.when(updated),
        "expected_datetime": open311.when(expected),
        "address": f"{PROVINCES[province].name_en} — {PROVINCES[province].name_fa}",
        "address_id": None,
        "province": province,
        "zipcode": None,
        "lat": None,
        "long": None,
        "media_url": None,
    }


def _paging(page_text: str | None, size_text: str | None, *, default_size: int) -> tuple[int, int]:
    def number(name: str, text: str | None, default: int, top: int) -> int:
        if text is None:
            return default
        if not text.isdigit() or not 1 <= int(text) <= top:
            raise BadInput(name, f"{text!r}: a whole number from 1 to {top}")
        return int(text)

    return (
        number("page", page_text, 1, 1_000_000),
        number("page_size", size_text, default_size, max(default_size, MAX_PAGE_SIZE)),
    )


# -- the work queue and its actions ---------------------------------------------------------

ACTIONS = (
    "assign",
    "ask-applicant",
    "applicant-responded",
    "respond",
    "resolve",
    "transfer",
    "reopen",
)


def _work_routes(app: FastAPI, services: Services) -> None:
    view = services.view

    @app.get("/api/v1/queue")
    async def queue(request: Request) -> Response:
        caller = authenticate(services, request)
        query = request.query_params
        body = query.get("body")
        if caller.role == "publisher":
            raise Problem(403, f"{caller.name}: a publisher has no work queue")
        if caller.role == "body":
            if body is not None and body != caller.body:
                raise Problem(403, f"{caller.name}: the queue of {body!r} is not yours")
            body = caller.body
        province = query.get("province")
        if province is not None and province not in PROVINCES:
            raise BadInput("province", f"unknown province {province!r}")
        categories = open311.split_list(query.get("category"))
        open311.codes_known(categories)
        statuses = [s.upper() for s in open311.split_list(query.get("status"))]
        overdue_text = query.get("overdue")
        if overdue_text not in (None, "true", "false"):
            raise BadInput("overdue", f"{overdue_text!r}: true or false")
        page, size = _paging(query.get("page"), query.get("page_size"), default_size=50)
        now = services.now()

        def keep(row: Row) -> bool:
            if province is not None and row.province != province:
                return False
            if categories and row.category not in categories:
                return False
            if statuses and row.status not in statuses:
                return False
            late = row.next_deadline is not None and row.next_deadline <= now
            return overdue_text is None or late == (overdue_text == "true")

        filtered = province is not None or categories or statuses or overdue_text is not None
        total, rows = view.queue(body, (page - 1) * size, page * size, keep if filtered else None)
        shown = []
        for row in rows:
            state, _ = view.get(row.request_id)
            if state is None:
                continue
            shown.append(
                {
                    "request_id": row.request_id,
                    "service_code": row.category,
                    "service_name": CATALOGUE[row.category].name_en
                    if row.category in CATALOGUE
                    else row.category,
                    "status": row.status.lower(),
                    "holder": row.body_id,
                    "province": row.province,
                    "submitted": open311.when(row.submitted_at),
                    "next_deadline": open311.when(row.next_deadline),
                    "overdue": row.next_deadline is not None and row.next_deadline <= now,
                    "clocks": [
                        {**c, "due": open311.when(c["due"])} for c in view.clocks(state, now)
                    ],
                }
            )
        return Json(
            {
                "body": body,
                "province": province,
                "total": total,
                "page": page,
                "page_size": size,
                "requests": shown,
            }
        )

    @app.get("/api/v1/requests/{request_id}")
    async def detail(request: Request, request_id: str) -> Response:
        caller = authenticate(services, request)
        state, sub = _readable(view, caller, request_id)
        out = record(view, state, sub)
        if state is not None:
            out["clocks"] = [
                {**c, "due": open311.when(c["due"])} for c in view.clocks(state, services.now())
            ]
        return Json(out)

    @app.post("/api/v1/requests/{request_id}/{action}")
    async def act(request: Request, request_id: str, action: str) -> Response:
        if action not in ACTIONS:
            raise Problem(404, f"action {action!r}: one of {', '.join(ACTIONS)}")
        raw = await read_body(request, services.max_body)
        caller = authenticate(services, request)
        fields = parse_fields(request.headers.get("content-type", "application/json"), raw)
        state, sub = view.get(request_id)
        if state is None:
            if sub is not None:
                raise Problem(409, f"request {request_id!r} is not referred yet: try again shortly")
            raise Problem(404, f"request_id: unknown request {request_id!r}")
        if not _may_act(caller, action, state, sub):
            raise Problem(403, f"{caller.name}: {action} on request {request_id!r} is not yours")
        event = action_event(
            caller, action, state, fields, request.headers.get("idempotency-key"), services.now()
        )
        refused = refusal(state, event)
        if refused is not None:
            raise Problem(409, refused)
        _check(event)
        confirmed = await _publish(services, event)
        return JSONResponse(
            {
                "request_id": request_id,
                "action": action,
                "event_id": event.event_id,
                "event_type": type(event).__name__,
                "confirmed": confirmed,
            },
            status_code=202,
        )


def _may_act(caller: Caller, action: str, state: RequestState, sub: Submission | None) -> bool:
    if caller.role == "body":
        return state.body_id == caller.body and action != "reopen"
    if caller.role == "ministry":
        return action in ("transfer", "reopen")
    # a publisher records its applicant's answer on the requests it submitted
    return action == "applicant-responded" and sub is not None and sub.owner == caller.name


def _text(fields: dict[str, str], name: str) -> str:
    value = fields.get(name, "").strip()
    if not value:
        raise BadInput(name, "required")
    return value


def action_event(
    caller: Caller,
    action: str,
    state: RequestState,
    fields: dict[str, str],
    idempotency_key: str | None,
    now: datetime,
) -> Event:
    """The lifecycle event an action makes, by the caller (its body id as ``actor``)."""
    if idempotency_key is not None:
        event_id = derived_id("api-action", caller.key_id, state.request_id, idempotency_key)
    else:
        event_id = str(uuid.uuid4())
    actor = None if caller.role == "publisher" else caller.body
    common: dict[str, Any] = {
        "event_id": event_id,
        "request_id": state.request_id,
        "occurred_at": now,
        "recorded_at": now,
        "source": f"api:{caller.name}",
        "actor": actor,
    }
    holder = state.body_id
    if action == "assign":
        person = _text(fields, "assignee")
        assignee = person if person.startswith(holder + "/") else f"{holder}/{person}"
        return RequestAssigned(**common, body_id=holder, assignee=assignee)
    if action == "ask-applicant":
        return RequestAwaitingApplicant(**common, reason=_text(fields, "reason"))
    if action == "applicant-responded":
        return ApplicantResponded(**common, note=fields.get("note") or None)
    if action == "respond":
        return RequestResponded(**common, body_id=holder, message=_text(fields, "message"))
    if action == "resolve":
        outcome = _text(fields, "outcome").upper()
        if outcome not in OUTCOMES:
            raise BadInput("outcome", f"{outcome!r}: one of {', '.join(OUTCOMES)}")
        return RequestResolved(
            **common,
            body_id=holder,
            outcome=outcome,  # type: ignore[arg-type]
            resolution_note=fields.get("note", "").strip() or outcome,
        )
    if action == "transfer":
        kind = _text(fields, "to_body_kind").upper()
        if kind not in BODY_KINDS:
            raise BadInput("to_body_kind", f"{kind!r}: one of {', '.join(BODY_KINDS)}")
        to_province = _text(fields, "to_province").upper()
        if to_province not in PROVINCES:
            raise BadInput("to_province", f"unknown province {to_province!r}")
        return RequestTransferred(
            **common,
            to_province=to_province,
            to_body_id=_text(fields, "to_body_id"),
            to_body_kind=kind,  # type: ignore[arg-type]
            reason=_text(fields, "reason"),
        )
    assert action == "reopen"
    return RequestReopened(**{**common, "actor": HEADQUARTERS}, reason=_text(fields, "reason"))
