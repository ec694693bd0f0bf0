"""The schedules and calendars services: row ↔ engine mapping, validation, events, import, iCalendar."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import icalendar
import pytest
from sqlmodel import Session, func, select

from sentinel_app import bus
from sentinel_app.domain import schedule as engine
from sentinel_app.models import (
    AuditEntry,
    LayerParticipant,
    Role,
    RotationLayer,
    ScheduleOverride,
    Team,
)
from sentinel_app.services import calendars, teams
from sentinel_app.services import schedules as service
from sentinel_app.services.errors import ValidationFailed
from tests import factories

UTC = dt.UTC


def _at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


class RecordingBus(bus.MemoryBus):
    """The in-process bus, remembering what it delivers."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered: list[bus.Event] = []

    def _fanout(self, event: bus.Event) -> None:
        self.delivered.append(event)
        super()._fanout(event)


@pytest.fixture
def recorder(monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingBus]:
    recording = RecordingBus()
    monkeypatch.setattr(bus, "_bus", recording)
    yield recording


def _team_with(db: Session, *names: str) -> tuple[Team, list[int]]:
    team = factories.team(db)
    assert team.id is not None
    ids = []
    for name in names:
        person = factories.user(db, email=f"{name}@example.com", name=name.title())
        assert person.id is not None
        teams.set_membership(db, team_id=team.id, user_id=person.id, role=Role.RESPONDER)
        ids.append(person.id)
    db.commit()
    return team, ids


def _count(db: Session, model: Any) -> int:
    return int(db.exec(select(func.count()).select_from(model)).one())


def test_load_schedule_maps_rows_to_the_engine(db: Session) -> None:
    team, (a, b) = _team_with(db, "ana", "ben")
    assert team.id is not None
    schedule = service.create_schedule(db, team_id=team.id, name="Primary", timezone="Europe/London")
    layer, participants = service.create_layer(
        db,
        schedule=schedule,
        fields={
            "name": "Nights",
            "priority": 3,
            "kind": "custom",
            "unit": "day",
            "interval": 2,
            "shift_length_minutes": 600,
            "handoff_time": "21:30",
            "timezone": "America/New_York",
            "start_at": "2026-03-01T21:30:00-05:00",
            "end_at": _at("2027-03-01T00:00:00+00:00"),
            "start_index": 1,
            "restrictions": [
                {"kind": "weekly", "start": "18:00", "end": "08:00", "start_weekday": 4, "end_weekday": 0}
            ],
            "participants": [b, a, b],
        },
    )
    first = service.create_override(
        db,
        schedule=schedule,
        user_id=a,
        start_at=_at("2026-04-01T00:00:00+00:00"),
        end_at=_at("2026-04-02T00:00:00+00:00"),
    )
    second = service.create_override(
        db,
        schedule=schedule,
        user_id=b,
        start_at=_at("2026-04-01T06:00:00+00:00"),
        end_at=_at("2026-04-01T07:00:00+00:00"),
    )
    db.commit()
    assert participants == [b, a, b] and layer.handoff_time == "21:30"
    rows = db.exec(select(LayerParticipant).order_by(LayerParticipant.position)).all()  # type: ignore[arg-type]
    assert [(r.position, r.user_id) for r in rows] == [(0, b), (1, a), (2, b)]
    assert schedule.id is not None
    loaded = service.load_schedule(db, schedule_id=schedule.id)
    assert loaded.timezone == "Europe/London"
    (got,) = loaded.layers
    assert got == engine.Layer(
        id=layer.id or 0,
        priority=3,
        participants=[b, a, b],
        kind="custom",
        unit="day",
        interval=2,
        shift_length=dt.timedelta(hours=10),
        handoff_time=dt.time(21, 30),
        timezone="America/New_York",
        start=_at("2026-03-02T02:30:00+00:00"),
        end=_at("2027-03-01T00:00:00+00:00"),
        start_index=1,
        restrictions=[
            engine.Restriction(
                kind="weekly", start=dt.time(18), end=dt.time(8), start_weekday=4, end_weekday=0
            )
        ],
    )
    # Override ids grow with creation, so the later override wins where both apply.
    assert [(o.id, o.created_seq) for o in loaded.overrides] == [(first.id, first.id), (second.id, second.id)]
    assert (second.id or 0) > (first.id or 0)
    assert engine.on_call(loaded, _at("2026-04-01T06:30:00+00:00"))[0].user_id == b


def test_only_overrides_in_the_queried_range_are_loaded(db: Session) -> None:
    team, (a,) = _team_with(db, "ana")
    assert team.id is not None
    schedule = service.create_schedule(db, team_id=team.id, name="S")
    for day in (1, 5, 9):
        service.create_override(
            db,
            schedule=schedule,
            user_id=a,
            start_at=dt.datetime(2026, 5, day, tzinfo=UTC),
            end_at=dt.datetime(2026, 5, day + 1, tzinfo=UTC),
        )
    db.commit()
    assert schedule.id is not None

    def days(start: dt.datetime | None, end: dt.datetime | None) -> list[int]:
        loaded = service.load_schedule(db, schedule_id=schedule.id or 0, start=start, end=end)
        return [o.start.day for o in loaded.overrides]

    assert days(None, None) == [1, 5, 9]
    assert days(dt.datetime(2026, 5, 2, tzinfo=UTC), dt.datetime(2026, 5, 6, tzinfo=UTC)) == [5]
    assert (
        days(dt.datetime(2026, 5, 2, tzinfo=UTC), dt.datetime(2026, 5, 5, tzinfo=UTC)) == []
    )  # [start, end)
    assert days(dt.datetime(2026, 5, 6, tzinfo=UTC), None) == [9]
    assert days(None, dt.datetime(2026, 5, 1, 0, 0, 1, tzinfo=UTC)) == [1]
    assert (
        service.on_call_at(db, schedule_id=schedule.id, at=dt.datetime(2026, 5, 5, 12, tzinfo=UTC))[0].user_id
        == a
    )


def test_omitted_handoff_time_is_the_local_time_of_start(db: Session) -> None:
    team, (a,) = _team_with(db, "ana")
    assert team.id is not None
    schedule = service.create_schedule(db, team_id=team.id, name="S", timezone="America/New_York")
    layer, _ = service.create_layer(
        db,
        schedule=schedule,
        fields={"name": "L", "kind": "daily", "start_at": "2026-03-10T14:45:00Z", "participants": [a]},
    )
    assert layer.handoff_time == "10:45" and layer.handoff_weekday is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"interval": 0}, "interval"),
        ({"shift_length_minutes": 0}, "shift_length_minutes"),
        ({"handoff_time": "7:00"}, "handoff_time"),
        ({"start_at": "2026-03-10T09:00:00"}, "start_at"),
        ({"restrictions": [{"kind": "hourly", "start": "09:00", "end": "10:00"}]}, "restrictions[0].kind"),
        (
            {
                "restrictions": [
                    {"kind": "weekly", "start": "09:00", "end": "09:00", "start_weekday": 2, "end_weekday": 2}
                ]
            },
            "restrictions[0].end",
        ),
        ({"participants": [999_999]}, "participants[0]"),
    ],
)
def test_invalid_layers_name_the_field_and_write_nothing(
    db: Session, recorder: RecordingBus, change: dict[str, Any], field: str
) -> None:
    team, (a,) = _team_with(db, "ana")
    assert team.id is not None
    schedule = service.create_schedule(db, team_id=team.id, name="S")
    db.commit()
    audit_rows, events = _count(db, AuditEntry), len(recorder.delivered)
    fields = {"name": "L", "kind": "daily", "start_at": "2026-03-10T09:00:00Z", "participants": [a], **change}
    with pytest.raises(ValidationFailed) as failure:
        service.create_layer(db, schedule=schedule, fields=fields)
    assert failure.value.field == field
    db.commit()
    assert _count(db, RotationLayer) == 0 and _count(db, AuditEntry) == audit_rows
    assert len(recorder.delivered) == events


def test_changes_publish_oncall_changed_only_when_committed(db: Session, recorder: RecordingBus) -> None:
    team, (a, b) = _team_with(db, "ana", "ben")
    assert team.id is not None
    schedule = service.create_schedule(db, team_id=team.id, name="S")
    db.commit()
    assert [(e.kind, e.data, e.key) for e in recorder.delivered] == [
        ("oncall.changed", {"schedule_id": schedule.id, "team_id": team.id}, f"schedule:{schedule.id}")
    ]
    service.create_swap(
        db,
        schedule=schedule,
        first=service.SwapSide(a, _at("2026-06-01T00:00:00+00:00"), _at("2026-06-02T00:00:00+00:00")),
        second=service.SwapSide(b, _at("2026-06-03T00:00:00+00:00"), _at("2026-06-04T00:00:00+00:00")),
    )
    db.rollback()
    assert len(recorder.delivered) == 1 and _count(db, ScheduleOverride) == 0
    rows = service.create_swap(
        db,
        schedule=schedule,
        first=service.SwapSide(a, _at("2026-06-01T00:00:00+00:00"), _at("2026-06-02T00:00:00+00:00")),
        second=service.SwapSide(b, _at("2026-06-03T00:00:00+00:00"), _at("2026-06-04T00:00:00+00:00")),
    )
    db.commit()
    assert len(recorder.delivered) == 2 and rows[0].swap_group == rows[1].swap_group is not None
    assert [(r.user_id, r.start_at.day) for r in rows] == [(b, 1), (a, 3)]


def _document(team: Team, a: str, b: str) -> dict[str, Any]:
    return {
        "version": 1,
        "schedules": [
            {
                "team": team.slug,
                "name": "Imported",
                "timezone": "Asia/Kolkata",
                "description": "from the old tool",
                "layers": [
                    {
                        "name": "Weekly",
                        "kind": "weekly",
                        "handoff_time": "10:00",
                        "handoff_weekday": 0,
                        "start_at": "2026-01-05T10:00:00+05:30",
                        "participants": [a, b.upper()],
                    }
                ],
                "overrides": [
                    {"user": b, "start_at": "2026-01-06T00:00:00Z", "end_at": "2026-01-07T00:00:00Z"}
                ],
            }
        ],
    }


def test_import_document_creates_then_changes_nothing(db: Session, recorder: RecordingBus) -> None:
    team, (a, b) = _team_with(db, "ana", "ben")
    document = _document(team, "ana@example.com", "ben@example.com")
    first = service.import_document(db, document=document)
    db.commit()
    assert [i.status for i in first.items] == ["created"]
    schedule_id = first.items[0].schedule_id
    audit_rows, events = _count(db, AuditEntry), len(recorder.delivered)
    second = service.import_document(db, document=document)
    db.commit()
    assert [i.status for i in second.items] == ["unchanged"]
    assert _count(db, AuditEntry) == audit_rows and len(recorder.delivered) == events
    exported = service.export_schedule(db, schedule=service.get_schedule(db, schedule_id=schedule_id))
    assert service.import_document(db, document=exported).items[0].status == "unchanged"
    loaded = service.load_schedule(db, schedule_id=schedule_id)
    assert loaded.layers[0].participants == (a, b)
    assert engine.on_call(loaded, _at("2026-01-06T12:00:00+00:00"))[0] == engine.OnCall(
        b, "override", loaded.overrides[0].id
    )
    # Every team is authorised before anything in it changes.
    asked: list[int] = []

    def deny(team_id: int) -> None:
        asked.append(team_id)
        raise PermissionError(team_id)

    with pytest.raises(PermissionError):
        service.import_document(db, document=document, authorize=deny)
    assert asked == [team.id]


def test_parse_events_reads_dates_floating_times_durations_and_refuses_recurrence() -> None:
    text = "\r\n".join(
        [
            "BEGIN:VCALENDAR",
            "VERSION:2.0",
            "PRODID:-//t//t//EN",
            "BEGIN:VEVENT",
            "UID:a",
            "DTSTART;VALUE=DATE:20261101",
            "SUMMARY:Ana <ANA@example.com> covers",
            "END:VEVENT",
            "BEGIN:VEVENT",
            "UID:b",
            "DTSTART:20261101T013000",
            "DURATION:PT1H",
            "ATTENDEE:mailto:ben@example.com",
            "ORGANIZER:mailto:boss@example.com",
            "END:VEVENT",
            "END:VCALENDAR",
            "",
        ]
    )
    events, cancelled = calendars.parse_events(text, timezone="America/New_York")
    assert cancelled == 0
    day, floating = events
    # A New York day on which the clocks fall back lasts 25 hours.
    assert (day.start, day.end) == (_at("2026-11-01T04:00:00+00:00"), _at("2026-11-02T05:00:00+00:00"))
    assert day.emails == ("ana@example.com",)
    # 01:30 happens twice that night; a floating time means its first occurrence (EDT).
    assert (floating.start, floating.end) == (
        _at("2026-11-01T05:30:00+00:00"),
        _at("2026-11-01T07:30:00+00:00"),
    )
    assert floating.emails == ("ben@example.com", "boss@example.com")
    with pytest.raises(ValidationFailed) as failure:
        calendars.parse_events(text.replace("DURATION:PT1H", "RRULE:FREQ=WEEKLY"), timezone="UTC")
    assert failure.value.field == "events[1].rrule"
    with pytest.raises(ValidationFailed) as failure:
        calendars.parse_events(text.replace("DURATION:PT1H\r\n", ""), timezone="UTC")
    assert failure.value.field == "events[1].dtend"


def test_feed_uids_do_not_depend_on_when_the_feed_is_fetched(db: Session) -> None:
    team, (a, b) = _team_with(db, "ana", "ben")
    assert team.id is not None
    schedule = service.create_schedule(db, team_id=team.id, name="Primary", timezone="Australia/Sydney")
    service.create_layer(
        db,
        schedule=schedule,
        fields={
            "name": "Weekly",
            "kind": "weekly",
            "start_at": "2026-01-05T09:00:00+11:00",
            "participants": [a, b],
        },
    )
    db.commit()
    now = _at("2026-06-10T12:00:00+00:00")

    def fetch(at: dt.datetime) -> dict[str, tuple[dt.datetime, dt.datetime]]:
        calendar = icalendar.Calendar.from_ical(calendars.schedule_feed(db, schedule=schedule, now=at))
        return {str(e["UID"]): (e.get("DTSTART").dt, e.get("DTEND").dt) for e in calendar.walk("VEVENT")}

    today, tomorrow = fetch(now), fetch(now + dt.timedelta(days=1, hours=3))
    shared = set(today) & set(tomorrow)
    assert len(shared) >= len(today) - 1
    assert all(today[uid][0] == tomorrow[uid][0] for uid in shared)
    lo, hi = calendars.feed_window(now)
    assert (lo, hi) == (_at("2026-05-11T00:00:00+00:00"), _at("2026-09-09T00:00:00+00:00"))
    first_start = min(start for start, _ in today.values())
    assert first_start < lo  # the shift running at the window's start keeps its real start
    assert service.shift_plan(db, schedule_id=schedule.id or 0, start=first_start, end=hi).shifts == [
        s.shift for s in calendars.feed_shifts(db, schedules=[schedule], now=now)
    ]
