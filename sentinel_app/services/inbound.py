"""Answers that come back through a channel: SMS replies, key presses, Slack buttons, action links.

Every entry point takes an already authenticated request (the provider's or the link's signature
was checked by the API layer), works out which Sentinel user is acting on which alert, checks that
the user may act on that alert's team, and applies the change through the alert and escalation
services. The result is an `Outcome` whose text is meant for the person (an SMS, a spoken
sentence, a Slack message, a web page); nothing here raises for things a person can cause, so
every channel can answer politely instead of failing.

Twilio delivery receipts (`record_delivery_status`) also land here: the outbox moves the row the
receipt is about, and the delivery is noted on the alert's timeline.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from sentinel_app.domain.alert_lifecycle import Transition
from sentinel_app.models import (
    ActionLinkUse,
    Alert,
    AlertEvent,
    AlertEventKind,
    AlertStatus,
    Channel,
    ContactKind,
    ContactMethod,
    Notification,
    NotificationStatus,
    Role,
    SmsRef,
    TeamMembership,
    User,
)
from sentinel_app.notify.base import InboundIntent, Intent, redact
from sentinel_app.notify.links import LinkIntent
from sentinel_app.notify.twilio_sms import DEFAULT_REPLY_CODES, ReplyCodes
from sentinel_app.services import alert_events, escalations, outbox
from sentinel_app.services import alerts as alert_service
from sentinel_app.services.actor import Actor
from sentinel_app.services.errors import Conflict, NotFound

log = logging.getLogger(__name__)

__all__ = [
    "Outcome",
    "Receipt",
    "Result",
    "act_by_link",
    "answer_gather",
    "answer_slack",
    "answer_sms",
    "apply_intent",
    "can_act",
    "record_delivery_status",
    "twilio_delivery_status",
]

_TRANSITIONS: Mapping[Intent, Transition] = {
    "acknowledge": Transition.ACKNOWLEDGE,
    "resolve": Transition.RESOLVE,
}
_DONE: Mapping[Intent, str] = {"acknowledge": "acknowledged", "resolve": "resolved", "escalate": "escalated"}
_ACTING_ROLES = frozenset({Role.ADMIN.value, Role.RESPONDER.value})
_PHONE_KINDS = (ContactKind.SMS.value, ContactKind.VOICE.value)


class Result(StrEnum):
    """What became of an inbound answer."""

    DONE = "done"
    # The alert is not in a state that allows the change (already acknowledged/resolved, ...).
    CONFLICT = "conflict"
    NOT_ALLOWED = "not_allowed"
    NOT_FOUND = "not_found"
    UNKNOWN_SENDER = "unknown_sender"
    UNKNOWN_REPLY = "unknown_reply"
    LINK_USED = "link_used"


@dataclass(frozen=True)
class Outcome:
    """The result of one inbound answer and the sentence to tell the person."""

    result: Result
    text: str
    alert_id: int | None = None
    user_id: int | None = None

    @property
    def changed(self) -> bool:
        """Whether the alert was changed."""
        return self.result is Result.DONE


# --- who is acting ----------------------------------------------------------------------------


def _users_by_contact(session: Session, *, kinds: Collection[str], value: str, verified: bool) -> list[User]:
    """Active users owning an enabled contact method of one of `kinds` with exactly `value`."""
    if not value:
        return []
    query = (
        select(User)
        .join(ContactMethod, col(ContactMethod.user_id) == col(User.id))
        .where(
            col(ContactMethod.kind).in_(list(kinds)),
            ContactMethod.value == value,
            col(ContactMethod.enabled).is_(True),
            col(User.is_active).is_(True),
        )
        .order_by(col(User.id))
    )
    if verified:
        query = query.where(col(ContactMethod.verified_at).is_not(None))
    users: dict[int | None, User] = {u.id: u for u in session.exec(query).all()}
    return list(users.values())


def can_act(session: Session, *, user: User, team_id: int) -> bool:
    """Whether `user` may change alerts of `team_id`: installation admins, team admins and responders."""
    if not user.is_active:
        return False
    if user.is_admin:
        return True
    role = session.exec(
        select(TeamMembership.role).where(
            TeamMembership.team_id == team_id, TeamMembership.user_id == user.id
        )
    ).first()
    return role in _ACTING_ROLES


# --- applying a change ------------------------------------------------------------------------


def _conflict_text(alert: Alert, intent: Intent, reason: str) -> str:
    if alert.status == AlertStatus.RESOLVED or (
        intent == "acknowledge" and alert.status == AlertStatus.ACKNOWLEDGED
    ):
        return f"Alert #{alert.id} is already {alert.status}."
    if intent == "escalate" and alert.status == AlertStatus.ACKNOWLEDGED:
        return f"Alert #{alert.id} is already acknowledged, so it was not escalated."
    # The service messages end with "(status: …)" for API clients; people do not need it.
    return f"Alert #{alert.id}: {reason.split(' (status:')[0]}."


def apply_intent(
    session: Session,
    *,
    user: User | None,
    alert_id: int,
    intent: Intent,
    channel: str,
    now: dt.datetime,
    label: str = "",
) -> Outcome:
    """Acknowledge, resolve or escalate `alert_id` as `user` (None: an anonymous signed link).

    The change runs in a SAVEPOINT so that a refused escalation leaves nothing half-written;
    a conflict answers with the alert's current state instead of an error.
    """
    user_id = user.id if user is not None else None
    alert = session.get(Alert, alert_id)
    if alert is None:
        return Outcome(Result.NOT_FOUND, f"Alert #{alert_id} was not found.", alert_id, user_id)
    if user is not None and not can_act(session, user=user, team_id=alert.team_id):
        return Outcome(
            Result.NOT_ALLOWED,
            f"You are not allowed to act on alert #{alert_id}: only responders and admins of its team can.",
            alert_id,
            user_id,
        )
    actor = Actor(user_id=user_id, label=user.name if user is not None else label, channel=channel)
    try:
        with session.begin_nested():
            if intent == "escalate":
                escalations.escalate_now(session, alert_id=alert_id, actor=actor, now=now)
            else:
                alert_service.transition(
                    session, alert_id=alert_id, transition=_TRANSITIONS[intent], actor=actor, now=now
                )
    except Conflict as exc:
        # Loaded before the service locked the row: read the state the conflict is about.
        session.refresh(alert)
        return Outcome(Result.CONFLICT, _conflict_text(alert, intent, exc.message), alert_id, user_id)
    except NotFound:
        return Outcome(Result.NOT_FOUND, f"Alert #{alert_id} was not found.", alert_id, user_id)
    log.info("inbound: %s %s alert %s via %s", actor.label or "link", intent, alert_id, channel)
    return Outcome(Result.DONE, f"Alert #{alert_id} {_DONE[intent]}.", alert_id, user_id)


# --- SMS replies ------------------------------------------------------------------------------


def _help_text(codes: ReplyCodes, ref: str) -> str:
    return (
        f"Reply {codes.code(ref, 'acknowledge')} to acknowledge, {codes.code(ref, 'resolve')} to resolve "
        f"or {codes.code(ref, 'escalate')} to escalate ({ref} is the number given in the alert)."
    )


def _newest_open_ref(session: Session, *, user_id: int) -> SmsRef | None:
    return session.exec(
        select(SmsRef)
        .join(Alert, col(Alert.id) == col(SmsRef.alert_id))
        .where(SmsRef.user_id == user_id, Alert.status != AlertStatus.RESOLVED)
        .order_by(col(SmsRef.created_at).desc(), col(SmsRef.id).desc())
    ).first()


def answer_sms(
    session: Session,
    *,
    sender: str,
    intent: InboundIntent | None,
    now: dt.datetime,
    codes: ReplyCodes = DEFAULT_REPLY_CODES,
) -> Outcome:
    """An SMS reply from `sender` (E.164); `intent` None when the text was not a reply code.

    The sender is the owner of a verified sms/voice contact method with exactly that number;
    `1a` names the alert of that person's reference 1, a bare `a` their newest open alert.
    """
    users = _users_by_contact(session, kinds=_PHONE_KINDS, value=sender, verified=True)
    if not users:
        return Outcome(
            Result.UNKNOWN_SENDER,
            "This number is not linked to a Fangorn Sentinel account. "
            "Add and verify it in your Sentinel profile to answer alerts by SMS.",
        )
    if len(users) > 1:
        return Outcome(
            Result.NOT_ALLOWED,
            "This number belongs to more than one Fangorn Sentinel user. Please answer in the app.",
        )
    user = users[0]
    assert user.id is not None
    if intent is None:
        newest = _newest_open_ref(session, user_id=user.id)
        return Outcome(
            Result.UNKNOWN_REPLY,
            f"Unknown reply. {_help_text(codes, newest.ref if newest else '1')}",
            user_id=user.id,
        )
    if intent.ref is not None:
        ref = session.exec(select(SmsRef).where(SmsRef.user_id == user.id, SmsRef.ref == intent.ref)).first()
        if ref is None:
            return Outcome(
                Result.NOT_FOUND,
                f"No alert has the number {intent.ref}. {_help_text(codes, '1')}",
                user_id=user.id,
            )
    else:
        ref = _newest_open_ref(session, user_id=user.id)
        if ref is None:
            return Outcome(Result.NOT_FOUND, "You have no open alerts to answer.", user_id=user.id)
    return apply_intent(
        session, user=user, alert_id=ref.alert_id, intent=intent.intent, channel=Channel.SMS.value, now=now
    )


# --- voice key presses ------------------------------------------------------------------------


def answer_gather(session: Session, *, intent: InboundIntent, now: dt.datetime) -> Outcome:
    """A key pressed during an alert call.

    The call's outbox row (provider id = CallSid) says who was called about which alert. Should
    the receipt of the call SID not be stored yet, the callee's verified number and the alert id
    of the action URL (both covered by Twilio's signature) identify them instead.
    """
    call_sid = intent.details.get("call_sid", "")
    row = None
    if call_sid:
        row = session.exec(
            select(Notification).where(
                Notification.provider_id == call_sid, Notification.channel == Channel.VOICE.value
            )
        ).first()
    user: User | None = None
    alert_id: int | None = None
    if row is not None and row.user_id is not None and row.alert_id is not None:
        user, alert_id = session.get(User, row.user_id), row.alert_id
        if intent.alert_id is not None and intent.alert_id != alert_id:
            log.warning("inbound: call %s is about alert %s, not %s", call_sid, alert_id, intent.alert_id)
    elif intent.alert_id is not None:
        users = _users_by_contact(session, kinds=_PHONE_KINDS, value=intent.actor, verified=True)
        if len(users) == 1:
            user, alert_id = users[0], intent.alert_id
    if user is None or alert_id is None or not user.is_active:
        return Outcome(Result.UNKNOWN_SENDER, "Sorry, this call could not be matched to an alert.")
    return apply_intent(
        session, user=user, alert_id=alert_id, intent=intent.intent, channel=Channel.VOICE.value, now=now
    )


# --- Slack buttons ----------------------------------------------------------------------------


def answer_slack(session: Session, *, intent: InboundIntent, now: dt.datetime) -> Outcome:
    """A Sentinel button pressed in Slack by the Slack user `intent.actor`.

    The Slack user is the owner of an enabled contact method of kind slack with that user id.
    """
    users = _users_by_contact(
        session, kinds=(ContactKind.SLACK.value,), value=intent.actor.strip().upper(), verified=False
    )
    if not users:
        return Outcome(
            Result.UNKNOWN_SENDER,
            "Your Slack account is not linked to a Fangorn Sentinel user, so nothing was changed. "
            f"Add your Slack member ID ({intent.actor or 'U…'}) as a Slack contact method "
            "in your Sentinel profile, then press the button again.",
        )
    if len(users) > 1:
        return Outcome(
            Result.NOT_ALLOWED,
            "This Slack account is linked to more than one Fangorn Sentinel user, so nothing was "
            "changed. Please act in the app.",
        )
    if intent.alert_id is None:
        return Outcome(Result.NOT_FOUND, "This button does not name an alert.")
    return apply_intent(
        session,
        user=users[0],
        alert_id=intent.alert_id,
        intent=intent.intent,
        channel=Channel.SLACK.value,
        now=now,
    )


# --- action links -----------------------------------------------------------------------------


def act_by_link(session: Session, *, link: LinkIntent, now: dt.datetime, channel: str = "link") -> Outcome:
    """Apply a verified action link once: its nonce goes into `ActionLinkUse` with the change.

    The UNIQUE nonce is the authority on single use (two concurrent clicks: one insert waits for
    the other and then fails). A link that changed nothing (the alert was already resolved, the
    user may not act) stays unused, so that nothing at all is written.
    """
    user: User | None = None
    if link.user_id is not None:
        user = session.get(User, link.user_id)
        if user is None or not user.is_active:
            return Outcome(
                Result.NOT_ALLOWED, "The person this link was sent to can no longer act on alerts."
            )
    if session.get(Alert, link.alert_id) is None:
        # Checked first: the nonce row's foreign key would fail like a used link otherwise.
        return Outcome(Result.NOT_FOUND, f"Alert #{link.alert_id} was not found.", link.alert_id)
    savepoint = session.begin_nested()
    try:
        session.add(
            ActionLinkUse(
                nonce=link.nonce,
                alert_id=link.alert_id,
                user_id=link.user_id,
                action=link.intent,
                used_at=now,
                expires_at=link.expires_at,
            )
        )
        session.flush()
    except IntegrityError:
        savepoint.rollback()
        return Outcome(Result.LINK_USED, "This link was already used.", link.alert_id, link.user_id)
    outcome = apply_intent(
        session,
        user=user,
        alert_id=link.alert_id,
        intent=link.intent,
        channel=channel,
        now=now,
        label="action link",
    )
    if outcome.changed:
        savepoint.commit()
    else:
        savepoint.rollback()
    return outcome


# --- delivery receipts ------------------------------------------------------------------------


@dataclass(frozen=True)
class Receipt:
    """A provider's status callback for one sent message or call."""

    provider_id: str
    # The provider's own word: delivered, undelivered, completed, no-answer, ringing, …
    status: str
    error: str = ""


def twilio_delivery_status(form: Mapping[str, str]) -> Receipt | None:
    """The receipt in a Twilio status callback (SMS or call); None without a SID or status."""
    message_sid = form.get("MessageSid") or form.get("SmsSid") or ""
    provider_id = message_sid or form.get("CallSid", "")
    status_text = (
        (form.get("MessageStatus") or form.get("SmsStatus")) if message_sid else form.get("CallStatus")
    )
    status = (status_text or "").strip().lower()
    if not provider_id or not status:
        return None
    code = form.get("ErrorCode", "").strip()
    return Receipt(provider_id, status, f"Twilio error {code}" if code else "")


def record_delivery_status(session: Session, *, receipt: Receipt, now: dt.datetime) -> Notification | None:
    """Apply a receipt to the sms/voice outbox row with its provider id (`outbox.mark_delivery_status`).

    The outbox moves the row (final states never move back) and notes failures on the alert's
    timeline; a row that becomes delivered here gets its NOTIFIED entry ("SMS to Ana delivered",
    "call to Ana answered"). None when no row has this provider id.
    """
    before = session.exec(
        select(Notification.status).where(
            Notification.provider_id == receipt.provider_id,
            col(Notification.channel).in_([Channel.SMS.value, Channel.VOICE.value]),
        )
    ).first()
    if before is None:
        return None
    row = outbox.mark_delivery_status(
        session, provider_id=receipt.provider_id, status=receipt.status, error=receipt.error, now=now
    )
    delivered = NotificationStatus.DELIVERED.value
    if row is not None and row.status == delivered and before != delivered and row.alert_id is not None:
        _note_delivered(session, row=row, now=now)
    return row


def _note_delivered(session: Session, *, row: Notification, now: dt.datetime) -> None:
    assert row.alert_id is not None
    alert = session.get(Alert, row.alert_id)
    if alert is None:
        return
    person = session.get(User, row.user_id) if row.user_id is not None else None
    who = person.name if person is not None else redact(row.target)
    # Worded like the outbox's own timeline notes ("SMS to Ana delivered", "call to Ana placed").
    note = f"call to {who} answered" if row.channel == Channel.VOICE.value else f"SMS to {who} delivered"
    session.add(
        AlertEvent(
            alert_id=row.alert_id,
            kind=AlertEventKind.NOTIFIED,
            actor_user_id=None,
            actor=outbox.ACTOR_LABEL,
            channel=row.channel,
            note=note,
            payload={
                "notification_id": row.id,
                "purpose": row.purpose,
                "provider_status": row.provider_status,
                "user_id": row.user_id,
            },
            created_at=now,
        )
    )
    alert_events.publish_updated(session, alert, "notified")
