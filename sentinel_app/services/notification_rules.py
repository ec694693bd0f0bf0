"""Personal notification rules: how and when each person is reached for default and important pages."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlmodel import Session, col, select

from sentinel_app.domain.notification_plan import DEFAULT, IMPORTANT, METHODS, PUSH, URGENCIES, Rule
from sentinel_app.models import ContactMethod, NotificationRule, User
from sentinel_app.models.base import require_id
from sentinel_app.services import audit
from sentinel_app.services.errors import ValidationFailed

MAX_DELAY_MINUTES = 24 * 60
MAX_RULES_PER_URGENCY = 20
# A new person is reachable at once: push and email for normal pages, then SMS if nobody reacts;
# important pages ring the phone too.
DEFAULT_RULES: tuple[Rule, ...] = (
    Rule(PUSH, 0, urgency=DEFAULT),
    Rule("email", 0, urgency=DEFAULT),
    Rule("sms", 5, urgency=DEFAULT),
    Rule(PUSH, 0, urgency=IMPORTANT),
    Rule("sms", 0, urgency=IMPORTANT),
    Rule("voice", 2, urgency=IMPORTANT),
)


def _ordered(query: Any) -> Any:
    return query.order_by(
        col(NotificationRule.user_id),
        col(NotificationRule.urgency),
        col(NotificationRule.delay_minutes),
        col(NotificationRule.id),
    )


def list_rules(session: Session, *, user_id: int) -> dict[str, list[NotificationRule]]:
    """A user's rules per urgency ("default", "important"), each ordered by delay then id."""
    grouped: dict[str, list[NotificationRule]] = {u: [] for u in URGENCIES}
    for row in session.exec(_ordered(select(NotificationRule).where(NotificationRule.user_id == user_id))):
        grouped.setdefault(row.urgency, []).append(row)
    return grouped


def rules_for(session: Session, *, user_ids: Collection[int]) -> dict[int, list[Rule]]:
    """Domain rules of every given user (empty list: none), default before important, then by delay and id.

    The order is stable while the rules are unchanged, as `expand_rules` needs for its keys.
    """
    result: dict[int, list[Rule]] = {uid: [] for uid in user_ids}
    if not result:
        return result
    rows = session.exec(
        _ordered(select(NotificationRule).where(col(NotificationRule.user_id).in_(list(result))))
    )
    for row in rows:
        result[row.user_id].append(
            Rule(row.method, row.delay_minutes, row.contact_method_id, urgency=row.urgency)
        )
    rank = {u: i for i, u in enumerate(URGENCIES)}
    for rules in result.values():
        rules.sort(key=lambda r: rank.get(r.urgency, len(rank)))  # stable: keeps delay, id order
    return result


def _validate(session: Session, *, user_id: int, rules: Sequence[Rule]) -> None:
    owned = {
        m.id: m.kind for m in session.exec(select(ContactMethod).where(ContactMethod.user_id == user_id))
    }
    position: dict[str, int] = {u: 0 for u in URGENCIES}
    for rule in rules:
        if rule.urgency not in URGENCIES:
            raise ValidationFailed(f"urgency must be one of {', '.join(URGENCIES)}", field="urgency")
        index = position[rule.urgency]
        position[rule.urgency] += 1
        where = f"{rule.urgency}[{index}]"
        if index >= MAX_RULES_PER_URGENCY:
            raise ValidationFailed(f"at most {MAX_RULES_PER_URGENCY} rules per urgency", field=rule.urgency)
        if rule.method not in METHODS:
            raise ValidationFailed(f"method must be one of {', '.join(METHODS)}", field=f"{where}.method")
        if not 0 <= rule.delay_minutes <= MAX_DELAY_MINUTES:
            raise ValidationFailed(
                f"delay_minutes must be from 0 to {MAX_DELAY_MINUTES}", field=f"{where}.delay_minutes"
            )
        if rule.contact_method_id is None:
            continue
        if rule.method == PUSH:
            raise ValidationFailed(
                "push rules reach every active device and take no contact method",
                field=f"{where}.contact_method_id",
            )
        kind = owned.get(rule.contact_method_id)
        if kind is None:
            raise ValidationFailed(
                f"contact method {rule.contact_method_id} is not one of this user's",
                field=f"{where}.contact_method_id",
            )
        if kind != rule.method:
            raise ValidationFailed(
                f"contact method {rule.contact_method_id} is a {kind} method, not {rule.method}",
                field=f"{where}.contact_method_id",
            )


def _snapshot(rows: Sequence[NotificationRule]) -> dict[str, Any]:
    grouped: dict[str, list[dict[str, Any]]] = {u: [] for u in URGENCIES}
    for row in rows:
        grouped.setdefault(row.urgency, []).append(
            {
                "method": row.method,
                "delay_minutes": row.delay_minutes,
                "contact_method_id": row.contact_method_id,
            }
        )
    return {"rules": grouped}


def replace_rules(
    session: Session,
    *,
    user_id: int,
    rules: Sequence[Rule],
    actor_user_id: int | None = None,
    action: str = "notification_rules.replace",
) -> dict[str, list[NotificationRule]]:
    """Replace all of a user's rules (both urgencies) in one transaction; validates before changing anything.

    Validation errors name the field as ``<urgency>[<index among that urgency's rules>].<field>``.
    """
    _validate(session, user_id=user_id, rules=rules)
    existing = session.exec(
        _ordered(select(NotificationRule).where(NotificationRule.user_id == user_id))
    ).all()
    before = _snapshot(existing)
    for row in existing:
        session.delete(row)
    session.flush()
    created = [
        NotificationRule(
            user_id=user_id,
            urgency=rule.urgency,
            method=rule.method,
            contact_method_id=rule.contact_method_id,
            delay_minutes=rule.delay_minutes,
        )
        for rule in rules
    ]
    session.add_all(created)
    session.flush()
    audit.record(
        session,
        action=action,
        entity_type="notification_rules",
        entity_id=user_id,
        before=before,
        after=_snapshot(created),
        actor_user_id=actor_user_id,
    )
    return list_rules(session, user_id=user_id)


def seed_default_rules(session: Session, *, user: User, actor_user_id: int | None = None) -> None:
    """Give a new (flushed) user DEFAULT_RULES (push, email, then SMS; important pages also call)."""
    replace_rules(
        session,
        user_id=require_id(user),
        rules=DEFAULT_RULES,
        actor_user_id=actor_user_id,
        action="notification_rules.seed",
    )
