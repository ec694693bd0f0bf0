"""Group commit: requests written together end exactly as if written one after another."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from typing import Literal

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from sentinel_app.api import ingest_writer
from sentinel_app.api.ingest_writer import IngestWriter
from sentinel_app.db import session_scope, utcnow
from sentinel_app.ingest.normalized import NormalizedAlert
from sentinel_app.models import Alert, AlertEvent, Integration
from sentinel_app.services import alerts
from sentinel_app.services.alerts import IngestRequest, IngestResult
from tests import factories

Action = Literal["trigger", "acknowledge", "resolve"]
Signal = tuple[str, Action]  # (dedup key, action)


def _request(integration: Integration, signals: list[Signal]) -> IngestRequest:
    return IngestRequest(
        integration,
        [NormalizedAlert(action=action, dedup_key=key, title=f"Alert {key}") for key, action in signals],
    )


def _state(engine: sa.Engine, integration_id: int | None) -> dict[str, list[tuple[str, int]]]:
    """Per key, its alerts oldest first: (status, occurrences). Keys may be written in any order."""
    with Session(engine) as session:
        rows = session.exec(
            select(Alert).where(Alert.integration_id == integration_id).order_by(col(Alert.id))
        ).all()
    state: dict[str, list[tuple[str, int]]] = {}
    for a in rows:
        state.setdefault(a.dedup_key, []).append((a.status, a.occurrence_count))
    return state


def _actions(results: list[list[IngestResult]]) -> list[list[tuple[str, str]]]:
    return [[(r.dedup_key, r.action.value) for r in per_request] for per_request in results]


def _compare(engine: sa.Engine, team_id: int, requests: list[list[Signal]]) -> None:
    with Session(engine, expire_on_commit=False) as session:
        batched = factories.integration(session, team_id)
        one_by_one = factories.integration(session, team_id)
        session.expunge_all()
    with session_scope(write=True, engine=engine) as session:
        together = alerts.ingest_many(
            session, requests=[_request(batched, r) for r in requests], now=utcnow()
        )
    separately = []
    for signals in requests:
        with session_scope(write=True, engine=engine) as session:
            separately.append(
                alerts.ingest(
                    session, integration=one_by_one, alerts=_request(one_by_one, signals).alerts, now=utcnow()
                )
            )
    assert _actions(together) == _actions(separately)
    assert _state(engine, batched.id) == _state(engine, one_by_one.id)


@pytest.mark.parametrize(
    "requests",
    [
        pytest.param([[("k", "trigger")], [("k", "resolve")], [("k", "trigger")]], id="fire-resolve-fire"),
        pytest.param([[("k", "trigger")], [("k", "trigger")], [("k", "acknowledge")]], id="repeat-then-ack"),
        pytest.param([[("k", "resolve"), ("k", "trigger")], [("k", "trigger")]], id="resolve-and-refire"),
        pytest.param(
            [[("a", "trigger"), ("b", "trigger")], [("b", "resolve"), ("a", "trigger")]], id="two-keys"
        ),
    ],
)
def test_batched_requests_match_one_by_one(
    engine: sa.Engine, db: Session, requests: list[list[Signal]]
) -> None:
    team = factories.team(db)
    db.commit()
    assert team.id is not None
    _compare(engine, team.id, requests)


_signal = st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from(["trigger", "resolve", "acknowledge"]))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(requests=st.lists(st.lists(_signal, min_size=1, max_size=4), min_size=1, max_size=5))
def test_any_batch_matches_one_by_one(engine: sa.Engine, db: Session, requests: list[list[Signal]]) -> None:
    team = factories.team(db)
    db.commit()
    assert team.id is not None
    _compare(engine, team.id, requests)


def _integration(db: Session) -> Integration:
    team = factories.team(db)
    db.commit()
    integration = factories.integration(db, team.id)
    db.expunge(integration)
    return integration


def test_concurrent_senders_are_all_written_once(engine: sa.Engine, db: Session) -> None:
    integration = _integration(db)
    writer = IngestWriter.for_engine(engine)
    futures: list[Future[list[IngestResult]]] = []
    lock = threading.Lock()

    def sender(worker: int) -> None:
        for n in range(5):
            future = writer.submit(
                _request(integration, [(f"w{worker}-{n}", "trigger"), ("shared", "trigger")])
            )
            with lock:
                futures.append(future)

    threads = [threading.Thread(target=sender, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    results = [f.result(timeout=60) for f in futures]
    assert all(len(r) == 2 for r in results)
    state = _state(engine, integration.id)
    assert len(state) == 41  # 40 distinct keys, and "shared"
    assert state["shared"] == [("firing", 40)]
    with Session(engine) as session:
        events = session.exec(select(sa.func.count()).select_from(AlertEvent)).one()
    assert events >= 80  # a timeline row per firing (plus "nobody will be paged" notes)


def test_a_failing_request_fails_alone(engine: sa.Engine, db: Session) -> None:
    integration = _integration(db)
    # An integration that does not exist (deleted meanwhile): its insert breaks the foreign key.
    ghost = Integration.model_validate({**integration.model_dump(), "id": 987_654})
    writer = IngestWriter.for_engine(engine)
    good, bad, also_good = (
        ingest_writer._Job(_request(integration, [("one", "trigger")]), touch=True),
        ingest_writer._Job(_request(ghost, [("two", "trigger")]), touch=False),
        ingest_writer._Job(_request(integration, [("three", "trigger")]), touch=False),
    )
    writer._write([good, bad, also_good])
    assert [r.action.value for r in good.future.result()] == ["create"]
    assert [r.action.value for r in also_good.future.result()] == ["create"]
    with pytest.raises(sa.exc.IntegrityError):
        bad.future.result()
    assert sorted(_state(engine, integration.id)) == ["one", "three"]
    with Session(engine) as session:
        stamped = session.get(Integration, integration.id)
        assert stamped is not None and stamped.last_received_at is not None


def test_idle_writer_threads_end_and_come_back(
    engine: sa.Engine, db: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ingest_writer, "IDLE_SECONDS", 0.05)
    integration = _integration(db)
    writer = IngestWriter.for_engine(engine)
    writer.submit(_request(integration, [("first", "trigger")])).result(timeout=30)
    deadline = time.monotonic() + 10
    while writer._alive and time.monotonic() < deadline:
        time.sleep(0.02)
    assert writer._alive == 0
    [result] = writer.submit(_request(integration, [("second", "trigger")])).result(timeout=30)
    assert result.action.value == "create"


def test_a_request_cancelled_before_its_turn_is_skipped(engine: sa.Engine, db: Session) -> None:
    integration = _integration(db)
    writer = IngestWriter.for_engine(engine)
    with writer._ready:  # hold the queue so both requests wait
        gone = writer.submit(_request(integration, [("gone", "trigger")]))
        kept = writer.submit(_request(integration, [("kept", "trigger")]))
        assert gone.cancel()  # what asyncio.wrap_future does when the sender disconnects
    [result] = kept.result(timeout=30)
    assert result.action.value == "create"
    assert sorted(_state(engine, integration.id)) == ["kept"]
