"""The outbox: claim due notifications, compose alert messages at send time, record what happened.

Everything here is a database operation in the caller's transaction; the dispatcher
(`actors/dispatcher.py`) does the sending. The life of a row:

    pending ──claim──▶ sending ──sent──▶ sent (──status callback──▶ delivered | failed)
       ▲                  │ retry (backoff)        │ failed / invalid_target / gave up
       └──────────────────┘                        ▼
                                                 failed          cancelled (alert no longer firing)

A claim is a lease (`claimed_until`): a dispatcher that dies mid-send leaves its rows in
`sending`, and once the lease has passed the next claim takes them again (at-least-once; the
unique idempotency key and provider collapse ids keep the repeat harmless). On PostgreSQL the
claim uses `FOR UPDATE SKIP LOCKED`, so concurrent dispatchers never get the same row; on SQLite
the caller must hold the write lock from the start (`session_scope(write=True)`).
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col, select

from sentinel_app import bulk, bus
from sentinel_app.models import (
    Alert,
    AlertEvent,
    AlertEventKind,
    AlertStatus,
    ContactMethod,
    Integration,
    Notification,
    NotificationStatus,
    OutgoingWebhook,
    PushDevice,
    SmsRef,
    User,
)
from sentinel_app.models.notifications import Channel
from sentinel_app.notify.base import DeliveryResult, OutgoingMessage, redact
from sentinel_app.notify.links import ActionLinks
from sentinel_app.services import alert_events, outgoing_webhooks
from sentinel_app.settings import Settings, get_settings

__all__ = [
    "ACTOR_LABEL",
    "Admission",
    "Batch",
    "Composer",
    "Prepared",
    "alert_for_sms_ref",
    "backoff_delay",
    "claim_due",
    "compose_alert_message",
    "mark_delivery_status",
    "next_due",
    "on_alerts_changed",
    "prepare_batch",
    "record_result",
    "record_results",
    "sms_ref",
]

log = logging.getLogger(__name__)

ACTOR_LABEL = "Fangorn Sentinel"
BACKOFF_BASE_S = 5.0
BACKOFF_CAP_S = 300.0
# A Slack update waits this long (at least) for the message it edits to be posted.
DEFER_S = 2.0

PENDING, SENDING = NotificationStatus.PENDING.value, NotificationStatus.SENDING.value
SENT, DELIVERED = NotificationStatus.SENT.value, NotificationStatus.DELIVERED.value
FAILED, CANCELLED = NotificationStatus.FAILED.value, NotificationStatus.CANCELLED.value

PUSH_CHANNELS = frozenset({Channel.APNS.value, Channel.FCM.value})
REPLY_REF_CHANNELS = frozenset({Channel.SMS.value, Channel.VOICE.value})
CHANGES = ("fired", "acknowledged", "unacknowledged", "resolved", "escalated")
# Alert change → outgoing webhook event (OutgoingWebhook.events holds the change names).
WEBHOOK_EVENTS = {
    "fired": "alert.triggered",
    "acknowledged": "alert.acknowledged",
    "resolved": "alert.resolved",
    "escalated": "alert.escalated",
}
_WHAT = {
    Channel.APNS.value: "push",
    Channel.FCM.value: "push",
    Channel.SMS.value: "SMS",
    Channel.VOICE.value: "call",
    Channel.EMAIL.value: "email",
    Channel.SLACK.value: "Slack message",
    Channel.WEBHOOK.value: "webhook",
}
# SMS and calls report delivery later (status callbacks): at send time they are only sent/placed.
_SENT_VERB = {Channel.SMS.value: "sent", Channel.VOICE.value: "placed"}
# Provider codes that say nothing a person could act on; the error text is shown instead.
_VAGUE_CODES = frozenset(
    {"disabled", "error", "connection", "timeout", "bad_message", "oauth", "bad_update_of"}
)
# Twilio status callbacks (messages and calls).
_DELIVERED_STATES = frozenset({"delivered", "completed", "read"})
_FAILED_STATES = frozenset({"failed", "undelivered", "no-answer", "busy", "canceled"})

MAX_PUSH_BODY = 1000
MAX_VOICE_BODY = 400
MAX_LABELS = 12


# --- composing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Composer:
    """What composing a message needs besides the database: the link signer and public URLs."""

    links: ActionLinks | None
    base_url: str
    # Twilio status callback URL; None when the server has no public URL Twilio could reach.
    status_callback: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> Composer:
        """Signer and URLs from settings, made the way `notify.registry.build_registry` makes them."""
        # Lazy: the inbound module pulls in the Twilio library, which the service layer never needs.
        from sentinel_app.notify.twilio_inbound import STATUS_PATH

        links: ActionLinks | None = None
        try:
            links = ActionLinks(settings.resolved_secret_key(), settings.base_url)
        except (OSError, ValueError) as exc:  # data dir not writable: send without links
            log.warning("outbox: action links disabled: %s", exc)
        callback = f"{settings.base_url}{STATUS_PATH}" if settings.public_url else None
        return cls(links=links, base_url=settings.base_url, status_callback=callback)

    def alert_url(self, alert_id: int) -> str:
        """The alert's page."""
        return f"{self.base_url}/alerts/{alert_id}"


def _labels_summary(labels: Mapping[str, Any]) -> str:
    items = sorted(labels.items())
    shown = ", ".join(f"{key}={value}" for key, value in items[:MAX_LABELS])
    more = f" (+{len(items) - MAX_LABELS} more)" if len(items) > MAX_LABELS else ""
    return f"Labels: {shown}{more}" if shown else ""


def _links_text(links: Sequence[Mapping[str, Any]]) -> list[str]:
    lines = []
    for link in links:
        url = str(link.get("url") or "")
        if url:
            lines.append(f"{link.get('title') or str(link.get('kind') or 'link').title()}: {url}")
    return lines


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def alert_body(alert: Alert, channel: str) -> str:
    """The message body for `channel`: full for email/Slack/webhooks, shorter for push, SMS and calls."""
    message = (alert.message or "").strip()
    labels = _labels_summary(alert.labels or {})
    if channel == Channel.VOICE.value:
        # Read aloud: no label lists or URLs.
        return _cut(message, MAX_VOICE_BODY)
    if channel in PUSH_CHANNELS:
        return _cut(message or labels, MAX_PUSH_BODY)
    if channel == Channel.SMS.value:
        return "\n".join(part for part in (message, labels) if part)
    return "\n".join(part for part in (message, labels, *_links_text(alert.links or [])) if part)


def compose_alert_message(
    session: Session,
    *,
    notification: Notification,
    alert: Alert,
    composer: Composer,
    now: dt.datetime,
    refs: dict[tuple[int, int], str] | None = None,
) -> OutgoingMessage:
    """The message of a purpose="alert" row, from the alert as it is now (allocates SMS reply refs).

    `refs` caches reply refs by (user id, alert id) across the rows of a batch.
    """
    assert alert.id is not None
    channel = notification.channel
    extra: dict[str, Any] = {"status": alert.status, "alert_url": composer.alert_url(alert.id)}
    if channel in REPLY_REF_CHANNELS:
        if notification.user_id is not None:
            pair = (notification.user_id, alert.id)
            ref = refs.get(pair) if refs is not None else None
            if ref is None:
                ref = sms_ref(session, user_id=notification.user_id, alert_id=alert.id, now=now)
                if refs is not None:
                    refs[pair] = ref
            extra["reply_ref"] = ref
        if composer.status_callback:
            extra["status_callback"] = composer.status_callback
    if channel == Channel.WEBHOOK.value:
        payload = notification.payload or {}
        first = not payload.get("step_index") and not payload.get("cycle")
        extra.update(
            event="alert.triggered" if first else "alert.escalated",
            delivery_id=notification.idempotency_key,
            labels=dict(alert.labels or {}),
        )
    actions: dict[str, str] = {}
    if composer.links is not None:
        actions = composer.links.actions_for(alert.id, now=now, user_id=notification.user_id)
    return OutgoingMessage(
        channel=Channel(channel),
        target=notification.target,
        alert_id=alert.id,
        title=alert.title,
        body=alert_body(alert, channel),
        severity=alert.severity,
        important=notification.important,
        collapse_id=f"sentinel-alert-{alert.id}",
        actions=actions,
        extra=extra,
    )


# --- SMS reply references ------------------------------------------------------------------------


def sms_ref(session: Session, *, user_id: int, alert_id: int, now: dt.datetime) -> str:
    """The user's short reference for the alert ("1" in "reply 1a"), allocated on first use.

    A new ref is the smallest positive number not used by the user's refs of open alerts; refs of
    resolved alerts are deleted here so their numbers come free again.
    """
    existing = session.exec(
        select(SmsRef.ref).where(SmsRef.user_id == user_id, SmsRef.alert_id == alert_id)
    ).first()
    if existing is not None:
        return existing
    # Serialises allocations for one person across dispatchers (PostgreSQL; SQLite holds the write lock).
    session.exec(select(User.id).where(User.id == user_id).with_for_update()).first()
    existing = session.exec(
        select(SmsRef.ref).where(SmsRef.user_id == user_id, SmsRef.alert_id == alert_id)
    ).first()
    if existing is not None:
        return existing
    refs = session.exec(
        select(SmsRef, Alert.status)
        .join(Alert, col(Alert.id) == col(SmsRef.alert_id))
        .where(SmsRef.user_id == user_id)
    ).all()
    used: set[int] = set()
    for ref, status in refs:
        if status == AlertStatus.RESOLVED:
            session.delete(ref)
        elif ref.ref.isdigit():
            used.add(int(ref.ref))
    number = 1
    while number in used:
        number += 1
    session.flush()
    session.add(SmsRef(user_id=user_id, alert_id=alert_id, ref=str(number), created_at=now))
    session.flush()
    return str(number)


def alert_for_sms_ref(session: Session, *, user_id: int, ref: str | None) -> int | None:
    """The open alert a reply refers to: by ref, or without one the user's newest ref'd open alert."""
    query = (
        select(SmsRef.alert_id)
        .join(Alert, col(Alert.id) == col(SmsRef.alert_id))
        .where(SmsRef.user_id == user_id, Alert.status != AlertStatus.RESOLVED)
    )
    if ref is not None:
        query = query.where(SmsRef.ref == ref.strip())
    return session.exec(query.order_by(col(SmsRef.created_at).desc(), col(SmsRef.id).desc())).first()


# --- claiming --------------------------------------------------------------------------------------


def _due_query(now: dt.datetime) -> Any:
    n = Notification
    # The alert and the person of each row come in the same round trip (only outbox rows are locked).
    return (
        select(n, Alert, User)
        .outerjoin(Alert, col(Alert.id) == col(n.alert_id))
        .outerjoin(User, col(User.id) == col(n.user_id))
        .where(*_due_conditions(now))
    )


def _due_conditions(now: dt.datetime) -> tuple[Any, ...]:
    n = Notification
    return (
        col(n.status).in_([PENDING, SENDING]),
        sa.or_(col(n.next_attempt_at) <= now, col(n.next_attempt_at).is_(None)),
        # A sending row is due again only once its sender's lease ran out (the sender died).
        sa.or_(col(n.status) == PENDING, col(n.claimed_until).is_(None), col(n.claimed_until) <= now),
    )


def claim_due(
    session: Session, *, now: dt.datetime, limit: int, worker_id: str, lease: dt.timedelta
) -> list[Notification]:
    """Claim up to `limit` due rows, oldest due first: status sending, leased to `worker_id`, attempts+1.

    Rows whose sender died after their last allowed attempt are failed here instead.
    """
    return _claim(session, now=now, limit=limit, worker_id=worker_id, lease=lease)[0]


def _claim(
    session: Session, *, now: dt.datetime, limit: int, worker_id: str, lease: dt.timedelta
) -> tuple[list[Notification], dict[int, Alert], dict[int, User]]:
    """`claim_due`, plus the alerts and users of the claimed rows (by id) that came with them."""
    if limit <= 0:
        return [], {}, {}
    found = session.exec(
        _due_query(now)
        .order_by(col(Notification.next_attempt_at).asc().nulls_first(), col(Notification.id))
        .limit(limit)
        .with_for_update(skip_locked=True, of=Notification)
    ).all()
    rows = [row for row, _, _ in found]
    alerts = {alert.id: alert for _, alert, _ in found if alert is not None and alert.id is not None}
    users = {user.id: user for _, _, user in found if user is not None and user.id is not None}
    claimed: list[Notification] = []
    for row in rows:
        if row.status == SENDING and row.attempts >= row.max_attempts:
            _fail(
                session,
                row,
                f"gave up after {row.attempts} attempts: the sender stopped before recording a result",
                now=now,
            )
            continue
        claimed.append(row)
    session.flush()
    if claimed:
        _lease(session, claimed, worker_id=worker_id[:100], until=now + lease, now=now)
    return claimed, alerts, users


_PG_LEASE = (
    "UPDATE notifications SET status = %(status)s, claimed_by = %(worker)s, claimed_until = %(until)s,"
    " attempts = attempts + 1, updated_at = %(now)s WHERE id = ANY(%(ids)s::bigint[])"
)


def _lease(
    session: Session, rows: Sequence[Notification], *, worker_id: str, until: dt.datetime, now: dt.datetime
) -> None:
    """Mark claimed rows sending: one UPDATE for the batch instead of one per row (ORM flush)."""
    ids = [row.id for row in rows]
    if session.get_bind().dialect.name == "postgresql":
        # Fixed text whatever the batch size: psycopg and PostgreSQL prepare it once.
        params = {"status": SENDING, "worker": worker_id, "until": until, "now": now, "ids": ids}
        session.connection().exec_driver_sql(_PG_LEASE, params)
    else:
        n = Notification.__table__  # type: ignore[attr-defined]
        session.execute(
            sa.update(n)
            .where(n.c.id.in_(ids))
            .values(
                status=SENDING,
                claimed_by=worker_id,
                claimed_until=until,
                attempts=n.c.attempts + 1,
                updated_at=now,
            )
        )
    # The loaded objects learn the stored values without becoming dirty: a later change to one
    # (a put-back) is flushed as a change from these.
    for row in rows:
        set_committed_value(row, "status", SENDING)
        set_committed_value(row, "claimed_by", worker_id)
        set_committed_value(row, "claimed_until", until)
        set_committed_value(row, "attempts", row.attempts + 1)
        set_committed_value(row, "updated_at", now)


def next_due(session: Session, *, now: dt.datetime) -> dt.datetime | None:
    """When the next row becomes due (a pending row's next attempt or a sending row's lease end)."""
    pending = session.exec(
        select(sa.func.min(Notification.next_attempt_at)).where(Notification.status == PENDING)
    ).first()
    leased = session.exec(
        select(sa.func.min(Notification.claimed_until)).where(Notification.status == SENDING)
    ).first()
    candidates = [_aware(t) for t in (pending, leased) if t is not None]
    return min(candidates) if candidates else None


def _aware(value: Any) -> dt.datetime:
    # Aggregates bypass the column type: SQLite hands back naive text-parsed values.
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)


@dataclass(frozen=True)
class Admission:
    """A rate limiter's answer for one row: send after `wait` seconds, or put back for `wait` seconds."""

    admitted: bool
    wait: float = 0.0


Admit = Callable[[str], Admission]


@dataclass(frozen=True)
class Prepared:
    """A claimed row ready to send: its composed message, and the rate-limit wait before sending."""

    notification_id: int
    message: OutgoingMessage
    attempt: int
    purpose: str
    delay: float = 0.0


@dataclass
class Batch:
    """What one claim produced: rows to send now, and what happened to the others."""

    ready: list[Prepared] = field(default_factory=list)
    cancelled: int = 0
    failed: int = 0
    deferred: int = 0
    claimed: int = 0
    next_due: dt.datetime | None = None


@dataclass
class _Context:
    """Rows a batch refers to, loaded in a few queries."""

    alerts: dict[int, Alert]
    users: dict[int, User]
    devices: dict[int, PushDevice]
    methods: dict[int, ContactMethod]
    # SMS/voice reply refs by (user id, alert id): the existing ones, then those allocated here.
    refs: dict[tuple[int, int], str] = field(default_factory=dict)

    @classmethod
    def load(
        cls,
        session: Session,
        rows: Sequence[Notification],
        *,
        alerts: Mapping[int, Alert] | None = None,
        users: Mapping[int, User] | None = None,
    ) -> _Context:
        """What `rows` refer to; `alerts` and `users` already loaded are not read again."""

        def ids(values: Iterable[int | None]) -> set[int]:
            return {v for v in values if v is not None}

        def by_id(model: Any, wanted: set[int], known: Mapping[int, Any] | None) -> dict[int, Any]:
            have = {i: known[i] for i in wanted if i in known} if known else {}
            return have | _by_id(session, model, wanted - have.keys())

        alert_ids = ids(_alert_id_of(r) for r in rows)
        user_ids = ids(r.user_id for r in rows)
        device_ids = ids(r.push_device_id for r in rows)
        method_ids = ids(r.contact_method_id for r in rows)
        ref_users = ids(r.user_id for r in rows if r.channel in REPLY_REF_CHANNELS and r.purpose == "alert")
        refs: dict[tuple[int, int], str] = {}
        if ref_users and alert_ids:
            # One query instead of one per SMS/call row; new refs are still allocated by `sms_ref`.
            for user_id, alert_id, ref in session.exec(
                select(SmsRef.user_id, SmsRef.alert_id, SmsRef.ref).where(
                    col(SmsRef.user_id).in_(ref_users), col(SmsRef.alert_id).in_(alert_ids)
                )
            ).all():
                refs[(user_id, alert_id)] = ref
        return cls(
            alerts=by_id(Alert, alert_ids, alerts),
            users=by_id(User, user_ids, users),
            devices=_by_id(session, PushDevice, device_ids),
            methods=_by_id(session, ContactMethod, method_ids),
            refs=refs,
        )


def _by_id(session: Session, model: Any, ids: set[int]) -> dict[int, Any]:
    if not ids:
        return {}
    query = select(model).where(_id_in(session, col(model.id), sorted(ids)))
    return {row.id: row for row in session.exec(query).all()}


def _alert_id_of(row: Notification) -> int | None:
    return _alert_id_from(row.alert_id, row.payload)


def _alert_id_from(alert_id: int | None, payload: Mapping[str, Any] | None) -> int | None:
    if alert_id is not None:
        return alert_id
    value = (payload or {}).get("alert_id")
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else None


def prepare_batch(
    session: Session,
    *,
    now: dt.datetime,
    limit: int,
    worker_id: str,
    lease: dt.timedelta,
    composer: Composer,
    admit: Admit | None = None,
) -> Batch:
    """Claim due rows and turn each into a message, cancelling rows that must no longer go out.

    Alert rows are checked against the alert as it is now (acknowledged, resolved or silenced →
    cancelled). `admit` (a rate limiter) may put a row back until it has room; such a row's
    attempt is not counted.
    """
    rows, alerts, users = _claim(session, now=now, limit=limit, worker_id=worker_id, lease=lease)
    batch = Batch(claimed=len(rows))
    if rows:
        ctx = _Context.load(session, rows, alerts=alerts, users=users)
        for row in rows:
            _prepare_one(session, row, ctx, batch, now=now, composer=composer, admit=admit)
        session.flush()
    if len(rows) < limit:
        batch.next_due = next_due(session, now=now)
    return batch


def _unsendable(row: Notification, ctx: _Context, *, now: dt.datetime) -> str | None:
    """Why this row must not be sent any more, or None."""
    if row.purpose == "alert":
        alert_id = _alert_id_of(row)
        alert = ctx.alerts.get(alert_id) if alert_id is not None else None
        if alert is None:
            return "alert no longer exists"
        if alert.status != AlertStatus.FIRING:
            return f"alert {alert.status}"
        if alert.silenced_until is not None and alert.silenced_until > now:
            return f"alert silenced until {alert.silenced_until.isoformat()}"
    user = ctx.users.get(row.user_id) if row.user_id is not None else None
    if user is not None and not user.is_active:
        return "user deactivated"
    if row.channel in PUSH_CHANNELS and row.purpose == "alert":
        device = ctx.devices.get(row.push_device_id) if row.push_device_id is not None else None
        if device is None:
            return "push device removed"
        if not device.active:
            return f"push device deactivated: {device.deactivation_reason or 'unregistered'}"
    if row.contact_method_id is not None:
        method = ctx.methods.get(row.contact_method_id)
        if method is not None and not method.enabled:
            return "contact method disabled"
    return None


def _prepare_one(
    session: Session,
    row: Notification,
    ctx: _Context,
    batch: Batch,
    *,
    now: dt.datetime,
    composer: Composer,
    admit: Admit | None,
) -> None:
    assert row.id is not None
    reason = _unsendable(row, ctx, now=now)
    if reason is not None:
        _put_back(row, status=CANCELLED, error=reason, now=now)
        batch.cancelled += 1
        log.info("outbox: notification %s cancelled: %s", row.id, reason)
        return
    admission = admit(row.channel) if admit is not None else Admission(True)
    if not admission.admitted:
        _put_back(row, status=PENDING, now=now, next_attempt_at=now + dt.timedelta(seconds=admission.wait))
        batch.deferred += 1
        return
    try:
        composed = _compose(session, row, ctx, now=now, composer=composer)
    except (ValueError, TypeError, KeyError, RuntimeError) as exc:
        _fail(session, row, f"could not compose the message: {type(exc).__name__}: {exc}", now=now)
        batch.failed += 1
        return
    if isinstance(composed, _Defer):
        _put_back(row, status=PENDING, now=now, next_attempt_at=composed.until)
        batch.deferred += 1
        return
    if isinstance(composed, str):
        _put_back(row, status=CANCELLED, error=composed, now=now)
        batch.cancelled += 1
        return
    batch.ready.append(
        Prepared(
            notification_id=row.id,
            message=composed,
            attempt=row.attempts,
            purpose=row.purpose,
            delay=admission.wait,
        )
    )


@dataclass(frozen=True)
class _Defer:
    until: dt.datetime


def _compose(
    session: Session, row: Notification, ctx: _Context, *, now: dt.datetime, composer: Composer
) -> OutgoingMessage | _Defer | str:
    """The message to send, a deferral, or a cancellation reason."""
    if row.purpose == "alert":
        alert_id = _alert_id_of(row)
        assert alert_id is not None  # checked by _unsendable
        return compose_alert_message(
            session, notification=row, alert=ctx.alerts[alert_id], composer=composer, now=now, refs=ctx.refs
        )
    message = OutgoingMessage.from_payload(
        row.channel, row.target, row.payload or {}, important=row.important
    )
    extra = dict(message.extra)
    if row.channel == Channel.WEBHOOK.value:
        extra.setdefault("delivery_id", row.idempotency_key)
        hook_id = extra.pop("webhook_id", None)
        if hook_id is not None:
            hook = session.get(OutgoingWebhook, int(hook_id))
            if hook is None:
                return "webhook subscription removed"
            if not hook.enabled:
                return "webhook subscription disabled"
            secret = _hook_secret(hook)
            if secret:
                # Injected at send time: secrets never sit in the outbox payload.
                extra["signing_secret"] = secret
    if row.channel == Channel.SLACK.value and message.alert_id is not None:
        post_key = extra.pop("post_key", None)
        if post_key:
            post = session.exec(select(Notification).where(Notification.idempotency_key == post_key)).first()
            if post is not None and post.status in (SENT, DELIVERED) and post.provider_id:
                extra["update_of"] = post.provider_id
            elif post is not None and post.status in (PENDING, SENDING):
                # Being sent right now (often in this very batch): look again shortly.
                due = post.next_attempt_at if post.status == PENDING and post.next_attempt_at else now
                return _Defer(max(now, due) + dt.timedelta(seconds=DEFER_S))
            # A post that failed or never existed: this message is posted fresh.
        alert = ctx.alerts.get(message.alert_id)
        if alert is not None and str(extra.get("status") or "") != alert.status:
            # Updates may be sent out of order: always show the alert as it is now.
            extra["status"] = alert.status
            extra.pop("status_by", None)
    return OutgoingMessage(
        channel=message.channel,
        target=message.target,
        alert_id=message.alert_id,
        title=message.title,
        body=message.body,
        severity=message.severity,
        important=message.important,
        collapse_id=message.collapse_id,
        actions=message.actions,
        extra=extra,
    )


def _put_back(
    row: Notification,
    *,
    status: str,
    now: dt.datetime,
    error: str | None = None,
    next_attempt_at: dt.datetime | None = None,
) -> None:
    """Undo a claim without an attempt: cancelled, or pending again (rate limit, waiting for a post)."""
    row.status = status
    row.attempts = max(row.attempts - 1, 0)
    row.claimed_until = None
    row.updated_at = now
    if error is not None:
        row.error = error
    if next_attempt_at is not None:
        row.next_attempt_at = next_attempt_at


# --- recording -----------------------------------------------------------------------------------


def backoff_delay(
    attempt: int, *, retry_after: float | None = None, rng: random.Random | None = None
) -> float:
    """Seconds before the next try after `attempt` failed: full jitter over 5 s * 2^(n-1), capped at 5 min.

    A provider's `Retry-After` is a floor.
    """
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** max(attempt - 1, 0))
    delay = (rng or random).uniform(0, ceiling)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def record_result(
    session: Session,
    *,
    notification_id: int,
    result: DeliveryResult,
    now: dt.datetime,
    worker_id: str,
    rng: random.Random | None = None,
) -> Notification | None:
    """Store the outcome of one send; ignored (None) when the row is no longer claimed by `worker_id`.

    Final outcomes add a timeline entry and publish `alert.updated`; a dead push token
    deactivates the device in the same transaction.
    """
    [kept] = record_results(session, [(notification_id, result)], now=now, worker_id=worker_id, rng=rng)
    if not kept:
        return None
    # The row was written with Core statements: reload it so callers see the stored values.
    return session.get(Notification, notification_id, populate_existing=True)


# The columns recording a result needs, read in one locking SELECT per batch.
_RECORD_COLUMNS = (
    "id",
    "status",
    "claimed_by",
    "attempts",
    "max_attempts",
    "channel",
    "purpose",
    "target",
    "payload",
    "alert_id",
    "user_id",
    "push_device_id",
)

# One fixed statement for any batch size (see sentinel_app/bulk.py for why that matters on
# PostgreSQL). NULL in provider_id, sent_at or next_attempt_at keeps the stored value.
_PG_RECORD_UPDATE = (
    "UPDATE notifications AS n SET status = v.status, provider_status = v.provider_status,"
    " error = v.error, provider_id = COALESCE(v.provider_id, n.provider_id),"
    " sent_at = COALESCE(v.sent_at, n.sent_at),"
    " next_attempt_at = COALESCE(v.next_attempt_at, n.next_attempt_at),"
    " claimed_until = NULL, updated_at = %(now)s"
    " FROM unnest(%(id)b::bigint[], %(status)b::varchar[], %(provider_status)b::varchar[],"
    " %(error)b::text[], %(provider_id)b::varchar[], %(sent_at)b::timestamptz[],"
    " %(next_attempt_at)b::timestamptz[])"
    " AS v(id, status, provider_status, error, provider_id, sent_at, next_attempt_at)"
    " WHERE n.id = v.id"
)
_UPDATED_FIELDS = ("id", "status", "provider_status", "error", "provider_id", "sent_at", "next_attempt_at")


def _sqlite_record_update() -> Any:
    table = Notification.__table__  # type: ignore[attr-defined]
    c = table.c

    def keep(name: str) -> Any:
        return sa.func.coalesce(sa.bindparam(f"v_{name}", type_=c[name].type), c[name])

    return (
        sa.update(table)
        .where(c.id == sa.bindparam("v_id"))
        .values(
            status=sa.bindparam("v_status"),
            provider_status=sa.bindparam("v_provider_status"),
            error=sa.bindparam("v_error"),
            provider_id=keep("provider_id"),
            sent_at=keep("sent_at"),
            next_attempt_at=keep("next_attempt_at"),
            claimed_until=None,
            updated_at=sa.bindparam("v_now", type_=c.updated_at.type),
        )
    )


@dataclass
class _Outcome:
    """What recording one result writes: the row's new values and its timeline entry, if any."""

    row: Any
    status: str
    provider_status: str
    error: str
    provider_id: str | None = None
    sent_at: dt.datetime | None = None
    next_attempt_at: dt.datetime | None = None
    # (ok, reason) of the timeline entry; None for a retry that will be tried again.
    note: tuple[bool, str] | None = None


def record_results(
    session: Session,
    results: Sequence[tuple[int, DeliveryResult]],
    *,
    now: dt.datetime,
    worker_id: str,
    rng: random.Random | None = None,
) -> list[bool]:
    """Store many send outcomes in a few statements; per result, whether it was kept.

    A result is ignored (False) when its row is no longer claimed by `worker_id`. Final outcomes
    add a timeline entry and publish `alert.updated`; a dead push token deactivates the device.
    """
    if not results:
        return []
    n = Notification.__table__  # type: ignore[attr-defined]
    a = Alert.__table__  # type: ignore[attr-defined]
    u = User.__table__  # type: ignore[attr-defined]
    d = PushDevice.__table__  # type: ignore[attr-defined]
    ids = sorted({nid for nid, _ in results})
    # What the timeline needs (alert, person, device) comes in the same round trip; only the
    # outbox rows are locked, in id order, so two recorders never wait on each other in a cycle.
    query = (
        sa.select(
            *(n.c[name] for name in _RECORD_COLUMNS),
            a.c.team_id.label("alert_team_id"),
            a.c.status.label("alert_status"),
            a.c.severity.label("alert_severity"),
            u.c.name.label("user_name"),
            d.c.name.label("device_name"),
        )
        .select_from(
            n.outerjoin(a, a.c.id == n.c.alert_id)
            .outerjoin(u, u.c.id == n.c.user_id)
            .outerjoin(d, d.c.id == n.c.push_device_id)
        )
        .where(_id_in(session, n.c.id, ids))
        .order_by(n.c.id)
        .with_for_update(of=n)
    )
    rows = {row.id: row for row in session.execute(query)}
    owner = worker_id[:100]
    kept: list[bool] = []
    outcomes: list[_Outcome] = []
    for nid, result in results:
        row = rows.pop(nid, None)  # popped: a repeated id finds its row already recorded
        if row is None or row.status != SENDING or row.claimed_by != owner:
            # Our lease ran out and another dispatcher took the row over: its result counts.
            log.info("outbox: result for notification %s ignored: no longer claimed by %s", nid, worker_id)
            kept.append(False)
            continue
        kept.append(True)
        outcomes.append(_outcome(session, row, result, now=now, rng=rng))
    if outcomes:
        _write_outcomes(session, outcomes, now=now)
        _timeline_many(session, [o for o in outcomes if o.note is not None], now=now)
    return kept


def _outcome(
    session: Session, row: Any, result: DeliveryResult, *, now: dt.datetime, rng: random.Random | None
) -> _Outcome:
    provider_status = result.provider_status[:64]
    if result.status == "sent":
        return _Outcome(
            row,
            SENT,
            provider_status,
            "",
            provider_id=result.provider_id[:200],
            sent_at=now,
            note=(True, ""),
        )
    if result.status == "retry":
        if row.attempts >= row.max_attempts:
            reason = f"gave up after {row.attempts} attempts: {_reason(result)}"
            return _Outcome(row, FAILED, provider_status, reason, note=(False, reason))
        delay = backoff_delay(row.attempts, retry_after=result.retry_after, rng=rng)
        return _Outcome(
            row,
            PENDING,
            provider_status,
            result.error,
            next_attempt_at=now + dt.timedelta(seconds=delay),
        )
    if result.status == "invalid_target" and row.channel in PUSH_CHANNELS:
        _deactivate_device(
            session,
            device_id=row.push_device_id,
            platform=row.channel,
            token=row.target,
            reason=result.provider_status or result.error,
            now=now,
        )
    reason = _reason(result)
    return _Outcome(row, FAILED, provider_status, result.error or reason, note=(False, reason))


def _write_outcomes(session: Session, outcomes: Sequence[_Outcome], *, now: dt.datetime) -> None:
    values = [
        (o.row.id, o.status, o.provider_status, o.error, o.provider_id, o.sent_at, o.next_attempt_at)
        for o in outcomes
    ]
    if session.get_bind().dialect.name == "postgresql":
        params: dict[str, Any] = {
            name: [value[index] for value in values] for index, name in enumerate(_UPDATED_FIELDS)
        }
        params["now"] = now
        session.connection().exec_driver_sql(_PG_RECORD_UPDATE, params)
        return
    session.execute(
        _sqlite_record_update(),
        [
            {f"v_{name}": value for name, value in zip(_UPDATED_FIELDS, v, strict=True)} | {"v_now": now}
            for v in values
        ],
    )


def _timeline_many(session: Session, outcomes: Sequence[_Outcome], *, now: dt.datetime) -> None:
    """`_timeline` for many rows: one INSERT, one publish per changed alert."""
    alerts: dict[int, tuple[int, str, str]] = {}
    alert_of: dict[int, int | None] = {}
    by_payload: set[int] = set()
    for o in outcomes:
        row = o.row
        if row.alert_id is not None:
            alert_of[id(o)] = row.alert_id
            if row.alert_status is not None:  # joined by the locking SELECT; None: deleted
                alerts[row.alert_id] = (row.alert_team_id, row.alert_status, row.alert_severity)
        else:
            alert_of[id(o)] = found = _alert_id_from(None, row.payload)
            if found is not None:
                by_payload.add(found)
    if by_payload - alerts.keys():
        # Rows that name their alert only in the payload (older rows): looked up here.
        a = Alert.__table__  # type: ignore[attr-defined]
        query = sa.select(a.c.id, a.c.team_id, a.c.status, a.c.severity).where(
            a.c.id.in_(by_payload - alerts.keys())
        )
        for r in session.execute(query):
            alerts[r.id] = (r.team_id, r.status, r.severity)
    listed = [o for o in outcomes if alert_of[id(o)] in alerts]
    if not listed:
        return
    events: list[dict[str, Any]] = []
    published: dict[tuple[int, str], tuple[str, dict[str, Any], str | None]] = {}
    for o in listed:
        assert o.note is not None
        ok, reason = o.note
        row, alert_id = o.row, alert_of[id(o)]
        assert alert_id is not None
        who = _recipient_name(
            row.channel,
            row.target,
            row.payload,
            user=row.user_name,
            device=row.device_name,
        )
        events.append(
            {
                "alert_id": alert_id,
                "kind": (AlertEventKind.NOTIFIED if ok else AlertEventKind.NOTIFICATION_FAILED).value,
                "actor": ACTOR_LABEL,
                "channel": row.channel,
                "note": _note(row.channel, who, ok=ok, reason=reason),
                "payload": {
                    "notification_id": row.id,
                    "purpose": row.purpose,
                    "attempts": row.attempts,
                    "provider_status": o.provider_status,
                    "user_id": row.user_id,
                },
                "created_at": now,
            }
        )
        change = "notified" if ok else "notification_failed"
        team_id, status, severity = alerts[alert_id]
        # Identical events of one transaction say nothing more than the first: publish it once.
        # The data is what alert_events.publish_updated sends.
        published.setdefault(
            (alert_id, change),
            (
                alert_events.UPDATED,
                {
                    "id": alert_id,
                    "team_id": team_id,
                    "status": status,
                    "severity": severity,
                    "change": change,
                },
                f"alert:{alert_id}",
            ),
        )
    bulk.insert_rows(session, AlertEvent.__table__, events)  # type: ignore[attr-defined]
    bus.publish_many(session, list(published.values()))


def _id_in(session: Session, column: Any, ids: Sequence[int]) -> Any:
    """`column IN ids`; on PostgreSQL `= ANY(array)`, one statement text whatever the count."""
    if session.get_bind().dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam("ids", list(ids), type_=postgresql.ARRAY(sa.BigInteger)))
    return column.in_(ids)


def _reason(result: DeliveryResult) -> str:
    """A short human reason: the provider's word ("Unregistered", "channel_not_found") or the error."""
    code = result.provider_status.strip()
    head, _, tail = code.partition(" ")
    word = tail.strip() if head.isdigit() and tail else code
    if word and not word.isdigit() and word not in _VAGUE_CODES:
        return word
    return result.error or word or result.status


def _fail(
    session: Session, row: Notification, reason: str, *, now: dt.datetime, error: str | None = None
) -> None:
    row.status = FAILED
    row.error = error or reason
    row.claimed_until = None
    row.updated_at = now
    session.add(row)
    _timeline(session, row, ok=False, reason=reason, now=now)


def _deactivate_device(
    session: Session, *, device_id: int | None, platform: str, token: str, reason: str, now: dt.datetime
) -> None:
    device = session.get(PushDevice, device_id) if device_id is not None else None
    if device is None:
        device = session.exec(
            select(PushDevice).where(PushDevice.platform == platform, PushDevice.token == token)
        ).first()
    if device is None or not device.active:
        return
    device.active = False
    device.deactivated_at = now
    device.deactivation_reason = reason[:200]
    session.add(device)
    # Flushed now: the rest of the recording writes with Core statements.
    session.flush()
    log.info("outbox: push device %s deactivated: %s", device.id, reason)


def _recipient(session: Session, row: Notification) -> str:
    """How the timeline names the target: the person, their device, the channel or the webhook."""
    user = session.get(User, row.user_id) if row.user_id is not None else None
    device = None
    if row.channel in PUSH_CHANNELS and row.push_device_id is not None:
        device = session.get(PushDevice, row.push_device_id)
    return _recipient_name(
        row.channel,
        row.target,
        row.payload,
        user=user.name if user is not None else None,
        device=device.name if device is not None else None,
    )


def _recipient_name(
    channel: str, target: str, payload: Mapping[str, Any] | None, *, user: str | None, device: str | None
) -> str:
    if channel in PUSH_CHANNELS:
        if device:
            return device
        return f"{user}'s device" if user is not None else "a device"
    if user is not None:
        return user
    if channel == Channel.WEBHOOK.value:
        payload_extra = (payload or {}).get("extra") or {}
        return str(payload_extra.get("webhook_name") or urlsplit(target).hostname or redact(target))
    if channel == Channel.SLACK.value:
        return f"channel {target}"
    return redact(target)


def _note(channel: str, who: str, *, ok: bool, reason: str) -> str:
    what = _WHAT.get(channel, channel)
    if ok:
        return f"{what} to {who} {_SENT_VERB.get(channel, 'delivered')}"
    return f"{what} to {who} failed: {reason}"


def _timeline(session: Session, row: Notification, *, ok: bool, reason: str, now: dt.datetime) -> None:
    alert_id = _alert_id_of(row)
    if alert_id is None:
        return
    alert = session.get(Alert, alert_id)
    if alert is None:
        return
    session.add(
        AlertEvent(
            alert_id=alert_id,
            kind=AlertEventKind.NOTIFIED if ok else AlertEventKind.NOTIFICATION_FAILED,
            actor=ACTOR_LABEL,
            channel=row.channel,
            note=_note(row.channel, _recipient(session, row), ok=ok, reason=reason),
            payload={
                "notification_id": row.id,
                "purpose": row.purpose,
                "attempts": row.attempts,
                "provider_status": row.provider_status,
                "user_id": row.user_id,
            },
            created_at=now,
        )
    )
    alert_events.publish_updated(session, alert, "notified" if ok else "notification_failed")


def mark_delivery_status(
    session: Session, *, provider_id: str, status: str, error: str = "", now: dt.datetime
) -> Notification | None:
    """Apply a provider status callback (Twilio: delivered, failed, undelivered, no-answer, …).

    Delivered/completed → delivered; failed/undelivered/no-answer/busy/canceled → failed with a
    timeline entry; anything else only updates `provider_status`. Final states never move back.
    None when no row has this provider id.
    """
    if not provider_id:
        return None
    row = session.exec(
        select(Notification).where(Notification.provider_id == provider_id).with_for_update()
    ).first()
    if row is None:
        return None
    state = status.strip().lower()
    if row.status in (DELIVERED, FAILED, CANCELLED):
        return row
    row.provider_status = state[:64]
    row.updated_at = now
    if state in _DELIVERED_STATES:
        row.status = DELIVERED
        row.delivered_at = now
    elif state in _FAILED_STATES:
        detail = f"{state} ({error})" if error else state
        _fail(session, row, detail, now=now)
    session.add(row)
    session.flush()
    return row


# --- alert changes → Slack channel messages and outgoing webhooks -----------------------------------


def _stamp(now: dt.datetime) -> int:
    return int(now.timestamp() * 1_000_000)


def _status_message(
    alert: Alert, channel: Channel, target: str, *, status_by: str, base_url: str, extra: Mapping[str, Any]
) -> OutgoingMessage:
    assert alert.id is not None
    fields: dict[str, Any] = {"status": alert.status, "alert_url": f"{base_url}/alerts/{alert.id}", **extra}
    if status_by:
        fields["status_by"] = status_by
    return OutgoingMessage(
        channel=channel,
        target=target,
        alert_id=alert.id,
        title=alert.title,
        body=alert_body(alert, channel.value),
        severity=alert.severity,
        collapse_id=f"sentinel-alert-{alert.id}",
        extra=fields,
    )


def new_row(
    *,
    key: str,
    channel: str,
    purpose: str,
    target: str,
    payload: dict[str, Any],
    now: dt.datetime,
    due_at: dt.datetime | None = None,
    alert_id: int | None = None,
    user_id: int | None = None,
    important: bool = False,
    contact_method_id: int | None = None,
    push_device_id: int | None = None,
) -> dict[str, Any]:
    """The column values of a new pending outbox row, due at `due_at` (default: now)."""
    return {
        "idempotency_key": key[:255],
        "alert_id": alert_id,
        "user_id": user_id,
        "channel": channel,
        "purpose": purpose,
        "important": important,
        "contact_method_id": contact_method_id,
        "push_device_id": push_device_id,
        "target": target[:500],
        "payload": payload,
        "status": PENDING,
        "attempts": 0,
        "max_attempts": 5,
        "next_attempt_at": due_at or now,
        "claimed_until": None,
        "claimed_by": "",
        "provider_id": "",
        "provider_status": "",
        "error": "",
        "created_at": now,
        "updated_at": now,
        "sent_at": None,
        "delivered_at": None,
    }


def _outbox_row(
    *,
    key: str,
    alert: Alert,
    channel: Channel,
    purpose: str,
    target: str,
    message: OutgoingMessage,
    now: dt.datetime,
) -> dict[str, Any]:
    return new_row(
        key=key,
        alert_id=alert.id,
        channel=channel.value,
        purpose=purpose,
        target=target,
        payload=message.to_payload(),
        now=now,
    )


def insert_rows(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert outbox rows; a row whose idempotency key exists already is skipped. Returns how many were new."""
    if not rows:
        return 0
    table = Notification.__table__  # type: ignore[attr-defined]
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    written = bulk.insert_rows(
        session,
        table,
        rows,
        returning=("id",),
        on_conflict="ON CONFLICT (idempotency_key) DO NOTHING",
        sqlite_statement=insert(table)
        .on_conflict_do_nothing(index_elements=["idempotency_key"])
        .returning(table.c.id),
    )
    return len(written)


def _hook_secret(hook: OutgoingWebhook) -> str | None:
    """The hook's own signing secret; None (the server-derived default) for a hook without one."""
    return outgoing_webhooks.secret_of(hook) if hook.secret_encrypted else None


def on_alerts_fired(
    session: Session, *, alert_ids: Collection[int], team_ids: Collection[int], now: dt.datetime
) -> None:
    """`on_alerts_changed` for newly fired alerts, loading them only when somebody hears of it.

    Most alerts fire where no Slack channel and no outgoing webhook listens; the ingest path then
    skips reading back the rows it just wrote.
    """
    if not alert_ids:
        return
    listens = bool(outgoing_webhooks.subscriptions_for(session, team_ids=team_ids, event="fired"))
    if not listens and get_settings().channels["slack"]:
        listens = (
            session.exec(
                select(Integration.id)
                .join(Alert, col(Alert.integration_id) == col(Integration.id))
                .where(col(Alert.id).in_(list(alert_ids)), col(Integration.slack_channel_id).is_not(None))
                .where(Integration.slack_channel_id != "")
                .limit(1)
            ).first()
            is not None
        )
    if not listens:
        return
    fired = session.exec(select(Alert).where(col(Alert.id).in_(list(alert_ids)))).all()
    on_alerts_changed(session, changes=[(alert, "fired") for alert in fired], now=now)


def on_alerts_changed(
    session: Session,
    *,
    changes: Sequence[tuple[Alert, str]],
    now: dt.datetime,
) -> None:
    """Write the outbox rows an alert change causes, in the caller's transaction.

    The integration's Slack channel gets one message per alert (posted on "fired", edited in
    place on every other change; Slack DMs already sent for the alert are edited too), and each
    of the team's outgoing webhooks subscribed to the change gets a signed delivery.
    """
    if not changes:
        return
    for _, change in changes:
        if change not in CHANGES:
            raise ValueError(f"unknown alert change {change!r}")
    settings = get_settings()
    slack_on = settings.channels["slack"]
    alerts = [alert for alert, _ in changes]
    alert_ids = {a.id for a in alerts if a.id is not None}
    integration_ids = {a.integration_id for a in alerts if a.integration_id is not None}
    slack_channels: dict[int, str] = {}
    if slack_on and integration_ids:
        for integration_id, channel_id in session.exec(
            select(Integration.id, Integration.slack_channel_id).where(
                col(Integration.id).in_(integration_ids)
            )
        ).all():
            if integration_id is not None and channel_id:
                slack_channels[integration_id] = channel_id
    dms: dict[int, list[Notification]] = {}
    if slack_on and any(change != "fired" for _, change in changes):
        for dm in session.exec(
            select(Notification).where(
                col(Notification.alert_id).in_(alert_ids),
                Notification.channel == Channel.SLACK.value,
                Notification.purpose == "alert",
                col(Notification.status).in_([SENT, DELIVERED]),
                Notification.provider_id != "",
            )
        ).all():
            if dm.alert_id is not None:
                dms.setdefault(dm.alert_id, []).append(dm)
    team_ids = {a.team_id for a in alerts}
    hooks: dict[tuple[int, str], list[OutgoingWebhook]] = {}
    for change in {c for _, c in changes if c in WEBHOOK_EVENTS}:
        for hook in outgoing_webhooks.subscriptions_for(session, team_ids=team_ids, event=change):
            hooks.setdefault((hook.team_id, change), []).append(hook)
    actor_ids = {a.acknowledged_by_id for a in alerts} | {a.resolved_by_id for a in alerts}
    names = {u.id: u.name for u in _by_id(session, User, {i for i in actor_ids if i is not None}).values()}
    stamp = _stamp(now)
    rows: list[dict[str, Any]] = []
    for alert, change in changes:
        assert alert.id is not None
        by_id = alert.resolved_by_id if change == "resolved" else alert.acknowledged_by_id
        status_by = names.get(by_id, "") if change in ("acknowledged", "resolved") and by_id else ""
        channel_id = slack_channels.get(alert.integration_id) if alert.integration_id is not None else None
        post_key = f"slack:a{alert.id}:fired"
        if channel_id:
            extra = {} if change == "fired" else {"post_key": post_key}
            message = _status_message(
                alert, Channel.SLACK, channel_id, status_by=status_by, base_url=settings.base_url, extra=extra
            )
            key = post_key if change == "fired" else f"slack:a{alert.id}:{change}:{stamp}"
            rows.append(
                _outbox_row(
                    key=key,
                    alert=alert,
                    channel=Channel.SLACK,
                    purpose="status_update",
                    target=channel_id,
                    message=message,
                    now=now,
                )
            )
        if change != "fired":
            seen: set[str] = set()
            for dm in dms.get(alert.id, []):
                if dm.provider_id in seen:
                    continue
                seen.add(dm.provider_id)
                message = _status_message(
                    alert,
                    Channel.SLACK,
                    dm.target,
                    status_by=status_by,
                    base_url=settings.base_url,
                    extra={"update_of": dm.provider_id},
                )
                rows.append(
                    _outbox_row(
                        key=f"slack:n{dm.id}:{change}:{stamp}",
                        alert=alert,
                        channel=Channel.SLACK,
                        purpose="status_update",
                        target=dm.target,
                        message=message,
                        now=now,
                    )
                )
        event = WEBHOOK_EVENTS.get(change)
        if event is None:
            continue
        for hook in hooks.get((alert.team_id, change), []):
            key = f"hook{hook.id}:a{alert.id}:{change}:{stamp}"
            message = _status_message(
                alert,
                Channel.WEBHOOK,
                hook.url,
                status_by=status_by,
                base_url=settings.base_url,
                extra={
                    "event": event,
                    "delivery_id": key,
                    "labels": dict(alert.labels or {}),
                    "webhook_id": hook.id,
                    "webhook_name": hook.name,
                },
            )
            rows.append(
                _outbox_row(
                    key=key,
                    alert=alert,
                    channel=Channel.WEBHOOK,
                    purpose="outgoing_webhook",
                    target=hook.url,
                    message=message,
                    now=now,
                )
            )
    insert_rows(session, rows)
