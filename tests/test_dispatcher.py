"""The outbox dispatcher: DispatcherCore in-process against loopback provider fakes, and the Ray actor."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import random
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import sqlalchemy as sa
from sqlmodel import Session, col, select

from actors.dispatcher import DispatchConfig, DispatcherCore, RateLimiter, TokenBucket
from sentinel_app.db import session_scope, utcnow
from sentinel_app.domain.alert_lifecycle import Transition
from sentinel_app.models import Alert, Notification, PushDevice
from sentinel_app.notify import Endpoints, build_registry
from sentinel_app.notify.base import DeliveryResult
from sentinel_app.notify.slack import RESOLVE_ACTION_ID
from sentinel_app.services import alerts, outbox
from sentinel_app.services.actor import Actor
from sentinel_app.settings import Settings
from tests import factories
from tests.notify.conftest import (  # noqa: F401 - fixtures, requested by name
    FCM_PROJECT,
    SLACK_TOKEN,
    TWILIO_SID,
    TWILIO_TOKEN,
    APNsKey,
    ServiceAccountKey,
    apns_fake,
    apns_key,
    fcm_fake,
    loopback_tls,
    service_account_key,
)
from tests.notify.fakes.apns import FakeAPNs
from tests.notify.fakes.fcm import FakeFCM, fcm_error
from tests.notify.fakes.http import Reply
from tests.notify.fakes.slack import FakeSlack
from tests.notify.fakes.tls import LoopbackTLS
from tests.notify.fakes.twilio import FakeTwilio
from tests.notify.fakes.webhook import FakeWebhookReceiver
from tests.test_outbox_service import (
    BASE,
    LEASE,
    NOW,
    composer,
    make_alert,
    make_device,
    make_method,
    make_row,
    make_team,
    make_user,
    reload,
    timeline,
)

pytestmark = [
    # twilio's aiohttp client still uses aiohttp's deprecated BasicAuth; not ours to fix.
    pytest.mark.filterwarnings("ignore:BasicAuth is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The 'auth' parameter is deprecated:DeprecationWarning"),
]

PHONE = "+15555550100"
CoreFactory = Callable[..., DispatcherCore]


def settings_for(tmp_path: Path, **fields: Any) -> Settings:
    """Settings isolated from the environment, with the public URL the links use."""
    return Settings(_env_file=None, data_dir=tmp_path, public_url=BASE, **fields)


@pytest.fixture
def receiver() -> Iterator[FakeWebhookReceiver]:
    """A webhook receiver on loopback."""
    fake = FakeWebhookReceiver()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    """A fake Twilio REST API."""
    fake = FakeTwilio(account_sid=TWILIO_SID, auth_token=TWILIO_TOKEN)
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    """A fake Slack Web API."""
    fake = FakeSlack(token=SLACK_TOKEN)
    fake.start()
    yield fake
    fake.stop()


@pytest_asyncio.fixture
async def make_core(engine: sa.Engine, tmp_path: Path) -> AsyncIterator[CoreFactory]:
    """Builds in-process dispatcher cores on the test database; closes their clients afterwards."""
    cores: list[DispatcherCore] = []

    def make(
        *,
        worker_id: str = "d1",
        endpoints: Endpoints | None = None,
        config: DispatchConfig | None = None,
        **fields: Any,
    ) -> DispatcherCore:
        registry = build_registry(settings_for(tmp_path, **fields), endpoints or Endpoints(timeout=5.0))
        core = DispatcherCore(
            engine=engine,
            registry=registry,
            composer=composer(),
            worker_id=worker_id,
            config=config or DispatchConfig(),
            rng=random.Random(3),
        )
        cores.append(core)
        return core

    yield make
    for core in cores:
        await core.aclose()


def twilio_fields(fake: FakeTwilio) -> tuple[dict[str, Any], Endpoints]:
    """Settings fields and endpoints aiming Twilio at the fake."""
    fields = {
        "twilio_account_sid": TWILIO_SID,
        "twilio_auth_token": TWILIO_TOKEN,
        "twilio_from_number": "+15555550199",
    }
    return fields, Endpoints(twilio_base_url=fake.url, timeout=5.0)


def delivery_ids(fake: FakeWebhookReceiver) -> list[str]:
    """The X-Sentinel-Delivery header of every request the receiver got."""
    return [r.headers["x-sentinel-delivery"] for r in fake.requests]


# --- retries, failures, dead targets -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_provider_error_is_retried_with_backoff_then_sent(
    engine: sa.Engine, db: Session, make_core: CoreFactory, receiver: FakeWebhookReceiver
) -> None:
    team = make_team(db)
    alert = make_alert(db, team)
    row = make_row(db, alert=alert, target=receiver.hook_url)
    receiver.replies.append(Reply(500, "upstream down"))
    core = make_core()

    first = await core.run_once(now=NOW)
    assert first.statuses == {row.id: "retry"}
    waiting = reload(engine, Notification, row.id)
    assert (waiting.status, waiting.attempts, waiting.provider_status) == ("pending", 1, "500")
    assert NOW < waiting.next_attempt_at <= NOW + dt.timedelta(seconds=5)
    assert (await core.run_once(now=waiting.next_attempt_at - dt.timedelta(milliseconds=1))).results == {}

    second = await core.run_once(now=waiting.next_attempt_at)
    assert second.statuses == {row.id: "sent"}
    sent = reload(engine, Notification, row.id)
    assert (sent.status, sent.attempts, sent.provider_status, sent.sent_at) == (
        "sent",
        2,
        "200",
        waiting.next_attempt_at,
    )
    # Both attempts carried the same delivery id, so the receiver can drop the repeat.
    assert delivery_ids(receiver) == [row.idempotency_key, row.idempotency_key]
    assert timeline(engine, alert.id) == [("notified", "webhook", "webhook to 127.0.0.1 delivered")]


@pytest.mark.asyncio
async def test_a_permanent_provider_error_is_recorded_as_failed(
    engine: sa.Engine, db: Session, make_core: CoreFactory, twilio: FakeTwilio
) -> None:
    team, user = make_team(db), make_user(db)
    alert = make_alert(db, team)
    row = make_row(db, channel="sms", target=PHONE, alert=alert, user=user)
    twilio.rules[PHONE] = (400, 21408, "Permission to send an SMS has not been enabled for the region")
    fields, endpoints = twilio_fields(twilio)
    core = make_core(endpoints=endpoints, **fields)

    assert (await core.run_once(now=NOW)).statuses == {row.id: "failed"}
    failed = reload(engine, Notification, row.id)
    assert (failed.status, failed.provider_status, failed.attempts) == ("failed", "21408", 1)
    assert "Permission to send an SMS" in failed.error
    assert len(twilio.requests) == 1
    assert (await core.run_once(now=NOW + dt.timedelta(hours=1))).results == {}
    [(kind, channel, note)] = timeline(engine, alert.id)
    assert (kind, channel) == ("notification_failed", "sms")
    assert note.startswith("SMS to Ana failed: Twilio 400 21408: ") and "Permission to send an SMS" in note


@pytest.mark.parametrize("platform", ["apns", "fcm"])
@pytest.mark.asyncio
async def test_a_dead_push_token_deactivates_the_device(
    request: pytest.FixtureRequest,
    engine: sa.Engine,
    db: Session,
    make_core: CoreFactory,
    tmp_path: Path,
    platform: str,
) -> None:
    team, user = make_team(db), make_user(db)
    alert = make_alert(db, team)
    device = make_device(db, user, platform=platform)
    healthy = make_device(db, user, platform=platform, name="Pixel" if platform == "fcm" else "iPad")
    dead_row = make_row(db, channel=platform, alert=alert, user=user, device=device)
    live_row = make_row(db, channel=platform, alert=alert, user=user, device=healthy)
    if platform == "apns":
        key: APNsKey = request.getfixturevalue("apns_key")
        tls: LoopbackTLS = request.getfixturevalue("loopback_tls")
        fake_apns: FakeAPNs = request.getfixturevalue("apns_fake")
        fake_apns.rules[device.token] = (410, "Unregistered")
        core = make_core(
            endpoints=Endpoints(
                apns_host=fake_apns.host,
                apns_port=fake_apns.port,
                apns_ssl_context=tls.client_context(),
                timeout=5.0,
            ),
            apns_key_file=str(key.key_file),
            apns_key_id=key.key_id,
            apns_team_id=key.team_id,
            apns_topic=key.topic,
        )
        reason = "Unregistered"
    else:
        account: ServiceAccountKey = request.getfixturevalue("service_account_key")
        fake_fcm: FakeFCM = request.getfixturevalue("fcm_fake")
        fake_fcm.rules[device.token] = Reply(
            404, fcm_error(404, "UNREGISTERED", "Requested entity was not found.")
        )
        credentials = tmp_path / "firebase.json"
        credentials.write_text(json.dumps(account.info(fake_fcm.token_uri)))
        core = make_core(
            endpoints=Endpoints(fcm_base_url=fake_fcm.url, timeout=5.0),
            fcm_credentials_file=str(credentials),
            fcm_project_id=FCM_PROJECT,
        )
        reason = "UNREGISTERED"

    assert (await core.run_once(now=NOW)).statuses == {dead_row.id: "invalid_target", live_row.id: "sent"}
    dead = reload(engine, PushDevice, device.id)
    assert (dead.active, dead.deactivated_at) == (False, NOW)
    assert reason in dead.deactivation_reason
    assert reload(engine, PushDevice, healthy.id).active
    assert reload(engine, Notification, dead_row.id).status == "failed"
    assert sorted(timeline(engine, alert.id)) == sorted(
        [
            ("notification_failed", platform, f"push to iPhone failed: {reason}"),
            ("notified", platform, f"push to {healthy.name} delivered"),
        ]
    )


@pytest.mark.asyncio
async def test_rows_of_an_acknowledged_alert_are_cancelled_at_send_time(
    engine: sa.Engine, db: Session, make_core: CoreFactory, receiver: FakeWebhookReceiver
) -> None:
    team, user = make_team(db), make_user(db)
    alert = make_alert(db, team)
    now_row = make_row(db, alert=alert, user=user, target=receiver.hook_url)
    delayed = make_row(
        db, alert=alert, user=user, target=receiver.hook_url, due=NOW + dt.timedelta(minutes=5)
    )
    # Acknowledging cancels pending rows in its own transaction; a row written or claimed around
    # that moment must still be caught at send time. Change the status behind the services' back.
    with session_scope(write=True, engine=engine) as session:
        session.execute(sa.update(Alert).where(col(Alert.id) == alert.id).values(status="acknowledged"))
    core = make_core()

    first = await core.run_once(now=NOW)
    later = await core.run_once(now=NOW + dt.timedelta(minutes=6))
    assert first.results == later.results == {}
    assert (first.batch.cancelled, later.batch.cancelled) == (1, 1)
    for row in (now_row, delayed):
        cancelled = reload(engine, Notification, row.id)
        assert (cancelled.status, cancelled.error, cancelled.attempts) == (
            "cancelled",
            "alert acknowledged",
            0,
        )
    assert receiver.requests == []


@pytest.mark.asyncio
async def test_acknowledging_through_the_service_leaves_nothing_to_send(
    engine: sa.Engine, db: Session, make_core: CoreFactory, receiver: FakeWebhookReceiver
) -> None:
    team, user = make_team(db), make_user(db)
    alert = make_alert(db, team)
    assert alert.id is not None
    make_row(db, alert=alert, user=user, target=receiver.hook_url, due=NOW + dt.timedelta(minutes=5))
    with session_scope(write=True, engine=engine) as session:
        alerts.transition(
            session,
            alert_id=alert.id,
            transition=Transition.ACKNOWLEDGE,
            actor=Actor(user_id=user.id, label="Ana"),
            now=NOW,
        )
    assert (await make_core().run_once(now=NOW + dt.timedelta(minutes=6))).results == {}
    assert receiver.requests == []


@pytest.mark.asyncio
async def test_a_killed_dispatcher_is_resumed_by_another_without_duplicates(
    engine: sa.Engine, db: Session, make_core: CoreFactory, receiver: FakeWebhookReceiver
) -> None:
    team = make_team(db)
    alert = make_alert(db, team)
    rows = [
        make_row(db, alert=alert, target=receiver.hook_url, due=NOW - dt.timedelta(seconds=4 - i))
        for i in range(4)
    ]
    doomed = make_core(worker_id="d1")
    batch = await doomed.claim(now=NOW)
    assert [p.notification_id for p in batch.ready] == [r.id for r in rows]
    # d1 gets two requests out, then dies before recording anything.
    for prepared in batch.ready[:2]:
        assert (await doomed.send(prepared)).status == "sent"
    survivor = make_core(worker_id="d2")

    assert (await survivor.run_once(now=NOW + LEASE - dt.timedelta(seconds=1))).results == {}
    resumed = await survivor.run_once(now=NOW + LEASE + dt.timedelta(seconds=1))
    assert resumed.statuses == {r.id: "sent" for r in rows}
    assert (await survivor.run_once(now=NOW + dt.timedelta(hours=1))).results == {}

    # Each request the fake got is one attempt: d1's two, then one per row from d2.
    per_row = Counter(delivery_ids(receiver))
    assert per_row == {
        rows[0].idempotency_key: 2,
        rows[1].idempotency_key: 2,
        rows[2].idempotency_key: 1,
        rows[3].idempotency_key: 1,
    }
    for row in rows:
        final = reload(engine, Notification, row.id)
        assert (final.status, final.claimed_by, final.attempts) == ("sent", "d2", 2)
    # d1's results arrive too late and change nothing.
    await doomed.record([(rows[0].id or 0, DeliveryResult.sent("from-d1"))], now=NOW + LEASE * 2)
    assert reload(engine, Notification, rows[0].id).provider_id == rows[0].idempotency_key
    assert timeline(engine, alert.id) == [("notified", "webhook", "webhook to 127.0.0.1 delivered")] * 4


# --- composing through real adapters ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_sms_carry_each_persons_reply_code_and_status_callbacks_land(
    engine: sa.Engine, db: Session, make_core: CoreFactory, twilio: FakeTwilio
) -> None:
    team, user = make_team(db), make_user(db)
    method = make_method(db, user, value=PHONE)
    disk = make_alert(db, team, title="Disk full", now=NOW - dt.timedelta(minutes=1))
    cpu = make_alert(db, team, title="CPU hot", message="load 40", labels={})
    disk_row = make_row(
        db,
        channel="sms",
        target=PHONE,
        alert=disk,
        user=user,
        method=method,
        due=NOW - dt.timedelta(seconds=1),
    )
    cpu_row = make_row(db, channel="sms", target=PHONE, alert=cpu, user=user, method=method)
    fields, endpoints = twilio_fields(twilio)
    core = make_core(endpoints=endpoints, **fields)

    assert (await core.run_once(now=NOW)).statuses == {disk_row.id: "sent", cpu_row.id: "sent"}
    forms = {f["Body"].split("\n")[0]: f for f in (r.form() for r in twilio.requests)}
    assert forms["[CRITICAL] Disk full"]["Body"].endswith("Reply 1a to ack, 1r to resolve")
    assert (
        forms["[CRITICAL] CPU hot"]["Body"] == "[CRITICAL] CPU hot\nload 40\nReply 2a to ack, 2r to resolve"
    )
    assert {f["StatusCallback"] for f in forms.values()} == {f"{BASE}/api/v1/notify/twilio/status"}
    sent = reload(engine, Notification, cpu_row.id)
    assert sent.provider_id.startswith("SM") and sent.provider_status == "queued"
    assert timeline(engine, cpu.id) == [("notified", "sms", "SMS to Ana sent")]

    with session_scope(write=True, engine=engine) as session:
        outbox.mark_delivery_status(session, provider_id=sent.provider_id, status="delivered", now=NOW)
    assert reload(engine, Notification, cpu_row.id).status == "delivered"


@pytest.mark.asyncio
async def test_a_disabled_channel_fails_its_rows_with_one_log_line(
    engine: sa.Engine, db: Session, make_core: CoreFactory, caplog: pytest.LogCaptureFixture
) -> None:
    team, user = make_team(db), make_user(db)
    alert = make_alert(db, team)
    rows = [make_row(db, channel="email", target="ana@example.com", alert=alert, user=user) for _ in range(3)]
    core = make_core()
    caplog.set_level(logging.INFO, logger="actors.dispatcher")

    assert (await core.run_once(now=NOW)).statuses == dict.fromkeys((r.id for r in rows), "failed")
    make_row(db, channel="email", target="bo@example.com", alert=alert, user=user)
    await core.run_once(now=NOW)
    lines = [r.getMessage() for r in caplog.records if r.name == "actors.dispatcher"]
    assert lines == [
        "dispatcher: email notifications fail permanently: channel email is disabled: not configured"
    ]
    stored = reload(engine, Notification, rows[0].id)
    assert (stored.status, stored.provider_status, stored.error) == (
        "failed",
        "disabled",
        "channel email is disabled: not configured",
    )
    assert timeline(engine, alert.id)[0] == (
        "notification_failed",
        "email",
        "email to Ana failed: channel email is disabled: not configured",
    )


@pytest.mark.asyncio
async def test_the_slack_channel_message_is_posted_then_edited_in_place(
    settings_env: pytest.MonkeyPatch,
    engine: sa.Engine,
    db: Session,
    make_core: CoreFactory,
    slack: FakeSlack,
) -> None:
    from sentinel_app.settings import get_settings

    settings_env.setenv("SENTINEL_SLACK_BOT_TOKEN", SLACK_TOKEN)
    get_settings.cache_clear()
    team, user = make_team(db), make_user(db)
    integration = factories.integration(db, team.id, slack_channel_id="C0ALERTS")
    alert = make_alert(db, team, integration_id=integration.id, title="Disk full")
    assert alert.id is not None
    with session_scope(write=True, engine=engine) as session:
        outbox.on_alerts_changed(session, changes=[(alert, "fired")], now=NOW)
    core = make_core(
        endpoints=Endpoints(slack_base_url=slack.api_url, timeout=5.0), slack_bot_token=SLACK_TOKEN
    )
    await core.run_once(now=NOW)
    [posted] = slack.calls("chat.postMessage")
    assert (posted["channel"], posted["text"]) == ("C0ALERTS", "[CRITICAL] Disk full")

    later = NOW + dt.timedelta(minutes=2)
    with session_scope(write=True, engine=engine) as session:
        acked = alerts.transition(
            session,
            alert_id=alert.id,
            transition=Transition.ACKNOWLEDGE,
            actor=Actor(user_id=user.id, label="Ana"),
            now=later,
        )
        outbox.on_alerts_changed(session, changes=[(acked, "acknowledged")], now=later)
    await core.run_once(now=later)

    [updated] = slack.calls("chat.update")
    assert len(slack.calls("chat.postMessage")) == 1
    [(channel, ts)] = slack.messages
    assert (updated["channel"], updated["ts"], updated["text"]) == (
        channel,
        ts,
        "[ACKNOWLEDGED] [CRITICAL] Disk full",
    )
    blocks = json.loads(updated["blocks"]) if isinstance(updated["blocks"], str) else updated["blocks"]
    buttons = [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]
    assert buttons == [RESOLVE_ACTION_ID]
    assert "by Ana" in json.dumps(blocks)


# --- pacing and the live loop --------------------------------------------------------------------------


def test_token_bucket_paces_and_refunds() -> None:
    clock = [100.0]
    bucket = TokenBucket(2.0, 2.0, clock=lambda: clock[0])
    assert [bucket.reserve(), bucket.reserve(), bucket.reserve(), bucket.reserve()] == [0.0, 0.0, 0.5, 1.0]
    bucket.refund()
    clock[0] += 1.0
    assert bucket.reserve() == 0.0
    limiter = RateLimiter({"sms": 1.0, "apns": 0.0}, burst=1.0, max_wait=1.5, clock=lambda: clock[0])
    assert [limiter.admit("sms").wait for _ in range(2)] == [0.0, 1.0]
    assert limiter.admit("sms") == outbox.Admission(False, 2.0)
    assert limiter.admit("apns") == limiter.admit("webhook") == outbox.Admission(True, 0.0)


@pytest.mark.asyncio
async def test_rows_beyond_the_rate_limit_wait_in_the_outbox(
    engine: sa.Engine, db: Session, make_core: CoreFactory, receiver: FakeWebhookReceiver
) -> None:
    rows = [
        make_row(db, purpose="status_update", target=receiver.hook_url, due=NOW - dt.timedelta(seconds=3 - i))
        for i in range(3)
    ]
    core = make_core(config=DispatchConfig(rates={"webhook": 1.0}, burst=1.0, max_wait=0.0))

    done = await core.run_once(now=NOW)
    assert done.statuses == {rows[0].id: "sent"} and done.batch.deferred == 2
    for row in rows[1:]:
        back = reload(engine, Notification, row.id)
        assert back.status == "pending" and back.attempts == 0 and back.next_attempt_at > NOW
    assert len(receiver.requests) == 1


async def _eventually(check: Callable[[], bool], *, timeout: float = 30.0) -> None:
    """Await real I/O of another task or process until `check()` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


def _statuses(engine: sa.Engine) -> list[str]:
    with Session(engine) as session:
        return list(session.exec(select(Notification.status).order_by(col(Notification.id))).all())


@pytest.mark.asyncio
async def test_the_running_loop_sends_new_rows_when_woken(
    engine: sa.Engine, db: Session, make_core: CoreFactory, receiver: FakeWebhookReceiver
) -> None:
    team = make_team(db)
    alert = make_alert(db, team)
    # A long poll interval: only wake() explains a quick send.
    core = make_core(config=DispatchConfig(poll_interval=30.0))
    runner = asyncio.create_task(core.run())
    try:
        await _eventually(lambda: core.running)
        await asyncio.sleep(0.1)  # let the loop settle into its (long) idle wait
        rows = [make_row(db, alert=alert, target=receiver.hook_url, due=utcnow()) for _ in range(5)]
        core.wake()
        await _eventually(lambda: _statuses(engine) == ["sent"] * 5, timeout=10)
        assert sorted(delivery_ids(receiver)) == sorted(r.idempotency_key for r in rows)
    finally:
        await core.stop()
        await asyncio.wait_for(runner, 30)
    assert core.stats["sent"] == 5


# --- the Ray actor ----------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.usefixtures("ray_cluster")
@pytest.mark.asyncio
async def test_a_ray_dispatcher_delivers_committed_rows(
    engine: sa.Engine, db: Session, db_url: str, tmp_path: Path, receiver: FakeWebhookReceiver
) -> None:
    from actors import dispatcher as dispatcher_module
    from actors.dispatcher import start_dispatchers, stop_dispatchers, wake_dispatchers

    settings = settings_for(
        tmp_path, database_url=db_url, ray_namespace=f"sentinel-test-{uuid.uuid4().hex[:8]}", dispatchers=1
    )
    team = make_team(db)
    alert = make_alert(db, team)
    first = make_row(db, alert=alert, target=receiver.hook_url, due=utcnow())
    handles = await asyncio.to_thread(start_dispatchers, settings)
    try:
        assert len(handles) == 1
        await _eventually(lambda: _statuses(engine) == ["sent"], timeout=60)
        second = make_row(db, alert=alert, target=receiver.hook_url, due=utcnow())
        assert wake_dispatchers() == 1
        # Another process (an escalation host) finds the pool by name.
        dispatcher_module._handles.clear()
        assert wake_dispatchers(settings) == 1
        await _eventually(lambda: _statuses(engine) == ["sent", "sent"], timeout=30)
        status = await handles[0].status.remote()
        # Starting the pool again (an app restart) finds the same actor instead of adding one.
        again = await asyncio.to_thread(start_dispatchers, settings)
        assert (await again[0].status.remote())["worker_id"] == status["worker_id"]
    finally:
        await asyncio.to_thread(stop_dispatchers, handles)
    assert status["running"] and status["stats"]["sent"] == 2
    assert status["worker_id"].startswith(dispatcher_module.dispatcher_name(db_url, 0))
    assert sorted(delivery_ids(receiver)) == sorted([first.idempotency_key, second.idempotency_key])
    with Session(engine) as session:
        claimed_by = session.exec(select(Notification.claimed_by)).all()
        assert set(claimed_by) == {status["worker_id"]}
    assert timeline(engine, alert.id) == [("notified", "webhook", "webhook to 127.0.0.1 delivered")] * 2
