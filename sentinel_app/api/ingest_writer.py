"""Group commit for inbound webhooks: requests that arrive together are written in one transaction.

Each request still gets its answer only after its alerts are committed, so a sender that sees
202 never loses an alert and one that sees an error (or no answer) sends again. What changes is
the cost: a transaction, its commit and a handful of statements are shared by every request
that queued while the previous transaction ran, instead of paid per request by a thread of its
own. A batch that fails is retried one request per transaction, so an error reaches only the
request that caused it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from sentinel_app.db import session_scope, utcnow
from sentinel_app.models import Integration
from sentinel_app.services import alerts as alert_service

log = logging.getLogger(__name__)

# Enough to share a commit among many requests, small enough to keep one transaction short.
MAX_ALERTS_PER_TRANSACTION = 1_000
# Writer threads end when idle this long, and start again with the next request.
IDLE_SECONDS = 10.0
_DEADLOCK_RETRIES = 3
_RETRYABLE = ("40P01", "40001")  # deadlock detected, serialization failure


@dataclass
class _Job:
    request: alert_service.IngestRequest
    touch: bool
    future: Future[list[alert_service.IngestResult]] = field(default_factory=Future)


class IngestWriter:
    """Writer threads for one engine; `submit` queues a request and returns its future results."""

    def __init__(self, engine: sa.Engine, *, threads: int) -> None:
        self._engine = engine
        self._wanted = threads
        self._alive = 0
        self._jobs: deque[_Job] = deque()
        self._ready = threading.Condition()

    @classmethod
    def for_engine(cls, engine: sa.Engine) -> IngestWriter:
        """One thread on SQLite (it has one writer at a time anyway), two on PostgreSQL."""
        return cls(engine, threads=2 if engine.dialect.name == "postgresql" else 1)

    @property
    def engine(self) -> sa.Engine:
        """The database this writer commits to."""
        return self._engine

    def submit(
        self, request: alert_service.IngestRequest, *, touch: bool = False
    ) -> Future[list[alert_service.IngestResult]]:
        """Queue one request's alerts; `touch` also stamps the integration's last_received_at."""
        job = _Job(request, touch)
        with self._ready:
            self._jobs.append(job)
            if self._alive < min(self._wanted, len(self._jobs)):
                self._alive += 1
                threading.Thread(target=self._run, name="sentinel-ingest", daemon=True).start()
            else:
                self._ready.notify()
        return job.future

    def _take(self) -> list[_Job] | None:
        with self._ready:
            while not self._jobs:
                if not self._ready.wait(IDLE_SECONDS) and not self._jobs:
                    self._alive -= 1
                    return None
            jobs = [self._jobs.popleft()]
            alerts = len(jobs[0].request.alerts)
            while self._jobs and alerts + len(self._jobs[0].request.alerts) <= MAX_ALERTS_PER_TRANSACTION:
                alerts += len(self._jobs[0].request.alerts)
                jobs.append(self._jobs.popleft())
            return jobs

    def _run(self) -> None:
        while (jobs := self._take()) is not None:
            # A request whose sender went away before its turn is dropped (it never got its 202,
            # so it sends again); the others can no longer be cancelled, so their results land.
            jobs = [job for job in jobs if job.future.set_running_or_notify_cancel()]
            if not jobs:
                continue
            try:
                self._write(jobs)
            except BaseException as exc:  # never leave a sender waiting on a dead thread
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise

    def _write(self, jobs: list[_Job]) -> None:
        try:
            results = self._commit(jobs)
        except Exception as exc:
            if len(jobs) == 1:
                jobs[0].future.set_exception(exc)
                return
            log.info("a batch of %d webhook requests failed (%s); writing them one by one", len(jobs), exc)
            for job in jobs:
                try:
                    [result] = self._commit([job])
                except Exception as one:
                    job.future.set_exception(one)
                else:
                    job.future.set_result(result)
            return
        for job, result in zip(jobs, results, strict=True):
            job.future.set_result(result)

    def _commit(self, jobs: Sequence[_Job]) -> list[list[alert_service.IngestResult]]:
        for attempt in range(_DEADLOCK_RETRIES):
            try:
                with session_scope(write=True, engine=self._engine) as session:
                    now = utcnow()
                    results = alert_service.ingest_many(
                        session, requests=[job.request for job in jobs], now=now
                    )
                    _touch(session, {job.request.integration.id for job in jobs if job.touch}, now)
                    return results
            except OperationalError as exc:
                code = getattr(getattr(exc, "orig", None), "sqlstate", None)
                if code not in _RETRYABLE or attempt == _DEADLOCK_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")


def _touch(session: sa.orm.Session, integration_ids: set[int | None], now: dt.datetime) -> None:
    ids = sorted(i for i in integration_ids if i is not None)
    if ids:
        session.execute(
            sa.update(Integration)
            .where(Integration.id.in_(ids))  # type: ignore[union-attr]
            .values(last_received_at=now)
        )
