"""The pure core of ``samt124 simulate``: realistic national 124 traffic from a seed.

:func:`simulate` yields whole request lifecycles merged into one time line (non-decreasing
``occurred_at``): submission (or a secretariat letter), assignment, sometimes a question to the
applicant and the answer, the body's response, sometimes a transfer, resolution with an outcome,
closure with a rating, sometimes a reopening; plus provincial office closures announced in the
evening. Referrals are not produced: samt124's router derives them.

Everything comes from one seeded ``random.Random``: the same seed, count and start give the same
events, hence the same bytes. Pacing against the wall clock is the caller's business.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from samt124.domain.catalogue import CATALOGUE, Category
from samt124.domain.events import (
    ApplicantResponded,
    BodyKind,
    Channel,
    Event,
    LetterRegistered,
    OfficeClosureAnnounced,
    Outcome,
    RequestAssigned,
    RequestAwaitingApplicant,
    RequestClosed,
    Requester,
    RequestReopened,
    RequestResolved,
    RequestResponded,
    RequestSubmitted,
    RequestTransferred,
)
from samt124.domain.provinces import PROVINCES
from samt124.domain.routing import referral_bodies
from samt124.domain.tehran_time import TEHRAN

T = TypeVar("T")
BodyFor = Callable[[str, str, datetime], str]  # (province, category, submitted at) -> body id
REQUESTS_PER_DAY = 2_000.0  # the mean national intake unless told otherwise

OFFICE_HOURS = (8, 14)  # local hours bodies work, Saturday to Wednesday
WORKING_WEEKDAYS = frozenset({5, 6, 0, 1, 2})  # Sat, Sun, Mon, Tue, Wed
DESK_SOURCE = "desk-124"  # the back-office application bodies answer in

CHANNELS: Sequence[tuple[Channel, float, str]] = (
    ("PHONE_124", 44, "call-centre-124"),
    ("WEB_PORTAL", 22, "portal-124"),
    ("SAMTEMA_APP", 15, "samtema-app"),
    ("SMS", 7, "sms-3000700124"),
    ("IN_PERSON", 6, "counter"),
    ("SECRETARIAT", 6, "secretariat"),
)
GROUP_WEIGHTS = {  # share of requests by catalogue group, nationally
    "market_inspection": 38,
    "industrial_units": 20,
    "consumer_services": 14,
    "guild_licensing": 10,
    "general": 9,
    "trade": 5,
    "mining": 3,
    "correspondence": 1,
}
ALBORZ_GROUP_WEIGHTS = {  # the seed's province: industrial units first, every group well covered
    "market_inspection": 22,
    "industrial_units": 28,
    "consumer_services": 10,
    "guild_licensing": 14,
    "general": 8,
    "trade": 12,
    "mining": 5,
    "correspondence": 1,
}
OUTCOMES: dict[str, Sequence[tuple[Outcome, float]]] = {
    "market_inspection": (
        ("VIOLATOR", 35),
        ("NOT_VIOLATOR", 25),
        ("REFERRED_TO_PENALTY_AUTHORITY", 20),
        ("SATISFIED", 10),
        ("DUPLICATE", 5),
        ("NO_FURTHER_ACTION", 5),
    ),
    "other": (
        ("SATISFIED", 60),
        ("NO_FURTHER_ACTION", 20),
        ("NOT_OUR_RESPONSIBILITY", 12),
        ("DUPLICATE", 8),
    ),
    "out_of_remit": (("NOT_OUR_RESPONSIBILITY", 1),),
}
HOURLY_PROFILE = (  # relative arrival rate by local hour
    *(0.1, 0.05, 0.05, 0.05, 0.05, 0.1, 0.3, 0.6, 1.0, 1.0, 1.0, 1.0),
    *(1.0, 0.9, 0.7, 0.5, 0.5, 0.5, 0.5, 0.5, 0.4, 0.3, 0.2, 0.15),
)
WEEKDAY_PROFILE = (1.0, 1.0, 1.0, 0.6, 0.3, 1.0, 1.0)  # Mon..Sun: quiet Thursday, Friday
CLOSURE_REASONS = (
    "گرمای هوا",
    "آلودگی هوا",
    "سرما و بارش برف",
    "صرفه‌جویی در مصرف انرژی",
    "گرد و غبار",
)
AWAIT_REASONS = ("ارسال مدارک تکمیلی", "ارسال تصویر فاکتور", "نشانی دقیق واحد", "شماره پروانه")
REOPEN_REASONS = ("پاسخ قانع‌کننده نبود", "مشکل دوباره رخ داد", "اقدامی انجام نشد")
TRANSFER_TARGETS: Sequence[tuple[str, BodyKind, float]] = (
    ("ministry:agriculture", "OTHER_MINISTRY", 30),
    ("ministry:health", "OTHER_MINISTRY", 15),
    ("samt-org:{province}", "SAMT_ORGANIZATION", 35),  # another province
    ("association:{province}", "ASSOCIATION", 20),
)
FIRST_NAMES = ("علی", "محمد", "زهرا", "فاطمه", "حسین", "مریم", "رضا", "سارا", "مهدی", "نرگس")
LAST_NAMES = (
    "احمدی",
    "محمدی",
    "حسینی",
    "رضایی",
    "کریمی",
    "موسوی",
    "جعفری",
    "صادقی",
    "نوری",
    "کاظمی",
)
COMPANY_WORDS = (
    "پارس",
    "البرز",
    "سپاهان",
    "آریا",
    "نوین",
    "صنعت",
    "فولاد",
    "پلاستیک",
    "نساجی",
    "غذایی",
)


def provincial_organization(province: str, category: str, at: datetime) -> str:
    """Default body: the provincial SAMT organization (pass the router's choice to match it)."""
    return f"samt-org:{province}"


def simulate(
    seed: int,
    count: int,
    start: datetime,
    *,
    requests_per_day: float = REQUESTS_PER_DAY,
    closure_probability: float = 0.01,
    body_for: BodyFor | None = None,
) -> Iterator[Event]:
    """``count`` events from ``start`` on, in non-decreasing ``occurred_at`` order.

    ``requests_per_day`` is the mean national intake; ``closure_probability`` the chance that a
    province announces, on a given evening, that its offices close the next day(s).
    ``body_for`` names the body that does the work; by default the one the shipped referral
    rules refer the request to, so that every action is taken by the request's holder (the
    worker refuses actions by anyone else).
    """
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware")
    chosen = referral_bodies() if body_for is None else body_for
    return _Simulation(seed, requests_per_day, closure_probability, chosen).run(
        count, start.astimezone(UTC).replace(microsecond=start.microsecond // 1000 * 1000)
    )


class _Simulation:
    def __init__(
        self, seed: int, per_day: float, closure_probability: float, body_for: BodyFor
    ) -> None:
        self.rng = random.Random(seed)
        self.body_for = body_for
        self.closure_probability = closure_probability
        mean_profile = sum(h * d for h in HOURLY_PROFILE for d in WEEKDAY_PROFILE) / (
            24 * len(WEEKDAY_PROFILE)
        )
        self.peak_rate_ms = per_day / 86_400_000 / mean_profile  # rate at profile 1.0
        self.provinces = tuple(PROVINCES)
        self.province_weights = _cumulative([p.weight for p in PROVINCES.values()])
        self.channels = _cumulative([weight for _, weight, _ in CHANNELS])
        self.categories = {"": self._category_table(GROUP_WEIGHTS)}
        self.categories["IR-30"] = self._category_table(ALBORZ_GROUP_WEIGHTS)
        self.transfers = _cumulative([weight for _, _, weight in TRANSFER_TARGETS])
        self.outcomes = {key: _cumulative([w for _, w in table]) for key, table in OUTCOMES.items()}
        self.sequence = itertools.count()

    def _category_table(self, weights: Mapping[str, float]) -> tuple[list[Category], list[float]]:
        categories = list(CATALOGUE.values())
        sizes = {g: sum(1 for c in categories if c.group == g) for g in weights}
        return categories, _cumulative([weights[c.group] / sizes[c.group] for c in categories])

    def run(self, count: int, start: datetime) -> Iterator[Event]:
        heap: list[tuple[datetime, int, Event]] = []
        arrival = self._next_arrival(start)
        evening = start.astimezone(TEHRAN).replace(hour=19, minute=0, second=0, microsecond=0)
        if evening < start:
            evening += timedelta(days=1)
        for _ in range(count):
            while not heap or heap[0][0] > min(arrival, evening):
                if evening <= arrival:
                    self._push(heap, self._closures(evening))
                    evening += timedelta(days=1)
                else:
                    self._push(heap, self._lifecycle(arrival))
                    arrival = self._next_arrival(arrival)
            yield heapq.heappop(heap)[2]

    def _push(self, heap: list[tuple[datetime, int, Event]], events: list[Event]) -> None:
        for event in events:
            heapq.heappush(heap, (event.occurred_at, next(self.sequence), event))

    def _next_arrival(self, after: datetime) -> datetime:
        """Next submission: a Poisson process thinned by the hour and weekday profile."""
        t = after
        while True:
            t += timedelta(milliseconds=math.ceil(self.rng.expovariate(self.peak_rate_ms)))
            local = t.astimezone(TEHRAN)
            intensity = HOURLY_PROFILE[local.hour] * WEEKDAY_PROFILE[local.weekday()]
            if self.rng.random() < intensity:
                return t

    def _pick(self, options: Sequence[T], cumulative: list[float]) -> T:
        return self.rng.choices(options, cum_weights=cumulative)[0]

    def _closures(self, evening: datetime) -> list[Event]:
        events: list[Event] = []
        for province in self.provinces:
            if self.rng.random() >= self.closure_probability:
                continue
            first_day = evening.date() + timedelta(days=1)
            last_day = first_day + timedelta(days=self.rng.choice((0, 0, 0, 1, 2)))
            announced = evening + timedelta(minutes=self.rng.randrange(0, 180))
            events.append(
                OfficeClosureAnnounced(
                    **self.envelope(f"closure:{province}:{first_day}", announced),
                    source="governorate-announcements",
                    province=province,
                    first_day=first_day,
                    last_day=last_day,
                    reason=self.rng.choice(CLOSURE_REASONS),
                )
            )
        return events

    def envelope(self, request_id: str, at: datetime) -> dict[str, Any]:
        recorded = at + timedelta(milliseconds=self.rng.randrange(20, 3_000))
        return {
            "event_id": _uuid(self.rng),
            "request_id": request_id,
            "occurred_at": at.astimezone(UTC),
            "recorded_at": recorded.astimezone(UTC),
        }

    def _lifecycle(self, submitted_at: datetime) -> list[Event]:
        rng = self.rng
        province = self._pick(self.provinces, self.province_weights)
        categories, weights = self.categories.get(province, self.categories[""])
        channel, _, source = self._pick(CHANNELS, self.channels)
        category = self._pick(categories, weights)
        life = _Life(self, _uuid(rng))
        intake = self._intake(
            channel=channel,
            source=source,
            category=category,
            province=province,
            request_id=life.request_id,
            at=submitted_at,
        )
        life.add(intake)
        body = self.body_for(province, intake.category, submitted_at)  # a letter's may differ
        t = life.assign(body, working_hours(submitted_at, rng.lognormvariate(math.log(1.5), 0.8)))
        if rng.random() < 0.15:
            t = working_hours(t, rng.lognormvariate(math.log(3), 0.7))
            life.event(RequestAwaitingApplicant, t, body, reason=rng.choice(AWAIT_REASONS))
            if rng.random() < 0.1:  # the applicant never answers: the request stays paused
                return life.events
            t += timedelta(minutes=rng.randrange(30, 5 * 24 * 60))
            life.event(ApplicantResponded, t, None, source=source, note="مدارک ارسال شد")
        outcome_table = "market_inspection" if category.group == "market_inspection" else "other"
        if rng.random() < 0.08:
            t, body, outcome_table = self._transfer(life, t, body, province)
        t = working_hours(t, rng.lognormvariate(math.log(8), 0.7))
        life.event(RequestResponded, t, body, body_id=body, message=f"پاسخ {category.name_fa}")
        t = self._resolve_and_close(life, t, body, outcome_table)
        if rng.random() < 0.05:
            t += timedelta(hours=rng.uniform(12, 240))
            life.event(RequestReopened, t, None, source=source, reason=rng.choice(REOPEN_REASONS))
            t = working_hours(t, rng.lognormvariate(math.log(6), 0.7))
            life.event(RequestResponded, t, body, body_id=body, message="پیگیری مجدد")
            self._resolve_and_close(life, t, body, outcome_table)
        return life.events

    def _intake(
        self,
        *,
        channel: Channel,
        source: str,
        category: Category,
        province: str,
        request_id: str,
        at: datetime,
    ) -> RequestSubmitted | LetterRegistered:
        rng = self.rng
        subject = f"{category.name_fa} - {PROVINCES[province].name_fa}"
        body = (
            f"{subject}. شرح درخواست {rng.randrange(1, 10**6)}: "
            + "متن درخواست " * rng.randrange(3, 40)
        )
        common = {
            **self.envelope(request_id, at),
            "source": source,
            "province": province,
            "subject": subject,
            "body": body,
            "priority": category.priority,
            "attachment_count": rng.choice((0, 0, 0, 1, 2, 3)),
        }
        if channel == "SECRETARIAT":
            return LetterRegistered(
                **common,
                category=category.code if rng.random() < 0.3 else "COR-REQUEST-LETTER",
                registry_number=f"{rng.randrange(1, 99)}/{rng.randrange(1, 99_999)}",
                sender_organization=f"شرکت {rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_WORDS)}",
                letter_date=(at - timedelta(days=rng.randrange(0, 10))).astimezone(TEHRAN).date(),
            )
        return RequestSubmitted(
            **common, channel=channel, category=category.code, requester=self._requester()
        )

    def _requester(self) -> Requester:
        rng = self.rng
        if rng.random() < 0.6:
            national_id = f"{rng.randrange(10**10, 10**11):011d}"
            name = f"شرکت {rng.choice(COMPANY_WORDS)} {rng.choice(COMPANY_WORDS)}"
        else:
            national_id = f"{rng.randrange(10**9, 10**10):010d}"
            name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        phone = f"09{rng.randrange(10**9):09d}" if rng.random() < 0.85 else None
        email = f"user{rng.randrange(10**6)}@example.ir" if rng.random() < 0.3 else None
        return Requester(national_id=national_id, name=name, phone=phone, email=email)

    def _transfer(
        self, life: _Life, t: datetime, body: str, province: str
    ) -> tuple[datetime, str, str]:
        """Re-referral: another ministry answers, or another province's body or an association."""
        rng = self.rng
        target, kind, _ = self._pick(TRANSFER_TARGETS, self.transfers)
        to_province = province
        if kind == "SAMT_ORGANIZATION":
            to_province = self._pick(self.provinces, self.province_weights)
        to_body = target.format(province=to_province)
        t = working_hours(t, rng.lognormvariate(math.log(4), 0.8))
        life.event(
            RequestTransferred,
            t,
            body,
            to_province=to_province,
            to_body_id=to_body,
            to_body_kind=kind,
            reason="خارج از حیطه وظایف" if kind == "OTHER_MINISTRY" else "ارجاع به مرجع صالح",
        )
        if kind == "OTHER_MINISTRY":  # the other ministry answers outside 124: 124 records it
            return t, to_body, "out_of_remit"
        t = life.assign(to_body, working_hours(t, rng.lognormvariate(math.log(2), 0.8)))
        return t, to_body, "other"

    def _resolve_and_close(self, life: _Life, t: datetime, body: str, table: str) -> datetime:
        rng = self.rng
        outcome = self._pick([o for o, _ in OUTCOMES[table]], self.outcomes[table])
        t = working_hours(t, rng.lognormvariate(math.log(6), 0.9))
        life.event(RequestResolved, t, body, body_id=body, outcome=outcome, resolution_note=outcome)
        t += timedelta(minutes=rng.randrange(10, 3 * 24 * 60))
        rating = self._pick((1, 2, 3, 4, 5), [10, 18, 33, 58, 100]) if rng.random() < 0.6 else None
        life.event(RequestClosed, t, None, source=DESK_SOURCE, satisfaction=rating)
        return t


class _Life:
    """The events of one request, each caused by the one before."""

    def __init__(self, simulation: _Simulation, request_id: str) -> None:
        self.simulation = simulation
        self.request_id = request_id
        self.events: list[Event] = []

    def add(self, event: Event) -> None:
        self.events.append(event)

    def event(
        self, cls: Callable[..., Event], at: datetime, actor: str | None, **fields: Any
    ) -> None:
        fields.setdefault("source", DESK_SOURCE)
        self.add(
            cls(
                **self.simulation.envelope(self.request_id, at),
                actor=actor,
                causation_id=self.events[-1].event_id,
                **fields,
            )
        )

    def assign(self, body: str, at: datetime) -> datetime:
        assignee = f"{body}/expert-{self.simulation.rng.randrange(1, 40):02d}"
        self.event(RequestAssigned, at, body, body_id=body, assignee=assignee)
        return at


def working_hours(t: datetime, hours: float) -> datetime:
    """``t`` plus ``hours`` of office time (Saturday to Wednesday, 08:00-14:00 Tehran)."""
    remaining = timedelta(milliseconds=round(hours * 3_600_000))
    local = t.astimezone(TEHRAN)
    opens, closes = OFFICE_HOURS
    while True:
        day_open = local.replace(hour=opens, minute=0, second=0, microsecond=0)
        day_close = day_open.replace(hour=closes)
        if local.weekday() in WORKING_WEEKDAYS and local < day_close:
            begin = max(local, day_open)
            if begin + remaining <= day_close:
                return (begin + remaining).astimezone(UTC)
            remaining -= day_close - begin
        local = day_open + timedelta(days=1)


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _cumulative(weights: Sequence[float]) -> list[float]:
    return list(itertools.accumulate(weights))


__all__ = ["REQUESTS_PER_DAY", "BodyFor", "provincial_organization", "simulate", "working_hours"]
